"""Cheap witness search in float64: sign-gradient ascent over the vertices of the parameter box
(and projected steps over the input box), then block-coordinate ascent one layer at a time from
the best candidates and from random vertices. It only proposes; exact validation decides.

With the other layers held, the output is linear in one layer's parameters for identity hidden
units (and, for ReLU, while the activation pattern holds), so setting that layer to the sign of
its gradient is that block's exact maximum: the sweeps climb monotonically to a vertex no single
layer can improve, where moving every layer at once may oscillate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .boxes import ParameterBox
from .network import Network, activate
from .properties import Metric

__all__ = ["Candidate", "attack"]


@dataclass(frozen=True, eq=False)
class Candidate:
    x: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    score: float  # float64 estimate of the deviation; not trusted


def _dact(name: str, p: np.ndarray) -> np.ndarray:
    if name == "relu":
        return (p > 0).astype(float)
    if name == "identity":
        return np.ones_like(p)
    if name == "tanh":
        return 1.0 - np.tanh(p) ** 2
    s = 1.0 / (1.0 + np.exp(-p))
    return s * (1.0 - s)


def _forward(ws: tuple[np.ndarray, ...], bs: tuple[np.ndarray, ...], x: np.ndarray, act: str) -> tuple[list, list]:
    hs, pres = [x], []
    h = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        p = h @ w + b
        pres.append(p)
        h = activate(act, p) if i < len(ws) - 1 else p
        hs.append(h)
    return hs, pres


def _backward(ws: tuple[np.ndarray, ...], hs: list, pres: list, g: np.ndarray, act: str) -> tuple[list, list, np.ndarray]:
    gw: list = [None] * len(ws)
    gb: list = [None] * len(ws)
    for i in range(len(ws) - 1, -1, -1):
        if i < len(ws) - 1:
            g = g * _dact(act, pres[i])
        gw[i] = np.outer(hs[i], g)
        gb[i] = g
        g = ws[i] @ g
    return gw, gb, g


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _deviation(net: Network, metric: Metric, zp: np.ndarray, z: np.ndarray) -> float:
    if metric is Metric.CLASS:
        if net.output_activation == "logistic":
            return float((zp[0] > 0) != (z[0] > 0))
        return float(np.argmax(zp) != np.argmax(z))
    if metric is Metric.LOGIT or net.output_activation == "identity":
        return float(np.max(np.abs(zp - z)))
    if net.output_activation == "logistic":
        return float(abs(_sigmoid(zp)[0] - _sigmoid(z)[0]))
    return float(np.max(np.abs(_softmax(zp) - _softmax(z))))


def _objectives(net: Network, metric: Metric, zp: np.ndarray, z: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Gradients (d/dz', d/dz) of objectives whose increase tends to increase D."""
    n = net.n_outputs
    if metric is Metric.CLASS:
        if net.output_activation == "logistic":
            s = 1.0 if z[0] <= 0 else -1.0
            yield np.array([s]), np.zeros(1)
        else:
            c = int(np.argmax(z))
            for k in range(n):
                if k != c:
                    e = np.zeros(n)
                    e[k], e[c] = 1.0, -1.0
                    yield e, np.zeros(n)
        return
    for k in range(n):
        for s in (1.0, -1.0):
            e = np.zeros(n)
            if metric is Metric.LOGIT or net.output_activation == "identity":
                e[k] = s
                yield e, -e
            elif net.output_activation == "logistic":
                sp, s0 = _sigmoid(zp)[0], _sigmoid(z)[0]
                yield np.array([s * sp * (1 - sp)]), np.array([-s * s0 * (1 - s0)])
            else:
                pp, p0 = _softmax(zp), _softmax(z)
                ek = np.zeros(n)
                ek[k] = 1.0
                yield s * pp[k] * (ek - pp), -s * p0[k] * (ek - p0)


def attack(net: Network, box: ParameterBox, metric: Metric, lo: np.ndarray, hi: np.ndarray,
           *, rounds: int = 12, starts: int = 8, keep: int = 4, seed: int = 0,
           restarts: int = 24) -> list[Candidate]:
    """Float64 candidates (x, theta'), best first. ``lo == hi`` for a fixed input."""
    ws = tuple(l.weights for l in net.layers)
    bs = tuple(l.biases for l in net.layers)
    ew = tuple(box.float_weights(i) for i in range(len(ws)))
    eb = tuple(box.float_biases(i) for i in range(len(bs)))
    act = net.hidden_activation
    fixed = bool(np.all(lo == hi))
    rng = np.random.default_rng(seed)
    xs = [0.5 * (lo + hi)]
    if not fixed:
        xs += [lo.copy(), hi.copy()] + [rng.uniform(lo, hi) for _ in range(max(0, starts - 3))]
    step0 = (hi - lo) / 4.0
    found: list[Candidate] = []
    for x0 in xs:
        hs0, pr0 = _forward(ws, bs, x0, act)
        hsp, prp = hs0, pr0
        for gzp, _ in list(_objectives(net, metric, hs0[-1], hs0[-1])):
            x = x0.copy()
            wp, bp = ws, bs
            grad_zp = gzp
            for r in range(rounds):
                hsp, prp = _forward(wp, bp, x, act)
                hs0, pr0 = _forward(ws, bs, x, act)
                if r > 0:  # re-linearize the same objective at the current point
                    grad_zp, grad_z = _pick(net, metric, hsp[-1], hs0[-1], gzp)
                else:
                    grad_z = _pick(net, metric, hsp[-1], hs0[-1], gzp)[1]
                gw, gb, gx = _backward(wp, hsp, prp, grad_zp, act)
                new_wp = tuple(w + e * np.sign(g) for w, e, g in zip(ws, ew, gw))
                new_bp = tuple(b + e * np.sign(g) for b, e, g in zip(bs, eb, gb))
                if not fixed:
                    _, _, gx0 = _backward(ws, hs0, pr0, grad_z, act)
                    step = step0 / (1 + r)
                    x = np.clip(x + step * np.sign(gx + gx0), lo, hi)
                if all(np.array_equal(a, b) for a, b in zip(new_wp, wp)) and fixed and r > 0:
                    break
                wp, bp = new_wp, new_bp
            zp = _forward(wp, bp, x, act)[0][-1]
            z = _forward(ws, bs, x, act)[0][-1]
            found.append(Candidate(x.copy(), wp, bp, _deviation(net, metric, zp, z)))
    found.sort(key=lambda c: -c.score)
    if len(ws) < 3:  # one hidden layer: the exact interval bound and the engine settle these at once
        return found[:keep]
    # block-coordinate ascent: from the best candidates, and from random vertices at the best x
    climbed = []
    for c in found[:keep]:
        climbed += _block_ascent(net, metric, ws, bs, ew, eb, c.x, c.weights, c.biases)
    if found:
        x = found[0].x
        for _ in range(restarts):
            wp = tuple(w + e * rng.choice((-1.0, 1.0), size=w.shape) for w, e in zip(ws, ew))
            bp = tuple(b + e * rng.choice((-1.0, 1.0), size=b.shape) for b, e in zip(bs, eb))
            climbed += _block_ascent(net, metric, ws, bs, ew, eb, x, wp, bp)
    found += climbed
    found.sort(key=lambda c: -c.score)
    if fixed and act == "identity" and len(ws) >= 4:  # three or more identity hidden layers
        z = _forward(ws, bs, xs[0], act)[0][-1]
        ends = []
        for g, _ in list(_objectives(net, metric, z, z)):
            ends += _end_search(ws, bs, ew, eb, xs[0], g, rng, found[:keep])
        for c in ends:
            zp = _forward(c.weights, c.biases, c.x, act)[0][-1]
            found.append(Candidate(c.x, c.weights, c.biases, _deviation(net, metric, zp, z)))
        found.sort(key=lambda c: -c.score)
    return found[:keep]


def _block_ascent(net: Network, metric: Metric, ws: tuple[np.ndarray, ...], bs: tuple[np.ndarray, ...],
                  ew: tuple[np.ndarray, ...], eb: tuple[np.ndarray, ...], x: np.ndarray,
                  wp: tuple[np.ndarray, ...], bp: tuple[np.ndarray, ...], sweeps: int = 20) -> list[Candidate]:
    """Climb from (wp, bp) at input x, once per objective: each layer in turn (last first) set to
    the vertex its gradient points to, until a sweep changes nothing."""
    act = net.hidden_activation
    z = _forward(ws, bs, x, act)[0][-1]
    out = []
    zp0 = _forward(wp, bp, x, act)[0][-1]
    for like, _ in list(_objectives(net, metric, zp0, z)):
        cw, cb = list(wp), list(bp)
        for _ in range(sweeps):
            changed = False
            for i in range(len(ws) - 1, -1, -1):
                hsp, prp = _forward(tuple(cw), tuple(cb), x, act)
                gzp = _pick(net, metric, hsp[-1], z, like)[0]
                gw, gb, _ = _backward(tuple(cw), hsp, prp, gzp, act)
                nw = np.where(gw[i] > 0, ws[i] + ew[i], np.where(gw[i] < 0, ws[i] - ew[i], cw[i]))
                nb = np.where(gb[i] > 0, bs[i] + eb[i], np.where(gb[i] < 0, bs[i] - eb[i], cb[i]))
                if not (np.array_equal(nw, cw[i]) and np.array_equal(nb, cb[i])):
                    changed = True
                    cw[i], cb[i] = nw, nb
            if not changed:
                break
        zp = _forward(tuple(cw), tuple(cb), x, act)[0][-1]
        out.append(Candidate(x.copy(), tuple(cw), tuple(cb), _deviation(net, metric, zp, z)))
    return out


def _end_search(ws: tuple[np.ndarray, ...], bs: tuple[np.ndarray, ...], ew: tuple[np.ndarray, ...],
                eb: tuple[np.ndarray, ...], x: np.ndarray, g: np.ndarray, rng: np.random.Generator,
                starts: list[Candidate], restarts: int = 1, steps: int = 400,
                work: float = 3e9) -> list[Candidate]:
    """Identity hidden units at a fixed input, three or more hidden layers: maximize g . z' over
    the ends of the units' reachable intervals, the last two hidden layers in closed form.

    The output is affine in each parameter, so a maximum lies at a vertex of the box, where each
    hidden unit sits at one end of [c - r, c + r] (c, r from the unit's inputs). Given the ends of
    all but the last two hidden layers, and a sign sigma_k per last hidden unit for its outgoing
    weights, the objective is beta . h_L with beta fixed; the last layer then contributes
    alpha . h + gamma . |h| (gamma >= 0) of the layer before, which each of its units maximizes
    at one of its two ends. Steepest ascent over single flips of sigma and of the ends, from random
    starts and from the given candidates (scores are the caller's to recompute), until about
    ``work`` multiply-adds are spent (a few seconds at most; 3 x 64 units need a few percent)."""
    n_hidden = len(ws) - 1
    lower = n_hidden - 2  # hidden layers whose ends are variables
    cw, ce = ws[-1] @ g, ew[-1] @ np.abs(g)
    c0 = float(bs[-1] @ g + eb[-1] @ np.abs(g))
    wl, el, bl, ebl = ws[n_hidden - 1], ew[n_hidden - 1], bs[n_hidden - 1], eb[n_hidden - 1]
    wm, em, bm, ebm = ws[n_hidden - 2], ew[n_hidden - 2], bs[n_hidden - 2], eb[n_hidden - 2]

    def lower_h(vs: list[np.ndarray]) -> np.ndarray:
        h = np.broadcast_to(x, (vs[0].shape[0], x.shape[0]))
        for i in range(lower):
            h = h @ ws[i] + bs[i] + vs[i] * (np.abs(h) @ ew[i] + eb[i])
        return h

    def value(sigma: np.ndarray, vs: list[np.ndarray]) -> np.ndarray:
        h = lower_h(vs)
        a, r = h @ wm + bm, np.abs(h) @ em + ebm
        zp, zm = a + r, a - r
        beta = cw + sigma * ce
        alpha, gamma = beta @ wl.T, np.abs(beta) @ el.T
        const = c0 + beta @ bl + np.abs(beta) @ ebl
        return const + np.maximum(alpha * zp + gamma * np.abs(zp), alpha * zm + gamma * np.abs(zm)).sum(axis=1)

    n_rows = wl.shape[1] + sum(w.shape[1] for w in ws[:lower])  # candidates per step
    per_row = sum(w.size for w in ws[:n_hidden]) + wl.size  # multiply-adds of one value()
    spent = [0.0]

    def climb(sigma: np.ndarray, vs: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        best = value(sigma[None], [v[None] for v in vs])[0]
        for _ in range(steps):
            if spent[0] > work:
                break
            spent[0] += n_rows * per_row
            flips_s = sigma[None] * (1.0 - 2.0 * np.eye(sigma.size))
            cand_s = [flips_s] + [np.broadcast_to(sigma, (v.size, sigma.size)) for v in vs]
            rows_v: list[list[np.ndarray]] = [[] for _ in vs]
            for i in range(len(vs)):
                rows_v[i].append(np.broadcast_to(vs[i], (sigma.size, vs[i].size)))
            for j, v in enumerate(vs):
                for i in range(len(vs)):
                    rows_v[i].append(v[None] * (1.0 - 2.0 * np.eye(v.size)) if i == j
                                     else np.broadcast_to(vs[i], (v.size, vs[i].size)))
            vals = value(np.concatenate(cand_s), [np.concatenate(r) for r in rows_v])
            k = int(np.argmax(vals))
            if not vals[k] > best + 1e-12 * (1.0 + abs(best)):
                break
            best = vals[k]
            if k < sigma.size:
                sigma = sigma.copy()
                sigma[k] = -sigma[k]
            else:
                k -= sigma.size
                for j, v in enumerate(vs):
                    if k < v.size:
                        vs = list(vs)
                        vs[j] = v.copy()
                        vs[j][k] = -v[k]
                        break
                    k -= v.size
        return sigma, vs

    def ends_of(c: Candidate) -> tuple[np.ndarray, list[np.ndarray]]:
        h, vs = x, []
        for i in range(lower):
            hn = h @ c.weights[i] + c.biases[i]
            vs.append(np.where(hn >= h @ ws[i] + bs[i], 1.0, -1.0))
            h = hn
        for i in range(lower, n_hidden):
            h = h @ c.weights[i] + c.biases[i]
        return np.where(h >= 0, 1.0, -1.0), vs

    sizes = [w.shape[1] for w in ws[:lower]]
    begin = [ends_of(c) for c in starts]
    begin += [(rng.choice((-1.0, 1.0), size=wl.shape[1]), [rng.choice((-1.0, 1.0), size=n) for n in sizes])
              for _ in range(restarts)]
    out: list[Candidate] = []
    for sigma, vs in begin:
        if out and spent[0] > work:
            break
        sigma, vs = climb(sigma, vs)
        out.append(_end_witness(ws, bs, ew, eb, x, g, sigma, vs))
    return out


def _end_witness(ws: tuple[np.ndarray, ...], bs: tuple[np.ndarray, ...], ew: tuple[np.ndarray, ...],
                 eb: tuple[np.ndarray, ...], x: np.ndarray, g: np.ndarray, sigma: np.ndarray,
                 vs: list[np.ndarray]) -> Candidate:
    """The parameters (at vertices of the box) that realize the ends chosen by _end_search."""
    n_hidden = len(ws) - 1
    wp, bp = [], []
    h = x

    def put(i: int, ends: np.ndarray) -> np.ndarray:
        s = np.where(h >= 0, 1.0, -1.0)
        wp.append(ws[i] + ew[i] * s[:, None] * ends[None, :])
        bp.append(bs[i] + eb[i] * ends)
        return h @ wp[-1] + bp[-1]

    for i in range(n_hidden - 2):
        h = put(i, vs[i])
    beta = ws[-1] @ g + sigma * (ew[-1] @ np.abs(g))
    wl, el = ws[n_hidden - 1], ew[n_hidden - 1]
    alpha, gamma = wl @ beta, el @ np.abs(beta)
    i = n_hidden - 2
    a, r = h @ ws[i] + bs[i], np.abs(h) @ ew[i] + eb[i]
    zp, zm = a + r, a - r
    h = put(i, np.where(alpha * zp + gamma * np.abs(zp) >= alpha * zm + gamma * np.abs(zm), 1.0, -1.0))
    h = put(n_hidden - 1, np.where(beta >= 0, 1.0, -1.0))
    sg = np.where(g >= 0, 1.0, -1.0)
    wp.append(ws[-1] + ew[-1] * sigma[:, None] * sg[None, :])
    bp.append(bs[-1] + eb[-1] * sg)
    return Candidate(x.copy(), tuple(wp), tuple(bp), 0.0)


def _pick(net: Network, metric: Metric, zp: np.ndarray, z: np.ndarray, like: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The objective at (zp, z) whose z'-gradient points the same way as ``like``."""
    best = None
    for gzp, gz in _objectives(net, metric, zp, z):
        score = float(np.dot(np.sign(gzp), np.sign(like)))
        if best is None or score > best[0]:
            best = (score, gzp, gz)
    assert best is not None
    return best[1], best[2]
