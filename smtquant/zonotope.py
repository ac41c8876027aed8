"""Sound affine-arithmetic (zonotope) bounds for the original network, the perturbed network and
their difference, in float64 with every rounding error accounted for.

Interval propagation forgets that z' and z are computed from the same input and nearly the same
weights, so on an input region it bounds z' - z by the width of the output range. Here both
networks are affine forms over shared noise symbols e in [-1, 1]^m:

    value = c + G e + eta,    |eta| <= E  (per neuron, absorbs rounding and is never shared)

The original network o and the difference d = (perturbed - original) are propagated side by side:

    u  = W h + b                                   (original)
    du = W dh + R e_new,   R = eps.|h'| + eps_b    (every parameter moves one neuron only)

so the input symbols cancel exactly in du. ReLU is relaxed as in DeepZ (a slope and a band with a
fresh symbol); its difference relu(u') - relu(u) always lies between min(du, 0) and max(du, 0),
which gives a band around a slope of du ("bowtie"). Where both phases are known the difference is
exact (du, 0, u' or -u).

Only relu and identity hidden units. Every bound returned is a double that holds for every input
in the region and every parameter vector in the box; soundness rests on ``_margin``: a dot product
of length k computed in float64 is off by at most k * u * sum |terms| (u = 2**-53), and the
margins below use twice that, plus an allowance for underflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["Zonotope", "affine_bounds", "centre_arrays"]

_U = 2.0**-52  # twice the unit roundoff
_TINY = 1e-300


def _up(q: Fraction) -> float:
    f = float(q)
    return math.nextafter(f, math.inf) if Fraction(f) < q else f


def _down(q: Fraction) -> float:
    f = float(q)
    return math.nextafter(f, -math.inf) if Fraction(f) > q else f


@dataclass
class _Form:
    """c + G e + eta, |eta| <= E: one row per neuron, one column of G per noise symbol."""

    c: np.ndarray
    G: np.ndarray
    E: np.ndarray

    def pad(self, m: int) -> _Form:
        if self.G.shape[1] < m:
            self.G = np.hstack([self.G, np.zeros((self.G.shape[0], m - self.G.shape[1]))])
        return self

    def radius(self) -> np.ndarray:
        """An upper bound on |G e + eta| (rounded up)."""
        s = np.abs(self.G).sum(axis=1) + self.E
        return s * (1.0 + (self.G.shape[1] + 2) * _U) + _TINY

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.radius()
        lo, hi = self.c - s, self.c + s
        mar = _U * (np.abs(self.c) + s) + _TINY
        return lo - mar, hi + mar


def _linear(f: _Form, w: np.ndarray, b: np.ndarray | None, err: np.ndarray | None = None) -> _Form:
    """W^T f + b (w: n_in x n_out), with the rounding of every product and sum added to E."""
    aw = np.abs(w)
    c = f.c @ w
    G = w.T @ f.G
    k = w.shape[0] + 2
    bulk = np.abs(f.c) @ aw + aw.T @ np.abs(f.G).sum(axis=1) + f.E @ aw
    E = f.E @ aw
    if b is not None:
        c = c + b
        bulk = bulk + np.abs(b)
    E = (E + k * _U * bulk) * (1.0 + k * _U) + _TINY
    if err is not None:
        E = E + err
    return _Form(c, G, E)


def _add(f: _Form, g: _Form, sign: float = 1.0) -> _Form:
    m = max(f.G.shape[1], g.G.shape[1])
    f, g = f.pad(m), g.pad(m)
    c = f.c + sign * g.c
    G = f.G + sign * g.G
    mar = _U * (np.abs(c) + np.abs(G).sum(axis=1)) * (1.0 + (m + 2) * _U)
    return _Form(c, G, (f.E + g.E + mar) * (1.0 + 2 * _U) + _TINY)


def _affine(f: _Form, lam: np.ndarray, mid: np.ndarray, rad: np.ndarray) -> _Form:
    """lam * f + mid + rad * e_new: a fresh symbol for every neuron with rad > 0."""
    c = lam * f.c + mid
    G = f.G * lam[:, None]
    mar = _U * (np.abs(c) + np.abs(mid) + np.abs(G).sum(axis=1))
    E = (np.abs(lam) * f.E + mar) * (1.0 + 2 * _U) + _TINY
    idx = np.flatnonzero(rad > 0)
    if len(idx):
        m0 = G.shape[1]
        G = np.hstack([G, np.zeros((len(rad), len(idx)))])
        G[idx, m0 + np.arange(len(idx))] = rad[idx] * (1.0 + 4 * _U) + _TINY
    return _Form(c, G, E)


@dataclass
class Zonotope:
    """Bounds per layer (pre-activations, the last is the output): original [ol, oh],
    perturbed [pl, ph], difference perturbed - original [dl, dh]; and the output forms."""

    ol: list[np.ndarray]
    oh: list[np.ndarray]
    pl: list[np.ndarray]
    ph: list[np.ndarray]
    dl: list[np.ndarray]
    dh: list[np.ndarray]
    out_o: _Form
    out_d: _Form

    def upper(self, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction) -> Fraction:
        """A sound upper bound on sum zp[k] z'_k + sum z[k] z_k + const, written as
        sum zp[k] d_k + sum (zp[k] + z[k]) o_k so the shared symbols cancel."""
        n = len(self.out_o.c)
        a = [Fraction(0)] * n
        s = [Fraction(0)] * n
        for k, v in zp.items():
            a[k] += v
            s[k] += v
        for k, v in z.items():
            s[k] += v
        af, sf = np.array([float(v) for v in a]), np.array([float(v) for v in s])
        f = _add(_linear(self.out_d, af[:, None], None), _linear(self.out_o, sf[:, None], None))
        hi = Fraction(float(f.bounds()[1][0]))
        # coefficients that are not doubles: the rest times a bound on |d_k| or |o_k|
        dmax = [max(abs(Fraction(float(lo))), abs(Fraction(float(h)))) for lo, h in zip(self.dl[-1], self.dh[-1])]
        omax = [max(abs(Fraction(float(lo))), abs(Fraction(float(h)))) for lo, h in zip(self.ol[-1], self.oh[-1])]
        for k in range(n):
            hi += abs(a[k] - Fraction(af[k])) * dmax[k] + abs(s[k] - Fraction(sf[k])) * omax[k]
        return hi + const


def centre_arrays(layers: Sequence[tuple[Sequence[Sequence[Fraction]], Sequence[Fraction]]]
                  ) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The parameters as float64 arrays, or None when one of them is not exactly a double."""
    ws, bs = [], []
    for w, b in layers:
        wf = np.array([[float(v) for v in row] for row in w])
        bf = np.array([float(v) for v in b])
        if not (np.isfinite(wf).all() and np.isfinite(bf).all()):
            return None
        if any(Fraction(float(f)) != v for row, frow in zip(w, wf) for v, f in zip(row, frow)) or \
                any(Fraction(float(f)) != v for v, f in zip(b, bf)):
            return None
        ws.append(wf)
        bs.append(bf)
    return ws, bs


def affine_bounds(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], activation: str,
                  radii_w: Sequence[np.ndarray], radii_b: Sequence[np.ndarray],
                  inputs: Sequence[tuple[Fraction, Fraction]],
                  clip_o: Sequence[Sequence[tuple[Fraction, Fraction]]] | None = None,
                  clip_p: Sequence[Sequence[tuple[Fraction, Fraction]]] | None = None) -> Zonotope | None:
    """Zonotope bounds of the network with parameters ``weights``/``biases`` (float64 arrays that
    are the exact parameters, see ``centre_arrays``) over the input box and the parameter box
    with radii ``radii_w``/``radii_b`` (doubles, rounded up). ``clip_o``/``clip_p``: other sound
    pre-activation bounds (e.g. interval ones) to intersect with at every layer, so the
    relaxations use the tighter of both. None unless the activation is relu or identity."""
    if activation not in ("relu", "identity"):
        return None
    n_in = len(inputs)
    xc = np.empty(n_in)
    xr = np.empty(n_in)
    for i, (lo, hi) in enumerate(inputs):
        mid = float((lo + hi) / 2)
        xc[i] = mid
        xr[i] = _up(max(hi - Fraction(mid), Fraction(mid) - lo))
    cols = np.flatnonzero(xr)
    G = np.zeros((n_in, len(cols)))
    G[cols, np.arange(len(cols))] = xr[cols]
    o = _Form(xc, G, np.zeros(n_in))  # the input: shared by both networks, so d starts at 0
    d = _Form(np.zeros(n_in), np.zeros((n_in, len(cols))), np.zeros(n_in))
    h_abs = (np.abs(xc) + xr) * (1.0 + _U)  # |h'| <= h_abs for the layer's inputs
    res = Zonotope([], [], [], [], [], [], o, d)
    n_layers = len(weights)
    for li, (wf, bf) in enumerate(zip(weights, biases)):
        uo = _linear(o, wf, bf)
        # sum_i (w'_ij - w_ij) h'_i + (b'_j - b_j) lies in [-R_j, R_j]: a fresh symbol per neuron
        R = (h_abs @ radii_w[li] + radii_b[li]) * (1.0 + (len(h_abs) + 2) * _U) + _TINY
        ud = _linear(d, wf, None)
        ud = _affine(ud, np.ones(len(R)), np.zeros(len(R)), R)
        up = _add(uo, ud)
        ol, oh = uo.bounds()
        dl, dh = ud.bounds()
        pl, ph = up.bounds()
        if clip_o is not None:
            ol = np.maximum(ol, [_down(lo) for lo, _ in clip_o[li]])
            oh = np.minimum(oh, [_up(hi) for _, hi in clip_o[li]])
        if clip_p is not None:
            pl = np.maximum(pl, [_down(lo) for lo, _ in clip_p[li]])
            ph = np.minimum(ph, [_up(hi) for _, hi in clip_p[li]])
        dl = np.maximum(dl, np.nextafter(pl - oh, -np.inf))  # d = u' - u with u' in [pl, ph], u in [ol, oh]
        dh = np.minimum(dh, np.nextafter(ph - ol, np.inf))
        for arr, v in ((res.ol, ol), (res.oh, oh), (res.pl, pl), (res.ph, ph), (res.dl, dl), (res.dh, dh)):
            arr.append(v)
        if li == n_layers - 1:
            res.out_o, res.out_d = uo, ud
            break
        if activation == "identity":
            o, d = uo, ud
            h_abs = np.maximum(np.abs(pl), np.abs(ph))
            continue
        o = _relu(uo, ol, oh)
        d = _relu_diff(uo, ud, up, ol, oh, pl, ph, dl, dh)
        h_abs = np.maximum(ph, 0.0)
    return res


def _relu(f: _Form, lo: np.ndarray, hi: np.ndarray) -> _Form:
    """DeepZ: relu(v) = lam v + t with t in [0, M] for v in [lo, hi]; exact where stable."""
    n = len(lo)
    lam = np.where(hi <= 0, 0.0, 1.0)
    mid = np.zeros(n)
    uns = (lo < 0) & (hi > 0)
    lu, hu = lo[uns], hi[uns]
    la = np.clip(hu / (hu - lu), 0.0, 1.0)
    M = np.maximum(-la * lu, (1.0 - la) * hu) * (1.0 + 4 * _U) + _TINY  # max of relu(v) - la v
    lam[uns] = la
    mid[uns] = M / 2
    rad = np.zeros(n)
    rad[uns] = M / 2
    return _affine(f, lam, mid, rad)


def _relu_diff(uo: _Form, ud: _Form, up: _Form, ol: np.ndarray, oh: np.ndarray, pl: np.ndarray, ph: np.ndarray,
               dl: np.ndarray, dh: np.ndarray) -> _Form:
    """relu(u') - relu(u) as a form: exact where both phases are known (du, 0, u' or -u), else a
    slope on du and a band, since the value lies between min(du, 0) and max(du, 0)."""
    n = len(ol)
    m = max(uo.G.shape[1], ud.G.shape[1], up.G.shape[1])
    uo, ud, up = uo.pad(m), ud.pad(m), up.pad(m)
    o_on, o_off, p_on, p_off = ol >= 0, oh <= 0, pl >= 0, ph <= 0
    parts = []
    for src, mask, sign in ((ud, o_on & p_on, 1.0), (up, o_off & p_on, 1.0), (uo, o_on & p_off, -1.0)):
        lam = np.where(mask, sign, 0.0)
        parts.append(_affine(src, lam, np.zeros(n), np.zeros(n)))
    lam, mid, rad = np.zeros(n), np.zeros(n), np.zeros(n)
    for j in np.flatnonzero(~((o_on | o_off) & (p_on | p_off))):
        la, t0, t1 = _bowtie(float(dl[j]), float(dh[j]))
        lam[j], mid[j], rad[j] = la, (t0 + t1) / 2, (t1 - t0) / 2
    out = _affine(ud, lam, mid, rad)
    for part in parts:
        out = _add(out, part)
    return out


def _bowtie(dl: float, dh: float) -> tuple[float, float, float]:
    """A slope lam in [0, 1] and a band [t0, t1] such that for every d in [dl, dh] and every g
    between min(d, 0) and max(d, 0), g - lam d lies in [t0, t1]. That set's convex hull has the
    vertices (dl, dl), (dl, 0), (dh, 0), (dh, dh), so the band is checked there; the slope is the
    candidate with the narrowest band."""
    pts = ((dl, dl), (dl, 0.0), (dh, 0.0), (dh, dh))
    best = (0.0, min(dl, 0.0), max(dh, 0.0))
    cands = [0.5, 1.0]
    if dh > dl:
        cands += [dh / (dh - dl), -dl / (dh - dl)]
    for lam in cands:
        lam = min(max(lam, 0.0), 1.0)
        vals = [g - lam * dv for dv, g in pts]
        if max(vals) - min(vals) < best[2] - best[1]:
            best = (lam, min(vals), max(vals))
    lam, t0, t1 = best
    slack = 4 * _U * (abs(dl) + abs(dh)) + _TINY  # the rounding of g - lam d, and of the midpoint
    return lam, t0 - slack, t1 + slack
