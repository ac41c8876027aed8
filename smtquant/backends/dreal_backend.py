"""dReal backend: nonlinear real arithmetic with exp and tanh (logistic and tanh hidden units,
softmax confidence). The only module that imports dreal.

dReal is delta-complete: "unsat" is a proof (of the formula handed to it), "delta-sat" only says
that a delta-weakening of it is satisfiable. So an UNSAT answer here is reported as a proof, and
a delta-sat box becomes a candidate (x, theta') that verify.Query re-checks exactly.

dReal takes doubles. Every number is passed exactly when it is a double; otherwise the formula is
relaxed outward (it gains solutions, never loses one), so UNSAT stays a proof:

* a bound v >= lo becomes v >= (largest double <= lo), v <= hi becomes v <= (smallest double >= hi):
  input region, interval bounds on neurons, the parameter box of the direct encoding, and the
  constant side of every constraint (including the thresholds of the violation condition);
* a parameter whose centre is not a double is re-centred on the nearest double with its radius
  enlarged (rounded up) to cover the original interval; a coefficient that is not a double (and
  the exp/tanh of a constant, an irrational) becomes a fresh variable bounded by doubles around it;
* dReal folds constants and like terms in double arithmetic (0.1*x - 0.03125*x becomes one
  rounded coefficient), so constants are summed exactly in Python and sent once, rounded outward,
  and w*h -/+ eps*|h| for an h of known sign is sent as one coefficient rounded the loose way;
* strict comparisons (> and <) are sent as >= and <= (delta-sat cannot tell them apart anyway);
* at a fixed input, the original network's outputs z of a smooth network enter as variables
  bounded by an exact rational enclosure (rounded outward).

The confidence metric with a softmax output, and with a logistic output when z is symbolic, is
encoded natively with exp (SoftmaxCondition); everything else arrives as linear atoms over the
outputs (properties.Condition). dReal runs with its polytope (LP) contractor on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from ..errors import BackendUnavailable
from ..exact import (
    ExactLayer,
    Interval,
    exp_bounds,
    float_down,
    float_up,
    forward_enclosure,
    sigmoid_bounds,
    softmax_bounds,
    tanh_bounds,
)
from ..properties import Atom, Condition, SoftmaxCondition
from .base import Answer, CheckOutcome, Problem, run_with_deadline

__all__ = ["DrealBackend", "dreal_available", "install_hint", "DEFAULT_PRECISION"]

DEFAULT_PRECISION = 1e-3

_IMPORT_ERROR: str | None = None
try:  # the one guarded import of dreal; a missing libibex.so surfaces as ImportError or OSError
    import dreal as _dreal
except (ImportError, OSError) as _exc:  # pragma: no cover - depends on the installation
    _dreal = None
    _IMPORT_ERROR = f"{_exc.__class__.__name__}: {_exc}"


def dreal_available() -> bool:
    """True when ``import dreal`` works (the wheel and its libibex.so are both found)."""
    return _dreal is not None


def install_hint() -> str:
    """One line: why dReal cannot be used here and what to install."""
    err = _IMPORT_ERROR or ""
    if _dreal is not None:
        why = "is available"
    elif "No module named" in err:
        why = "is not installed"
    else:  # the wheel is there but its native libraries are not found (usually libibex.so)
        why = f"cannot be loaded ({err.split(': ', 1)[-1]})"
    return (f"solver dreal {why}: pip install dreal, build its IBEX with scripts/build_ibex.sh and "
            "put that lib directory on LD_LIBRARY_PATH (see README, section 'Smooth activations and dReal')")


def _require() -> Any:
    if _dreal is None:
        raise BackendUnavailable(install_hint())
    return _dreal


def _is_double(q: Fraction) -> bool:
    try:
        f = float(q)
    except OverflowError:
        return False
    return math.isfinite(f) and Fraction(f) == q


class _Encoder:
    """Builds one dReal formula. Values are either exact Fractions (constants, kept exact in
    Python) or dReal expressions; constants meet dReal only through the rounding helpers."""

    def __init__(self, dr: Any, margin: Fraction = Fraction(0)) -> None:
        self.dr = dr
        self.cons: list[Any] = []
        self.n = 0
        # > 0: the violation condition is strengthened by this much (to steer dReal's delta-sat
        # box inside the violation set); such a formula is only used to find candidates
        self.margin = margin

    # -- variables and constants ---------------------------------------------
    def var(self, name: str, lo: Fraction | None = None, hi: Fraction | None = None) -> Any:
        self.n += 1
        v = self.dr.Variable(f"{name}_{self.n}")
        if lo is not None:
            self.cons.append(v >= float_down(lo))
        if hi is not None:
            self.cons.append(v <= float_up(hi))
        return v

    def enclosed(self, name: str, lo: Fraction, hi: Fraction) -> Any:
        """A constant known only as lo <= c <= hi: the Fraction if exact and a double, else a
        variable bounded outward."""
        if lo == hi and _is_double(lo):
            return lo
        return self.var(name, lo, hi)

    def coef(self, q: Fraction) -> float | Any:
        """A coefficient: the double itself, or a variable bracketing it (a relaxation)."""
        return float(q) if _is_double(q) else self.var("coef", q, q)

    # -- affine sums -----------------------------------------------------------
    def affine(self, terms: Sequence[tuple[Any, Any]], const: Fraction = Fraction(0)) -> tuple[Any, Fraction]:
        """sum(a * b) + const, split into (symbolic part or None, exact constant part)."""
        sym = None
        k = Fraction(const)
        for a, b in terms:
            if isinstance(a, Fraction) and isinstance(b, Fraction):
                k += a * b
                continue
            if isinstance(a, Fraction):
                a, b = b, a
            if isinstance(b, Fraction):
                if b == 0:
                    continue
                t = self.coef(b) * a
            else:
                t = a * b
            sym = t if sym is None else sym + t
        return sym, k

    def geq(self, lhs: Any, rhs: tuple[Any, Fraction]) -> None:
        """lhs >= sym + k, with k rounded down (relaxation)."""
        sym, k = rhs
        self.cons.append((lhs - sym if sym is not None else lhs) >= float_down(k))

    def leq(self, lhs: Any, rhs: tuple[Any, Fraction]) -> None:
        """lhs <= sym + k, with k rounded up (relaxation)."""
        sym, k = rhs
        self.cons.append((lhs - sym if sym is not None else lhs) <= float_up(k))

    def compare(self, sym: Any, k: Fraction, op: str, const: Fraction, margin: Fraction = Fraction(0)) -> Any:
        """The formula sym + k OP const, relaxed outward (strict becomes non-strict); with a
        margin > 0, strengthened by it instead."""
        dr = self.dr
        c = const - k + (margin if op in (">", ">=") else -margin)
        if sym is None:
            holds = {">": 0 > c, ">=": 0 >= c, "<": 0 < c, "<=": 0 <= c}[op]
            return dr.Formula.TRUE() if holds else dr.Formula.FALSE()
        if op in (">", ">="):
            return sym >= float_down(c)
        return sym <= float_up(c)

    def value(self, sym_k: tuple[Any, Fraction], name: str, bounds: Interval | None) -> Any:
        """An affine sum as a value: the Fraction when it is constant, else a variable equal to it
        (up to rounding of its constant part) and within ``bounds``."""
        sym, k = sym_k
        if sym is None:
            return k
        v = self.var(name, *(bounds if bounds is not None else (None, None)))
        self.geq(v, (sym, k))
        self.leq(v, (sym, k))
        return v

    # -- activations -----------------------------------------------------------
    def activate(self, act: str, u: Any, bounds: Interval, stable: bool | None) -> Any:
        dr = self.dr
        if act == "identity":
            return u
        if act == "relu":
            if isinstance(u, Fraction):
                return max(u, Fraction(0))
            if stable is True:
                return u
            if stable is False:
                return Fraction(0)
            a = self.var("relu", Fraction(0), max(bounds[1], Fraction(0)))
            self.cons.append(a == dr.Max(u, 0.0))
            return a
        fn = tanh_bounds if act == "tanh" else sigmoid_bounds
        if isinstance(u, Fraction):  # irrational value of a constant: an enclosure
            lo, hi = fn(u)
            return self.enclosed(act, lo, hi)
        lo, hi = fn(bounds[0])[0], fn(bounds[1])[1]
        a = self.var(act, lo, hi)
        self.cons.append(a == (dr.tanh(u) if act == "tanh" else 1.0 / (1.0 + dr.exp(-u))))
        return a


def _act_bounds(act: str, lo: Fraction, hi: Fraction) -> Interval:
    if act == "relu":
        return max(lo, Fraction(0)), max(hi, Fraction(0))
    if act == "identity":
        return lo, hi
    fn = tanh_bounds if act == "tanh" else sigmoid_bounds
    return fn(lo)[0], fn(hi)[1]


def _recentre(w: Fraction, e: Fraction) -> tuple[Fraction, Fraction]:
    """A double centre and double radius whose interval contains [w - e, w + e]."""
    if _is_double(w):
        wc = w
        ec = e
    else:
        wc = Fraction(float(w))
        ec = e + abs(w - wc)
    if not _is_double(ec):
        ec = Fraction(float_up(ec))
    return wc, ec


def _inputs(enc: _Encoder, problem: Problem) -> list[Any]:
    return [enc.enclosed("x", lo, hi) if lo == hi else enc.var("x", lo, hi) for lo, hi in problem.inputs]


def _forward_exact_params(enc: _Encoder, problem: Problem, xs: list[Any], name: str) -> list[Any]:
    """The original network (no perturbation) on symbolic inputs; returns its outputs z."""
    act = problem.hidden_activation
    bounds = problem.original_bounds
    stable = bounds.stable_relus()
    h = list(xs)
    n = len(problem.layers)
    for li, (w, b) in enumerate(problem.layers):
        us = []
        for j in range(len(b)):
            s = enc.affine([(w[i][j], h[i]) for i in range(len(h))], b[j])
            us.append(enc.value(s, f"{name}{li}", bounds.pre[li][j]))
        if li == n - 1:
            return us
        h = [enc.activate(act, us[j], bounds.pre[li][j], stable[li][j]) for j in range(len(us))]
    raise AssertionError("unreachable")


def _encode_eliminated(enc: _Encoder, problem: Problem, xs: list[Any]) -> tuple[list[Any], list[list[Any]]]:
    """One variable per perturbed neuron: c - r <= u <= c + r, c = W_j.h + b_j,
    r = sum_i eps_ij |h_i| + eps_bj (exact: every parameter occurs once in a forward pass)."""
    act = problem.hidden_activation
    pb = problem.perturbed_bounds
    stable = pb.stable_relus()
    h = list(xs)
    h_bounds = list(problem.inputs)
    us_all: list[list[Any]] = []
    n = len(problem.layers)
    for li, (w, b) in enumerate(problem.layers):
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        us: list[Any] = []
        for j in range(len(b)):
            lo_terms: list[tuple[Any, Any]] = []
            hi_terms: list[tuple[Any, Any]] = []
            k_lo = k_hi = Fraction(0)
            for i in range(len(h)):
                wij, eij = w[i][j], rw[i][j]
                if isinstance(h[i], Fraction):  # exact: c -/+ r contributions
                    k_lo += wij * h[i] - eij * abs(h[i])
                    k_hi += wij * h[i] + eij * abs(h[i])
                    continue
                # One double coefficient per term (dReal folds w*h - e*h into one double,
                # rounding to nearest), rounded so that each bound only gets looser.
                hl, hh = h_bounds[i]
                if hl >= 0:  # w*h -/+ e*h = (w -/+ e) * h with h >= 0
                    lo_terms.append((Fraction(float_down(wij - eij)), h[i]))
                    hi_terms.append((Fraction(float_up(wij + eij)), h[i]))
                elif hh <= 0:  # w*h -/+ e*(-h) = (w +/- e) * h with h <= 0
                    lo_terms.append((Fraction(float_up(wij + eij)), h[i]))
                    hi_terms.append((Fraction(float_down(wij - eij)), h[i]))
                else:  # sign unknown: w*h -/+ e*|h|, centre and radius made doubles
                    wc, ec = _recentre(wij, eij)
                    lo_terms.append((wc, h[i]))
                    hi_terms.append((wc, h[i]))
                    if ec != 0:
                        ah = abs(h[i])
                        lo_terms.append((-ec, ah))
                        hi_terms.append((ec, ah))
            k_lo, k_hi = k_lo + b[j] - rb[j], k_hi + b[j] + rb[j]  # exact; rounded outward by geq/leq
            low = enc.affine(lo_terms, k_lo)
            high = enc.affine(hi_terms, k_hi)
            if low[0] is None and high[0] is None and low[1] == high[1]:
                us.append(low[1])
                continue
            lo_b, hi_b = pb.pre[li][j]
            u = enc.var(f"u{li}", lo_b, hi_b)
            enc.geq(u, low)
            enc.leq(u, high)
            us.append(u)
        us_all.append(us)
        if li == n - 1:
            return us, us_all
        h = [enc.activate(act, us[j], pb.pre[li][j], stable[li][j]) for j in range(len(us))]
        h_bounds = [_act_bounds(act, lo, hi) for lo, hi in pb.pre[li]]
    raise AssertionError("unreachable")


def _encode_direct(enc: _Encoder, problem: Problem, xs: list[Any]) -> tuple[list[Any], list[tuple[list[list[Any]], list[Any]]]]:
    """One variable per perturbed parameter (the reference study's formulation)."""
    act = problem.hidden_activation
    pb = problem.perturbed_bounds
    stable = pb.stable_relus()
    params: list[tuple[list[list[Any]], list[Any]]] = []
    for li, (w, b) in enumerate(problem.layers):
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        wv = [[enc.enclosed(f"w{li}", w[i][j] - rw[i][j], w[i][j] + rw[i][j]) for j in range(len(b))]
              for i in range(len(w))]
        bv = [enc.enclosed(f"b{li}", b[j] - rb[j], b[j] + rb[j]) for j in range(len(b))]
        params.append((wv, bv))
    h = list(xs)
    n = len(problem.layers)
    for li, (wv, bv) in enumerate(params):
        us = []
        for j in range(len(bv)):
            terms = [(wv[i][j], h[i]) for i in range(len(h))]
            bj = bv[j]
            if isinstance(bj, Fraction):
                s = enc.affine(terms, bj)
            else:
                s = enc.affine(terms + [(bj, Fraction(1))])
            us.append(enc.value(s, f"u{li}", pb.pre[li][j]))
        if li == n - 1:
            return us, params
        h = [enc.activate(act, us[j], pb.pre[li][j], stable[li][j]) for j in range(len(us))]
    raise AssertionError("unreachable")


def _logits(z: Sequence[Any]) -> list[Any]:
    """The logits of the class probabilities: (0, z) for a logistic output, else z itself."""
    if len(z) != 1:
        return list(z)
    zero = (Fraction(0), Fraction(0)) if isinstance(z[0], tuple) else Fraction(0)
    return [zero, z[0]]


def _softmax(enc: _Encoder, z: Sequence[Any], k: int) -> Any:
    """softmax(z)_k = 1 / (1 + sum_{j != k} exp(z_j - z_k)) as a dReal expression."""
    dr = enc.dr
    s: Any = 1.0
    for j in range(len(z)):
        if j == k:
            continue
        sym, c = enc.affine([(Fraction(1), z[j]), (Fraction(-1), z[k])])
        if sym is None:  # a constant difference: exp of it is irrational, so an enclosure
            lo, hi = exp_bounds(c)
            e = enc.enclosed("e", lo, hi)
            s = s + (float(e) if isinstance(e, Fraction) else e)
        elif c == 0:
            s = s + dr.exp(sym)
        else:
            s = s + dr.exp(enc.value((sym, c), "d", None))
    return 1.0 / s


def _original_outputs(enc: _Encoder, problem: Problem, xs: list[Any]) -> list[Any]:
    if problem.fixed_input:  # constant: an exact enclosure, rounded outward
        x = [lo for lo, _ in problem.inputs]
        return [enc.enclosed("z", lo, hi) for lo, hi in forward_enclosure(problem.layers, x, problem.hidden_activation)]
    return _forward_exact_params(enc, problem, xs, "z")


def _violation(enc: _Encoder, problem: Problem, condition: Condition | SoftmaxCondition,
               zp: list[Any], xs: list[Any]) -> Any:
    dr = enc.dr
    if isinstance(condition, SoftmaxCondition):
        # a logistic output (one unit) is the softmax of the logits (0, z): p_1 = sigma(z)
        t = condition.t + enc.margin
        zp = _logits(zp)
        ks = range(1, 2) if len(zp) == 2 else range(len(zp))  # two classes: |dp_0| = |dp_1|
        branches = []
        if condition.z_point is not None:
            pz = softmax_bounds([(v, v) for v in _logits(condition.z_point)])
            for k in ks:
                pk = _softmax(enc, zp, k)
                branches.append(pk >= float_down(pz[k][0] + t))  # p'_k - p_k > t  =>  p'_k > lo_k + t
                branches.append(pk <= float_up(pz[k][1] - t))  # p_k - p'_k > t  =>  p'_k < hi_k - t
        else:
            z = _logits(_original_outputs(enc, problem, xs))
            for k in ks:
                pk, qk = _softmax(enc, zp, k), _softmax(enc, z, k)
                branches.append(pk - qk >= float_down(t))
                branches.append(qk - pk >= float_down(t))
        return dr.Or(*branches)
    if not condition:
        return dr.Formula.FALSE()
    needs_z = any(a.z for br in condition for a in br)
    z = _original_outputs(enc, problem, xs) if needs_z else []

    def atom(a: Atom) -> Any:
        sym, k = enc.affine([(c, zp[i]) for i, c in a.zp] + [(d, z[i]) for i, d in a.z])
        # atoms over z alone (the pieces of the original output's range) are never strengthened
        return enc.compare(sym, k, a.op, a.const, enc.margin if a.zp else Fraction(0))

    return dr.Or(*[dr.And(*[atom(a) for a in br]) if br else dr.Formula.TRUE() for br in condition])


def _mid(box: Any, v: Any) -> Fraction:
    if isinstance(v, Fraction):
        return v
    iv = box[v]
    m = iv.mid()
    if not math.isfinite(m):  # an unbounded interval: any finite point of it
        lo, hi = iv.lb(), iv.ub()
        m = lo if math.isfinite(lo) else hi if math.isfinite(hi) else 0.0
    return Fraction(m)


def _approx_act(act: str, q: Fraction) -> Fraction:
    if act == "relu":
        return max(q, Fraction(0))
    if act == "identity":
        return q
    lo, hi = (tanh_bounds if act == "tanh" else sigmoid_bounds)(q, 64)
    return (lo + hi) / 2


def _rebuild(problem: Problem, x: Sequence[Fraction], targets: list[list[Fraction | None]]) -> list[ExactLayer]:
    """theta' that takes every perturbed neuron to its target pre-activation (clamped to what the box
    allows), layer by layer on the activations of the rebuilt network itself."""
    out: list[ExactLayer] = []
    h = list(x)
    n = len(problem.layers)
    for li, (w, b) in enumerate(problem.layers):
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        nw = [list(row) for row in w]
        nb = list(b)
        pre = []
        for j in range(len(b)):
            c = b[j] + sum((w[i][j] * h[i] for i in range(len(h))), Fraction(0))
            r = rb[j] + sum((rw[i][j] * abs(h[i]) for i in range(len(h))), Fraction(0))
            tgt = targets[li][j]
            t = min(max((tgt - c) / r, Fraction(-1)), Fraction(1)) if (r > 0 and tgt is not None) else Fraction(0)
            for i in range(len(h)):
                sgn = 1 if h[i] > 0 else -1 if h[i] < 0 else 0
                nw[i][j] = w[i][j] + t * rw[i][j] * sgn
            nb[j] = b[j] + t * rb[j]
            pre.append(c + t * r)
        out.append((nw, nb))
        if li < n - 1:
            h = [_approx_act(problem.hidden_activation, p) for p in pre]
    return out


def _holds(problem: Problem, condition: Condition | SoftmaxCondition, x: Sequence[Fraction],
           layers: Sequence[ExactLayer]) -> bool:
    """Does the condition hold, for sure, at the candidate? (exact enclosures of the outputs)"""
    act = problem.hidden_activation
    zp = forward_enclosure(layers, x, act)
    z = forward_enclosure(problem.layers, x, act)
    if isinstance(condition, SoftmaxCondition):
        pz = softmax_bounds(_logits(zp))
        p = softmax_bounds(_logits(z) if condition.z_point is None else [(v, v) for v in _logits(condition.z_point)])
        return any(pz[k][0] - p[k][1] > condition.t or p[k][0] - pz[k][1] > condition.t for k in range(len(pz)))

    def atom(a: Atom) -> bool:
        lo = hi = Fraction(0)
        for vals, coefs in ((zp, a.zp), (z, a.z)):
            for i, c in coefs:
                lo += min(c * vals[i][0], c * vals[i][1])
                hi += max(c * vals[i][0], c * vals[i][1])
        if not a.zp:  # a piece of z's range: z is only known to an enclosure, so "possible" is enough
            return {">": hi > a.const, ">=": hi >= a.const, "<": lo < a.const, "<=": lo <= a.const}[a.op]
        return {">": lo > a.const, ">=": lo >= a.const, "<": hi < a.const, "<=": hi <= a.const}[a.op]

    return any(all(atom(a) for a in br) for br in condition)


def _clamp_layers(problem: Problem, layers: Sequence[ExactLayer]) -> list[ExactLayer]:
    out: list[ExactLayer] = []
    for li, (w, b) in enumerate(layers):
        w0, b0 = problem.layers[li]
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        out.append(([[min(max(w[i][j], w0[i][j] - rw[i][j]), w0[i][j] + rw[i][j]) for j in range(len(b0))]
                     for i in range(len(w0))],
                    [min(max(b[j], b0[j] - rb[j]), b0[j] + rb[j]) for j in range(len(b0))]))
    return out


def _check(dr: Any, problem: Problem, condition: Condition | SoftmaxCondition, precision: float, mode: str,
           margin: Fraction) -> tuple[Sequence[Fraction], list[ExactLayer]] | None:
    """Encode and solve once: None if unsat, else the candidate (x, theta') from the delta-sat box."""
    enc = _Encoder(dr, margin)
    xs = _inputs(enc, problem)
    if mode == "direct":
        zp, params = _encode_direct(enc, problem, xs)
    else:
        zp, us_all = _encode_eliminated(enc, problem, xs)
    goal = _violation(enc, problem, condition, zp, xs)
    config = dr.Config()
    config.precision = precision
    config.use_polytope = True  # IBEX's LP-based contractor (CLP): much faster on these mostly linear formulas
    box = dr.CheckSatisfiability(dr.And(*enc.cons, goal) if enc.cons else goal, config)
    if box is None:
        return None
    x = tuple(min(max(_mid(box, v), lo), hi) for v, (lo, hi) in zip(xs, problem.inputs))
    if mode == "direct":
        layers = _clamp_layers(problem, [([[_mid(box, v) for v in row] for row in wv], [_mid(box, v) for v in bv])
                                         for wv, bv in params])
    else:
        targets = [[None if isinstance(u, Fraction) else _mid(box, u) for u in us] for us in us_all]
        layers = _rebuild(problem, x, targets)
    return x, layers


# retries when the midpoint of a delta-sat box does not satisfy the condition exactly: the
# condition strengthened by `margin` deltas, solved with delta scaled by `scale`
RETRIES = ((1.0, 4.0), (1 / 64, 4 / 64))  # (scale, margin)


def solve_encoded(problem: Problem, condition: Condition | SoftmaxCondition, precision: float,
                  mode: str) -> CheckOutcome:
    """Build and solve one encoding in this process (call it through run_with_deadline).

    UNSAT of the outward-relaxed formula is a proof. A delta-sat box gives a candidate; when it
    does not satisfy the condition exactly, the condition is strengthened by a few deltas and
    solved again, with a finer delta the second time (an UNSAT of a strengthened formula proves nothing)."""
    dr = _require()
    start = time.monotonic()
    found = _check(dr, problem, condition, precision, mode, Fraction(0))
    if found is None:
        return CheckOutcome(Answer.UNSAT, "dreal: unsat (delta-complete)", time_s=time.monotonic() - start)
    note = ""
    if not _holds(problem, condition, *found):
        note = "; its box midpoint misses the condition"
        for scale, margin in RETRIES:
            delta = precision * scale
            again = _check(dr, problem, condition, delta, mode, Fraction(precision) * Fraction(margin))
            if again is not None and _holds(problem, condition, *again):
                found, note = again, f" (again with delta = {delta:g}, condition strengthened by {margin * precision:g})"
                break
    x, layers = found
    return CheckOutcome(Answer.SAT, f"dreal: delta-sat (delta = {precision:g}){note}", tuple(x), tuple(layers),
                        approximate=True, time_s=time.monotonic() - start)


class DrealBackend:
    """dReal on the weight-eliminated encoding (default) or the direct one (``mode="direct"``).
    ``precision`` is dReal's delta."""

    name = "dreal"
    supports_softmax = True

    def __init__(self, precision: float | None = None, mode: str = "eliminated") -> None:
        if mode not in ("eliminated", "direct"):
            raise ValueError(f"mode must be 'eliminated' or 'direct'. Got {mode!r} instead.")
        p = DEFAULT_PRECISION if precision is None else float(precision)
        if not (p > 0 and math.isfinite(p)):
            raise ValueError(f"precision must be a positive number. Got {precision!r} instead.")
        self.precision, self.mode = p, mode

    def unsupported(self, problem: Problem) -> str | None:
        if problem.hidden_activation not in ("relu", "identity", "tanh", "logistic"):
            return f"dreal cannot express {problem.hidden_activation} hidden units"
        return None

    def solve(self, problem: Problem, condition: Condition | SoftmaxCondition, timeout: float | None) -> CheckOutcome:
        _require()
        start = time.monotonic()
        kind, payload = run_with_deadline(solve_encoded, (problem, condition, self.precision, self.mode), timeout)
        elapsed = time.monotonic() - start
        if kind == "ok":
            return payload  # type: ignore[no-any-return]
        if kind == "timeout":
            return CheckOutcome(Answer.UNKNOWN, f"timeout after {timeout:g} s", time_s=elapsed)
        return CheckOutcome(Answer.UNKNOWN, f"solver failed: {payload}", time_s=elapsed)
