"""Smooth hidden units (logistic, tanh) with z3's linear real arithmetic: every unit h = act(u) is
replaced by a sound piecewise-linear envelope, refined where a candidate violation appears (CEGAR).

The relaxation contains every real execution of the network, so its UNSAT is a proof (robust).
Its SAT is not: the model's (x, u) is turned into a concrete parameter vector theta' in the box by
rebuilding the network layer by layer with the true activations, and that candidate is checked on
exact enclosures (the caller validates it again). A simplex model tends to sit on the boundary
of the condition, where the small error of the envelope decides; so when the candidate misses,
the loop first asks (push/pop) for models deeper inside the condition, by twice the shortfall.
If they miss too, breakpoints are added at the models' pre-activations where the envelope is
loosest, and the relaxation is solved again. When the envelope is tighter than ``gap_tol`` at the
models' points and the candidates still miss, the answer is unknown. Breakpoints are kept per
problem and reused by later queries on it (a bisection asks many).

Envelope of act on a segment [a, b] that does not contain 0 in its interior (0 is always a
breakpoint): act is convex for b <= 0 and concave for a >= 0. On a convex segment the secant
through the upper enclosures of act(a), act(b) is an upper bound, and tangents at a, (a+b)/2, b
(value from the lower enclosure, slope a rational near the derivative enclosure, lowered by the
slope error times the segment width) are lower bounds; on a concave segment the roles swap. The
horizontal lines act(a) <= h <= act(b) (monotonicity) are added on every segment. Every line is
then rounded to dyadic coefficients on the safe side over [a, b].
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ..exact import ExactLayer, Interval, ceil_dyadic, floor_dyadic, forward_enclosure, sigmoid_bounds, tanh_bounds
from ..properties import Atom, Condition
from .base import Answer, CheckOutcome, Problem, run_with_deadline
from .z3_backend import _abs, _atom, _relu, _z3, from_z3, rat

__all__ = [
    "EnvelopeBackend",
    "Line",
    "Segment",
    "Envelope",
    "act_bounds",
    "deriv_bounds",
    "segment_envelope",
    "evaluate_condition",
    "condition_margin",
    "Margin",
    "MIN_MARGIN",
    "rebuild_candidate",
]

SMOOTH = ("logistic", "tanh")
SUPPORTED = ("logistic", "tanh", "relu", "identity")
COEF_BITS = 48  # line coefficients are multiples of 2^-48 (rounded on the safe side)
POINT_BITS = 40  # breakpoints are multiples of 2^-40
MARGIN_ROUNDS = 8  # models asked deeper inside the condition per refinement round
MIN_MARGIN = Fraction(1, 2**40)  # a candidate this deep inside the condition is taken at once
_ZERO, _ONE = Fraction(0), Fraction(1)


# --------------------------------------------------------------------------- act and act'

@lru_cache(maxsize=65536)
def act_bounds(act: str, q: Fraction) -> Interval:
    """Rationals lo <= act(q) <= hi (act: logistic or tanh)."""
    if act == "logistic":
        return sigmoid_bounds(q)
    if act == "tanh":
        return tanh_bounds(q)
    raise ValueError(f"no envelope for activation {act!r}")


@lru_cache(maxsize=65536)
def deriv_bounds(act: str, q: Fraction) -> Interval:
    """Rationals lo <= act'(q) <= hi, from the enclosure of act(q):
    sigma' = p (1 - p) with p = sigma(q); tanh' = 1 - t^2 with t = tanh(q)."""
    lo, hi = act_bounds(act, q)
    if act == "logistic":
        g_lo, g_hi = lo * (1 - lo), hi * (1 - hi)
        if hi <= Fraction(1, 2):
            return g_lo, g_hi
        if lo >= Fraction(1, 2):
            return g_hi, g_lo
        return min(g_lo, g_hi), Fraction(1, 4)
    if lo >= 0:
        return 1 - hi * hi, 1 - lo * lo
    if hi <= 0:
        return 1 - lo * lo, 1 - hi * hi
    return 1 - max(lo * lo, hi * hi), _ONE


# --------------------------------------------------------------------------- lines and segments

@dataclass(frozen=True)
class Line:
    """u -> slope * u + icpt (dyadic rationals)."""

    slope: Fraction
    icpt: Fraction

    def __call__(self, u: Fraction) -> Fraction:
        return self.slope * u + self.icpt


def _round_line(slope: Fraction, icpt: Fraction, a: Fraction, b: Fraction, upper: bool) -> Line:
    """A dyadic line that is >= (upper) or <= (lower) the line slope*u + icpt on [a, b]."""
    s = floor_dyadic(slope, COEF_BITS)
    d = slope - s  # the rounded line is off by d * u
    if upper:
        return Line(s, ceil_dyadic(icpt + max(d * a, d * b), COEF_BITS))
    return Line(s, floor_dyadic(icpt + min(d * a, d * b), COEF_BITS))


@dataclass(frozen=True)
class Segment:
    """On [a, b]: max(lower lines) <= act(u) <= min(upper lines), proved for every u in [a, b]."""

    a: Fraction
    b: Fraction
    lower: tuple[Line, ...]
    upper: tuple[Line, ...]

    def lower_at(self, u: Fraction) -> Fraction:
        return max(l(u) for l in self.lower)

    def upper_at(self, u: Fraction) -> Fraction:
        return min(l(u) for l in self.upper)

    def gap_at(self, u: Fraction) -> Fraction:
        return self.upper_at(u) - self.lower_at(u)


def _tangent(act: str, m: Fraction, a: Fraction, b: Fraction, upper: bool) -> Line:
    """A line through (m, act(m)) with a slope near act'(m), moved to the safe side so that it is
    a lower bound on a convex piece [a, b] (upper=False) or an upper bound on a concave piece.

    Convex: act(u) >= act(m) + act'(m)(u - m) >= f_lo + s (u - m) - |act'(m) - s| |u - m|."""
    f_lo, f_hi = act_bounds(act, m)
    d_lo, d_hi = deriv_bounds(act, m)
    s = floor_dyadic((d_lo + d_hi) / 2, COEF_BITS)
    err = max(d_hi - s, s - d_lo) * max(m - a, b - m)
    if upper:
        return _round_line(s, f_hi - s * m + err, a, b, upper=True)
    return _round_line(s, f_lo - s * m - err, a, b, upper=False)


@lru_cache(maxsize=65536)
def segment_envelope(act: str, a: Fraction, b: Fraction) -> Segment:
    """The proved envelope of act on [a, b]; [a, b] must not contain 0 in its interior."""
    a, b = Fraction(a), Fraction(b)
    if a > b:
        raise ValueError(f"empty segment [{a}, {b}]")
    if a < 0 < b:
        raise ValueError(f"segment [{a}, {b}] straddles 0; split it there")
    fa_lo, fa_hi = act_bounds(act, a)
    fb_lo, fb_hi = act_bounds(act, b)
    # act is increasing: act(a) <= act(u) <= act(b)
    lower = [Line(_ZERO, floor_dyadic(fa_lo, COEF_BITS))]
    upper = [Line(_ZERO, ceil_dyadic(fb_hi, COEF_BITS))]
    if a == b:
        upper.append(Line(_ZERO, ceil_dyadic(fa_hi, COEF_BITS)))
        lower.append(Line(_ZERO, floor_dyadic(fb_lo, COEF_BITS)))
        return Segment(a, b, tuple(lower), tuple(upper))
    convex = b <= 0
    tangent_points = (a, (a + b) / 2, b)
    if convex:
        # secant through the upper enclosures: act(u) <= lam act(a) + (1 - lam) act(b) <= ...
        k = (fb_hi - fa_hi) / (b - a)
        upper.append(_round_line(k, fa_hi - k * a, a, b, upper=True))
        lower += [_tangent(act, m, a, b, upper=False) for m in tangent_points]
    else:
        k = (fb_lo - fa_lo) / (b - a)
        lower.append(_round_line(k, fa_lo - k * a, a, b, upper=False))
        upper += [_tangent(act, m, a, b, upper=True) for m in tangent_points]
    return Segment(a, b, tuple(lower), tuple(upper))


class Envelope:
    """The envelope of one unit over [lo, hi] (widened outward to dyadic end points), with a
    sorted list of breakpoints that always contains 0 when 0 lies strictly inside."""

    def __init__(self, act: str, lo: Fraction, hi: Fraction, initial_segments: int = 1) -> None:
        self.act = act
        self.lo, self.hi = floor_dyadic(Fraction(lo), POINT_BITS), ceil_dyadic(Fraction(hi), POINT_BITS)
        pts = {self.lo, self.hi}
        if self.lo < 0 < self.hi:
            pts.add(_ZERO)
        n = max(1, initial_segments)
        for i in range(1, n):
            pts.add(floor_dyadic(self.lo + (self.hi - self.lo) * i / n, POINT_BITS))
        self.points: list[Fraction] = sorted(pts)

    def segments(self) -> list[Segment]:
        if len(self.points) == 1:
            return [segment_envelope(self.act, self.points[0], self.points[0])]
        return [segment_envelope(self.act, a, b) for a, b in zip(self.points, self.points[1:])]

    def containing(self, u: Fraction) -> list[Segment]:
        """The segments whose closed range holds u (the first or last one outside [lo, hi])."""
        segs = self.segments()
        inside = [s for s in segs if s.a <= u <= s.b]
        if inside:
            return inside
        return [segs[0]] if u < self.lo else [segs[-1]]

    def bounds_at(self, u: Fraction) -> Interval:
        segs = self.containing(u)
        return max(s.lower_at(u) for s in segs), min(s.upper_at(u) for s in segs)

    def gap_at(self, u: Fraction) -> Fraction:
        lo, hi = self.bounds_at(u)
        return hi - lo

    def add_breakpoint(self, p: Fraction) -> list[Segment]:
        """Split the segment that holds p (rounded to the dyadic grid); the new segments, or []."""
        p = floor_dyadic(Fraction(p), POINT_BITS)
        if not self.lo < p < self.hi or p in self.points:
            return []
        self.points.append(p)
        self.points.sort()
        i = self.points.index(p)
        a, b = self.points[i - 1], self.points[i + 1]
        return [segment_envelope(self.act, a, p), segment_envelope(self.act, p, b)]


# --------------------------------------------------------------------------- conditions on enclosures

def _lin_interval(terms: Sequence[tuple[Fraction, Interval]]) -> Interval:
    lo = hi = _ZERO
    for c, (a, b) in terms:
        lo += min(c * a, c * b)
        hi += max(c * a, c * b)
    return lo, hi


def evaluate_condition(condition: Condition, zp: Sequence[Interval], z: Sequence[Interval]) -> bool | None:
    """Evaluate a Condition for outputs known only as enclosures: True if it holds for every
    (z', z) in them, False if for none, None if undecided."""
    any_undecided = False
    for branch in condition:
        branch_state: bool | None = True
        for atom in branch:
            lo, hi = _lin_interval([(c, zp[k]) for k, c in atom.zp] + [(d, z[k]) for k, d in atom.z])
            c = atom.const
            if atom.op == ">":
                res = True if lo > c else False if hi <= c else None
            elif atom.op == ">=":
                res = True if lo >= c else False if hi < c else None
            elif atom.op == "<":
                res = True if hi < c else False if lo >= c else None
            else:
                res = True if hi <= c else False if lo > c else None
            if res is False:
                branch_state = False
                break
            if res is None:
                branch_state = None
        if branch_state is True:
            return True
        if branch_state is None:
            any_undecided = True
    return None if any_undecided else False


_BIG = Fraction(2**64)


def _is_guard(atom: Atom) -> bool:
    """An atom on the original outputs z alone (a restriction of z to a piece of its range)."""
    return not atom.zp


@dataclass(frozen=True)
class Margin:
    """How deep inside a condition a candidate surely is (see condition_margin)."""

    passes: bool  # some branch surely holds, apart from guards that its enclosure cannot decide
    margin: Fraction  # that branch's smallest slack over its non-guard atoms (negative: missed by that much)
    guard_miss: Fraction  # how far its guards surely fail (0 if none does)


def condition_margin(condition: Condition, zp: Sequence[Interval], z: Sequence[Interval]) -> Margin:
    """The margin of the best branch for outputs known as enclosures.

    The slack of an atom is lo - c (for > and >=) or c - hi (for < and <=) of the enclosure of its
    expression. Guards (atoms on z alone, which restrict z to a piece of its range) are left
    out of ``margin``: the original outputs do not depend on theta', and a guard that an
    enclosure of width 2^-80 cannot decide is left to the caller's exact validation; a guard that
    surely fails makes the branch fail, by ``guard_miss``. Branches are ranked by (passes,
    -guard_miss, margin)."""
    best: tuple[bool, Fraction, Fraction] | None = None
    for branch in condition:
        m, g, ok = _BIG, _ZERO, True
        for atom in branch:
            lo, hi = _lin_interval([(c, zp[k]) for k, c in atom.zp] + [(d, z[k]) for k, d in atom.z])
            slack = lo - atom.const if atom.op in (">", ">=") else atom.const - hi
            if _is_guard(atom):
                width = hi - lo  # surely false: even the far end of the enclosure misses
                if slack + width < 0 or (atom.op in (">", "<") and slack + width == 0):
                    g = min(g, slack + width)
                    ok = False
                continue
            m = min(m, slack)
            ok = ok and (slack > 0 if atom.op in (">", "<") else slack >= 0)
        key = (ok, g, m)
        if best is None or key > best:
            best = key
    if best is None:
        return Margin(False, -_BIG, _ZERO)
    return Margin(best[0], best[2], -best[1])


# --------------------------------------------------------------------------- candidates

def _act_interval(act: str, lo: Fraction, hi: Fraction) -> Interval:
    if act == "relu":
        return max(lo, _ZERO), max(hi, _ZERO)
    if act == "identity":
        return lo, hi
    return act_bounds(act, lo)[0], act_bounds(act, hi)[1]


def _layer_enclosure(w: list[list[Fraction]], b: list[Fraction], h: Sequence[Interval]) -> list[Interval]:
    out = []
    for j in range(len(b)):
        lo = hi = b[j]
        for i, (hl, hh) in enumerate(h):
            p, q = w[i][j] * hl, w[i][j] * hh
            lo += min(p, q)
            hi += max(p, q)
        out.append((lo, hi))
    return out


TChoice = Callable[[int, int, Fraction, Fraction], Fraction]


def rebuild_candidate(problem: Problem, x: Sequence[Fraction], choose_t: TChoice) -> tuple[ExactLayer, ...]:
    """theta' in the box, built layer by layer with the true activations of the previous layer:
    neuron j of layer li gets w'_ij = w_ij + t eps_ij sgn(h_i), b'_j = b_j + t eps_bj, which puts
    its pre-activation at c + t r (c = W_j.h + b_j, r = sum eps_ij |h_i| + eps_bj). ``choose_t(li,
    j, c, r)`` picks t (clamped to [-1, 1]); h is the midpoint of its exact enclosure."""
    h: list[Interval] = [(Fraction(v), Fraction(v)) for v in x]
    out: list[ExactLayer] = []
    n = len(problem.layers)
    for li, (w, b) in enumerate(problem.layers):
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        mid = [lo if lo == hi else floor_dyadic((lo + hi) / 2, 96) for lo, hi in h]
        nw = [list(row) for row in w]
        nb = list(b)
        for j in range(len(b)):
            c = b[j] + sum((w[i][j] * mid[i] for i in range(len(mid))), _ZERO)
            r = rb[j] + sum((rw[i][j] * abs(mid[i]) for i in range(len(mid))), _ZERO)
            t = min(max(choose_t(li, j, c, r), -_ONE), _ONE) if r > 0 else _ZERO
            for i in range(len(mid)):
                sgn = 1 if mid[i] > 0 else -1 if mid[i] < 0 else 0
                nw[i][j] = w[i][j] + t * rw[i][j] * sgn
            nb[j] = b[j] + t * rb[j]
        out.append((nw, nb))
        if li < n - 1:
            h = [_act_interval(problem.hidden_activation, lo, hi) for lo, hi in _layer_enclosure(nw, nb, h)]
    return tuple(out)


# --------------------------------------------------------------------------- the encoding

@dataclass
class _Unit:
    """One hidden unit in the encoding: its pre-activation and activation terms and envelope."""

    name: str
    u: Any
    h: Any
    env: Envelope | None  # None: relu / identity (encoded exactly)


class _Encoding:
    """The relaxation in one incremental z3 Solver; refinement only adds constraints. ``margin``
    is the condition with every strict atom required to hold by at least ``mu`` (a variable that
    is fixed inside push/pop when the loop asks for a model deeper inside the condition)."""

    def __init__(self, z3: Any, problem: Problem, condition: Condition, initial_segments: int,
                 warm: dict[str, list[Fraction]] | None = None) -> None:
        self.z3, self.problem, self.condition = z3, problem, condition
        self.initial_segments = initial_segments
        self.warm = warm or {}
        self.units: list[_Unit] = []
        cons: list[Any] = []
        self.xs: list[Any] = []
        for i, (lo, hi) in enumerate(problem.inputs):
            if lo == hi:
                self.xs.append(rat(z3, lo))
            else:
                v = z3.Real(f"x_{i}")
                cons += [v >= rat(z3, lo), v <= rat(z3, hi)]
                self.xs.append(v)
        self.zp, self.trace = self._perturbed(cons)
        self.z: list[Any] = []
        if any(a.z for br in condition for a in br):
            self.z = self._original(cons)
        self.solver = z3.Solver()
        self.solver.add(*cons)
        self.solver.add(z3.Or([z3.And([_atom(z3, a, self.zp, self.z) for a in br]) for br in condition]))
        self.mu, self.mu_guard = z3.Real("margin"), z3.Real("margin_guard")
        self.margin = z3.Or([z3.And([self._margin_atom(a) for a in br]) for br in condition])

    def _margin_atom(self, atom: Atom) -> Any:
        """The atom required to hold by a margin: mu, or mu_guard for a guard on z alone."""
        z3 = self.z3
        mu = self.mu_guard if _is_guard(atom) else self.mu
        expr = z3.Sum([rat(z3, c) * self.zp[k] for k, c in atom.zp] + [rat(z3, d) * self.z[k] for k, d in atom.z]
                      + [z3.RealVal(0)])
        c = rat(z3, atom.const)
        return expr >= c + mu if atom.op in (">", ">=") else expr <= c - mu

    # -- building blocks ----------------------------------------------------
    def _hidden(self, u: Any, lo: Fraction, hi: Fraction, stable: bool | None, name: str,
                cons: list[Any]) -> tuple[Any, Interval]:
        """The activation term of a hidden unit with pre-activation u in [lo, hi], and its bounds."""
        z3, act = self.z3, self.problem.hidden_activation
        if act == "identity":
            self.units.append(_Unit(name, u, u, None))
            return u, (lo, hi)
        if act == "relu":
            h = _relu(z3, u, stable, hi, cons)
            self.units.append(_Unit(name, u, h, None))
            return h, (max(lo, _ZERO), max(hi, _ZERO))
        env = Envelope(act, lo, hi, self.initial_segments)
        h = z3.Real(f"h_{name}")
        f_lo, f_hi = act_bounds(act, env.lo)[0], act_bounds(act, env.hi)[1]
        cons += [h >= rat(z3, floor_dyadic(f_lo, COEF_BITS)), h <= rat(z3, ceil_dyadic(f_hi, COEF_BITS))]
        for p in self.warm.get(name, ()):
            env.add_breakpoint(p)
        unit = _Unit(name, u, h, env)
        self.units.append(unit)
        for seg in env.segments():
            cons.append(self._segment_constraint(unit, seg))
        return h, (f_lo, f_hi)

    def _segment_constraint(self, unit: _Unit, seg: Segment) -> Any:
        z3 = self.z3
        body = [unit.h >= rat(z3, l.slope) * unit.u + rat(z3, l.icpt) for l in seg.lower]
        body += [unit.h <= rat(z3, l.slope) * unit.u + rat(z3, l.icpt) for l in seg.upper]
        return z3.Implies(z3.And(unit.u >= rat(z3, seg.a), unit.u <= rat(z3, seg.b)), z3.And(body))

    def _perturbed(self, cons: list[Any]) -> tuple[list[Any], list[tuple[list[Any], list[Any]]]]:
        """The weight-eliminated perturbed network (as in the z3 backend), smooth units relaxed."""
        z3, problem = self.z3, self.problem
        h = list(self.xs)
        h_bounds = list(problem.inputs)
        stable = problem.perturbed_bounds.stable_relus()
        trace: list[tuple[list[Any], list[Any]]] = []
        n_layers = len(problem.layers)
        for li, (w, b) in enumerate(problem.layers):
            rw, rb = problem.box.weights[li], problem.box.biases[li]
            absh = [_abs(z3, h[i], *h_bounds[i]) for i in range(len(h))]
            us = []
            for j in range(len(b)):
                c = z3.Sum([rat(z3, w[i][j]) * h[i] for i in range(len(h))] + [rat(z3, b[j])])
                r_terms = [rat(z3, rw[i][j]) * absh[i] for i in range(len(h)) if rw[i][j] != 0]
                if rb[j] != 0:
                    r_terms.append(rat(z3, rb[j]))
                lo, hi = problem.perturbed_bounds.pre[li][j]
                u = z3.Real(f"u_{li}_{j}")
                if r_terms:
                    r = z3.Sum(r_terms)
                    cons += [u >= c - r, u <= c + r]
                else:
                    cons.append(u == c)
                cons += [u >= rat(z3, floor_dyadic(lo, COEF_BITS)), u <= rat(z3, ceil_dyadic(hi, COEF_BITS))]
                us.append(u)
            trace.append((h, us))
            if li == n_layers - 1:
                break
            pre_b = problem.perturbed_bounds.pre[li]
            h, h_bounds = [], []
            for j, u in enumerate(us):
                hj, bj = self._hidden(u, pre_b[j][0], pre_b[j][1], stable[li][j], f"{li}_{j}", cons)
                h.append(hj)
                h_bounds.append(bj)
        return us, trace

    def _original(self, cons: list[Any]) -> list[Any]:
        """The original outputs z: enclosed exactly at a fixed input, else relaxed like z'."""
        z3, problem = self.z3, self.problem
        if problem.fixed_input:
            x = [lo for lo, _ in problem.inputs]
            zs = []
            for k, (lo, hi) in enumerate(forward_enclosure(problem.layers, x, problem.hidden_activation)):
                v = z3.Real(f"z_{k}")
                cons += [v >= rat(z3, floor_dyadic(lo, 64)), v <= rat(z3, ceil_dyadic(hi, 64))]
                zs.append(v)
            return zs
        stable = problem.original_bounds.stable_relus()
        h = list(self.xs)
        n_layers = len(problem.layers)
        for li, (w, b) in enumerate(problem.layers):
            pre = [z3.Sum([rat(z3, w[i][j]) * h[i] for i in range(len(h))] + [rat(z3, b[j])]) for j in range(len(b))]
            if li == n_layers - 1:
                return pre
            h = []
            for j, p in enumerate(pre):
                lo, hi = problem.original_bounds.pre[li][j]
                u = z3.Real(f"uo_{li}_{j}")
                cons.append(u == p)
                h.append(self._hidden(u, lo, hi, stable[li][j], f"o_{li}_{j}", cons)[0])
        raise AssertionError("unreachable")

    # -- refinement -----------------------------------------------------------
    def refine(self, unit: _Unit, point: Fraction) -> bool:
        assert unit.env is not None
        new = unit.env.add_breakpoint(point)
        for seg in new:
            self.solver.add(self._segment_constraint(unit, seg))
        return bool(new)


def _timeout_outcome(timeout: float | None, start: float, detail: str = "") -> CheckOutcome:
    tail = f" ({detail})" if detail else ""
    return CheckOutcome(Answer.UNKNOWN, f"timeout after {timeout:g} s{tail}", time_s=time.monotonic() - start)


def _model_candidates(enc: _Encoding, val: Callable[[Any], Fraction]) -> tuple[tuple[Fraction, ...], list[TChoice]]:
    """The model's input and two ways to place each rebuilt neuron: at the model's fraction t_j of
    its range (from the model's own activations), or as near the model's pre-activation as the
    true range allows."""
    problem = enc.problem
    x = tuple(val(v) for v in enc.xs)
    t_model: dict[tuple[int, int], Fraction] = {}
    u_model: dict[tuple[int, int], Fraction] = {}
    for li, (w, b) in enumerate(problem.layers):
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        hv = [val(t) for t in enc.trace[li][0]]
        for j in range(len(b)):
            uv = val(enc.trace[li][1][j])
            c = b[j] + sum((w[i][j] * hv[i] for i in range(len(hv))), _ZERO)
            rr = rb[j] + sum((rw[i][j] * abs(hv[i]) for i in range(len(hv))), _ZERO)
            t_model[li, j] = (uv - c) / rr if rr > 0 else _ZERO
            u_model[li, j] = uv
    return x, [
        lambda li, j, c, r: t_model[li, j],
        lambda li, j, c, r: (u_model[li, j] - c) / r,
    ]


def _tolerance_outcome(worst: Fraction, start: float, note: str = "") -> CheckOutcome:
    return CheckOutcome(
        Answer.UNKNOWN,
        f"no violation found beyond the envelope tolerance {float(worst):.3g} "
        f"(the relaxation's candidate did not validate{note})",
        time_s=time.monotonic() - start)


@dataclass
class _Probe:
    """What one model of the relaxation gave: its best candidate, and where to refine."""

    candidate: tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]
    cand: Margin  # of the candidate, on exact enclosures
    model: Margin  # of the relaxation's model itself
    gaps: list[tuple[Fraction, int, Fraction]]  # (envelope gap, unit index, the model's u)


def _probe(enc: _Encoding, val: Callable[[Any], Fraction], z_fixed: list[Interval] | None) -> _Probe:
    problem, condition = enc.problem, enc.condition
    x, choices = _model_candidates(enc, val)
    z_enc = z_fixed if z_fixed is not None else forward_enclosure(problem.layers, x, problem.hidden_activation)
    best: tuple[tuple[bool, Fraction, Fraction], tuple[ExactLayer, ...], Margin] | None = None
    for choose in choices:
        cand = rebuild_candidate(problem, x, choose)
        cm = condition_margin(condition, forward_enclosure(cand, x, problem.hidden_activation), z_enc)
        key = (cm.passes, -cm.guard_miss, cm.margin)
        if best is None or key > best[0]:
            best = (key, cand, cm)
    assert best is not None
    zp_m = [(v, v) for v in (val(t) for t in enc.zp)]
    z_m = [(v, v) for v in (val(t) for t in enc.z)]
    gaps = []
    for k, unit in enumerate(enc.units):
        if unit.env is not None:
            u = val(unit.u)
            gaps.append((unit.env.gap_at(u), k, u))
    return _Probe((x, best[1]), best[2], condition_margin(condition, zp_m, z_m), gaps)


def solve_envelope(problem: Problem, condition: Condition, timeout: float | None, gap_tol: Fraction,
                   initial_segments: int, max_iterations: int, refine_fraction: Fraction,
                   stats: dict[str, Any] | None = None,
                   warm: dict[str, list[Fraction]] | None = None) -> CheckOutcome:
    """The CEGAR loop in this process (call it through run_with_deadline).

    Each round: solve the relaxation (UNSAT: proved). Turn the model into a concrete candidate
    and check it on exact enclosures (it holds: SAT). Otherwise ask, a few times, for a model
    deeper inside the condition (by twice the candidate's shortfall), since a model on the
    condition's boundary rarely survives the rebuild; then add breakpoints at the models'
    pre-activations where the envelope is loosest. Stop with unknown when it is tighter than
    ``gap_tol`` at every model point."""
    z3 = _z3()
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    enc = _Encoding(z3, problem, condition, initial_segments, warm)
    s = enc.solver

    def check() -> Any:
        if deadline is not None:
            rem = deadline - time.monotonic()
            if rem <= 0.01:
                return None
            s.set("timeout", max(1, int(rem * 1000)))
        r = s.check()
        if r == z3.unknown and deadline is not None and time.monotonic() >= deadline - 0.05:
            return None
        return r

    def elapsed() -> float:
        return time.monotonic() - start

    def sat(it: int, probe: _Probe, note: str) -> CheckOutcome:
        x, cand = probe.candidate
        return CheckOutcome(Answer.SAT, f"envelope: sat after {it} refinement(s){note}", x, cand, True, elapsed())

    def note(it: int) -> None:
        if stats is not None:
            stats["iterations"] = it
            stats["points"] = {u.name: list(u.env.points) for u in enc.units if u.env is not None}

    z_fixed = forward_enclosure(problem.layers, [lo for lo, _ in problem.inputs], problem.hidden_activation) \
        if problem.fixed_input else None
    for it in range(max_iterations):
        note(it)
        assert s.num_scopes() == 0  # the proof is asked of the relaxation itself, never of a margin query
        r = check()
        if r is None:
            return _timeout_outcome(timeout, start, f"{it} refinement(s)")
        if r == z3.unsat:
            n_bp = sum(len(u.env.points) for u in enc.units if u.env is not None)
            return CheckOutcome(Answer.UNSAT, f"envelope: unsat after {it} refinement(s) ({n_bp} breakpoints)",
                                time_s=elapsed())
        if r != z3.sat:
            return CheckOutcome(Answer.UNKNOWN, f"envelope: z3 {s.reason_unknown()}", time_s=elapsed())
        probes: list[_Probe] = []
        shallow: _Probe | None = None  # a passing candidate less than MIN_MARGIN inside the condition
        mu = mu_guard = _ZERO
        for rnd in range(MARGIN_ROUNDS):
            m = s.model()

            def value_of(term: Any, m: Any = m) -> Fraction:
                return from_z3(z3, m.eval(term, model_completion=True))[0]

            probe = _probe(enc, value_of, z_fixed)
            if rnd > 0:
                s.pop()
            cm, mm = probe.cand, probe.model
            if cm.passes:
                if cm.margin >= MIN_MARGIN:
                    return sat(it, probe, f", {rnd} deeper model(s)" if rnd else "")
                if shallow is None or cm.margin > shallow.cand.margin:
                    shallow = probe
            else:
                probes.append(probe)
            if rnd == MARGIN_ROUNDS - 1:
                break
            # ask for a model deeper inside the condition: by twice the candidate's shortfall (and
            # at least 2 MIN_MARGIN), and inside the guards by twice what the candidate missed them by
            new_mu, new_mu_guard = mu, mu_guard
            if mm.margin < _BIG:
                new_mu = max(2 * mu, mm.margin + 2 * max(mm.margin - cm.margin, _ZERO),
                             2 * MIN_MARGIN if shallow is not None else _ZERO)
            if cm.guard_miss > 0:
                new_mu_guard = max(2 * mu_guard, 2 * cm.guard_miss)
            if (new_mu, new_mu_guard) == (mu, mu_guard):
                break
            mu, mu_guard = new_mu, new_mu_guard
            s.push()
            s.add(enc.mu == rat(z3, mu), enc.mu_guard == rat(z3, mu_guard), enc.margin)
            r = check()
            if r != z3.sat:
                s.pop()
                if r is None and shallow is None:
                    return _timeout_outcome(timeout, start, f"{it} refinement(s)")
                break
        if shallow is not None:
            return sat(it, shallow, " (a candidate close to the condition's boundary)")
        # every model was spurious: refine where the envelope is loosest at the models' points
        worst = max((g for p in probes for g, _, _ in p.gaps), default=_ZERO)
        if worst <= gap_tol:
            return _tolerance_outcome(worst, start)
        added = False
        for p in probes:
            top = max((g for g, _, _ in p.gaps), default=_ZERO)
            for g, k, u in p.gaps:
                if g > gap_tol and g >= top * refine_fraction:
                    added = enc.refine(enc.units[k], u) or added
        note(it + 1)
        if not added:
            return _tolerance_outcome(worst, start, "; breakpoint grid 2^-40 reached")
    return CheckOutcome(Answer.UNKNOWN, f"envelope: no decision after {max_iterations} refinements",
                        time_s=elapsed())


def _solve_keeping_points(problem: Problem, condition: Condition, timeout: float | None, gap_tol: Fraction,
                          initial_segments: int, max_iterations: int, refine_fraction: Fraction,
                          warm: dict[str, list[Fraction]] | None) -> tuple[CheckOutcome, dict[str, Any]]:
    """solve_envelope, also returning the breakpoints it ended with (to start the next query there)."""
    stats: dict[str, Any] = {}
    out = solve_envelope(problem, condition, timeout, gap_tol, initial_segments, max_iterations, refine_fraction,
                         stats, warm)
    return out, stats


class EnvelopeBackend:
    """z3 (linear real arithmetic) on the weight-eliminated encoding with logistic / tanh hidden
    units replaced by refined piecewise-linear envelopes. UNSAT proves; SAT comes with a concrete
    candidate theta' (checked here on exact enclosures, validated again by the caller)."""

    name = "envelope"

    def __init__(self, gap_tol: float | Fraction = Fraction(1, 10**9), initial_segments: int = 1,
                 max_iterations: int = 10_000, refine_fraction: float | Fraction = Fraction(1, 4)) -> None:
        self.gap_tol = Fraction(gap_tol)
        self.initial_segments = int(initial_segments)
        self.max_iterations = int(max_iterations)
        self.refine_fraction = Fraction(refine_fraction)
        # breakpoints found by earlier queries on the same problem (sound for any condition)
        self._warm: weakref.WeakKeyDictionary[Problem, dict[str, list[Fraction]]] = weakref.WeakKeyDictionary()

    def unsupported(self, problem: Problem) -> str | None:
        if problem.hidden_activation not in SUPPORTED:
            return f"the envelope backend has no encoding for {problem.hidden_activation} hidden units"
        return None

    def solve(self, problem: Problem, condition: Condition, timeout: float | None) -> CheckOutcome:
        _z3()
        start = time.monotonic()
        if not isinstance(condition, tuple):  # e.g. softmax confidence: not linear in the outputs
            return CheckOutcome(Answer.UNKNOWN, f"the envelope backend cannot express {type(condition).__name__} "
                                "(it is not linear in the outputs)")
        if timeout is not None and timeout <= 0:
            return _timeout_outcome(timeout, start)
        limit = None if timeout is None else timeout + 0.5
        warm = self._warm.get(problem)
        args = (problem, condition, timeout, self.gap_tol, self.initial_segments, self.max_iterations,
                self.refine_fraction, warm)
        kind, payload = run_with_deadline(_solve_keeping_points, args, limit)
        elapsed = time.monotonic() - start
        if kind == "ok":
            out, stats = payload
            if stats.get("points"):
                self._warm[problem] = stats["points"]
            return out  # type: ignore[no-any-return]
        if kind == "timeout":
            return _timeout_outcome(timeout, start)
        return CheckOutcome(Answer.UNKNOWN, f"solver failed: {payload}", time_s=elapsed)
