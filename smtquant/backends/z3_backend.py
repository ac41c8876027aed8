"""z3 backends: the direct SMT encoding (the reference study's formulation: one real variable per
perturbed parameter, ReLU as an if-then-else) and the weight-eliminated encoding (one variable per
neuron, linear arithmetic). The only module that imports z3.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from ..errors import BackendUnavailable
from ..exact import ExactLayer
from ..properties import Atom, Condition
from .base import Answer, CheckOutcome, Problem, run_with_deadline

__all__ = ["Z3DirectBackend", "Z3EliminatedBackend", "z3_available", "rat", "from_z3"]

INSTALL_HINT = "pip install z3-solver"


def z3_available() -> bool:
    try:
        import z3  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _z3() -> Any:
    try:
        import z3  # noqa: PLC0415
    except ImportError:
        raise BackendUnavailable(f"solver z3 is not installed; {INSTALL_HINT}") from None
    return z3


def rat(z3: Any, q: Fraction) -> Any:
    """An exact z3 rational from a Fraction (numerator/denominator; never a decimal string)."""
    return z3.RealVal(f"{q.numerator}/{q.denominator}") if q.denominator != 1 else z3.RealVal(str(q.numerator))


def from_z3(z3: Any, v: Any) -> tuple[Fraction, bool]:
    """A model value as an exact Fraction; (value, True) if it had to be approximated."""
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long()), False
    if z3.is_algebraic_value(v):
        a = v.approx(40)
        return Fraction(a.numerator_as_long(), a.denominator_as_long()), True
    raise ValueError(f"unexpected z3 model value {v}")


def _forward(z3: Any, layers: Sequence[tuple[list[list[Any]], list[Any]]], h: list[Any], hidden: str,
             stable: Sequence[Sequence[bool | None]], bounds: Any, constraints: list[Any]) -> list[Any]:
    for li, (w, b) in enumerate(layers):
        pre = []
        for j in range(len(b)):
            terms = [w[i][j] * h[i] for i in range(len(h))]
            pre.append(z3.Sum(terms + [b[j]]) if terms else b[j])
        if li == len(layers) - 1:
            return pre
        if hidden == "identity":
            h = pre
            continue
        h = []
        for j, p in enumerate(pre):
            s = stable[li][j]
            if s is True:
                h.append(p)
            elif s is False:
                h.append(z3.RealVal(0))
            else:
                lo, hi = bounds.pre[li][j]
                a = z3.Real(f"relu_{li}_{j}_{len(constraints)}")
                constraints.append(a == z3.If(p > 0, p, 0))
                constraints.append(a >= 0)
                constraints.append(a <= rat(z3, hi))
                h.append(a)
    return h


def _atom(z3: Any, atom: Atom, zp: list[Any], z: list[Any]) -> Any:
    expr = z3.Sum([rat(z3, c) * zp[k] for k, c in atom.zp] + [rat(z3, d) * z[k] for k, d in atom.z] + [z3.RealVal(0)])
    c = rat(z3, atom.const)
    return {">": expr > c, ">=": expr >= c, "<": expr < c, "<=": expr <= c}[atom.op]


def _relu(z3: Any, p: Any, s: bool | None, hi: Fraction, cons: list[Any]) -> Any:
    if s is True:
        return p
    if s is False:
        return z3.RealVal(0)
    a = z3.Real(f"relu_{len(cons)}")
    cons += [a == z3.If(p > 0, p, 0), a >= 0, a <= rat(z3, hi)]
    return a


def _abs(z3: Any, h: Any, lo: Fraction, hi: Fraction) -> Any:
    if lo >= 0:
        return h
    if hi <= 0:
        return -h
    return z3.If(h >= 0, h, -h)


def _encode_direct(z3: Any, problem: Problem, xs: list[Any], cons: list[Any]) -> tuple[list[Any], Any]:
    """One real variable per perturbed parameter (bilinear: nonlinear real arithmetic)."""
    pvars: list[tuple[list[list[Any]], list[Any]]] = []
    for li, (w, b) in enumerate(problem.layers):
        rw, rb = problem.box.weights[li], problem.box.biases[li]
        wv: list[list[Any]] = []
        for i, row in enumerate(w):
            vr = []
            for j, val in enumerate(row):
                if rw[i][j] == 0:
                    vr.append(rat(z3, val))
                else:
                    v = z3.Real(f"w_{li}_{i}_{j}")
                    cons += [v >= rat(z3, val - rw[i][j]), v <= rat(z3, val + rw[i][j])]
                    vr.append(v)
            wv.append(vr)
        bv = []
        for j, val in enumerate(b):
            if rb[j] == 0:
                bv.append(rat(z3, val))
            else:
                v = z3.Real(f"b_{li}_{j}")
                cons += [v >= rat(z3, val - rb[j]), v <= rat(z3, val + rb[j])]
                bv.append(v)
        pvars.append((wv, bv))
    zp = _forward(z3, pvars, list(xs), problem.hidden_activation, problem.perturbed_bounds.stable_relus(),
                  problem.perturbed_bounds, cons)

    def extract(val: Any) -> list[ExactLayer]:
        return [([[val(v) for v in row] for row in wv], [val(v) for v in bv]) for wv, bv in pvars]

    return zp, extract


def _encode_eliminated(z3: Any, problem: Problem, xs: list[Any], cons: list[Any]) -> tuple[list[Any], Any]:
    """Weights eliminated: every parameter occurs in exactly one neuron, so for activations h
    the pre-activation of neuron j ranges exactly over [c - r, c + r], c = W_j.h + b_j,
    r = sum_i eps_ij |h_i| + eps_bj. One variable per neuron; linear arithmetic (with |h| and
    ReLU as case splits). theta' is rebuilt from the solution, then validated by the caller."""
    h = list(xs)
    h_bounds = list(problem.inputs)
    stable = problem.perturbed_bounds.stable_relus()
    trace: list[tuple[list[Any], list[Any]]] = []  # per layer: (inputs h, pre-activations u)
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
            if not r_terms:
                us.append(c)
                continue
            r = z3.Sum(r_terms)
            u = z3.Real(f"u_{li}_{j}")
            lo, hi = problem.perturbed_bounds.pre[li][j]
            cons += [u >= c - r, u <= c + r, u >= rat(z3, lo), u <= rat(z3, hi)]
            us.append(u)
        trace.append((h, us))
        if li == n_layers - 1:
            break
        pre_b = problem.perturbed_bounds.pre[li]
        if problem.hidden_activation == "identity":
            h, h_bounds = us, list(pre_b)
        else:
            h = [_relu(z3, us[j], stable[li][j], pre_b[j][1], cons) for j in range(len(us))]
            h_bounds = [(max(lo, Fraction(0)), max(hi, Fraction(0))) for lo, hi in pre_b]

    def extract(val: Any) -> list[ExactLayer]:
        out: list[ExactLayer] = []
        for li, (w, b) in enumerate(problem.layers):
            rw, rb = problem.box.weights[li], problem.box.biases[li]
            hv = [val(t) for t in trace[li][0]]
            uv = [val(t) for t in trace[li][1]]
            nw = [list(row) for row in w]
            nb = list(b)
            for j in range(len(b)):
                c = b[j] + sum((w[i][j] * hv[i] for i in range(len(hv))), Fraction(0))
                r = rb[j] + sum((rw[i][j] * abs(hv[i]) for i in range(len(hv))), Fraction(0))
                t = min(max((uv[j] - c) / r, Fraction(-1)), Fraction(1)) if r > 0 else Fraction(0)
                for i in range(len(hv)):
                    sgn = 1 if hv[i] > 0 else -1 if hv[i] < 0 else 0
                    nw[i][j] = w[i][j] + t * rw[i][j] * sgn
                nb[j] = b[j] + t * rb[j]
            out.append((nw, nb))
        return out

    return us, extract


def solve_encoded(problem: Problem, condition: Condition, timeout: float | None, mode: str) -> CheckOutcome:
    """Build and solve one encoding in this process (call it through run_with_deadline)."""
    z3 = _z3()
    start = time.monotonic()
    s = z3.Solver()
    if timeout is not None:
        s.set("timeout", max(1, int(timeout * 1000)))
    cons: list[Any] = []
    xs: list[Any] = []
    for i, (lo, hi) in enumerate(problem.inputs):
        if lo == hi:
            xs.append(rat(z3, lo))
        else:
            v = z3.Real(f"x_{i}")
            cons += [v >= rat(z3, lo), v <= rat(z3, hi)]
            xs.append(v)
    encode = _encode_direct if mode == "direct" else _encode_eliminated
    zp, extract = encode(z3, problem, xs, cons)
    needs_z = any(a.z for br in condition for a in br)
    z: list[Any] = []
    if needs_z:
        orig = [([[rat(z3, v) for v in row] for row in w], [rat(z3, v) for v in b]) for w, b in problem.layers]
        z = _forward(z3, orig, list(xs), problem.hidden_activation, problem.original_bounds.stable_relus(),
                     problem.original_bounds, cons)
    s.add(*cons)
    s.add(z3.Or([z3.And([_atom(z3, a, zp, z) for a in br]) for br in condition]))
    r = s.check()
    elapsed = time.monotonic() - start
    if r == z3.unsat:
        return CheckOutcome(Answer.UNSAT, "z3: unsat", time_s=elapsed)
    if r != z3.sat:
        return CheckOutcome(Answer.UNKNOWN, f"z3: {s.reason_unknown()}", time_s=elapsed)
    m = s.model()
    approx = False

    def val(term: Any) -> Fraction:
        nonlocal approx
        q, a = from_z3(z3, m.eval(term, model_completion=True))
        approx = approx or a
        return q

    x_model = tuple(val(v) for v in xs)
    return CheckOutcome(Answer.SAT, "z3: sat", x_model, tuple(extract(val)), approx, elapsed)


class Z3DirectBackend:
    """z3 on the direct encoding (bilinear terms weight x activation: nonlinear real arithmetic)."""

    name = "z3-direct"
    mode = "direct"

    def unsupported(self, problem: Problem) -> str | None:
        if problem.hidden_activation not in ("relu", "identity"):
            return (f"z3 cannot express {problem.hidden_activation} hidden units (they need exp); "
                    "use --solver dreal once it is available")
        return None

    def solve(self, problem: Problem, condition: Condition, timeout: float | None) -> CheckOutcome:
        _z3()
        start = time.monotonic()
        limit = None if timeout is None else timeout + 0.5
        kind, payload = run_with_deadline(solve_encoded, (problem, condition, timeout, self.mode), limit)
        elapsed = time.monotonic() - start
        if kind == "ok":
            return payload  # type: ignore[no-any-return]
        if kind == "timeout":
            return CheckOutcome(Answer.UNKNOWN, f"timeout after {timeout:g} s", time_s=elapsed)
        return CheckOutcome(Answer.UNKNOWN, f"solver failed: {payload}", time_s=elapsed)


class Z3EliminatedBackend(Z3DirectBackend):
    """z3 on the weight-eliminated encoding: one variable per neuron, linear real arithmetic."""

    name = "z3"
    mode = "eliminated"
