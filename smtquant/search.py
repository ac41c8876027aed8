"""quantify(...) -> Verdict with a CertifiedInterval [lower, upper] on max D: upper proved by
UNSAT (or a sound bound), lower witnessed by a validated (x, theta'); bisection on the threshold."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from .backends import get_backend
from .backends.base import Answer
from .boxes import ParameterBox
from .errors import PropertyError
from .network import Network
from .properties import GlobalRobustness, Metric, Property, parse_delta, uses_sigmoid_threshold
from .result import CertifiedInterval, Status, Verdict, Witness
from .schemes import Scheme
from .threads import one_blas_thread
from .verify import MIN_PIECE, Query, resolve_box, resolve_model

__all__ = ["quantify", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = Fraction(1, 10**6)


def _tolerance(value: float | Fraction | str) -> Fraction:
    try:
        tol = Fraction(str(value)) if isinstance(value, (str, float)) else Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise PropertyError(f"--tolerance must be a positive number. Got {value!r} instead.") from None
    if tol <= 0:
        raise PropertyError(f"--tolerance must be > 0. Got {value!r} instead.")
    return tol


@one_blas_thread
def quantify(model: Network | str | Path, scheme: Scheme | ParameterBox | str, prop: Property, *,
             delta: float | Fraction | str | None = None, tolerance: float | Fraction | str = DEFAULT_TOLERANCE,
             solver: str = "auto", timeout: float | None = None, precision: float | None = None) -> Verdict:
    """The certified interval [lower, upper] on max D, to ``tolerance`` or until ``timeout``
    (a stopped search still reports the interval it has).

    status: with ``delta``, robust if upper <= delta, violated if lower > delta (witness
    attached), else unknown. Without ``delta``, robust once the interval is certified to the
    tolerance (robust for every delta >= upper), unknown if the search stopped before.
    """
    start = time.monotonic()
    net, path = resolve_model(model)
    box, spec = resolve_box(net, scheme)
    if prop.metric is Metric.CLASS:
        raise PropertyError("--quantify needs a numeric metric (confidence or logit); the class metric is yes/no.")
    d = parse_delta(delta) if delta is not None else None
    tol = _tolerance(tolerance)
    backend = get_backend(solver, precision=precision)
    deadline = None if timeout is None else start + float(timeout)
    q = Query(net, box, prop, backend, deadline)
    base = dict(property=prop.kind, metric=prop.metric.value, quant=spec, model=path, solver=q.solver_name, delta=d,
                input=getattr(prop, "input", None),
                region=(prop.region.bounds if isinstance(prop, GlobalRobustness) else None))

    best: Witness | None = None
    upper: Fraction | None = None
    stop_reason = ""
    interrupted = False
    try:
        best = q.identity_witness()
        upper = q.upper_bound()
        wit = q.interval_witness()  # one hidden layer at a fixed input: attains the exact interval bound
        if wit is None or upper - wit.deviation[0] > tol:
            found = q.attack()
            if found is not None and (wit is None or found.deviation[0] > wit.deviation[0]):
                wit = found
        if wit is not None and wit.deviation[0] > best.deviation[0]:
            best = wit
        optimizer = getattr(q.effective_backend, "maximize", None)
        if optimizer is not None and not q.unsupported() and upper - best.deviation[0] > tol and (
                prop.metric is Metric.LOGIT or net.output_activation == "identity"
                or (q.local and uses_sigmoid_threshold(net, prop.metric))):
            best, upper, stop_reason = _quantify_by_optimization(q, optimizer, best, upper, tol)
        elif optimizer is not None and uses_sigmoid_threshold(net, prop.metric) and not q.local and \
                not q.unsupported():
            best, upper, stop_reason = _quantify_pieces_by_optimization(q, optimizer, best, upper, tol, d)
        elif uses_sigmoid_threshold(net, prop.metric) and not q.local and not q.unsupported() and \
                not getattr(q.effective_backend, "supports_softmax", False):  # dReal takes the sigmoid natively
            best, upper, stop_reason = _quantify_pieces(q, best, upper, tol, d)
        while upper - best.deviation[0] > tol and not stop_reason:
            if d is not None and (upper <= d or best.deviation[0] > d):
                break  # decided against delta; the interval need not shrink further
            lower = best.deviation[0]
            t = (lower + upper) / 2
            ans, wit, reason = q.exceeds(t)
            if wit is not None and wit.deviation[0] > best.deviation[0]:
                best = wit
            if ans is Answer.UNSAT:
                upper = t
            elif ans is Answer.UNKNOWN and (wit is None or wit.deviation[0] <= lower):
                stop_reason = reason
                break
    except KeyboardInterrupt:
        stop_reason, interrupted = "interrupted", True
    if (not stop_reason and d is not None and best is not None and upper is not None
            and best.deviation[0] <= d < upper):
        try:  # the interval converged around delta: decide delta itself
            ans, wit, reason = q.exceeds(d)
            if wit is not None and wit.deviation[0] > best.deviation[0]:
                best = wit
            if ans is Answer.UNSAT:
                upper = d
            elif ans is Answer.UNKNOWN:
                stop_reason = reason
        except KeyboardInterrupt:
            stop_reason, interrupted = "interrupted", True
    elapsed = time.monotonic() - start
    if best is None or upper is None:  # interrupted before the first bound
        return Verdict(Status.UNKNOWN, stop_reason or "stopped", time_s=elapsed, interrupted=interrupted, **base)  # type: ignore[arg-type]
    lower = best.deviation[0]
    upper = max(upper, lower)
    interval = CertifiedInterval(lower, upper)
    span = f"max deviation in [{float(lower):.9g}, {float(upper):.9g}]"
    if d is not None and upper <= d:
        status, reason = Status.ROBUST, f"{span}; upper <= delta (proved)"
    elif d is not None and lower > d:
        status, reason = Status.VIOLATED, f"{span}; lower > delta (witness validated exactly)"
    elif stop_reason and (interrupted or d is not None or upper - lower > tol):
        status, reason = Status.UNKNOWN, f"{span} (search stopped: {stop_reason})"
    elif d is not None:
        status, reason = Status.UNKNOWN, f"{span} straddles delta"
    else:
        status, reason = Status.ROBUST, f"{span}, certified to tolerance {float(tol):g}; robust for every delta >= upper"
    extra = {"solver_calls": q.solver_calls}
    return Verdict(status, reason, max_deviation=interval, witness=best, time_s=elapsed,
                   interrupted=interrupted, extra=extra, **base)  # type: ignore[arg-type]


def _quantify_pieces(q: Query, best: Witness, upper: Fraction, tol: Fraction,
                     d: Fraction | None) -> tuple[Witness, Fraction, str]:
    """Best-first search over pieces of the range of z (global confidence, logistic output).

    Each piece keeps a certified upper bound; the piece with the highest one is probed first at
    lower + tol (one UNSAT settles a piece that cannot beat the best witness), then bisected.
    A candidate that fails validation splits its piece (the threshold relaxation was too loose).
    Returns (best witness, certified upper bound, stop reason or "").
    """
    pieces: list[list[Any]] = [[a, b, upper, False] for a, b in q.initial_pieces()]  # a, b, certified upper, probed
    while True:
        lower = best.deviation[0]
        top = max(pieces, key=lambda p: p[2])
        if top[2] - lower <= tol or (d is not None and (top[2] <= d or lower > d)):
            return best, max(max(p[2] for p in pieces), lower), ""
        a, b, u, probed = top
        t = (lower + u) / 2 if probed else min(lower + tol, (lower + u) / 2)
        ans, wit, reason = q.solve_piece((a, b), t)
        if wit is not None and wit.deviation[0] > best.deviation[0]:
            best = wit
        if ans is Answer.UNSAT:
            top[2] = t
        elif ans is Answer.SAT:
            top[3] = True
        elif wit is None:
            return best, max(max(p[2] for p in pieces), best.deviation[0]), reason
        elif b - a < MIN_PIECE:
            return best, max(max(p[2] for p in pieces), best.deviation[0]), f"{reason}; piece narrower than 2^-40"
        else:
            mid = (a + b) / 2
            pieces.remove(top)
            pieces += [[a, mid, u, probed], [mid, b, u, probed]]


def _quantify_by_optimization(q: Query, optimizer, best: Witness, upper: Fraction,
                              tol: Fraction) -> tuple[Witness, Fraction, str]:
    """Certified max of each output's deviation by direct optimization (the engine), instead of
    bisection on the threshold. logit: max of +-(z'_k - z_k); local logistic confidence: max and
    min of z', mapped through the sigmoid (slope <= 1/4, so z-tolerance 4 tol suffices)."""
    sigmoid = uses_sigmoid_threshold(q.net, q.metric)
    ztol = 4 * tol if sigmoid else tol
    uppers: list[Fraction] = []

    def objective(k: int, s: Fraction) -> tuple[dict[int, Fraction], dict[int, Fraction], Fraction]:
        if sigmoid:
            return {k: s}, ({} if q.local else {k: -s}), Fraction(0)  # optimize z' itself
        if q.local:
            assert q.z_point is not None
            return {k: s}, {}, -s * q.z_point[k]
        return {k: s}, {k: -s}, Fraction(0)

    directions = [(k, s) for k in range(q.net.n_outputs) for s in (Fraction(1), Fraction(-1))]
    if not sigmoid:  # the most promising direction first: its witness then closes the others sooner
        directions.sort(key=lambda d: -(_direction_value(q, best, *objective(*d)) or Fraction(0)))
    stopped = ""
    found: list[Witness] = [best]

    def observe(x, layers, zpv, zv) -> Fraction | None:
        """Every point a search replays: its deviation (any output, either sign) may beat the best
        witness; then it is validated here and becomes the floor below which every direction's
        search may close nodes."""
        dev = max(abs(a - b) for a, b in zip(zpv, zv))
        if dev > found[0].deviation[0]:
            wit = q.validate(x, layers)
            if wit.deviation[0] > found[0].deviation[0]:
                found[0] = wit
        return found[0].deviation[0]

    for n_done, (k, s) in enumerate(directions):
        zp, z, const = objective(k, s)
        rem = q.remaining()
        if rem is not None and rem <= 0:
            return best, upper, "timeout"
        # share the time left between the directions still to do, so that a search that
        # stops early still leaves a certified (if wider) bound for every direction; the first
        # (most promising) one gets 85%, as the others usually close quickly below its witness
        left = len(directions) - n_done
        share = None if rem is None else (rem if left == 1 else rem * 0.85 if n_done == 0 and not sigmoid
                                          else rem / left)
        q.solver_calls += 1
        low = _direction_value(q, best, zp, z, const)
        if not sigmoid and low is not None:
            # each direction's objective is a deviation: nothing below the best one found so far
            # (in any direction) can raise the maximum, so the search may close it
            low = max(low, best.deviation[0])
        found[0] = best
        res = optimizer(q.problem, zp, z, const, ztol, low, share, observe=None if sigmoid else observe)
        if found[0].deviation[0] > best.deviation[0]:
            best = found[0]
        if res.best is not None:
            x, layers = res.best[1]
            wit = q.validate(x, layers)
            if wit.deviation[0] > best.deviation[0]:
                best = wit
        if res.upper is None:
            return best, upper, res.reason
        if not res.complete:
            stopped = res.reason
        uppers.append(res.upper)
    if sigmoid:
        from .exact import sigmoid_bounds  # noqa: PLC0415

        assert q.z_point is not None
        z0 = q.z_point[0]
        zmax, zmin = uppers[0], -uppers[1]
        up = max(sigmoid_bounds(zmax)[1] - sigmoid_bounds(z0)[0], sigmoid_bounds(z0)[1] - sigmoid_bounds(zmin)[0])
    else:
        up = max(uppers)
    return best, min(upper, max(up, best.deviation[0])), stopped


def _direction_value(q: Query, wit: Witness, zp: dict[int, Fraction], z: dict[int, Fraction],
                     const: Fraction) -> Fraction | None:
    """The objective sum(zp[k] z'_k) + sum(z[k] z_k) + const at a validated witness: a value the
    optimizer need not beat by more than the tolerance (piecewise-linear networks only)."""
    from .exact import dyadic_forward  # noqa: PLC0415

    act = q.net.hidden_activation
    zpv = dyadic_forward(wit.layers, wit.input, act)
    zv = dyadic_forward(q.layers, wit.input, act)
    if zpv is None or zv is None:
        return None
    return const + sum((c * zpv[k] for k, c in zp.items()), Fraction(0)) + sum((c * zv[k] for k, c in z.items()),
                                                                              Fraction(0))


def _sigmoid_gain_bound(delta: Fraction, a: Fraction, b: Fraction, up: bool) -> Fraction:
    """An upper bound on max over z in [a, b] of sigma(z + delta) - sigma(z) (up) or
    sigma(z) - sigma(z - delta) (down), for delta >= 0. Each is unimodal in z with its peak at
    -delta/2 (up) or delta/2 (down), so the maximum is at that point clamped to [a, b]."""
    from .exact import sigmoid_bounds  # noqa: PLC0415

    if delta <= 0:
        return Fraction(0)
    if up:
        z = min(max(-delta / 2, a), b)
        return sigmoid_bounds(z + delta)[1] - sigmoid_bounds(z)[0]
    z = min(max(delta / 2, a), b)
    return sigmoid_bounds(z)[1] - sigmoid_bounds(z - delta)[0]


# the tolerance of check's search by optimization: it stops once its bound or its witness decides
# delta, so the tolerance only ends a search whose interval has closed around delta itself
_DECIDE_TOL = Fraction(1, 2**60)

# Before that search, check looks for a violation through the threshold route (one condition per
# piece, ``Query.exceeds``) for this share of its time (LOOK_S seconds without a deadline). The
# threshold route stops at its first violating point, often at its first nodes, where the search
# needs its pieces bounded first (session 13: moons_relu_8x8 fixed:6, a witness in 0.8 s against
# 5.6 s); the search proves a bound faster. 0 turns the look off.
LOOK_SHARE = 0.1
LOOK_S = 6.0


def _threshold_look(q: Query, d: Fraction) -> tuple[Answer, Witness | None, str]:
    """``q.exceeds(d)`` stopped after LOOK_SHARE of the time left (its answer, whatever it is, is
    sound: a witness validated exactly, or a proof)."""
    saved = q.deadline
    rem = q.remaining()
    q.deadline = time.monotonic() + (LOOK_S if rem is None else LOOK_SHARE * max(rem, 0.0))
    try:
        return q.exceeds(d)
    finally:
        q.deadline = saved


def decide_by_optimization(q: Query, d: Fraction, best: Witness | None) -> tuple[Answer, Witness | None, str] | None:
    """check's route for global confidence with a logistic output where the backend optimizes
    (the engine): a short look through the threshold route (``LOOK_SHARE``), then quantify's
    best-first search over pieces of the original output's range, stopped as soon as its bound is
    at most ``d`` or its witness above it. ``best``: a validated witness to start from (or None).
    None where the route does not apply."""
    optimizer = getattr(q.effective_backend, "maximize", None)
    if optimizer is None or q.local or not uses_sigmoid_threshold(q.net, q.metric) or q.unsupported():
        return None
    if LOOK_SHARE > 0:
        ans, wit, reason = _threshold_look(q, d)
        if ans is not Answer.UNKNOWN:
            return ans, wit, reason
        if wit is not None and (best is None or wit.deviation[0] > best.deviation[0]):
            best = wit
    start = best if best is not None else q.identity_witness()
    found, upper, stop = _quantify_pieces_by_optimization(q, optimizer, start, q.upper_bound(), _DECIDE_TOL, d)
    if found.deviation[0] > d:
        return Answer.SAT, found, "engine: a witness of the search over pieces of the output range"
    if upper <= d:
        return Answer.UNSAT, None, (f"engine: D <= {float(upper):.9g} on every piece of the output range "
                                    f"(best-first over {len(q.initial_pieces())} pieces and their halves)")
    return Answer.UNKNOWN, found, (f"max deviation in [{float(found.deviation[0]):.9g}, {float(upper):.9g}] "
                                   f"(search stopped: {stop or 'converged around delta'})")


def _quantify_pieces_by_optimization(q: Query, optimizer, best: Witness, upper: Fraction, tol: Fraction,
                                     d: Fraction | None) -> tuple[Witness, Fraction, str]:
    """Global confidence with a logistic output, by optimization. On a piece a <= z <= b of the
    original output's range, the engine certifies the largest logit gaps z' - z and z - z'; as
    sigma(z + gap) - sigma(z) grows with the gap, its maximum over [a, b] bounds D on the piece.
    The piece with the highest bound is evaluated, or split once evaluated, until that bound is
    within ``tol`` of the best witness."""
    pieces: list[list[Any]] = [[a, b, upper, False] for a, b in q.initial_pieces()]  # a, b, bound on D, evaluated
    while pieces:
        lower = best.deviation[0]
        top = max(pieces, key=lambda p: p[2])
        if top[2] - lower <= tol or (d is not None and (top[2] <= d or lower > d)):
            break
        a, b, u, evaluated = top
        if evaluated:
            if b - a < MIN_PIECE:
                return best, max(p[2] for p in pieces), "a piece of the output range narrower than 2^-40"
            mid = (a + b) / 2
            pieces.remove(top)
            pieces += [[a, mid, u, False], [mid, b, u, False]]
            continue
        gaps: list[Fraction | None] = []
        for s in (Fraction(1), Fraction(-1)):
            rem = q.remaining()
            if rem is not None and rem <= 0:
                return best, max(p[2] for p in pieces), "timeout"
            q.solver_calls += 1
            # coarse first: a piece far above the best witness only needs a rough bound to be split
            gap_tol = max(tol, (u - lower) / 2)
            res = optimizer(q.problem, {0: s}, {0: -s}, Fraction(0), gap_tol, None, rem, (0, a, b))
            if res.best is not None:
                wit = q.validate(*res.best[1])
                if wit.deviation[0] > best.deviation[0]:
                    best = wit
            if not res.complete:
                return best, max(p[2] for p in pieces), res.reason
            gaps.append(res.upper)
        if gaps[0] is None and gaps[1] is None:  # no input in the region has z in this piece
            pieces.remove(top)
            continue
        bound = max(_sigmoid_gain_bound(gaps[0] or Fraction(0), a, b, True),
                    _sigmoid_gain_bound(gaps[1] or Fraction(0), a, b, False))
        top[2], top[3] = min(u, bound), True
    top_bound = max((p[2] for p in pieces), default=best.deviation[0])
    return best, max(top_bound, best.deviation[0]), ""
