"""The exact engine: perturbed weights eliminated, LP relaxations solved in floating point (HiGHS
through scipy) only to *propose*, rational dual certificates to *prove*, and branch and bound over
neuron phases to decide.

Every parameter occurs in exactly one neuron of one forward pass, so for activations h the
pre-activation u_j of neuron j ranges exactly over [c - r, c + r] with c = W_j.h + b_j and
r = sum_i eps_ij |h_i| + eps_bj. With a phase (sign) for every neuron whose sign is not fixed by
the bounds, this is a mixed-integer linear set; its LP relaxation uses the triangle of ReLU and
the chord of |h|.

A node of the search is pruned only by a certified bound: for any multipliers lam >= 0 (taken from
the floating-point LP, whatever their accuracy) and every y in the variable box [l, u] satisfying
A y <= b,

    g.y = lam.(A y) + r.y <= lam.b + sum_i max(r_i l_i, r_i u_i),      r = g - A^T lam.

The right-hand side is evaluated in float64 plus a proven bound on its rounding error
(``Engine._float_certificate``), and summed exactly in rationals where that is not finite or lies
just above the threshold a prune needs (``Engine._certificate``).

A witness is rebuilt from an LP point by replaying the network exactly: the solver's u_j picks
t_j = (u_j - c_j) / r_j in [-1, 1], and theta' = theta + t_j eps_j sign(h) gives pre-activation
c_j + t_j r_j exactly; the caller validates it again with an exact forward pass.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import numpy as np

from .backends.base import Answer, CheckOutcome, Problem
from .bounds import LayerBounds
from .dual import TwoLayerDual
from .dual3 import ThreeLayerDual
from .exact import ExactLayer, Interval
from .exact import identity_outputs as _identity_outputs
from .properties import Atom, Condition
from .vertices import HalfSpace, region_vertices
from .zonotope import Zonotope, affine_bounds, centre_arrays

__all__ = ["Engine", "EngineBackend"]

_ZERO = Fraction(0)
_ONE = Fraction(1)
Lin = dict[int, Fraction]  # variable index -> coefficient (a linear expression without constant)


@dataclass
class _Expr:
    """A linear expression sum(c * y_var) + const over the encoding's variables."""

    coef: Lin = field(default_factory=dict)
    const: Fraction = _ZERO

    def scaled(self, s: Fraction) -> _Expr:
        return _Expr({k: v * s for k, v in self.coef.items()}, self.const * s)

    def add(self, other: _Expr, s: Fraction = Fraction(1)) -> _Expr:
        coef = dict(self.coef)
        for k, v in other.coef.items():
            coef[k] = coef.get(k, _ZERO) + v * s
        return _Expr(coef, self.const + other.const * s)


@dataclass
class _Neuron:
    """One neuron whose sign may be split: its pre-activation expression and the variables
    that depend on the phase (h for ReLU, a = |h| for signed values)."""

    key: tuple[str, int, int]
    pre: int  # variable index of the pre-activation (or the input)
    kind: str  # "relu" (h = max(u, 0)) or "abs" (a = |u|)
    out: int  # the variable index of h or a
    lo: Fraction
    hi: Fraction
    row: int = -1  # index of its relaxation row (ReLU triangle, or chord of |u|) among the base rows


class _Encoding:
    """Variables with exact bounds and rows sum(A y) <= b of the relaxation, built once per problem."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.lo: list[Fraction] = []
        self.hi: list[Fraction] = []
        self.rows: list[tuple[Lin, Fraction]] = []
        self.neurons: list[_Neuron] = []
        self.trace: list[tuple[list[_Expr], list[_Expr]]] = []  # perturbed net: (inputs h, pre u) per layer
        self.x: list[_Expr] = []
        self.x_vars: list[int | None] = []
        self.cr: dict[int, tuple[_Expr, _Expr]] = {}  # perturbed pre-activation u -> (c, r): |u - c| <= r
        self.u_rows: dict[int, int] = {}  # perturbed u -> index of its row u - c - r <= 0 (c - u - r <= 0 next)
        self.hull_rows: dict[int, list[int]] = {}  # neuron (abs or relu) -> its hull rows (_add_hull)
        self.names: dict[tuple, int] = {}  # expression -> a variable equal to it (_named)
        self.r_ranges: dict[tuple, tuple[Fraction, Fraction]] = {}  # radius expression -> its range (_add_hull)
        self.hull_info: dict[int, tuple[int, int, _Expr, _Expr]] = {}  # neuron -> (c var, r var, c, r)
        for lo, hi in problem.inputs:
            if lo == hi:
                self.x.append(_Expr({}, lo))
                self.x_vars.append(None)
            else:
                v = self._var(lo, hi)
                self.x.append(_Expr({v: Fraction(1)}))
                self.x_vars.append(v)
        self.layer_e: dict[bool, list[tuple[list[_Expr], list[_Expr]]]] = {True: [], False: []}
        # per coupled neuron (layer, index, d = u' - u, g = h' - h or None, index of its first row)
        self.diff_at: list[tuple[int, int, _Expr, _Expr | None, int]] = []
        self.zp = self._network(problem.perturbed_bounds.pre, perturbed=True)
        self.z = self._network(problem.original_bounds.pre, perturbed=False)
        if problem.diff_bounds is not None and not problem.fixed_input:
            self._diff_rows(problem.diff_bounds.pre)

    def _var(self, lo: Fraction, hi: Fraction) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        return len(self.lo) - 1

    def _row(self, e: _Expr, rhs: Fraction) -> None:
        """Add e <= rhs."""
        coef = {k: v for k, v in e.coef.items() if v != 0}
        self.rows.append((coef, rhs - e.const))

    def _abs(self, h: _Expr, lo: Fraction, hi: Fraction, key: tuple[str, int, int]) -> _Expr:
        if lo >= 0:
            return h
        if hi <= 0:
            return h.scaled(Fraction(-1))
        if not h.coef:
            return _Expr({}, abs(h.const))
        a = self._var(_ZERO, max(-lo, hi))
        av = _Expr({a: Fraction(1)})
        self._row(h.add(av, Fraction(-1)), _ZERO)  # h - a <= 0
        self._row(h.scaled(Fraction(-1)).add(av, Fraction(-1)), _ZERO)  # -h - a <= 0
        # chord: a <= (hi (h - lo) - lo (hi - h)) / (hi - lo) = ((hi + lo) h - 2 hi lo) / (hi - lo)
        m, c = _upper_line((hi + lo) / (hi - lo), lo, hi, -lo, hi)
        self._row(av.add(h, -m), c)
        pre = next(iter(h.coef)) if len(h.coef) == 1 and h.const == 0 else -1
        self.neurons.append(_Neuron(key, pre, "abs", a, lo, hi, len(self.rows) - 1))
        # on input regions only up to two hidden layers: deeper, the extra rows slowed the LPs more
        # than they tightened (3 x 64 identity global fixed:8: certified in 33 s without, unknown with)
        if pre >= 0 and pre in self.cr and (self.problem.fixed_input or len(self.problem.layers) <= 3):
            self._add_hull(len(self.neurons) - 1, av)
        return av

    def _add_hull(self, k: int, out: _Expr) -> None:
        """Hull rows of neuron k (out = |u| or max(u, 0), u a perturbed pre-activation with
        |u - c| <= r): planes over (c, r, u), tighter than the chord or triangle over u's range
        where c and r vary (see _hull_planes)."""
        nr = self.neurons[k]
        c, r = self.cr[nr.pre]
        ml, mh = self._range(c)
        key = (tuple(sorted(r.coef.items())), r.const)  # r is often shared by a layer (uniform radii)
        got = self.r_ranges.get(key)
        rl, rh = got if got is not None else self.r_ranges.setdefault(key, self._range(r))
        ml, mh = max(ml, nr.lo - rh), min(mh, nr.hi + rh)  # u in [c - r, c + r] also bounds c
        planes = _hull_planes(nr.kind, ml, mh, max(rl, _ZERO), rh)
        if not planes:
            return
        cv, rv = self._named(c, ml, mh), self._named(r, rl, rh)  # short rows; r is often shared by a layer
        u = _Expr({nr.pre: Fraction(1)})
        first = len(self.rows)
        for (am, ar, au), b0 in planes:
            self._row(_lincomb([(out, Fraction(1)), (cv, -am), (rv, -ar), (u, -au)], _ZERO), b0)
        self.hull_rows[k] = list(range(first, len(self.rows)))
        self.hull_info[k] = (next(iter(cv.coef)), next(iter(rv.coef)), c, r)

    def _named(self, e: _Expr, lo: Fraction, hi: Fraction) -> _Expr:
        """A variable v = e (two rows), one per distinct expression."""
        key = (tuple(sorted(e.coef.items())), e.const)
        v = self.names.get(key)
        if v is None:
            v = self._var(lo, hi)
            ve = _Expr({v: Fraction(1)})
            self._row(ve.add(e, Fraction(-1)), _ZERO)
            self._row(e.add(ve, Fraction(-1)), _ZERO)
            self.names[key] = v
        return _Expr({v: Fraction(1)})

    def _range(self, e: _Expr) -> tuple[Fraction, Fraction]:
        return _expr_range(e, self.lo, self.hi)

    def hull_planes(self, k: int, lo: Sequence[Fraction], hi: Sequence[Fraction]) -> list[tuple[Lin, Fraction]] | None:
        """The hull rows of neuron k for the variable bounds lo, hi (same variables as its
        base rows); None when they cannot help (the sign of u is fixed, or no planes)."""
        cv, rv, c, r = self.hull_info[k]
        nr = self.neurons[k]
        a, b = lo[nr.pre], hi[nr.pre]
        if a >= 0 or b <= 0:
            return None
        ml, mh = _expr_range(c, lo, hi)
        rl, rh = _expr_range(r, lo, hi)
        ml, mh = max(ml, lo[cv], a - rh), min(mh, hi[cv], b + rh)
        rl, rh = max(rl, lo[rv], _ZERO), min(rh, hi[rv])
        if ml > mh or rl > rh:
            return None
        one = Fraction(1)
        planes = _hull_planes(nr.kind, ml, mh, rl, rh)
        return [({nr.out: one, cv: -am, rv: -ar, nr.pre: -au}, b0) for (am, ar, au), b0 in planes] or None

    def _network(self, pre_bounds: Sequence[Sequence[Interval]], perturbed: bool) -> list[_Expr]:
        p = self.problem
        h = list(self.x)
        h_bounds = list(p.inputs)
        tag = "p" if perturbed else "o"
        n_layers = len(p.layers)
        out: list[_Expr] = []
        for li, (w, b) in enumerate(p.layers):
            rw, rb = p.box.weights[li], p.box.biases[li]
            absh: list[_Expr] = []
            if perturbed:
                absh = [self._abs(h[i], *h_bounds[i], (tag + "abs", li, i)) for i in range(len(h))]
            us: list[_Expr] = []
            for j in range(len(b)):
                c = _lincomb([(h[i], w[i][j]) for i in range(len(h))], b[j])
                lo, hi = pre_bounds[li][j]
                r = _Expr({}, rb[j] if perturbed else _ZERO)
                if perturbed:
                    r = _lincomb([(absh[i], rw[i][j]) for i in range(len(h))], rb[j])
                if not r.coef and not c.coef:  # a constant: the interval [c - r, c + r] is a bound
                    u = self._var(max(lo, c.const - r.const), min(hi, c.const + r.const))
                else:
                    u = self._var(lo, hi)
                    if perturbed:
                        self.cr[u] = (c, r)
                        self.u_rows[u] = len(self.rows)
                    uv = _Expr({u: Fraction(1)})
                    one, neg = Fraction(1), Fraction(-1)
                    self._row(_lincomb([(uv, one), (c, neg), (r, neg)], _ZERO), _ZERO)  # u - c - r <= 0
                    self._row(_lincomb([(c, one), (uv, neg), (r, neg)], _ZERO), _ZERO)  # c - u - r <= 0
                us.append(_Expr({u: Fraction(1)}))
            if perturbed:
                self.trace.append((h, us))
            if li == n_layers - 1:
                out = us
                self.layer_e[perturbed].append((us, []))
                break
            if p.hidden_activation == "identity":
                h, h_bounds = us, list(pre_bounds[li])
                self.layer_e[perturbed].append((us, us))
                continue
            h, h_bounds = [], []
            for j, ue in enumerate(us):
                lo, hi = pre_bounds[li][j]
                u = next(iter(ue.coef))
                if lo >= 0:
                    h.append(ue)
                elif hi <= 0:
                    h.append(_Expr({}, _ZERO))
                else:
                    hv = self._var(_ZERO, hi)
                    he = _Expr({hv: Fraction(1)})
                    self._row(ue.add(he, Fraction(-1)), _ZERO)  # u - h <= 0
                    slope, icpt = _upper_line(hi / (hi - lo), lo, hi, _ZERO, hi)
                    self._row(he.add(ue, -slope), icpt)  # h <= s u + c, the triangle's upper side (rounded safely)
                    self.neurons.append(_Neuron((tag, li, j), u, "relu", hv, lo, hi, len(self.rows) - 1))
                    if perturbed and u in self.cr and self.problem.fixed_input:  # (on input regions the
                        self._add_hull(len(self.neurons) - 1, he)  # extra rows slowed ReLU LPs ~10x)
                    h.append(he)
                h_bounds.append((max(lo, _ZERO), max(hi, _ZERO)))
            self.layer_e[perturbed].append((us, h))
        return out

    def _diff_rows(self, diff: Sequence[Sequence[Interval]]) -> None:
        """Rows coupling the two networks through sound bounds [dl, dh] on d = u' - u (one input x
        for both): dl <= d <= dh, and for ReLU, g = relu(u') - relu(u) lies between min(d, 0) and
        max(d, 0), relaxed by the lines above max(d, 0) and max(-d, 0) on [dl, dh]."""
        for li, ((us_p, hs_p), (us_o, hs_o), bounds) in enumerate(zip(self.layer_e[True], self.layer_e[False], diff)):
            for j, (dl, dh) in enumerate(bounds):
                d = us_p[j].add(us_o[j], Fraction(-1))
                if not d.coef:
                    continue
                first = len(self.rows)
                for row in _diff_d_rows(d, dl, dh):
                    self.rows.append(row)
                if not hs_p or hs_p is us_p or dl >= dh:
                    self.diff_at.append((li, j, d, None, first))
                    continue
                g = hs_p[j].add(hs_o[j], Fraction(-1))
                if not g.coef or g.coef == d.coef:
                    self.diff_at.append((li, j, d, None, first))
                    continue
                for row in _diff_g_rows(d, g, dl, dh):
                    self.rows.append(row)
                self.diff_at.append((li, j, d, g, first))


def _as_row(e: _Expr, rhs: Fraction) -> tuple[Lin, Fraction]:
    """e <= rhs as (coefficients, right-hand side)."""
    return {k: v for k, v in e.coef.items() if v != 0}, rhs - e.const


def _diff_d_rows(d: _Expr, dl: Fraction, dh: Fraction) -> list[tuple[Lin, Fraction]]:
    """dl <= d <= dh, as two rows."""
    return [_as_row(d, dh), _as_row(d.scaled(Fraction(-1)), -dl)]


def _diff_g_rows(d: _Expr, g: _Expr, dl: Fraction, dh: Fraction) -> list[tuple[Lin, Fraction]]:
    """g = relu(u') - relu(u) lies between min(d, 0) and max(d, 0) for d = u' - u in [dl, dh]:
    g <= m d + c (a line above max(d, 0)) and -g <= m' d + c' (above max(-d, 0)), two rows."""
    span = dh - dl
    m, c = _upper_line((max(dh, _ZERO) - max(dl, _ZERO)) / span, dl, dh, max(dl, _ZERO), max(dh, _ZERO))
    m2, c2 = _upper_line((max(-dh, _ZERO) - max(-dl, _ZERO)) / span, dl, dh, max(-dl, _ZERO), max(-dh, _ZERO))
    return [_as_row(g.add(d, -m), c), _as_row(g.scaled(Fraction(-1)).add(d, -m2), c2)]


def _lincomb(terms: Sequence[tuple[_Expr, Fraction]], const: Fraction) -> _Expr:
    """sum(s * e) + const, accumulated in one dictionary."""
    coef: Lin = {}
    for e, s in terms:
        if s == 0:
            continue
        if e.const:
            const += e.const * s
        for k, v in e.coef.items():
            t = s if v == 1 else v * s
            prev = coef.get(k)
            coef[k] = t if prev is None else prev + t
    return _Expr(coef, const)


def _expr_range(e: _Expr, lo: Sequence[Fraction], hi: Sequence[Fraction]) -> tuple[Fraction, Fraction]:
    """Exact interval of a linear expression over the variables' bounds."""
    a = b = e.const
    for v, k in e.coef.items():
        if k > 0:
            a, b = a + k * lo[v], b + k * hi[v]
        else:
            a, b = a + k * hi[v], b + k * lo[v]
    return a, b


_Plane = tuple[tuple[Fraction, Fraction, Fraction], Fraction]


def _hull_planes(kind: str, ml: Fraction, mh: Fraction, rl: Fraction, rh: Fraction) -> list[_Plane]:
    """Upper planes of f(u) = |u| (kind "abs") or max(u, 0) ("relu") over
    P = {m in [ml, mh], r in [rl, rh], |u - m| <= r} (rl >= 0): the facets of f's concave envelope
    on P, as ((am, ar, au), b) with f(u) <= am m + ar r + au u + b on P.

    P's vertices are the eight points (m, r, m +- r) at the corners of the (m, r) box, and
    f(u) - (am m + ar r + au u) is convex, so its maximum over P is at one of them: the float
    facets found by interpolating four vertices get their constant b exactly from that maximum
    (coefficients rounded to doubles, so every row is valid whatever the rounding). Empty when
    both ranges are single points: u then spans one interval, where the chord is the envelope."""
    verts = [(m, r, m + s * r) for m in (ml, mh) for r in (rl, rh) for s in (-1, 1)]
    wm, wr = max(float(mh - ml), 1e-9), max(float(rh - rl), 1e-9)  # a flat box: widen for the float fit
    X = np.array([[float(ml) + wm * (i >> 2), float(rl) + wr * ((i >> 1) & 1), 0.0, 1.0] for i in range(8)])
    X[:, 2] = X[:, 0] + np.where(np.arange(8) & 1, 1.0, -1.0) * X[:, 1]
    f = np.abs(X[:, 2]) if kind == "abs" else np.maximum(X[:, 2], 0.0)
    fx = abs if kind == "abs" else (lambda v: max(v, _ZERO))
    subsets = np.array(list(itertools.combinations(range(8), 4)))
    M = X[subsets]
    ok = np.abs(np.linalg.det(M)) > 1e-12 * max(1.0, float(np.abs(X).max())) ** 3
    out: list[_Plane] = []
    if not ok.any():
        return out
    got = _vertex_ints(kind, verts)
    iverts, e1 = got if got is not None else (None, 0)
    sol = np.linalg.solve(M[ok], f[subsets[ok]][..., None])[..., 0]
    floor = f - 1e-9 * (1.0 + f)
    sol = sol[[bool(np.isfinite(cf).all()) and not bool((X @ cf < floor).any()) for cf in sol]]  # on or above f
    c3 = sol[:, :3]
    close = (np.abs(c3[:, None, :] - c3[None, :, :]) <= 1e-12 + 1e-9 * np.abs(c3[None, :, :])).all(axis=2)
    kept: list[int] = []
    for i, cf in enumerate(sol):
        if any(close[i, j] for j in kept):  # the same plane again (np.allclose to one kept before)
            continue
        kept.append(i)
        am, ar, au = (Fraction(float(v)) for v in cf[:3])
        if iverts is not None:  # the same maximum in integers over a power of two
            (na, ea), (nr, er), (nu, eu) = (float(v).as_integer_ratio() for v in cf[:3])
            e2 = max(ea, er, eu).bit_length() - 1
            ka, kr, ku = na << (e2 - ea.bit_length() + 1), nr << (e2 - er.bit_length() + 1), nu << (e2 - eu.bit_length() + 1)
            top = max((fu << e2) - ka * m - kr * r - ku * u for m, r, u, fu in iverts)
            b = Fraction(top, 1 << (e1 + e2))
        else:
            b = max(fx(u) - am * m - ar * r - au * u for m, r, u in verts)
        out.append(((am, ar, au), Fraction(_up(b))))
    return out


def _vertex_ints(kind: str, verts: Sequence[tuple[Fraction, Fraction, Fraction]]
                 ) -> tuple[list[tuple[int, int, int, int]], int] | None:
    """The vertices (m, r, u) and f(u) as integers over one power of two 2**e, or None if one of
    them is not dyadic."""
    vals = [v for vert in verts for v in vert]
    if any(v.denominator & (v.denominator - 1) for v in vals):
        return None
    e = max(v.denominator.bit_length() - 1 for v in vals)
    ints = [v.numerator << (e - v.denominator.bit_length() + 1) for v in vals]
    out = []
    for k in range(0, len(ints), 3):
        m, r, u = ints[k:k + 3]
        out.append((m, r, u, abs(u) if kind == "abs" else max(u, 0)))
    return out, e


def _upper_line(slope: Fraction, lo: Fraction, hi: Fraction, f_lo: Fraction, f_hi: Fraction) -> tuple[Fraction, Fraction]:
    """A line m u + c above a convex f on [lo, hi] given f(lo), f(hi): m is the slope rounded to a
    double, c (a double too) makes the line >= f at both ends, hence on all of [lo, hi]. Dyadic
    coefficients keep the rows' common denominator small (fast exact certificates)."""
    m = Fraction(float(slope))
    return m, Fraction(_up(max(f_lo - m * lo, f_hi - m * hi)))


@dataclass
class SearchResult:
    """upper: certified bound on the objective (None if nothing was bounded); best: (value, witness)."""

    upper: Fraction | None
    best: tuple[Fraction, object] | None
    complete: bool
    nodes: int
    reason: str
    floor: Fraction | None = None  # the largest value observe() certified during the search
    basis: Any = None  # (engine, the root node's optimal LP basis): where a sub-box's search may start


@dataclass(order=True)
class _Node:
    priority: float
    seq: int
    phases: dict = field(compare=False)  # neuron index -> +1 / -1
    bound: Fraction | None = field(default=None, compare=False)  # the parent's certified bound on f
    basis: Any = field(default=None, compare=False)  # the parent's optimal LP basis (HiGHS), to start from


class Engine:
    """Branch and bound with LP relaxations and exact certificates, for one problem."""

    DIVE_EVERY = 16  # a dive (primal heuristic) from the root node and every this many nodes

    def __init__(self, problem: Problem) -> None:
        self._setup(problem)

    def _setup(self, problem: Problem) -> None:
        self.problem = problem
        self._z_cache: dict[tuple[Fraction, ...], list[Fraction]] = {}
        self.last_outputs: list[Fraction] = []
        self.enc = _Encoding(problem)
        enc = self.enc
        n = len(enc.lo)
        self.n = n
        rows = enc.rows
        self.A = np.zeros((len(rows), n))
        self.b = np.zeros(len(rows))
        for k, (coef, rhs) in enumerate(rows):
            for v, c in coef.items():
                self.A[k, v] = float(c)
            self.b[k] = float(rhs)
        self.lo_f = np.array([_down(v) for v in enc.lo])
        self.hi_f = np.array([_up(v) for v in enc.hi])
        self.warm = _WarmLP.create(self.A, self.b, self.lo_f, self.hi_f, rows)
        self._dive_warm: _WarmLP | None = None
        self.seq = itertools.count()
        self.lp_calls = 0
        self.deadline: float | None = None  # time.monotonic() past which an LP is not started or is cut short
        self.last_node: _NodeLP | None = None
        self.last_lam: Sequence[float] | np.ndarray = []
        # the base rows over one common denominator, for fast exact certificates in integers
        dens = {c.denominator for coef, _ in rows for c in coef.values()} | {r.denominator for _, r in rows}
        self.D = math.lcm(*dens) if dens else 1
        D = self.D
        self.int_rows = [([(v, c.numerator * (D // c.denominator)) for v, c in coef.items()],
                          rhs.numerator * (D // rhs.denominator)) for coef, rhs in rows]
        self.a_bits = max((abs(a).bit_length() for row, _ in self.int_rows for _, a in row), default=1)
        self._packs: dict[int, tuple[list[int], list[int]]] = {}
        self._int_cache: dict[int, tuple[tuple[Lin, Fraction], tuple[list[tuple[int, int]], int, int]]] = {}
        self._float_cache: dict[int, Any] = {}
        self._flip_rows: dict[int, tuple[Lin, Fraction]] = {}
        from scipy.sparse import csr_matrix  # noqa: PLC0415 - (scipy: checked in EngineBackend.unsupported)
        self.AT_sp = csr_matrix(self.A.T)  # for the float certificates
        self.AT_abs = abs(self.AT_sp)
        # float copies for the quick replay that filters LP points before the exact one
        self.wf = [(np.array([[float(v) for v in row] for row in w]), np.array([float(v) for v in b]))
                   for w, b in problem.layers]
        self.ef = [(problem.box.float_weights(i), problem.box.float_biases(i)) for i in range(len(problem.layers))]
        # per-node bound tightening: the perturbed network layer by layer, in float64 rounded outward
        self.layer_u = [[next(iter(e.coef)) for e in us] for _, us in enc.trace]
        self.relu_at = {(nr.key[1], nr.key[2]): k for k, nr in enumerate(enc.neurons)
                        if nr.key[0] == "p" and nr.kind == "relu"}
        # per layer of the perturbed network: (index in the layer, u, its ReLU neuron) and (.., |u|'s neuron)
        self.relu_in = [[(j, u, self.relu_at[(li, j)]) for j, u in enumerate(us) if (li, j) in self.relu_at]
                        for li, us in enumerate(self.layer_u)]
        self.outward = _box_bounds(problem, inward=False)
        self.x_lo_f = np.array([_down(lo) for lo, _ in problem.inputs])
        self.x_hi_f = np.array([_up(hi) for _, hi in problem.inputs])
        self.abs_of = {nr.pre: k for k, nr in enumerate(enc.neurons) if nr.key[0] == "pabs" and nr.kind == "abs"
                       and nr.pre >= 0 and nr.pre not in enc.x_vars}
        self.abs_at = [[(j, u, self.abs_of[u]) for j, u in enumerate(us) if u in self.abs_of] for us in self.layer_u]
        self.root_ctx = _BoxCtx(list(enc.lo), list(enc.hi), {}, set(), self.x_lo_f, self.x_hi_f, self.lo_f, self.hi_f)
        self._ctx_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # inputs: a double inside each interval where there is one, else the exact lower end
        self._x_exact: list[Fraction | None] = []
        xl, xh = [], []
        for lo, hi in problem.inputs:
            a, b = _up(lo), _down(hi)
            if a <= b:
                self._x_exact.append(None)
                xl.append(a)
                xh.append(b)
            else:
                self._x_exact.append(lo)
                xl.append(float(lo))
                xh.append(float(lo))
        self._x_inward = (np.array(xl), np.array(xh))
        self.out_of: dict[int, tuple[str, int]] = {}
        for k, e in enumerate(enc.zp):
            for v in e.coef:
                self.out_of[v] = ("p", k)
        for k, e in enumerate(enc.z):
            for v in e.coef:
                self.out_of[v] = ("o", k)
        self.ends: dict[int, tuple[Lin, Fraction]] = {}  # the search's end rows (end_rows), base row -> row

    def end_rows(self, g: Lin, guards: Sequence[tuple[Lin, Fraction]]) -> dict[int, tuple[Lin, Fraction]]:
        """Rows that pin each last hidden unit of the perturbed network to the end of its interval
        [c - r, c + r] that g prefers, as replacements of base rows ({} where they do not apply).

        With g a combination of outputs and the guards on the original network's outputs only,
        the best the output layer's parameters can do for g, given that layer's inputs h, is
        const + sum_k f_k(h_k), f_k(h) = al_k h + be_k |h|, al_k = sum_o g_o W_ko and
        be_k = sum_o |g_o| eps_ko >= 0. Each unit's own parameters move its u_k alone over
        [c_k - r_k, c_k + r_k] (c_k, r_k fixed by the layers below), and f_k(h_k(u_k)) is monotone
        in u_k for every ReLU unit (h = max(u, 0) >= 0: f = (al + be) h) and for every identity
        unit with |al| >= be. So every point of the box is matched or beaten by one with each of
        those u_k at the end it prefers; moving u_k there changes neither the original network
        nor an earlier layer, so the maximum over those points is the maximum. Each node's LP with
        the rows "u_k = its end" relaxes the node's part of them, so its bound still bounds the
        maximum there, and the nodes cover them all (a phase of u_k holds at the end or not, as
        at any point). Variable bounds stay those of the whole box, which contains the points.
        (3 x 64 ReLU net, local check at data point 3, fixed:4: 3501 nodes, 10.6 s -> 137, 2.2 s.)"""
        p = self.problem
        enc = self.enc
        relu = p.hidden_activation == "relu"
        if p.hidden_activation not in ("relu", "identity") or len(p.layers) < 2 or not g:
            return {}
        go: dict[int, Fraction] = {}
        for v, c in g.items():
            where = self.out_of.get(v)
            if where is None:
                return {}
            net, o = where
            if net == "p":
                if enc.zp[o].coef != {v: Fraction(1)}:
                    return {}
                go[o] = go.get(o, _ZERO) + c
        for coef, _ in guards:
            for v in coef:
                if self.out_of.get(v, ("p", 0))[0] != "o":
                    return {}
        if not go:
            return {}
        w, eps = p.layers[-1][0], p.box.weights[-1]
        out: dict[int, tuple[Lin, Fraction]] = {}
        for k, u in enumerate(self.layer_u[-2]):
            r = enc.u_rows.get(u)
            if r is None:
                continue
            al = sum((c * w[k][o] for o, c in go.items()), _ZERO)
            be = sum((abs(c) * eps[k][o] for o, c in go.items()), _ZERO)
            if relu:  # f(u) = (al + be) max(u, 0)
                a = al + be
            else:  # f(u) = al u + be |u|: monotone unless |al| < be (then its maximum is at either end)
                a = al - be if al - be > 0 else al + be if al + be < 0 else _ZERO
            if a == 0:
                continue
            keep = r if a > 0 else r + 1  # the side kept; the other one becomes its negation
            coef, rhs = enc.rows[keep]
            out[r + 1 if a > 0 else r] = ({v: -c for v, c in coef.items()}, -rhs)
        return out

    # -- input sub-boxes as contexts of this (root) encoding ------------------------
    def box_context(self, sub: Problem) -> _BoxCtx:
        """The root encoding restricted to the input sub-box ``sub`` (a split of this problem,
        with its own sound bounds): tighter variable bounds, and in-place replacements of the
        neurons' relaxation rows and of the coupling rows. One LP model then serves every sub-box
        and stays warm between them."""
        if sub is self.problem:
            return self.root_ctx
        hit = self._ctx_cache.get(sub)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        enc = self.enc
        lo, hi = list(enc.lo), list(enc.hi)
        for v, (a, b) in zip(enc.x_vars, sub.inputs):
            if v is not None:
                lo[v], hi[v] = max(lo[v], a), min(hi[v], b)
        for perturbed, bounds in ((True, sub.perturbed_bounds), (False, sub.original_bounds)):
            for li, (us, _) in enumerate(enc.layer_e[perturbed]):
                for j, e in enumerate(us):
                    if len(e.coef) == 1 and e.const == 0:
                        (v, c), = e.coef.items()
                        if c == 1:
                            a, b = bounds.pre[li][j]
                            lo[v], hi[v] = max(lo[v], a), min(hi[v], b)
        repl: dict[int, tuple[Lin, Fraction]] = {}
        implied: set[int] = set()
        one = Fraction(1)
        for k, nr in enumerate(enc.neurons):
            if nr.pre < 0 or nr.row < 0:
                continue
            a, b = lo[nr.pre], hi[nr.pre]
            if a == nr.lo and b == nr.hi or a > b:
                continue
            if nr.kind == "relu":
                if a >= 0:
                    implied.add(k)
                    repl[nr.row] = ({nr.out: one, nr.pre: -one}, _ZERO)
                elif b <= 0:
                    implied.add(k)
                    hi[nr.out] = _ZERO
                else:
                    m, c = _upper_line(b / (b - a), a, b, _ZERO, b)
                    repl[nr.row] = ({nr.out: one, nr.pre: -m}, c)
                    hi[nr.out] = min(hi[nr.out], b)
            else:
                if a >= 0:
                    implied.add(k)
                    repl[nr.row] = ({nr.out: one, nr.pre: -one}, _ZERO)
                elif b <= 0:
                    implied.add(k)
                    repl[nr.row] = ({nr.out: one, nr.pre: one}, _ZERO)
                else:
                    m, c = _upper_line((b + a) / (b - a), a, b, -a, b)
                    repl[nr.row] = ({nr.out: one, nr.pre: -m}, c)
                hi[nr.out] = min(hi[nr.out], max(-a, b))
        for k in enc.hull_info:  # hull planes for this sub-box's ranges of c and r
            planes = enc.hull_planes(k, lo, hi)
            if planes:
                rows = enc.hull_rows[k]
                for i, r in enumerate(rows):  # as many as the base rows: repeat the last, or drop extra
                    repl[r] = planes[min(i, len(planes) - 1)]
        if sub.diff_bounds is not None:
            for li, j, d, g, first in enc.diff_at:
                dl, dh = sub.diff_bounds.pre[li][j]
                drows = _diff_d_rows(d, dl, dh)
                if g is not None and dl < dh:
                    drows += _diff_g_rows(d, g, dl, dh)
                for i, row in enumerate(drows):
                    repl[first + i] = row
        lo_f, hi_f = self.lo_f.copy(), self.hi_f.copy()
        for i in range(self.n):
            if lo[i] is not enc.lo[i] or hi[i] is not enc.hi[i]:
                lo_f[i], hi_f[i] = _down(lo[i]), _up(hi[i])
        x_lo = np.array([_down(a) for a, _ in sub.inputs])
        x_hi = np.array([_up(b) for _, b in sub.inputs])
        ctx = _BoxCtx(lo, hi, repl, implied, x_lo, x_hi, lo_f, hi_f)
        self._ctx_cache[sub] = ctx
        return ctx

    # -- LP ------------------------------------------------------------------
    def _node_rows(self, phases: dict[int, int], ctx: _BoxCtx | None = None) -> _NodeLP | None:
        """Tightened bounds (doubles, each a sound bound), and replacements of neurons' relaxation
        rows, for the fixed phases; None if the node is empty. A replacement keeps the row's shape
        (out - s pre <= c), so the LP is changed in place and stays warm.

        Besides the phases themselves, sound interval bounds are propagated through the
        perturbed network with the phases imposed (float64 with a rigorous rounding margin):
        a neuron they show stable is fixed (implied), an unstable one gets the triangle of its
        narrower range. (Without those triangles the 3 x 64 ReLU net's local 1 fixed:4 and global
        fixed:6 checks took the same nodes, 3011 and 2328, but its global fixed:4 check took
        276 + 1346 instead of 216 + 974.)"""
        ctx = ctx or self.root_ctx
        lo_f, hi_f = ctx.lo_f.copy(), ctx.hi_f.copy()
        repl: dict[int, tuple[Lin, Fraction]] = dict(ctx.repl)  # base row -> its replacement at this node
        repl.update(self.ends)
        low: set[int] = set()
        fixed: dict[int, int] = {}  # variable -> sign fixed by a phase (perturbed network)
        for idx, ph in phases.items():
            nr = self.enc.neurons[idx]
            pre, out = nr.pre, nr.out
            if nr.key[0] in ("p", "pabs") and pre >= 0:
                fixed[pre] = ph
            if nr.kind == "relu":
                if ph > 0:
                    lo_f[pre] = max(lo_f[pre], 0.0)
                    low.add(nr.row - 1)  # u - h <= 0, and >= 0: h = u
                else:
                    hi_f[pre] = min(hi_f[pre], 0.0)
                    hi_f[out] = 0.0
            else:  # a = |u|
                if pre < 0:
                    continue
                if ph > 0:
                    lo_f[pre] = max(lo_f[pre], 0.0)
                    low.add(nr.row - 2)  # u - a <= 0, and >= 0: a = u
                else:
                    hi_f[pre] = min(hi_f[pre], 0.0)
                    low.add(nr.row - 1)  # -u - a <= 0, and >= 0: a = -u
        node = _NodeLP(repl, lo_f, hi_f, set(ctx.implied), ctx, low)
        if not phases:
            return node
        relu = self.problem.hidden_activation == "relu"
        hl, hh = ctx.x_lo_f.copy(), ctx.x_hi_f.copy()
        cl, ch = ctx.lo_f, ctx.hi_f
        for i, v in enumerate(self.enc.x_vars):  # inputs whose sign a phase fixed
            if v is not None and v in fixed:
                if fixed[v] > 0:
                    hl[i] = max(hl[i], 0.0)
                else:
                    hh[i] = min(hh[i], 0.0)
        n_layers = len(self.layer_u)
        for li in range(n_layers):
            plo, phi = _interval_layer(hl, hh, *(m[li] for m in self.outward))
            us = self.layer_u[li]
            nl = np.maximum(plo, cl[us])
            nh = np.minimum(phi, ch[us])
            for j, u in enumerate(us):
                sign_u = fixed.get(u)
                if sign_u is None:
                    continue
                if sign_u > 0:
                    nl[j] = max(nl[j], 0.0)
                else:
                    nh[j] = min(nh[j], 0.0)
            if (nl > nh).any():
                return None  # sound bounds with an empty range: no point of the box is in this node
            lo_f[us] = np.maximum(lo_f[us], nl)
            hi_f[us] = np.minimum(hi_f[us], nh)
            abs_at = self.abs_at[li]
            relu_at = self.relu_in[li] if relu and li < n_layers - 1 else ()
            for j, u, ka in abs_at:  # |u| feeds the next layer (identity hidden units)
                if u not in fixed and ka not in node.implied:
                    a, b = float(nl[j]), float(nh[j])
                    self._tighten_abs(node, ka, u, a, b, a > cl[u] or b < ch[u])
            for j, u, k in relu_at:
                if u in fixed or k in node.implied:
                    continue
                a, b = nl[j], nh[j]
                nr = self.enc.neurons[k]
                if a >= 0.0:  # implied active
                    node.implied.add(k)
                    low.add(nr.row - 1)
                elif b <= 0.0:  # implied inactive
                    node.implied.add(k)
                    hi_f[nr.out] = 0.0
                else:
                    if b < hi_f[nr.out]:
                        hi_f[nr.out] = b
                    if a > cl[u] or b < ch[u]:  # a tighter triangle: h <= s u + c on [a, b]
                        a, b = float(a), float(b)
                        sq, aq, bq = Fraction(b / (b - a)), Fraction(a), Fraction(b)
                        c = max(-sq * aq, bq - sq * bq)  # the line is >= max(u, 0) at both ends, so on [a, b]
                        repl[nr.row] = ({nr.out: Fraction(1), u: -sq}, c)
            if relu and li < n_layers - 1:
                hl, hh = np.maximum(nl, 0.0), np.maximum(nh, 0.0)
            else:
                hl, hh = nl, nh
        return node

    def _flipped(self, r: int) -> tuple[Lin, Fraction]:
        """The lower side a.y >= 0 of base row r as the row -a.y <= 0 (one object per row)."""
        row = self._flip_rows.get(r)
        if row is None:
            coef, _ = self.enc.rows[r]
            row = self._flip_rows[r] = ({v: -a for v, a in coef.items()}, _ZERO)
        return row

    @staticmethod
    def _with_low(upper: np.ndarray, lower: np.ndarray, low: Sequence[int]) -> np.ndarray:
        """The multipliers as the certificates number the rows: the <= sides of the rows HiGHS has
        (base rows, then guards: ``upper``), then the lower sides of the base rows ``low`` (taken
        from ``lower``, by row)."""
        return np.concatenate([upper, lower[list(low)]]) if len(low) else upper

    def _tighten_abs(self, node: _NodeLP, k: int, u: int, a: float, b: float, tighter: bool = True) -> None:
        """The neuron a = |u| under the node's bounds a <= u <= b: implied sign, or a tighter chord."""
        nr = self.enc.neurons[k]
        if a >= 0.0:
            node.implied.add(k)
            node.low.add(nr.row - 2)  # |u| <= u
        elif b <= 0.0:
            node.implied.add(k)
            node.low.add(nr.row - 1)  # |u| <= -u
        elif tighter:
            m = Fraction((a + b) / (b - a))  # the chord's slope, rounded; the intercept makes it safe
            aq, bq = Fraction(a), Fraction(b)
            c = max(-aq - m * aq, bq - m * bq)  # the line m u + c is >= |u| at both ends, so on [a, b]
            node.repl[nr.row] = ({nr.out: Fraction(1), u: -m}, c)
            top = max(-a, b)
            if top < node.hi_f[nr.out]:
                node.hi_f[nr.out] = top

    def _solve_lp(self, g: Lin, guards: list[tuple[Lin, Fraction]], phases: dict[int, int],
                  ctx: _BoxCtx | None = None, warm: _WarmLP | None = None, basis=None):
        """The node's LP: ("ok", point, float value, certify) with certify(above=None) the certified
        bound from its multipliers (exact where the float one lies just above ``above``), or
        ("empty" | "timeout" | "fail", None, None, None). ``warm``: the HiGHS instance to solve it
        in (default: the search's own); ``basis``: a basis to start from."""
        from scipy.optimize import linprog  # noqa: PLC0415

        ctx = ctx or self.root_ctx
        warm = warm or self.warm
        node = self._node_rows(phases, ctx)
        self.last_node = node
        if node is None:
            return "empty", None, None, None
        repl, lo_f, hi_f = node.repl, node.lo_f, node.hi_f
        low = sorted(node.low)
        more = guards + [self._flipped(r) for r in low]  # for the certificates: a.y >= 0 as -a.y <= 0
        if (lo_f > hi_f).any():  # sound bounds with an empty range
            return "empty", None, None, None
        c = np.zeros(self.n)
        for v, k in g.items():
            c[v] = -float(k)
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            return "timeout", None, None, None
        self.lp_calls += 1

        def cert(obj: Lin, lam: Sequence[float] | np.ndarray) -> Fraction:
            return self._certificate(obj, lam, repl, more, *node.exact())

        def fast(obj: Lin, lam: np.ndarray, above: Fraction | None = None) -> Fraction:
            """The float64 bound with its rounding margin (``_float_certificate``); the exact one
            only where the float bound is not finite, or lies above ``above`` by less than
            FAST_CERT_NEAR (relative), so a prune the exact bound makes is never missed."""
            got = self._float_certificate(obj, lam, repl, more, lo_f, hi_f)
            if got is None:
                return cert(obj, lam)
            if above is not None and got >= above and float(got - above) <= self.FAST_CERT_NEAR * (1.0 + abs(float(got))):
                return min(got, cert(obj, lam))
            return got

        if warm is not None:
            got = warm.solve(c, lo_f, hi_f, repl, guards, time_limit=left, basis=basis, low=low)
            if got is None and self.deadline is not None and time.monotonic() >= self.deadline:
                return "timeout", None, None, None  # HiGHS stopped at the time limit
            if got is not None and got[0] == "infeasible":  # a Farkas-type certificate from the ray, either sign
                ray = np.asarray(got[1], dtype=float)
                for sign in (-1.0, 1.0):
                    if cert({}, self._with_low(np.fmax(sign * ray, 0.0), np.fmax(-sign * ray, 0.0), low)) < 0:
                        return "empty", None, None, None
                got = None
            if got is not None:  # optimal; anything else goes to linprog below
                _, x, duals, fun = got
                # the multipliers of the <= sides (NaN -> 0, like max(0.0, nan)), then of the lower sides
                lam = self._with_low(np.fmax(-duals, 0.0), np.fmax(duals, 0.0), low)
                self.last_lam = lam
                return "ok", x, float(-fun), lambda above=None: fast(g, lam, above)
        A = self.A.copy()
        b = self.b.copy()
        for r, (coef, rhs) in repl.items():
            A[r] = 0.0
            for v, a in coef.items():
                A[r, v] = float(a)
            b[r] = float(rhs)
        if more:
            A = np.vstack([A, np.array([[float(c.get(v, 0)) for v in range(self.n)] for c, _ in more])])
            b = np.concatenate([b, [float(r) for _, r in more]])
        bounds = list(zip(lo_f, hi_f))
        limit = {} if self.deadline is None else {"time_limit": max(self.deadline - time.monotonic(), 1e-3)}
        res = linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs", options=limit)
        if res.status == 1 and self.deadline is not None and time.monotonic() >= self.deadline:
            return "timeout", None, None, None
        if res.status == 0:
            lam = np.fmax(-np.asarray(res.ineqlin.marginals, dtype=float), 0.0)
            self.last_lam = lam
            return "ok", res.x, float(-res.fun), lambda above=None: fast(g, lam, above)
        if res.status == 2:  # infeasible: phase one, then a Farkas-type certificate with g = 0
            n = self.n
            A1 = np.hstack([A, -np.ones((A.shape[0], 1))])
            c1 = np.zeros(n + 1)
            c1[n] = 1.0
            r1 = linprog(c1, A_ub=A1, b_ub=b, bounds=bounds + [(0, None)], method="highs", options=limit)
            self.lp_calls += 1
            if r1.status == 0 and cert({}, [max(0.0, -m) for m in r1.ineqlin.marginals]) < 0:
                return "empty", None, None, None
        return "fail", None, None, None

    def _certificate(self, g: Lin, lam_f: Sequence[float] | np.ndarray, repl: dict[int, tuple[Lin, Fraction]],
                     more: Sequence[tuple[Lin, Fraction]], lo: Sequence[Fraction], hi: Sequence[Fraction]) -> Fraction:
        """An exact upper bound on g.y over {y in [lo, hi] : rows}, from multipliers lam >= 0
        (any lam >= 0 gives a valid bound, so they are rounded to dyadic rationals with 40-bit
        mantissas and those below 2**-40 of the largest are dropped). The rows are the base rows,
        with the node's replacements ``repl`` (by row index), then the rows ``more``; lam has one
        entry per row in that order. Weak duality with the variable box:

            g.y = lam.(A y) + r.y <= lam.b + sum_i max(r_i lo_i, r_i hi_i),   r = g - A^T lam.

        Everything is summed in integers over one common denominator. The unreplaced base rows
        are packed into one integer each, with a slot of S bits per variable, so their part of
        A^T lam is a sum of big-integer products (S leaves room for every slot's total)."""
        nb = len(self.int_rows)
        lam_all = np.asarray(lam_f, dtype=float)
        lam_all = np.where(np.isfinite(lam_all) & (lam_all > 0.0), lam_all, 0.0)
        top = float(lam_all.max()) if len(lam_all) else 0.0
        cut = top * 2.0**-40
        keep = [k for k in np.flatnonzero(lam_all[:nb] > cut).tolist() if k not in repl] if top > 0 else []
        others = [(i, row) for i, row in repl.items() if lam_all[i] > cut] + \
            [(nb + i, row) for i, row in enumerate(more) if lam_all[nb + i] > cut]
        idx = keep + [i for i, _ in others]
        mant, expo = np.frexp(lam_all[idx]) if idx else (np.array([]), np.array([], dtype=int))
        ms = [int(m) for m in np.rint(mant * 2.0**40)]
        es = [int(e) - 40 for e in expo]
        shift = max(0, -min(es)) if es else 0
        lams = [m << (e + shift) for m, e in zip(ms, es)]
        lam_base, lam_other = lams[:len(keep)], lams[len(keep):]
        n = self.n
        # the other rows in integers over their own denominators; L: the common denominator
        conv = [self._int_row(row) for _, row in others]
        L = math.lcm(self.D, *(d for _, _, d in conv)) if conv else self.D
        scale = L // self.D
        tot = sum(lam * self.int_rows[k][1] for lam, k in zip(lam_base, keep)) * scale
        acc = [0] * n
        if lam_base:
            width = max(lam.bit_length() for lam in lam_base) + self.a_bits + max(len(lam_base), 2).bit_length() + 1
            S = 64 * -(-width // 64)
            pos, neg = self._pack(S)
            ap = sum(lam * pos[k] for lam, k in zip(lam_base, keep))
            an = sum(lam * neg[k] for lam, k in zip(lam_base, keep))
            size = S * n // 8
            bp, bn = ap.to_bytes(size, "little"), an.to_bytes(size, "little")
            step = S // 8
            acc = [(int.from_bytes(bp[i:i + step], "little") - int.from_bytes(bn[i:i + step], "little")) * scale
                   for i in range(0, size, step)]
        for lam, (coef, rhs, d) in zip(lam_other, conv):
            f = lam * (L // d)
            tot += f * rhs
            for v, a in coef:
                acc[v] += f * a
        den = L << shift
        total = Fraction(tot, den)
        for v, c in g.items():  # r_v = g_v - acc_v / den
            rv = c - Fraction(acc[v], den)
            if rv > 0:
                total += rv * hi[v]
            elif rv < 0:
                total += rv * lo[v]
        # the rest in integers: r_v = -acc_v / den, grouped by the denominators of the bounds
        sums: dict[int, int] = {}
        for v in range(n):
            a = acc[v]
            if a == 0 or v in g:
                continue
            bnd = lo[v] if a > 0 else hi[v]  # r_v < 0 takes lo, r_v > 0 takes hi
            d = bnd.denominator
            sums[d] = sums.get(d, 0) - a * bnd.numerator
        for d, num in sums.items():
            total += Fraction(num, den * d)
        return total

    # the float certificate falls back to the exact one within this (relative) distance above a
    # caller's threshold (its own margin is about 1e-13 relative at 3 x 64)
    FAST_CERT_NEAR = 1e-9

    def _float_certificate(self, g: Lin, lam_f: np.ndarray, repl: dict[int, tuple[Lin, Fraction]],
                           more: Sequence[tuple[Lin, Fraction]], lo_f: np.ndarray, hi_f: np.ndarray) -> Fraction | None:
        """The bound of ``_certificate`` for the same multipliers, evaluated in float64 plus a
        proven bound on every rounding error (None if a value is not finite). The argument:

        * any lam >= 0 gives the bound lam.b + sum_v max(r_v l_v, r_v u_v), r = g - A^T lam, and
          it only grows on the outward-rounded box [lo_f, hi_f], which contains [lo, hi];
        * A, b and g enter as their nearest doubles A_f, b_f, g_f: each entry is off by at most
          u |entry_f| + 2^-1074 (u = 2^-53), and lam is used exactly as the doubles it is;
        * r_f = fl(g_f - A_f^T lam) is off from g_f - A_f^T lam by at most gamma_N M_v, with
          M_v = |g_f,v| + sum_k |A_f,kv| lam_k, N the number of terms of any column sum and
          gamma_N = N u / (1 - N u), in any summation order (BLAS included, fused or not). So
          |r_f,v - r_v| <= e_v := 2 (N + 2) u fl(M_v) + 2^-1070 (1 + sum lam), which covers
          fl(M_v) falling short of M_v and the rounding of e_v itself;
        * for r in [r_f - e, r_f + e], max(r l, r u) <= max(r_f l, r_f u) + e max(|l|, |u|);
        * the final sum S of the m + 2 n terms lam_k b_f,k, max(r_f l, r_f u) and e max(|l|, |u|)
          (each a product rounded once) is off by at most gamma_(m + 2n + 1) P + u P, with P the
          sum of the terms' magnitudes; lam.b itself is off from lam.b_f by at most u sum lam |b_f|
          (+ 2^-1074 sum lam), which P covers. The bound returned is
          S + 2 (m + 2 n + 8) u fl(P) + 2^-1000 + 2^-1070 sum lam, exactly as a Fraction (all of it rounded up far
          more than the terms need while (m + 2 n + N) u < 1/100, which is checked)."""
        u = 2.0**-53
        nb = len(self.int_rows)
        n = self.n
        lam_all = np.asarray(lam_f, dtype=float)
        lam_all = np.where(np.isfinite(lam_all) & (lam_all > 0.0), lam_all, 0.0)
        lam_b = lam_all[:nb].copy()
        others: list[tuple[float, tuple[Lin, Fraction]]] = []
        for r, row in repl.items():
            if lam_b[r] > 0.0:
                others.append((float(lam_b[r]), row))
            lam_b[r] = 0.0
        for i, row in enumerate(more):
            if lam_all[nb + i] > 0.0:
                others.append((float(lam_all[nb + i]), row))
        at = self.AT_sp @ lam_b
        mag = self.AT_abs @ lam_b
        bsum = float(lam_b @ self.b)
        bmag = float(lam_b @ np.abs(self.b))
        for lam, row in others:
            coef, rhs = self._float_row(row)
            at[coef[0]] += lam * coef[1]
            mag[coef[0]] += lam * np.abs(coef[1])
            bsum += lam * rhs
            bmag += lam * abs(rhs)
        gf = np.zeros(n)
        for v, c in g.items():
            gf[v] = float(c)
        r = gf - at
        mag += np.abs(gf)
        N = nb + len(others) + 2
        m_terms = nb + len(others) + 2 * n + 1
        if (m_terms + N) * u >= 0.01:
            return None
        lam_sum = float(lam_all.sum())
        e = 2.0 * (N + 2) * u * mag + 2.0**-1070 * (1.0 + lam_sum)
        w = np.maximum(np.abs(lo_f), np.abs(hi_f))
        t = np.maximum(r * lo_f, r * hi_f)
        ew = e * w
        s = bsum + float(t.sum()) + float(ew.sum())
        p = bmag + float(np.abs(t).sum()) + float(ew.sum())
        total = s + 2.0 * (m_terms + 8) * u * p + 2.0**-1000 + 2.0**-1070 * lam_sum
        if not math.isfinite(total) or not math.isfinite(p):
            return None
        return Fraction(total)

    def _float_row(self, row: tuple[Lin, Fraction]) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """A row as (indices, float coefficients), float rhs (the nearest doubles; cached per row)."""
        hit = self._float_cache.get(id(row))
        if hit is not None and hit[0] is row:
            return hit[1]
        coef, rhs = row
        out = ((np.fromiter(coef.keys(), dtype=np.intp, count=len(coef)),
                np.array([float(a) for a in coef.values()])), float(rhs))
        if len(self._float_cache) > 200_000:
            self._float_cache.clear()
        self._float_cache[id(row)] = (row, out)  # the row is kept alive, so its id stays unique
        return out

    def _int_row(self, row: tuple[Lin, Fraction]) -> tuple[list[tuple[int, int]], int, int]:
        """A row (coefficients, rhs) as integers over its common denominator (cached per row)."""
        hit = self._int_cache.get(id(row))
        if hit is not None and hit[0] is row:
            return hit[1]
        coef, rhs = row
        d = math.lcm(rhs.denominator, *(c.denominator for c in coef.values()))
        out = ([(v, c.numerator * (d // c.denominator)) for v, c in coef.items()], rhs.numerator * (d // rhs.denominator), d)
        if len(self._int_cache) > 200_000:
            self._int_cache.clear()
        self._int_cache[id(row)] = (row, out)  # the row is kept alive, so its id stays unique
        return out

    def _pack(self, S: int) -> tuple[list[int], list[int]]:
        """Per base row, its positive and negative coefficients packed into integers, variable v in
        bits [S v, S (v + 1)) (cached per slot width)."""
        hit = self._packs.get(S)
        if hit is None:
            pos, neg = [], []
            for row, _ in self.int_rows:
                p = q = 0
                for v, a in row:
                    if a > 0:
                        p |= a << (S * v)
                    elif a < 0:
                        q |= (-a) << (S * v)
                pos.append(p)
                neg.append(q)
            hit = (pos, neg)
            self._packs[S] = hit
        return hit

    def _layer_t(self, y: np.ndarray, li: int, h: np.ndarray, w: np.ndarray, b: np.ndarray, ew: np.ndarray,
                 eb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For inputs h of layer li: centres c = W.h + b, radii r = eps.|h| + eps_b, and the
        position t in [-1, 1] of the LP's pre-activations u = c + t r (float64, a proposal)."""
        c = h @ w + b
        r = np.abs(h) @ ew + eb
        us = self.enc.trace[li][1]
        target = np.array([float(y[next(iter(e.coef))]) if e.coef else cj for e, cj in zip(us, c)])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(r > 0, np.clip((target - c) / np.where(r > 0, r, 1.0), -1.0, 1.0), 0.0)
        return c, r, t

    def _float_pass(self, y: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """The networks replayed from the LP point y in float64 (a proposal): the input x, and per
        layer the pre-activations of the perturbed and of the original network."""
        p = self.problem
        x = np.array([float(lo) if v is None else min(max(float(y[v]), float(lo)), float(hi))
                      for v, (lo, hi) in zip(self.enc.x_vars, p.inputs)])
        pre_p, pre_o = [], []
        h, h0 = x, x
        n = len(self.wf)
        for li, ((w, b), (ew, eb)) in enumerate(zip(self.wf, self.ef)):
            c, r, t = self._layer_t(y, li, h, w, b, ew, eb)
            u, u0 = c + t * r, h0 @ w + b
            pre_p.append(u)
            pre_o.append(u0)
            if li < n - 1 and p.hidden_activation == "relu":
                u, u0 = np.maximum(u, 0.0), np.maximum(u0, 0.0)
            h, h0 = u, u0
        return x, pre_p, pre_o

    def replay_value(self, y: np.ndarray, g: Lin, g_const: Fraction) -> float:
        """g.y + g_const at the point replayed from y, in float64 (only to filter candidates)."""
        _, pre_p, pre_o = self._float_pass(y)
        val = float(g_const)
        for v, c in g.items():
            kind, k = self.out_of[v]
            val += float(c) * float(pre_p[-1][k] if kind == "p" else pre_o[-1][k])
        return val

    def point_signs(self, y: np.ndarray) -> dict[int, int]:
        """The phase of every splittable neuron at the network replayed from the LP point y
        (float64; only a guess for a dive): the sign of its pre-activation, 0 counted as +."""
        x, pre_p, pre_o = self._float_pass(y)
        relu = self.problem.hidden_activation == "relu"
        ins_p = [x] + [np.maximum(u, 0.0) if relu else u for u in pre_p]  # inputs of each layer
        signs: dict[int, int] = {}
        for k, nr in enumerate(self.enc.neurons):
            tag, li, j = nr.key
            v = {"p": pre_p, "o": pre_o}[tag][li][j] if nr.kind == "relu" else ins_p[li][j]
            signs[k] = 1 if v >= 0 else -1
        return signs

    def _dive_lp(self) -> _WarmLP | None:
        """A second HiGHS instance for the dives: their LPs (every neuron fixed) are far from the
        search's nodes, so each instance stays warm for its own kind."""
        if self._dive_warm is None and self.warm is not None:
            self._dive_warm = _WarmLP.create(self.A, self.b, self.lo_f, self.hi_f, self.enc.rows)
        return self._dive_warm

    def dive(self, g: Lin, guards: list[tuple[Lin, Fraction]], y: np.ndarray, phases: dict[int, int],
             ctx: _BoxCtx | None, evaluate, rounds: int = 6, worth=None):
        """A primal heuristic: fix every free neuron to its phase at the point replayed from y and
        solve that LP, which is then exact up to float error (no relaxation left), so its point
        replays to about its value; then flip the neurons its optimum leaves at zero and solve
        again while that improves. Yields what ``evaluate`` returns for each LP point (only for the
        points ``worth(y)`` accepts, if given: the exact replay is the costly part)."""
        signs = self.point_signs(y)
        implied = (ctx or self.root_ctx).implied
        fixed = dict(phases)
        for k, s in signs.items():
            if k not in fixed and k not in implied and self.enc.neurons[k].pre >= 0:
                fixed[k] = s
        best = -math.inf
        for _ in range(rounds):
            saved = (self.last_node, self.last_lam)
            status, y2, f2, _ = self._solve_lp(g, guards, fixed, ctx, self._dive_lp())
            self.last_node, self.last_lam = saved
            if status != "ok" or f2 <= best + 1e-9 * (1.0 + abs(f2)):
                return
            best = f2
            got = evaluate(y2) if worth is None or worth(y2) else None
            if got is not None:
                yield got
            flips = 0
            for k, nr in enumerate(self.enc.neurons):
                if k in phases or k not in fixed:
                    continue
                u = float(y2[nr.pre])
                if abs(u) <= 1e-9 * (1.0 + float(nr.hi - nr.lo)):
                    fixed[k] = -fixed[k]
                    flips += 1
            if not flips:
                return

    # -- witnesses -------------------------------------------------------------
    def replay(self, y: np.ndarray) -> tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]:
        """Rebuild (x, theta') from an LP point, in float64: neuron by neuron, t_j = (u_j - c_j) / r_j
        and W'_ij = W_ij + t_j eps_ij sign(h_i). The numbers are then clipped to doubles inside
        the boxes, so (x, theta') lies in them exactly, and its outputs are computed exactly
        (integers over a common denominator)."""
        from .exact import dyadic_forward, forward_enclosure  # noqa: PLC0415

        p = self.problem
        w_lo, w_hi, b_lo, b_hi = _box_bounds(p, inward=True)
        x_lo, x_hi = self._x_inward
        xf = np.array([float(lo) if v is None else float(y[v]) for v, (lo, _) in zip(self.enc.x_vars, p.inputs)])
        xf = np.clip(xf, x_lo, x_hi)
        h = xf
        layers_f = []
        n = len(self.wf)
        for li, ((w, b), (ew, eb)) in enumerate(zip(self.wf, self.ef)):
            c, r, t = self._layer_t(y, li, h, w, b, ew, eb)
            nw = np.clip(w + (ew * np.sign(h)[:, None]) * t[None, :], w_lo[li], w_hi[li])
            nb = np.clip(b + t * eb, b_lo[li], b_hi[li])
            layers_f.append((nw, nb))
            u = h @ nw + nb
            if li < n - 1 and p.hidden_activation == "relu":
                u = np.maximum(u, 0.0)
            h = u
        x = tuple(Fraction(float(v)) if xe is None else xe for xe, v in zip(self._x_exact, xf))
        out = dyadic_forward(layers_f, x, p.hidden_activation)  # type: ignore[arg-type]
        if out is None:  # not reached for relu / identity; exact Fractions, never numpy scalars
            exact = [([[Fraction(float(v)) for v in row] for row in nw], [Fraction(float(v)) for v in nb])
                     for nw, nb in layers_f]
            out = [lo for lo, _ in forward_enclosure(exact, x, p.hidden_activation)]
        self.last_outputs = out  # the exact outputs z' of the replayed network
        # theta' as float64 arrays: every entry is a double, i.e. an exact dyadic rational
        return x, tuple(layers_f)  # type: ignore[arg-type]

    def outputs(self, x: tuple[Fraction, ...]) -> tuple[list[Fraction], list[Fraction]]:
        """(z', z) right after ``replay(y)`` returned x: z' from the replay, z (the original
        network at x) computed exactly and cached."""
        z = self._z_cache.get(x)
        if z is None:
            from .exact import forward_enclosure  # noqa: PLC0415

            z = [lo for lo, _ in forward_enclosure(self.problem.layers, x, self.problem.hidden_activation)]
            if len(self._z_cache) > 64:
                self._z_cache.clear()
            self._z_cache[x] = z
        return list(self.last_outputs), z

    # -- search -----------------------------------------------------------------
    def search(self, g: Lin, g_const: Fraction, guards: list[tuple[Lin, Fraction]], evaluate,
               deadline: float | None, *, strict: bool = True, tol: Fraction | None = None,
               lower: Fraction | None = None, node_budget: int | None = None,
               ctx: _BoxCtx | None = None, stop_above: Fraction | None = None, root_basis=None) -> SearchResult:
        """Best-first branch and bound on f(y) = g.y + g_const over the relaxation with the guards.

        Decision mode (``tol`` None): stop at the first validated point with f > 0 (>= 0 if not
        strict); a node is pruned when its certified bound shows f <= 0 (< 0) everywhere in it.
        Optimization mode: stop when the certified upper bound is within ``tol`` of the best
        validated value, or (``stop_above``) at the first validated value above it.
        ``evaluate(y)`` replays an LP point exactly and returns (f at the replayed point, witness)
        or None when the replayed point misses a guard. Each node's LP starts from its parent's
        optimal basis, the root's from ``root_basis`` (a parent box's root, for an input sub-box).
        """
        self.deadline = deadline  # every LP of this search (and its dives) stops there too
        self.ends = {} if os.environ.get("SMTQUANT_END_ROWS") == "0" else self.end_rows(g, guards)
        try:
            return self._search(g, g_const, guards, evaluate, deadline, strict, tol, lower, node_budget, ctx,
                                stop_above, root_basis)
        finally:
            self.deadline = None
            self.ends = {}

    def _search(self, g: Lin, g_const: Fraction, guards: list[tuple[Lin, Fraction]], evaluate,
                deadline: float | None, strict: bool, tol: Fraction | None, lower: Fraction | None,
                node_budget: int | None, ctx: _BoxCtx | None, stop_above: Fraction | None = None,
                root_basis=None) -> SearchResult:
        heap = [_Node(0.0, next(self.seq), {}, None, root_basis)]
        first_basis: list[Any] = []
        nodes = 0
        floor: Fraction | None = None
        best: tuple[Fraction, object] | None = None
        closed_max: Fraction | None = None  # the largest certified bound among nodes closed by tolerance
        low = lower

        def result(complete: bool, reason: str) -> SearchResult:
            ups = [closed_max] if closed_max is not None else []
            if not complete:
                if any(n.bound is None for n in heap):
                    return SearchResult(None, best, complete, nodes, reason, basis=root_b())
                ups += [n.bound for n in heap]  # type: ignore[misc]
            if best is not None:
                ups.append(best[0])
            upper = max(ups) if ups else None
            return SearchResult(upper, best, complete, nodes, reason, floor, root_b())

        def root_b() -> Any:
            return first_basis[0] if first_basis else None

        def worth(y_: np.ndarray) -> bool:
            """Is the float64 replay of the LP point y_ near or above what the search keeps (0 in
            decision mode, else the best value so far)? Only then is it replayed exactly."""
            threshold = 0.0 if tol is None else (float(low + tol / 4) if low is not None else -math.inf)
            v = self.replay_value(y_, g, g_const)
            return v > threshold - 1e-7 * (1.0 + abs(v))

        while heap:
            if deadline is not None and time.monotonic() > deadline:
                return result(False, f"timeout after {nodes} nodes")
            if node_budget is not None and nodes >= node_budget:
                return result(False, f"node budget of {node_budget} spent")
            node = heapq.heappop(heap)
            if tol is not None and low is not None and node.bound is not None and node.bound <= low + tol:
                closed_max = max(closed_max, node.bound) if closed_max is not None else node.bound
                continue
            nodes += 1
            status, y, f_float, certify = self._solve_lp(g, guards, node.phases, ctx, basis=node.basis)
            basis_here = self.warm.last_basis if status == "ok" and self.warm is not None else None
            if not first_basis and basis_here is not None:
                first_basis.append((self, basis_here))
            if status == "empty":
                continue
            if status == "timeout":
                heapq.heappush(heap, node)
                return result(False, f"timeout after {nodes} nodes")
            if status == "fail":
                heapq.heappush(heap, node)
                return result(False, "the LP solver failed on a node")
            f_est = f_float + float(g_const)
            slack = 1e-7 * (1.0 + abs(f_est))
            cert: Fraction | None = None
            # optimization: nodes that will be branched are certified every few levels only (their
            # children inherit the bound), so the reported upper bound still tightens as it goes
            periodic = tol is not None and (low is None or len(node.phases) % 4 == 0)
            # the threshold a node's bound is compared with (the float certificate falls back to
            # the exact one just above it)
            above = -g_const if tol is None else (low + tol - g_const if low is not None else None)
            if node.bound is None or periodic or (tol is None and f_est <= slack):
                cert = certify(above) + g_const  # certified: f <= cert everywhere in this node
                if tol is None and (cert < 0 or (strict and cert == 0)):
                    continue  # certified: no violation in this node
                if tol is not None and low is not None and cert <= low + tol:
                    closed_max = max(closed_max, cert) if closed_max is not None else cert
                    continue
            bound_here = cert if node.bound is None or (cert is not None and cert < node.bound) else node.bound

            first = [evaluate(y)] if worth(y) else []
            dive = (self.dive(g, guards, y, node.phases, ctx, evaluate, worth=worth)
                    if nodes == 1 or nodes % self.DIVE_EVERY == 0 else ())
            for got in itertools.chain(first, dive):
                if got is None:
                    continue
                val, wit = got[:2]
                if best is None or val > best[0]:
                    best = (val, wit)
                if low is None or val > low:
                    low = val
                if len(got) > 2 and got[2] is not None and tol is not None and got[2] > low:
                    low = floor = got[2]  # certified elsewhere (the caller keeps its witness)
                if tol is None and (val > 0 or (not strict and val == 0)):
                    return result(True, f"engine: witness at node {nodes}")
                if stop_above is not None and val > stop_above:
                    return result(False, f"engine: witness at node {nodes}")
            if tol is not None and low is not None and f_est <= float(low + tol) + slack:
                if cert is None:
                    cert = certify(low + tol - g_const) + g_const
                if cert <= low + tol:
                    closed_max = max(closed_max, cert) if closed_max is not None else cert
                    continue
                bound_here = cert
            idx = self._branch(y, node.phases)
            if idx is None:
                if cert is None:
                    cert = certify(-g_const if tol is None else None) + g_const
                if tol is not None:  # all phases fixed: the LP is exact up to float error
                    closed_max = max(closed_max, cert) if closed_max is not None else cert
                    continue
                if cert < 0 or (strict and cert == 0):
                    continue
                heapq.heappush(heap, _Node(-f_est, next(self.seq), node.phases, cert))
                return result(False, "engine: an LP point with all phases fixed did not validate")
            for ph in (1, -1):
                ph_map = dict(node.phases)
                ph_map[idx] = ph
                heapq.heappush(heap, _Node(-f_est, next(self.seq), ph_map, bound_here, basis_here))
        return result(True, f"engine: certified on {nodes} nodes")

    # the weight of the farther phase in a neuron's branching score (see _branch)
    BRANCH_FAR = 0.1

    def _branch(self, y: np.ndarray, phases: dict[int, int]) -> int | None:
        """The neuron to split: the largest estimated share of the LP bound owed to its relaxation,
        else the largest gap between the LP point and the activation. The share is the multiplier
        of its triangle or chord row times how far the LP point lies from the phase nearer to it,
        plus BRANCH_FAR times the farther one: each child must move the point at least that far.
        (Until session 18 it was the multiplier times the row's intercept, as in BaBSR. On the
        3 x 64 ReLU net's two hardest local checks the new score took 22-26 % fewer nodes with
        each LP started from the last solve's basis; with the parent's basis, node counts shift
        by themselves on degenerate LPs, and the two took 27 % and 2 % fewer.)"""
        node = self.last_node
        implied = node.implied if node is not None else set()
        lam = self.last_lam
        best, best_score = None, 0.0
        for k, nr in enumerate(self.enc.neurons):
            if k in phases or k in implied or nr.pre < 0 or nr.row < 0:
                continue
            u, o = float(y[nr.pre]), float(y[nr.out])
            v_pos = max(o - u, 0.0)  # how far the LP point is from the positive phase (out = u)
            v_neg = max(o + u if nr.kind == "abs" else o, 0.0)  # ... and from the negative one (out = -u or 0)
            score = lam[nr.row] * (min(v_pos, v_neg) + self.BRANCH_FAR * max(v_pos, v_neg))
            hull = self.enc.hull_rows.get(k)
            if hull:  # the hull rows' share: their multipliers times the gap a - f(u) at the LP point
                u = float(y[nr.pre])
                gap = float(y[nr.out]) - (abs(u) if nr.kind == "abs" else max(u, 0.0))
                score += sum(lam[r] for r in hull) * max(gap, 0.0)
            if score > best_score:
                best, best_score = k, score
        if best is not None and best_score > 1e-9:
            return best
        best, best_gap = None, -1.0
        for k, nr in enumerate(self.enc.neurons):
            if k in phases or k in implied or nr.pre < 0:
                continue
            u, o = float(y[nr.pre]), float(y[nr.out])
            gap = o - max(u, 0.0) if nr.kind == "relu" else o - abs(u)
            gap = max(gap, 0.0) + 1e-12 * float(nr.hi - nr.lo)
            if gap > best_gap:
                best, best_gap = k, gap
        return best


class _WarmLP:
    """The base rows loaded once into HiGHS (the copy bundled with scipy); every node changes the
    objective, the column bounds and the lower bounds of its phases' rows (a.y >= 0), replaces
    rows in place (an input box's relaxation, a narrower triangle), adds its extra rows, and
    re-solves from a given basis (dual simplex warm start), then drops the extra rows again.
    Only proposes: the caller certifies every bound."""

    def __init__(self, core, A: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 base: list[tuple[Lin, Fraction]]) -> None:
        self.core = core
        h = core._Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")
        h.setOptionValue("threads", 1)
        m, n = A.shape
        lp = core.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = np.zeros(n)
        lp.col_lower_, lp.col_upper_ = lo.copy(), hi.copy()
        lp.row_lower_ = np.full(m, -core.kHighsInf)
        lp.row_upper_ = b.copy()
        rows, cols = np.nonzero(A)
        lp.a_matrix_.format_ = core.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.searchsorted(rows, np.arange(m + 1)).astype(np.int32)
        lp.a_matrix_.index_ = cols.astype(np.int32)
        lp.a_matrix_.value_ = A[rows, cols]
        lp.a_matrix_.num_row_, lp.a_matrix_.num_col_ = m, n
        h.passModel(lp)
        self.h, self.m, self.n = h, m, n
        self.cols = np.arange(n, dtype=np.int32)
        self.base: list[tuple[Lin, Fraction]] = base
        self.pattern: dict[int, set[int]] = _DefaultPattern(base)
        self.changed: dict[int, tuple[Lin, Fraction]] = {}  # rows currently replaced in HiGHS
        self.last_basis: Any = None  # (rows, the optimal basis) of the last solve
        self.asked: Any = None  # the basis the last solve was asked to start from
        self.at_optimum = False  # HiGHS stands at the last solve's optimal basis (no rows added since)
        self.low: set[int] = set()  # rows bounded below (at 0) in HiGHS now

    @classmethod
    def create(cls, A: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
               base: list[tuple[Lin, Fraction]]) -> _WarmLP | None:
        if os.environ.get("SMTQUANT_LP") == "linprog":
            return None
        try:
            from scipy.optimize._highspy import _core  # noqa: PLC0415
            return cls(_core, A, b, lo, hi, base)
        except Exception:  # noqa: BLE001 - an older scipy: every LP goes through linprog
            return None

    def solve(self, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, repl: dict[int, tuple[Lin, Fraction]],
              more: Sequence[tuple[Lin, Fraction]], time_limit: float | None = None, basis=None,
              low: Sequence[int] = ()):
        """("ok", x, row duals, objective) if HiGHS reports optimal, ("infeasible", dual ray) if it
        reports infeasible with a ray, else None. Rows in ``repl`` are changed in place (their
        sparsity stays that of the base row, plus at most the new entries) and restored when a
        later node no longer replaces them; ``more`` rows are added for this solve only; the base
        rows ``low`` are also bounded below by 0 (until a later node drops them).
        ``basis``: a (rows, basis) pair from ``last_basis`` to start from, e.g. the parent node's
        (without it HiGHS starts from the last solve's basis, which after a jump to another part of
        the tree had taken hundreds to thousands of dual simplex iterations on 3 x 64 global problems)."""
        h, core = self.h, self.core
        self.last_basis = None
        h.changeColsCost(self.n, self.cols, c)
        h.changeColsBounds(self.n, self.cols, lo, hi)
        for r in [r for r in self.changed if r not in repl]:
            self._set_row(r, self.base[r])
            del self.changed[r]
        for r, row in repl.items():
            cur = self.changed.get(r)
            # rows shared between nodes compare by identity; an equal row put in place is kept
            # as the object to compare with next (else every later node compared it again,
            # Fraction by Fraction: a sixth of a 3 x 64 global check's time)
            if cur is not row:
                if cur is None or cur[1] != row[1] or cur[0] != row[0]:
                    self._set_row(r, row)
                self.changed[r] = row
        want = set(low)
        for r in self.low - want:
            h.changeRowBounds(r, -core.kHighsInf, float(self.base[r][1]))
        for r in want - self.low:
            h.changeRowBounds(r, 0.0, float(self.base[r][1]))
        self.low = want
        k = len(more)
        if k:
            starts: list[int] = []
            idx: list[int] = []
            vals: list[float] = []
            for coef, _ in more:
                starts.append(len(idx))
                for v, a in coef.items():
                    if a != 0:
                        idx.append(v)
                        vals.append(float(a))
            h.addRows(k, np.full(k, -core.kHighsInf), np.array([float(r) for _, r in more]), len(idx),
                      np.array(starts, dtype=np.int32), np.array(idx, dtype=np.int32), np.array(vals))
        try:
            # HiGHS compares time_limit with its run time summed over every run of this instance
            h.setOptionValue("time_limit", float("inf") if time_limit is None else h.getRunTime() + max(time_limit, 1e-3))
            # the second child of a node right after the first starts where the first ended: only
            # bounds differ between them (phases are bounds), so HiGHS keeps its factorization and
            # its dual steepest-edge weights, which setBasis would have it rebuild (m BTRANs:
            # about 3 ms at 3 x 64, where a child's LP typically takes a few pivots)
            sibling = basis is not None and basis[1] is self.asked and self.at_optimum and not k
            self.asked = None if basis is None else basis[1]
            self.at_optimum = False
            if basis is not None and basis[0] == self.m + k and not sibling:
                h.setBasis(basis[1])  # only a basis of this shape (rows as now)
            h.run()
            status = h.getModelStatus()
            if status == core.HighsModelStatus.kInfeasible:
                got = h.getDualRay()
                if len(got) == 3 and got[1]:
                    return "infeasible", np.array(got[2])
                return None
            if status != core.HighsModelStatus.kOptimal:
                return None
            sol = h.getSolution()
            self.last_basis = (self.m + k, h.getBasis())
            self.at_optimum = not k
            return "ok", np.array(sol.col_value), np.array(sol.row_dual), h.getInfo().objective_function_value
        finally:
            if k:
                h.deleteRows(k, np.arange(self.m, self.m + k, dtype=np.int32))

    def _set_row(self, r: int, row: tuple[Lin, Fraction]) -> None:
        coef, rhs = row
        for v in self.pattern[r]:
            if v not in coef:
                self.h.changeCoeff(r, v, 0.0)
        for v, a in coef.items():
            self.h.changeCoeff(r, v, float(a))
        self.pattern[r] = set(self.pattern[r]) | set(coef)
        self.h.changeRowBounds(r, -self.core.kHighsInf, float(rhs))


@dataclass
class _BoxCtx:
    """The encoding restricted to an input sub-box: exact and float variable bounds, replaced
    rows, neurons the box's bounds make stable, and the box's input bounds as doubles."""

    lo: list[Fraction]
    hi: list[Fraction]
    repl: dict[int, tuple[Lin, Fraction]]
    implied: set[int]
    x_lo_f: np.ndarray
    x_hi_f: np.ndarray
    lo_f: np.ndarray
    hi_f: np.ndarray


class _DefaultPattern(dict):
    """Row -> the set of columns with an entry in HiGHS, filled in from the base row on first use."""

    def __init__(self, base: list[tuple[Lin, Fraction]]) -> None:
        super().__init__()
        self.base_rows = base

    def __missing__(self, r: int) -> set[int]:
        got = set(self.base_rows[r][0])
        self[r] = got
        return got


@dataclass
class _NodeLP:
    repl: dict[int, tuple[Lin, Fraction]]  # base row -> its replacement (same shape) at this node
    lo_f: np.ndarray  # variable bounds, doubles (each one sound)
    hi_f: np.ndarray
    implied: set[int]  # neurons whose phase the node's bounds fix
    ctx: _BoxCtx  # the box it lies in
    low: set[int] = field(default_factory=set)  # base rows a.y <= b also held at a.y >= 0 (a fixed phase)

    def exact(self) -> tuple[list[Fraction], list[Fraction]]:
        """The bounds as rationals: the box's exact ones where the node left them, else its doubles."""
        lo, hi = list(self.ctx.lo), list(self.ctx.hi)
        for i in np.flatnonzero(self.lo_f != self.ctx.lo_f).tolist():
            lo[i] = Fraction(float(self.lo_f[i]))
        for i in np.flatnonzero(self.hi_f != self.ctx.hi_f).tolist():
            hi[i] = Fraction(float(self.hi_f[i]))
        return lo, hi


_U = 2.0**-52  # twice the unit roundoff of float64


def _interval_layer(hl: np.ndarray, hh: np.ndarray, wl: np.ndarray, wh: np.ndarray, bl: np.ndarray,
                    bh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of sum_i w_ij h_i + b_j for w in [wl, wh], h in [hl, hh], b in [bl, bh]
    (all doubles): computed in float64, then widened by a bound on the rounding error of the
    products and the sum ((n + 2) u sum |terms|, plus an underflow allowance)."""
    p = (wl * hl[:, None], wl * hh[:, None], wh * hl[:, None], wh * hh[:, None])
    mn = np.minimum(np.minimum(p[0], p[1]), np.minimum(p[2], p[3]))
    mx = np.maximum(np.maximum(p[0], p[1]), np.maximum(p[2], p[3]))
    n = hl.shape[0] + 2
    lo = mn.sum(axis=0) + bl
    hi = mx.sum(axis=0) + bh
    lo -= n * _U * (np.abs(mn).sum(axis=0) + np.abs(bl)) + 1e-290
    hi += n * _U * (np.abs(mx).sum(axis=0) + np.abs(bh)) + 1e-290
    return lo, hi


def _restricted(problem: Problem, inputs: tuple[Interval, ...]) -> Problem:
    """``problem`` on the part ``inputs`` of its input region, its bounds recomputed there (float64
    interval propagation with a rigorous rounding margin, met with the old ones) and tightened."""
    pb = _meet(_float_bounds(problem, inputs, perturbed=True), problem.perturbed_bounds)
    ob = _meet(_float_bounds(problem, inputs, perturbed=False), problem.original_bounds)
    return tighten(Problem(problem.layers, problem.hidden_activation, problem.box, inputs, pb, ob,
                           problem.diff_bounds))


def _dyadic(f: float) -> Fraction:
    """A float as an exact Fraction, after rounding it to 40 significant bits (smaller numbers)."""
    if f == 0.0 or not math.isfinite(f):
        return _ZERO
    m, e = math.frexp(f)
    return Fraction(round(m * (1 << 40))) * Fraction(2) ** (e - 40)


def _mant_exp(f: float) -> tuple[int, int]:
    """f rounded to 40 significant bits, as (m, e) with value m * 2**e (m = 0 for f <= 0)."""
    if not f > 0.0 or not math.isfinite(f):
        return 0, 0
    m, e = math.frexp(f)
    return round(m * (1 << 40)), e - 40


def _down(q: Fraction) -> float:
    f = float(q)
    return math.nextafter(f, -math.inf) if Fraction(*f.as_integer_ratio()) > q else f


def _up(q: Fraction) -> float:
    f = float(q)
    return math.nextafter(f, math.inf) if Fraction(*f.as_integer_ratio()) < q else f


_BoxArrays = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]
_BOX_BOUNDS: dict[tuple[bool, bool], weakref.WeakKeyDictionary] = {}


def _box_bounds(problem: Problem, inward: bool, radius: bool = True) -> _BoxArrays:
    """Per layer, (w_lo, w_hi, b_lo, b_hi) as doubles for [theta - eps, theta + eps], computed exactly
    once per parameter box: inward, the smallest and largest doubles inside it (theta is a double,
    so they exist); outward, doubles below and above its ends. ``radius=False``: eps = 0."""
    box = problem.box
    cache = _BOX_BOUNDS.setdefault((inward, radius), weakref.WeakKeyDictionary())
    hit = cache.get(box)
    if hit is None:
        low, high = (_up, _down) if inward else (_down, _up)
        w_lo, w_hi, b_lo, b_hi = [], [], [], []
        for li, (w, b) in enumerate(problem.layers):
            rw = box.weights[li] if radius else [[_ZERO] * len(b) for _ in w]
            rb = box.biases[li] if radius else [_ZERO] * len(b)
            w_lo.append(np.array([[low(w[i][j] - rw[i][j]) for j in range(len(b))] for i in range(len(w))]))
            w_hi.append(np.array([[high(w[i][j] + rw[i][j]) for j in range(len(b))] for i in range(len(w))]))
            b_lo.append(np.array([low(b[j] - rb[j]) for j in range(len(b))]))
            b_hi.append(np.array([high(b[j] + rb[j]) for j in range(len(b))]))
        hit = (w_lo, w_hi, b_lo, b_hi)
        cache[box] = hit
    return hit


_CENTRE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _centre(problem: Problem) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """The unperturbed parameters as float64 arrays (once per box), and whether they are exact."""
    hit = _CENTRE.get(problem.box)
    if hit is None:
        got = centre_arrays(problem.layers)
        if got is None:
            ws = [np.array([[float(v) for v in row] for row in w]) for w, _ in problem.layers]
            bs = [np.array([float(v) for v in b]) for _, b in problem.layers]
            hit = (ws, bs, False)
        else:
            hit = (got[0], got[1], True)
        _CENTRE[problem.box] = hit
    return hit  # type: ignore[no-any-return]


def _float_bounds(problem: Problem, inputs: Sequence[Interval], perturbed: bool) -> LayerBounds:
    """Sound pre-activation bounds over ``inputs`` (and the box when ``perturbed``), by float64
    interval propagation with a rigorous rounding margin; as exact Fractions of those doubles."""
    if perturbed:
        wl, wh, bl, bh = _box_bounds(problem, inward=False)
    else:
        wl, bl, exact = _centre(problem)
        if not exact:  # parameters that are not doubles: their outward-rounded box of radius 0
            wl, wh, bl, bh = _box_bounds(problem, inward=False, radius=False)
        else:
            wh, bh = wl, bl
    hl = np.array([_down(lo) for lo, _ in inputs])
    hh = np.array([_up(hi) for _, hi in inputs])
    pre = []
    n = len(problem.layers)
    for li in range(n):
        lo, hi = _interval_layer(hl, hh, wl[li], wh[li], bl[li], bh[li])
        pre.append(tuple((Fraction(float(a)), Fraction(float(b))) for a, b in zip(lo, hi)))
        if li < n - 1:
            if problem.hidden_activation == "relu":
                lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
            hl, hh = lo, hi
    return LayerBounds(tuple(pre))


_ZONO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tightened problem -> its zonotope
_TIGHT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # problem -> tightened problem


def tighten(problem: Problem) -> Problem:
    """The problem with its interval bounds intersected with zonotope bounds (``zonotope.py``),
    and sound bounds on the difference perturbed - original; the zonotope is kept for
    ``_output_bound``. The same problem when zonotopes do not apply."""
    if problem in _ZONO:
        return problem
    hit = _TIGHT.get(problem)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    n = len(problem.layers)
    box = problem.box
    centre = _centre(problem)
    zb = None
    if centre[2]:
        zb = affine_bounds(centre[0], centre[1], problem.hidden_activation, [box.float_weights(i) for i in range(n)],
                           [box.float_biases(i) for i in range(n)], problem.inputs,
                           problem.original_bounds.pre, problem.perturbed_bounds.pre)
    if zb is None:
        _TIGHT[problem] = problem
        return problem

    def meet(bounds: LayerBounds, lo: list[np.ndarray], hi: list[np.ndarray]) -> LayerBounds:
        return LayerBounds(tuple(tuple((max(a, Fraction(float(x))), min(b, Fraction(float(y))))
                                       for (a, b), x, y in zip(pre, lo[li], hi[li]))
                                 for li, pre in enumerate(bounds.pre)))

    pb = meet(problem.perturbed_bounds, zb.pl, zb.ph)  # zb was clipped by them: the meet only makes Fractions
    ob = meet(problem.original_bounds, zb.ol, zb.oh)
    db = LayerBounds(tuple(tuple((Fraction(float(x)), Fraction(float(y))) for x, y in zip(zb.dl[li], zb.dh[li]))
                           for li in range(n)))
    if problem.diff_bounds is not None:
        db = _meet(db, problem.diff_bounds)
    out = Problem(problem.layers, problem.hidden_activation, box, problem.inputs, pb, ob, db)
    _ZONO[out] = zb
    _TIGHT[problem] = out
    return out


_LP_TIGHT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DUAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lp_tighten(problem: Problem, deadline: float | None = None) -> Problem:
    """At a fixed input, the pre-activations of the third hidden layer on (whose bounds interval
    arithmetic loosens) tightened by LP: max and min of each unstable one over the relaxation,
    each certified, then rounded outward to doubles (small denominators keep the
    certificates fast). The first two layers' interval bounds are already exact there."""
    hit = _LP_TIGHT.get(problem)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out = problem
    if problem.fixed_input and len(problem.layers) >= 4:
        out = _lp_bounds(problem, 2, (True,), deadline=deadline)
        if deadline is not None and time.monotonic() > deadline:
            return out  # sound as far as it got; not cached
    _LP_TIGHT[problem] = out
    _LP_TIGHT[out] = out
    return out


def box_lp_tighten(problem: Problem, deadline: float | None = None, eng: Engine | None = None) -> Problem:
    """Over an input (sub-)box: the pre-activations of both networks from the second hidden layer
    on tightened by LP, one layer at a time (each layer's new bounds tighten the next layer's
    relaxation). Worth its 2 LPs per unstable neuron on a small box that is about to be searched
    without a node budget, where the neurons' relaxations, not the box, leave the gap. Past
    ``deadline`` it stops (the bounds it has are sound) and the result is not cached. Every LP is
    solved in one engine: ``eng`` (the problem's own, or one whose problem contains it), each
    layer's in the context of the bounds so far (``Engine.box_context``), so the model is built once
    and stays warm (it had been built afresh per layer: 0.3 s each at 3 x 64)."""
    hit = _LP_TIGHT.get(problem)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out = problem
    eng = eng or Engine(problem)
    for li in range(1, len(problem.layers) - 1):
        out = _lp_bounds(out, li, (True, False), last=li + 1, deadline=deadline, eng=eng)
        if deadline is not None and time.monotonic() > deadline:
            return out
    _LP_TIGHT[problem] = out
    _LP_TIGHT[out] = out
    return out


def _lp_bounds(problem: Problem, first: int, networks: tuple[bool, ...], last: int | None = None,
               deadline: float | None = None, eng: Engine | None = None) -> Problem:
    """The hidden pre-activations of layers ``first`` to ``last`` (exclusive; default all hidden
    layers) of the given networks (True: perturbed, False: original) that are unstable, each
    narrowed to its max and min over the LP relaxation: certified, rounded outward. The LPs are
    solved in ``eng`` in the context of ``problem`` (default: an engine of its own)."""
    eng = eng or Engine(problem)
    ctx = eng.box_context(problem)
    eng.deadline = deadline
    stop = len(problem.layers) - 1 if last is None else last
    bounds = {True: [list(layer) for layer in problem.perturbed_bounds.pre],
              False: [list(layer) for layer in problem.original_bounds.pre]}
    changed = False
    for perturbed in networks:
        pre = bounds[perturbed]
        for li in range(first, stop):
            for j, e in enumerate(eng.enc.layer_e[perturbed][li][0]):
                lo, hi = pre[li][j]
                if not (lo < 0 < hi) or len(e.coef) != 1 or e.const != 0 or next(iter(e.coef.values())) != 1:
                    continue  # (as box_context reads them: u_j itself a variable)
                if deadline is not None and time.monotonic() > deadline:
                    break
                v = next(iter(e.coef))
                for sign in (1, -1):
                    status, _, _, certify = eng._solve_lp({v: Fraction(sign)}, [], {}, ctx)
                    if status != "ok":
                        continue
                    c = certify()
                    if sign > 0 and c < hi:
                        hi, changed = Fraction(_up(c)), True
                    elif sign < 0 and -c > lo:
                        lo, changed = Fraction(_down(-c)), True
                pre[li][j] = (lo, hi)  # only ever narrowed above
    if not changed:
        return problem
    out = Problem(problem.layers, problem.hidden_activation, problem.box, problem.inputs,
                  LayerBounds(tuple(tuple(layer) for layer in bounds[True])),
                  LayerBounds(tuple(tuple(layer) for layer in bounds[False])), problem.diff_bounds)
    if problem in _ZONO:
        _ZONO[out] = _ZONO[problem]
    return out


def _zono_upper(problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction) -> Fraction | None:
    zb: Zonotope | None = _ZONO.get(problem)
    return None if zb is None else zb.upper(zp, z, const)


def _meet(a: LayerBounds, b: LayerBounds) -> LayerBounds:
    """Both sound, so their intersection is."""
    return LayerBounds(tuple(tuple((max(x[0], y[0]), min(x[1], y[1])) for x, y in zip(la, lb))
                             for la, lb in zip(a.pre, b.pre)))


def _sum_pairs(pairs: Sequence[tuple[int, Fraction]]) -> dict[int, Fraction]:
    out: dict[int, Fraction] = {}
    for k, c in pairs:
        out[k] = out.get(k, _ZERO) + c
    return out


def _lin_upper(terms: Sequence[tuple[Fraction, Interval]]) -> Fraction:
    return sum((c * (hi if c > 0 else lo) for c, (lo, hi) in terms), Fraction(0))


def _output_bound(problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction) -> Fraction:
    """An upper bound on sum(zp[k] z'_k) + sum(z[k] z_k) + const over the problem's box, from its
    output intervals (z' and z treated independently, so sound for any coupling)."""
    pz, oz = problem.perturbed_bounds.output, problem.original_bounds.output
    bound = const + _lin_upper([(c, pz[k]) for k, c in zp.items()] + [(c, oz[k]) for k, c in z.items()])
    zu = _zono_upper(problem, zp, z, const)
    return bound if zu is None else min(bound, zu)


def _condition_possible(problem: Problem, condition: Condition) -> bool:
    """False when the output intervals show that no branch of the condition can hold in the box."""
    pz, oz = problem.perturbed_bounds.output, problem.original_bounds.output
    for branch in condition:
        ok = True
        for a in branch:
            terms = [(c, pz[k]) for k, c in a.zp] + [(d, oz[k]) for k, d in a.z]
            up = _lin_upper(terms)
            down = -_lin_upper([(-c, iv) for c, iv in terms])
            zp, z = _sum_pairs(a.zp), _sum_pairs(a.z)
            zu = _zono_upper(problem, zp, z, _ZERO)
            zd = _zono_upper(problem, {k: -c for k, c in zp.items()}, {k: -d for k, d in z.items()}, _ZERO)
            if zu is not None and zd is not None:
                up, down = min(up, zu), max(down, -zd)
            if (a.op == ">" and up <= a.const) or (a.op == ">=" and up < a.const) or \
                    (a.op == "<" and down >= a.const) or (a.op == "<=" and down > a.const):
                ok = False
                break
        if ok:
            return True
    return False


def _atom_expr(enc: _Encoding, atom: Atom) -> _Expr:
    e = _Expr()
    for k, c in atom.zp:
        e = e.add(enc.zp[k], c)
    for k, c in atom.z:
        e = e.add(enc.z[k], c)
    return e


class EngineBackend:
    """The exact engine as a backend: decides a condition by branch and bound per branch."""

    name = "engine"
    # an UNKNOWN before the deadline is mostly a near tie at the threshold (an LP point with every
    # phase fixed that does not validate exactly; rarely an LP failure): a caller may narrow the
    # question and ask again, a bounded number of times (verify._exceeds_pieces, TIE_SPLITS)
    unknown_is_tie = True

    def unsupported(self, problem: Problem) -> str | None:
        if problem.hidden_activation not in ("relu", "identity"):
            return (f"the engine handles relu and identity hidden units, not {problem.hidden_activation} "
                    "(smooth activations need dReal or envelopes)")
        try:
            import scipy.optimize  # noqa: F401, PLC0415
        except ImportError:
            return "the engine needs scipy (pip install scipy)"
        return None

    NODE_BUDGET = 40  # nodes per input sub-box before it is split (global problems)
    MAX_SPLITS = 8  # input splits along one path at most (cheap ones included); deeper sub-boxes search
    # without budget, on bounds tightened by LP (box_lp_tighten) and with an LP model of their own: with
    # most neurons stable there, it is smaller and faster than the root's model in that box's context.
    # (Session 24, 3 x 64 ReLU global checks, two at a time: fixed:4 at delta 283.067 64.2 s with 14,
    # 36.7 s with 12, 44.4 s with 10, 35.5 s with 8, 40.0 s with 6; fixed:6 at 64.4564 22.0 / 12.2 /
    # 16.0 / 9.4 / 11.8 s; since DEEP_TRY most deep boxes close in the root's model anyway)
    CHEAP_DEPTH = 12  # splits of an optimization's input box on zonotope bounds alone (no LP), along one path
    CHEAP_SPLITS = 10  # splits of a decision query that interval bounds alone justify (no LP), along one path
    # hidden activations whose deep sub-boxes get LP bounds (box_lp_tighten) before their search. Not
    # identity units: their LPs (hull rows of |u|) are slow and the bounds cost more than they gave
    # (2-64-64-1 global fixed:4 quantify: certified in 48 s without them, unknown at 60 s with;
    # 2-64-64-64-1 global fixed:8: 33 s without, unknown with)
    BOX_LP_BOUNDS = ("relu",)
    # nodes a deep sub-box (past MAX_SPLITS) of a BOX_LP_BOUNDS network is first searched with in the
    # root's model, before LP bounds and a model of its own (0 = straight to those)
    DEEP_TRY = 80

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Problem, Engine]] = {}

    def _small_box(self, sub: Problem, budget: int | None, deadline: float | None) -> tuple[Problem, Problem | None]:
        """(the box to search, the problem whose engine searches it; None: the root's). A box searched
        to the end (no budget) gets an LP model of its own and (BOX_LP_BOUNDS) LP bounds first,
        solved in that model."""
        if budget is not None:
            return sub, None
        if sub.hidden_activation in self.BOX_LP_BOUNDS:
            return box_lp_tighten(sub, deadline, self.engine_for(sub)), sub
        return sub, sub

    def engine_for(self, problem: Problem) -> Engine:
        """One Engine (encoding and float matrices) per problem, reused across calls."""
        hit = self._cache.get(id(problem))
        if hit is None or hit[0] is not problem:
            if len(self._cache) >= 64:
                self._cache.clear()
            hit = (problem, Engine(problem))
            self._cache[id(problem)] = hit
        return hit[1]

    @staticmethod
    def split(problem: Problem) -> list[Problem]:
        """Halve the widest input interval; sound bounds are recomputed on each half (float64
        interval propagation with a rigorous rounding margin), which stabilizes neurons and
        tightens the relaxation (2-D inputs gain the most)."""
        widths = [hi - lo for lo, hi in problem.inputs]
        i = max(range(len(widths)), key=lambda k: widths[k])
        lo, hi = problem.inputs[i]
        mid = (lo + hi) / 2
        return [_restricted(problem, problem.inputs[:i] + (part,) + problem.inputs[i + 1:])
                for part in ((lo, mid), (mid, hi))]

    def maximize(self, problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction,
                 tol: Fraction, lower: Fraction | None, timeout: float | None,
                 z_range: tuple[int, Fraction, Fraction] | None = None, observe=None) -> SearchResult:
        """Certified max of sum(zp[k] z'_k) + sum(z[k] z_k) + const to ``tol``; the witness of
        ``best`` is (x, theta' layers), its value exact. ``z_range`` = (k, a, b) restricts the
        original output z_k to [a, b] (an empty restriction gives upper None, complete).

        ``observe(x, layers, z', z)``, if given, sees every replayed point and returns a value the
        caller has certified by a witness of its own (or None): the search may then close nodes
        below it too. (quantify: the largest deviation in any direction, whose witness it keeps.)"""
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        problem = tighten(problem)
        if problem.fixed_input:
            return self._maximize_point(problem, zp, z, const, tol, lower, deadline, z_range, observe)
        guards = () if z_range is None else (Atom((), ((z_range[0], _ONE),), ">=", z_range[1]),
                                             Atom((), ((z_range[0], _ONE),), "<=", z_range[2]))
        verts = self._vertices(problem, guards)
        if verts is not None:
            return self._maximize_vertices(problem, verts, zp, z, const, tol, lower, deadline, observe)
        return self._maximize_region(problem, zp, z, const, tol, lower, deadline, z_range, observe)

    def _maximize_region(self, problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction,
                         tol: Fraction, lower: Fraction | None, deadline: float | None,
                         z_range: tuple[int, Fraction, Fraction] | None, observe=None,
                         stop_above: Fraction | None = None) -> SearchResult:
        """maximize over an input region: best-first over input sub-boxes (the largest bound first),
        each searched with a node budget. ``stop_above``: return (incomplete) at the first validated
        point above it (a check asks for one above its threshold)."""
        seq = itertools.count()
        # (priority, seq, box, its bound, depth, (engine, LP basis) to start its search from)
        heap: list[tuple[float, int, Problem, Fraction | None, int, Any]] = [(0.0, next(seq), problem, None, 0, None)]
        closed: list[Fraction] = []
        best: tuple[Fraction, object] | None = None
        low = lower
        nodes = 0
        while heap:
            if deadline is not None and time.monotonic() > deadline:
                ups = [u for *_, u, _, _ in heap]
                known = [u for u in ups if u is not None]
                upper = None if len(known) < len(ups) else max(closed + known + ([best[0]] if best else []))
                return SearchResult(upper, best, False, nodes, f"timeout after {nodes} nodes")
            _, _, sub, sub_up, depth, basis = heapq.heappop(heap)
            fb = _output_bound(sub, zp, z, const)  # a sound bound from the box's interval bounds
            if sub_up is None or fb < sub_up:
                sub_up = fb
            if low is not None and sub_up <= low + tol:
                closed.append(sub_up)
                continue
            kids = None
            if depth < self.CHEAP_DEPTH and low is not None and sub_up is not None:
                # split without an LP while the children's zonotope bounds close a quarter of the gap
                kids = self.split(sub)
                kid_ups = [min(_output_bound(k, zp, z, const), sub_up) for k in kids]
                if max(kid_ups) <= sub_up - (sub_up - low) / 4:
                    for k, ku in zip(kids, kid_ups):
                        heapq.heappush(heap, (-float(ku), next(seq), k, ku, depth + 1, basis))
                    continue
            budget = self.NODE_BUDGET if depth < self.MAX_SPLITS else None
            # (node budget, in a model of the box's own): a deep box of a BOX_LP_BOUNDS network is
            # first searched DEEP_TRY nodes in the root's model, where most close (3 x 64 ReLU
            # global fixed:4 check: 51.6 s -> 35.9 s; LP bounds and a model of the box's own took
            # 2.7 s per box, its search then 0.2 s); only the rest get those
            deep_try = budget is None and self.DEEP_TRY and sub.hidden_activation in self.BOX_LP_BOUNDS
            tries: list[tuple[int | None, bool]] = [(self.DEEP_TRY, False)] if deep_try else []
            tries.append((budget, budget is None))
            for n_try, (box_budget, own_model) in enumerate(tries):
                box, own = self._small_box(sub, None, deadline) if own_model else (sub, None)
                res = self._maximize_box(box, zp, z, const, tol, low, deadline, z_range, box_budget,
                                         root=own or problem, observe=observe, stop_above=stop_above, basis=basis)
                nodes += res.nodes
                if res.best is not None and (best is None or res.best[0] > best[0]):
                    best = res.best
                    low = best[0] if low is None or best[0] > low else low
                    if stop_above is not None and best[0] > stop_above:
                        return SearchResult(None, best, False, nodes, res.reason)
                if res.floor is not None and (low is None or res.floor > low):
                    low = res.floor
                if res.complete:
                    if res.upper is not None:
                        closed.append(res.upper)
                    break
                up = res.upper if res.upper is not None else sub_up
                if res.reason.startswith("node budget"):
                    if n_try + 1 < len(tries):
                        continue  # the next try: the box's own model
                    for child in kids or self.split(sub):
                        heapq.heappush(heap, (-float(up) if up is not None else -math.inf, next(seq), child, up,
                                              depth + 1, res.basis or basis))
                    break
                heapq.heappush(heap, (0.0, next(seq), sub, up, depth, basis))
                ups = [u for *_, u, _, _ in heap]
                known = [u for u in ups if u is not None]
                upper = None if len(known) < len(ups) else max(closed + known + ([best[0]] if best else []))
                return SearchResult(upper, best, False, nodes, res.reason)
        upper = max(closed + ([best[0]] if best else [])) if (closed or best) else None
        return SearchResult(upper, best, True, nodes, f"engine: certified on {nodes} nodes")

    # identity networks over an input region: the query at the region's vertices (``vertices.py``)
    # when there are at most this many
    VERTEX_LIMIT = 16
    # rounds over the vertices left open while at least VERTEX_RETRY_S seconds are left (the nested
    # dual resumes from its best multipliers)
    VERTEX_ROUNDS = 3
    VERTEX_RETRY_S = 1.0

    def _vertices(self, problem: Problem, guards: Sequence[Atom]) -> list[tuple[Fraction, ...]] | None:
        """The vertices of the input region's part where every guard holds, for identity hidden units
        and guards that are non-strict and on the original outputs z only (z is affine in x there);
        None where the vertex route does not apply."""
        if problem.hidden_activation != "identity" or problem.fixed_input:
            return None
        if any(a.zp or a.op not in ("<=", ">=") for a in guards):
            return None
        cuts: list[HalfSpace] = []
        if guards:
            d = len(problem.inputs)
            c = _identity_outputs(problem.layers, [_ZERO] * d)
            cols = [_identity_outputs(problem.layers, [_ONE if j == i else _ZERO for j in range(d)]) for i in range(d)]
            for a in guards:
                coef = tuple(sum((w * (cols[i][k] - c[k]) for k, w in a.z), _ZERO) for i in range(d))
                rhs = a.const - sum((w * c[k] for k, w in a.z), _ZERO)
                cuts.append((coef, rhs) if a.op == "<=" else (tuple(-v for v in coef), -rhs))
        return region_vertices(problem.inputs, cuts, self.VERTEX_LIMIT)

    def _maximize_vertices(self, problem: Problem, verts: Sequence[tuple[Fraction, ...]], zp: dict[int, Fraction],
                           z: dict[int, Fraction], const: Fraction, tol: Fraction, lower: Fraction | None,
                           deadline: float | None, observe=None) -> SearchResult:
        """maximize over an input region by its vertices: each a fixed-input problem given an equal
        share of the time left. With a witness's ``lower`` known, the smallest zonotope bound first:
        those vertices close quickly below it and leave their time to the likely maximum, last;
        without one, the largest first, for a witness that closes the others early."""
        if not verts:
            return SearchResult(None, None, True, 0, "engine: no input of the region meets the restriction")
        subs = [_restricted(problem, tuple((v, v) for v in x)) for x in verts]
        ups = [_output_bound(sub, zp, z, const) for sub in subs]
        order = sorted(range(len(subs)), key=lambda i: ups[i], reverse=lower is None)
        best: tuple[Fraction, object] | None = None
        floor: Fraction | None = None
        low = lower
        uppers = list(ups)
        pending = list(order)
        nodes = 0
        still_open = ""
        for _ in range(self.VERTEX_ROUNDS):  # later rounds: the vertices left open, with the time left
            still_open, left = "", []
            for n, i in enumerate(pending):
                if low is not None and uppers[i] <= low + tol:
                    continue
                res = self._maximize_point(subs[i], zp, z, const, tol, low,
                                           _part_of(deadline, 1 / (len(pending) - n)), None, observe)
                nodes += res.nodes
                if res.best is not None and (best is None or res.best[0] > best[0]):
                    best = res.best
                if res.floor is not None and (floor is None or res.floor > floor):
                    floor = res.floor
                for v in (best[0] if best is not None else None, floor):
                    if v is not None and (low is None or v > low):
                        low = v
                if res.upper is not None:
                    uppers[i] = min(uppers[i], res.upper)
                if not res.complete:
                    left.append(i)
                    still_open = still_open or f"a vertex open: {res.reason}"
            pending = [i for i in left if low is None or uppers[i] > low + tol]
            if not pending or deadline is None or deadline - time.monotonic() < self.VERTEX_RETRY_S:
                break
        upper = max(uppers + ([best[0]] if best is not None else []))
        complete = low is not None and upper <= low + tol
        why = (f"engine: certified at the {len(order)} vertices of the input region" if complete
               else f"engine: not within the tolerance at the input region's vertices ({still_open or 'bounds'})")
        return SearchResult(upper, best, complete, nodes, why, floor)

    def _solve_vertices(self, problem: Problem, condition: Condition, deadline: float | None,
                        start: float) -> CheckOutcome | None:
        """solve over an input region by its vertices (identity hidden units; see ``_vertices``), each
        vertex asked the branches whose guards hold there, without the guards; None where the route
        does not apply. The vertex most likely violated (largest zonotope bound) goes last: time
        left by the others is shared out, and it gets the most."""
        plan: dict[tuple[Fraction, ...], list[tuple[Atom, ...]]] = {}
        for branch in condition:
            verts = self._vertices(problem, branch[:-1])
            if verts is None:
                return None
            for v in verts:
                plan.setdefault(v, []).append(branch[-1:])
        subs = []
        for v, branches in plan.items():
            sub = _restricted(problem, tuple((x, x) for x in v))
            zv = _identity_outputs(problem.layers, v)
            rooms = []
            for b in branches:
                c, c0 = _violation_objective(b[0], zv)
                rooms.append(_output_bound(sub, c, {}, c0))
            subs.append((max(rooms), sub, tuple(branches)))
        subs.sort(key=lambda t: t[0])
        pending = [(sub, cond) for _, sub, cond in subs]
        unknown = ""
        for _ in range(self.VERTEX_ROUNDS):  # later rounds: the vertices left unknown, with the time left
            unknown, left = "", []
            for n, (sub, cond) in enumerate(pending):
                timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0) / (len(pending) - n)
                out = self.solve(sub, cond, timeout)
                if out.answer is Answer.SAT:
                    return CheckOutcome(Answer.SAT, f"{out.reason} (at a vertex of the input region)", out.input,
                                        out.layers, False, time.monotonic() - start)
                if out.answer is Answer.UNKNOWN:
                    left.append((sub, cond))
                    unknown = unknown or f"a vertex of the input region ({len(subs)} in all) open: {out.reason}"
            pending = left
            if not pending or deadline is None or deadline - time.monotonic() < self.VERTEX_RETRY_S:
                break
        if unknown:
            return CheckOutcome(Answer.UNKNOWN, unknown, time_s=time.monotonic() - start)
        return CheckOutcome(Answer.UNSAT, f"engine: certified at the {len(subs)} vertices of the input region",
                            time_s=time.monotonic() - start)

    def _maximize_point(self, problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction,
                        tol: Fraction, lower: Fraction | None, deadline: float | None,
                        z_range: tuple[int, Fraction, Fraction] | None, observe=None) -> SearchResult:
        """At a fixed input: the dual-decomposition bound where it applies, then (unless that
        closed it) LP-tightened bounds and the branch and bound, started from its witness; the
        smaller upper bound wins."""
        if z_range is None and self._search_first(problem, zp, z, const):
            # a fine perturbation: the branch and bound first, the nested dual with the time it leaves;
            # before both, a short look at the dual (it closes at once a maximum far below lower)
            probe = self._dual_first(problem, zp, z, const, tol, lower, z_range, observe,
                                     self._probe_deadline(deadline))
            if probe is not None and probe.complete:
                return probe
            if probe is not None and probe.best is not None and (lower is None or probe.best[0] > lower):
                lower = probe.best[0]
            part = _part_of(deadline, self.SEARCH_FIRST_SHARE)
            res = _combined(probe, self._maximize_box(lp_tighten(problem, part), zp, z, const, tol, lower, part,
                                                      z_range, None, observe=observe), tol)
            if res.complete:
                return res
            low = res.best[0] if res.best is not None and (lower is None or res.best[0] > lower) else lower
            pre = self._dual_first(problem, zp, z, const, tol, low, z_range, observe, deadline)
            return _combined(pre, res, tol)
        pre = self._dual_first(problem, zp, z, const, tol, lower, z_range, observe, deadline)
        if pre is not None and pre.complete:
            return pre
        if pre is not None and pre.best is not None and (lower is None or pre.best[0] > lower):
            lower = pre.best[0]
        if pre is not None and deadline is not None and time.monotonic() > deadline:
            return pre
        problem = lp_tighten(problem, deadline)
        res = self._maximize_box(problem, zp, z, const, tol, lower, deadline, z_range, None, observe=observe)
        return _combined(pre, res, tol)

    # the nested dual (three identity hidden layers) goes after the branch and bound where the
    # perturbation is fine: there the LP relaxations are tight and the search closes in seconds,
    # while the dual converges slowly. "Fine": the zonotope bound's excess over the first-order
    # estimate is below this share of the first-order change (see _search_first). On the suite's
    # 3 x 64 identity net (session 17, quantify to 1e-6, 3 points) the dual first took 6.6-6.9 s
    # at fixed:8 (ratio 0.13) where the branch and bound first took 9.7-28.8 s, and 7.1-50 s at
    # fixed:10 (ratio 0.03) against 7.0-7.7 s; 1/16 lies between
    SEARCH_FIRST_GAP = Fraction(1, 16)
    SEARCH_FIRST_SHARE = 0.8  # of the time left, for the branch and bound
    DUAL_PROBE_SHARE = 0.1  # of the time, for the nested dual before the branch and bound goes first
    DUAL_PROBE_S = 2.0  # and at most this, with or without a timeout (session 16: 9.0 s -> 6.2 s at fixed:8)
    DUAL_LOOK_SHARE = 0.15  # of a check's time left, for each branch's first look at the nested dual

    def _probe_deadline(self, deadline: float | None) -> float:
        """The end of the nested dual's look before the branch and bound goes first: DUAL_PROBE_SHARE
        of the time left, at most DUAL_PROBE_S seconds."""
        cap = time.monotonic() + self.DUAL_PROBE_S
        part = _part_of(deadline, self.DUAL_PROBE_SHARE)
        return cap if part is None else min(part, cap)

    def _search_first(self, problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction],
                      const: Fraction) -> bool:
        """Whether the branch and bound goes before the nested dual on the objective
        sum(zp z') + sum(z z) + const: where the zonotope bound exceeds the objective at theta plus
        its first-order change over the box (``_first_order_change``) by less than SEARCH_FIRST_GAP
        times that change. The ratio depends on neither delta nor a witness; on the 3 x 64 suite
        net it is 2.4-2.7 at fixed:4, 0.51-0.58 at fixed:6, 0.12-0.14 at fixed:8 (10 points, both
        signs), about 0.03 at fixed:10 and 0.008 at fixed:12 (one point). Only speed depends on it."""
        if not ThreeLayerDual.applies(problem):
            return False
        zv = _identity_outputs(problem.layers, [lo for lo, _ in problem.inputs])
        at_theta = const + sum(((zp.get(k, _ZERO) + z.get(k, _ZERO)) * zv[k] for k in set(zp) | set(z)), _ZERO)
        change = _first_order_change(problem, zp)
        excess = float(_output_bound(problem, zp, z, const) - at_theta) - change
        return change > 0 and excess < float(self.SEARCH_FIRST_GAP) * change

    def _dual_first(self, problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction,
                    tol: Fraction, lower: Fraction | None, z_range: tuple[int, Fraction, Fraction] | None,
                    observe=None, deadline: float | None = None) -> SearchResult | None:
        """Two or three identity hidden layers at a fixed input: the dual-decomposition bound
        (``dual.py``, ``dual3.py``),
        exact, and its witness. Complete when the bound is within ``tol`` of the witness or of
        ``lower``; None where it does not apply."""
        dual = None if z_range is not None else _dual_for(problem)
        if dual is None:
            return None
        zv = _identity_outputs(problem.layers, dual.x)
        c = const + sum((d * zv[k] for k, d in z.items()), _ZERO)
        if isinstance(dual, ThreeLayerDual):  # its branch and bound over the first layer's ends
            upper, found = dual.search(dict(zp), c, stop_at=lower, deadline=deadline, tol=tol)
            assert found is not None  # (a maximization keeps its best witness)
            x, layers = found
            nodes = f" after {dual._trees[tuple(sorted(zp.items()))].count} nodes over first-layer ends"
        else:
            nodes = ""
            upper, (x, layers) = dual.bound(dict(zp), c, stop_at=lower, deadline=deadline)
        zpv = _identity_outputs(layers, x)
        val = c + sum((d * zpv[k] for k, d in zp.items()), _ZERO)
        floor = observe(x, layers, zpv, zv) if observe is not None else None
        best = (val, (x, layers))
        low = max(v for v in (val, lower, floor) if v is not None)
        done = upper <= low + tol
        why = "certified" if done else "not within the tolerance"
        return SearchResult(max(upper, val), best, done, 0, f"engine: dual decomposition bound {why}{nodes}",
                            floor if floor is not None and floor > val else None)

    def _search_first_check(self, problem: Problem, condition: Condition) -> bool:
        """_search_first for every branch of a check (each a single atom, else False)."""
        if not ThreeLayerDual.applies(problem) or not condition or any(len(b) != 1 for b in condition):
            return False
        zv = _identity_outputs(problem.layers, [lo for lo, _ in problem.inputs])
        return all(self._search_first(problem, c, {}, const)
                   for c, const in (_violation_objective(b[0], zv) for b in condition))

    def _dual_decide(self, problem: Problem, condition: Condition,
                     deadline: float | None = None) -> tuple[CheckOutcome | None, Condition]:
        """Two or three identity hidden layers at a fixed input: each branch without guards asked of the
        dual-decomposition bound. SAT with the first branch whose witness satisfies it; UNSAT when
        every branch's bound rules it out; else None and the branches still open."""
        dual = _dual_for(problem)
        if dual is None:
            return None, condition
        zv = _identity_outputs(problem.layers, dual.x)
        open_branches = [b for b in condition if len(b) != 1]
        asked = []
        for branch in condition:
            if len(branch) == 1:
                c, const = _violation_objective(branch[0], zv)
                asked.append((_output_bound(problem, c, {}, const), branch, c, const))
        asked.sort(key=lambda t: t[0])
        # the nested dual: first a short look at every branch but the last (an easy one closes
        # there), the last one all the time left in one call (the dual's search gains from long
        # calls, see ThreeLayerDual.PHASE); then the branches still open share the time left, each
        # resuming from its best multipliers
        looks = (self.DUAL_LOOK_SHARE, None) if isinstance(dual, ThreeLayerDual) and len(asked) > 1 else (None,)
        for look in looks:
            left = []
            for n, item in enumerate(asked):
                _, branch, c, const = item
                atom = branch[0]
                strict = atom.op in (">", "<")
                part = _part_of(deadline, look if look is not None and n < len(asked) - 1 else 1 / (len(asked) - n))
                found: tuple | None
                if isinstance(dual, ThreeLayerDual):  # its branch and bound, resumed by later calls
                    upper, found = dual.search(c, const, stop_at=_ZERO, deadline=part, decide=True)
                else:
                    upper, found = dual.bound(c, const, stop_at=_ZERO, deadline=part)
                if found is not None and _atom_holds(atom, _identity_outputs(found[1], found[0]), zv):
                    x, layers = found
                    return CheckOutcome(Answer.SAT, "engine: witness of the dual decomposition", x, layers), condition
                if not (upper < 0 or (strict and upper == 0)):
                    left.append(item)  # neither certified nor violated: still open
            asked = left
            if not asked:
                break
        open_branches += [item[1] for item in asked]
        if not open_branches:
            return CheckOutcome(Answer.UNSAT, "engine: certified by the dual decomposition bound"), ()
        return None, tuple(open_branches)

    def _maximize_box(self, problem: Problem, zp: dict[int, Fraction], z: dict[int, Fraction], const: Fraction,
                      tol: Fraction, lower: Fraction | None, deadline: float | None,
                      z_range: tuple[int, Fraction, Fraction] | None, budget: int | None,
                      root: Problem | None = None, observe=None, stop_above: Fraction | None = None,
                      basis: Any = None) -> SearchResult:
        """Search one box: ``problem`` itself, or (``root`` given) a sub-box of ``root`` as a
        context of root's engine."""
        eng = self.engine_for(root or problem)
        ctx = eng.box_context(problem)
        enc = eng.enc
        e = _Expr({}, const)
        for k, c in zp.items():
            e = e.add(enc.zp[k], c)
        for k, c in z.items():
            e = e.add(enc.z[k], c)

        guards: list[tuple[Lin, Fraction]] = []
        if z_range is not None:
            k, a, b = z_range
            ze = enc.z[k]
            guards = [(ze.coef, b - ze.const), ({v: -c for v, c in ze.coef.items()}, -a + ze.const)]

        def evaluate(y: np.ndarray):
            x, layers = eng.replay(y)
            zpv, zv = eng.outputs(x)
            if z_range is not None and not z_range[1] <= zv[z_range[0]] <= z_range[2]:
                return None
            floor = observe(x, layers, zpv, zv) if observe is not None else None
            return _lin_value(e.coef, e.const, enc, zpv, zv), (x, layers), floor

        start_from = basis[1] if basis is not None and basis[0] is eng else None  # a basis of this engine's LP only
        return eng.search(e.coef, e.const, guards, evaluate, deadline, tol=tol, lower=lower, node_budget=budget,
                          ctx=ctx, stop_above=stop_above, root_basis=start_from)

    def solve(self, problem: Problem, condition: Condition, timeout: float | None) -> CheckOutcome:
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        problem = tighten(problem)
        if problem.fixed_input:
            if self._search_first_check(problem, condition):  # see _search_first
                # a short look at the dual first: it decides at once where delta is far from the maximum
                decided, condition = self._dual_decide(problem, condition, self._probe_deadline(deadline))
                if decided is not None:
                    return CheckOutcome(decided.answer, decided.reason, decided.input, decided.layers, False,
                                        time.monotonic() - start)
                part = _part_of(deadline, self.SEARCH_FIRST_SHARE)
                out = self._solve_box(lp_tighten(problem, part), condition, part, None)
                if out.answer is not Answer.UNKNOWN:
                    return CheckOutcome(out.answer, out.reason, out.input, out.layers, False, time.monotonic() - start)
                decided, _ = self._dual_decide(problem, condition, deadline)
                if decided is not None:
                    return CheckOutcome(decided.answer, decided.reason, decided.input, decided.layers, False,
                                        time.monotonic() - start)
                return CheckOutcome(Answer.UNKNOWN, out.reason, time_s=time.monotonic() - start)
            decided, condition = self._dual_decide(problem, condition, deadline)
            if decided is not None:
                return CheckOutcome(decided.answer, decided.reason, decided.input, decided.layers, False,
                                    time.monotonic() - start)
            if deadline is not None and time.monotonic() > deadline:
                return CheckOutcome(Answer.UNKNOWN, "timeout in the dual decomposition bound",
                                    time_s=time.monotonic() - start)
            problem = lp_tighten(problem, deadline)
            out = self._solve_box(problem, condition, deadline, None)
            return CheckOutcome(out.answer, out.reason, out.input, out.layers, False, time.monotonic() - start)
        at_vertices = self._solve_vertices(problem, condition, deadline, start)
        if at_vertices is not None:
            return at_vertices
        if self.REGION_BY_MAXIMIZE:
            by_max = self._solve_region(problem, condition, deadline, start)
            if by_max is not None:
                return by_max
        queue: list[tuple[Problem, int]] = [(problem, 0)]
        boxes = 0
        while queue:
            sub, depth = queue.pop()
            boxes += 1
            if deadline is not None and time.monotonic() > deadline:
                return CheckOutcome(Answer.UNKNOWN, f"timeout after {boxes} input boxes", time_s=time.monotonic() - start)
            if not _condition_possible(sub, condition):
                continue  # the box's interval bounds rule every branch out
            if depth < self.CHEAP_SPLITS:
                children = self.split(sub)
                if not all(_condition_possible(c, condition) for c in children):
                    queue += [(child, depth + 1) for child in children]  # cheap progress: no LP needed
                    continue
            budget = self.NODE_BUDGET if depth < self.MAX_SPLITS else None
            sub, own = self._small_box(sub, budget, deadline)
            out = self._solve_box(sub, condition, deadline, budget, root=own or problem)
            if out.answer is Answer.SAT:
                return CheckOutcome(out.answer, out.reason, out.input, out.layers, False, time.monotonic() - start)
            if out.answer is Answer.UNKNOWN:
                if out.reason.startswith("node budget"):
                    queue += [(child, depth + 1) for child in self.split(sub)]
                    continue
                return CheckOutcome(Answer.UNKNOWN, out.reason, time_s=time.monotonic() - start)
        return CheckOutcome(Answer.UNSAT, f"engine: certified on {boxes} input boxes", time_s=time.monotonic() - start)

    # a check over an input region (strict threshold atoms, guards at most a range of one original
    # output) runs the maximization's best-first search over input sub-boxes, branch by branch,
    # closing boxes at the threshold and stopping at the first witness above it; False: the
    # depth-first search over boxes below (all branches per box), the route before session 11
    REGION_BY_MAXIMIZE = True

    def _solve_region(self, problem: Problem, condition: Condition, deadline: float | None,
                      start: float) -> CheckOutcome | None:
        """solve over an input region as a maximization per branch: the branch holds somewhere iff
        max f > 0 for its threshold objective f (strict atoms). None where a branch does not fit."""
        plans = [_branch_objective(b) for b in condition]
        if any(p is None for p in plans):
            return None
        todo = [p for p in plans if p is not None]
        # the branch with the least room above its threshold first: such branches close at once,
        # and the likely violated one gets the time they leave
        todo.sort(key=lambda p: _output_bound(problem, p[0], p[1], p[2]))
        reasons = []
        for zp, z, const, z_range in todo:
            res = self._maximize_region(problem, zp, z, const, _ZERO, _ZERO, deadline, z_range, stop_above=_ZERO)
            if res.best is not None and res.best[0] > 0:
                x_w, layers_w = cast("tuple[Any, Any]", res.best[1])
                return CheckOutcome(Answer.SAT, res.reason, x_w, layers_w, False, time.monotonic() - start)
            if not res.complete or (res.upper is not None and res.upper > 0):
                why = res.reason if not res.complete else "engine: a bound above the threshold did not close"
                return CheckOutcome(Answer.UNKNOWN, why, time_s=time.monotonic() - start)
            reasons.append(res.reason)
        return CheckOutcome(Answer.UNSAT, "; ".join(dict.fromkeys(reasons)) or "engine: unsat",
                            time_s=time.monotonic() - start)

    def _solve_box(self, problem: Problem, condition: Condition, deadline: float | None,
                   budget: int | None, root: Problem | None = None) -> CheckOutcome:
        start = time.monotonic()
        eng = self.engine_for(root or problem)
        ctx = eng.box_context(problem)
        enc = eng.enc
        last_reason = ""
        for branch in condition:
            # the last atom is the threshold to exceed; the others are guards (<= form)
            *guard_atoms, main = branch
            guards = []
            for a in guard_atoms:
                e = _atom_expr(enc, a)
                if a.op in ("<", "<="):
                    guards.append((e.coef, a.const - e.const))
                else:
                    neg = e.scaled(Fraction(-1))
                    guards.append((neg.coef, -a.const - neg.const))
            e = _atom_expr(enc, main)
            if main.op in (">", ">="):
                g, g_const = e.coef, e.const - main.const
            else:
                neg = e.scaled(Fraction(-1))
                g, g_const = neg.coef, neg.const + main.const
            strict = main.op in (">", "<")

            def evaluate(y: np.ndarray, branch: tuple[Atom, ...] = branch, g=g, g_const=g_const):
                x, layers = eng.replay(y)
                zp, z = eng.outputs(x)
                if not all(_atom_holds(a, zp, z) for a in branch[:-1]):
                    return None
                return _lin_value(g, g_const, enc, zp, z), (x, layers)

            res = eng.search(g, g_const, guards, evaluate, deadline, strict=strict, node_budget=budget, ctx=ctx)
            if res.best is not None and (res.best[0] > 0 or (not strict and res.best[0] == 0)):
                x_w, layers_w = cast("tuple[Any, Any]", res.best[1])
                return CheckOutcome(Answer.SAT, res.reason, x_w, layers_w, False, time.monotonic() - start)
            if not res.complete:
                return CheckOutcome(Answer.UNKNOWN, res.reason, time_s=time.monotonic() - start)
            reason = res.reason
            last_reason = reason
        return CheckOutcome(Answer.UNSAT, last_reason or "engine: unsat", time_s=time.monotonic() - start)


def _branch_objective(branch: tuple[Atom, ...]) -> tuple[dict[int, Fraction], dict[int, Fraction], Fraction,
                                                       tuple[int, Fraction, Fraction] | None] | None:
    """(zp, z, const, z_range): the branch holds exactly where sum(zp[k] z'_k) + sum(z[k] z_k) +
    const > 0 with z_k in z_range = (k, a, b); None unless the main atom is strict and the guards
    are absent or are exactly a <= z_k <= b."""
    *guard_atoms, main = branch
    if main.op not in (">", "<"):
        return None
    z_range = None
    if guard_atoms:
        if len(guard_atoms) != 2 or any(a.zp or len(a.z) != 1 or a.z[0][1] != 1 for a in guard_atoms):
            return None
        ops = {a.op: a for a in guard_atoms}
        if set(ops) != {">=", "<="} or ops[">="].z[0][0] != ops["<="].z[0][0]:
            return None
        z_range = (ops[">="].z[0][0], ops[">="].const, ops["<="].const)
    sign = 1 if main.op == ">" else -1
    zp = _sum_pairs([(k, sign * c) for k, c in main.zp])
    z = _sum_pairs([(k, sign * c) for k, c in main.z])
    return zp, z, -sign * main.const, z_range


def _violation_objective(atom: Atom, zv: Sequence[Fraction]) -> tuple[dict[int, Fraction], Fraction]:
    """(c, const) with c.z' + const > 0 (or >= 0) exactly where the atom holds, z fixed at zv."""
    sign = 1 if atom.op in (">", ">=") else -1
    c = {k: sign * v for k, v in atom.zp}
    return c, sign * (sum((d * zv[k] for k, d in atom.z), _ZERO) - atom.const)


def _part_of(deadline: float | None, share: float) -> float | None:
    """The time ``share`` of the way from now to ``deadline``."""
    if deadline is None:
        return None
    now = time.monotonic()
    return now + share * max(deadline - now, 0.0)


def _combined(pre: SearchResult | None, res: SearchResult, tol: Fraction) -> SearchResult:
    """The branch and bound's result ``res`` with the dual's ``pre``: the better witness, the
    smaller upper bound."""
    if pre is None or pre.upper is None:
        return res
    best = res.best if res.best is not None and (pre.best is None or res.best[0] >= pre.best[0]) else pre.best
    upper = pre.upper if res.upper is None else min(res.upper, pre.upper)
    complete = res.complete
    if best is not None:
        upper = max(upper, best[0])
        complete = complete or upper <= best[0] + tol
    reason = res.reason if complete or res.nodes else f"{pre.reason}; branch and bound: {res.reason}"
    return SearchResult(upper, best, complete, res.nodes, reason, res.floor)


def _dual_for(problem: Problem) -> TwoLayerDual | ThreeLayerDual | None:
    """The dual-decomposition bound of ``problem`` (two or three identity hidden layers at a fixed
    input), built once per problem; None where neither applies."""
    dual = _DUAL.get(problem)
    if dual is None:
        for kind in (TwoLayerDual, ThreeLayerDual):
            if kind.applies(problem):
                dual = _DUAL[problem] = kind(problem)
                break
    return dual


_RADII: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _first_order_change(problem: Problem, zp: dict[int, Fraction]) -> float:
    """sum |d(zp . z')/d theta_i| eps_i at theta, the fixed input: the first-order change of the
    objective over the box (float64, an estimate for choosing an order, never a bound). Identity
    hidden units."""
    radii = _RADII.get(problem.box)
    if radii is None:
        radii = _RADII[problem.box] = (
            [np.array([[float(v) for v in row] for row in w]) for w in problem.box.weights],
            [np.array([float(v) for v in b]) for b in problem.box.biases])
    ws, bs, _ = _centre(problem)
    ew, eb = radii
    hs = [np.array([float(lo) for lo, _ in problem.inputs])]
    for w, b in zip(ws[:-1], bs[:-1]):
        hs.append(hs[-1] @ w + b)
    g = np.zeros(len(bs[-1]))
    for k, v in zp.items():
        g[k] = float(v)
    change = 0.0
    for li in range(len(ws) - 1, -1, -1):  # back from the output: g = d objective / d h_li
        change += float(np.abs(hs[li]) @ ew[li] @ np.abs(g)) + float(eb[li] @ np.abs(g))
        g = ws[li] @ g
    return change


def _atom_holds(a: Atom, zp: Sequence[Fraction], z: Sequence[Fraction]) -> bool:
    v = sum((c * zp[k] for k, c in a.zp), _ZERO) + sum((d * z[k] for k, d in a.z), _ZERO)
    return {">": v > a.const, ">=": v >= a.const, "<": v < a.const, "<=": v <= a.const}[a.op]


def _lin_value(g: Lin, g_const: Fraction, enc: _Encoding, zp: Sequence[Fraction], z: Sequence[Fraction]) -> Fraction:
    """g.y + g_const where y's output variables take the exact outputs zp and z."""
    val = g_const
    index = {}
    for k, e in enumerate(enc.zp):
        for v in e.coef:
            index[v] = zp[k]
    for k, e in enumerate(enc.z):
        for v in e.coef:
            index[v] = z[k]
    for v, c in g.items():
        val += c * index[v]
    return val
