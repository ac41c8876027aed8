"""check(...) -> Verdict: sound interval bounds first, then a float attack that only proposes,
then the solver; every witness is re-checked by an exact forward pass before it counts."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from .attack import attack
from .backends import get_backend
from .backends.base import Answer, Backend, Problem
from .bounds import propagate_intervals
from .boxes import InputRegion, ParameterBox
from .errors import PropertyError
from .exact import ExactLayer, Interval, dyadic_forward, exact_layers, forward_enclosure, to_fraction
from .loading import load_model
from .network import Network
from .properties import (
    GlobalRobustness,
    LocalRobustness,
    Metric,
    Property,
    deviation_enclosure,
    parse_delta,
    softmax_condition,
    uses_sigmoid_threshold,
    violation_condition,
)
from .result import Status, Verdict, Witness
from .schemes import Scheme, parse_scheme
from .threads import one_blas_thread

__all__ = ["check", "check_local", "check_global", "resolve_model", "resolve_box", "Query"]

MIN_PIECE = Fraction(1, 2**40)  # narrowest z-piece before a global confidence query gives up
TIE_SPLITS = 1024  # halvings of tied z-pieces per question (the engine's unknown before the deadline)


def resolve_model(model: Network | str | Path, *, trust: bool = False) -> tuple[Network, str | None]:
    if isinstance(model, Network):
        return model, None
    return load_model(model, trust=trust), str(model)


def resolve_box(net: Network, scheme: Scheme | ParameterBox | str) -> tuple[ParameterBox, str]:
    if isinstance(scheme, ParameterBox):
        if scheme.network.sizes != net.sizes:
            raise PropertyError(f"the parameter box is for a {scheme.network.sizes} network, not {net.sizes}.")
        return scheme, scheme.label or "box"
    sch = parse_scheme(scheme) if isinstance(scheme, str) else scheme
    key = (id(net), sch.spec)
    with _BOXES_LOCK:
        hit = _BOXES.get(key)
    if hit is None or hit[0] is not net:
        hit = (net, sch.box(net))
        with _BOXES_LOCK:
            _BOXES[key] = hit
            while len(_BOXES) > _BOXES_KEPT:
                del _BOXES[next(iter(_BOXES))]
    return hit[1], sch.spec


# the last few boxes built (a network and its box are immutable, so a repeated query on the same
# network object and scheme shares one box and its cached doubles); each entry keeps its network
_BOXES: dict[tuple[int, str], tuple[Network, ParameterBox]] = {}
_BOXES_KEPT = 4
_BOXES_LOCK = threading.Lock()


def _clamp(v: Fraction, lo: Fraction, hi: Fraction) -> Fraction:
    return min(max(v, lo), hi)


def _snap(v: Fraction, lo: Fraction, hi: Fraction) -> Fraction:
    """v clamped into [lo, hi], then moved to a double inside [lo, hi] next to it when there is
    one: a witness whose numbers are doubles is written to JSON exactly, and re-checked from
    there it is the same point (the deviation is computed after the move)."""
    v = min(max(v, lo), hi)
    if v.denominator & (v.denominator - 1) == 0 and abs(v) < 2**1000:  # dyadic: maybe a double already
        if Fraction(float(v)) == v:
            return v
    f = float(v)
    for cand in (f, math.nextafter(f, math.inf), math.nextafter(f, -math.inf)):
        q = Fraction(cand)
        if lo <= q <= hi and math.isfinite(cand):
            return q
    return v


class Query:
    """One property on one network and box: bounds, witness validation, and "is D > t?"."""

    def __init__(self, net: Network, box: ParameterBox, prop: Property, backend: Backend,
                 deadline: float | None) -> None:
        prop.check_network(net)
        self.net, self.box, self.prop, self.backend = net, box, prop, backend
        self.metric: Metric = prop.metric
        self.deadline = deadline
        self.layers: tuple[ExactLayer, ...] = tuple(exact_layers(net))
        self.inputs: tuple[Interval, ...] = tuple(prop.point_bounds())
        act = net.hidden_activation
        self.pb = propagate_intervals(self.layers, act, self.inputs, box)
        self.ob = propagate_intervals(self.layers, act, self.inputs, None)
        self.local = isinstance(prop, LocalRobustness)
        self.z_point: list[Fraction] | None = None
        if self.local and net.is_piecewise_linear:
            self.z_point = [lo for lo, _ in self.ob.output]
        self.problem = Problem(self.layers, act, box, self.inputs, self.pb, self.ob)
        self.pieces: list[Interval] | None = None
        self.solver_calls = 0
        self._z_cache: dict[tuple[Fraction, ...], list[Interval]] = {}

    @property
    def effective_backend(self) -> Backend:
        if self._softmax_confidence() and getattr(self.backend, "softmax", None) is not None:
            return self.backend.softmax  # type: ignore[attr-defined,no-any-return]  # auto: dReal has exp
        pick = getattr(self.backend, "pick", None)
        return pick(self.problem) if pick is not None else self.backend  # type: ignore[no-any-return]

    @property
    def solver_name(self) -> str:
        return self.effective_backend.name

    # -- time ---------------------------------------------------------------
    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        r = self.remaining()
        return r is not None and r <= 0

    # -- sound bound --------------------------------------------------------
    def upper_bound(self) -> Fraction:
        """A sound upper bound on max D from interval propagation."""
        return deviation_enclosure(self.net, self.metric, self.pb.output, self.ob.output)[1]

    # -- witnesses ------------------------------------------------------------
    def validate(self, x: Sequence[Fraction], layers: Sequence[ExactLayer], above: Fraction | None = None) -> Witness:
        """Clamp a candidate into the boxes and compute its deviation by an exact forward pass.

        The numbers are first moved to doubles inside the boxes next to them, so that the witness
        is written to JSON exactly; if that move would take the deviation to ``above`` or below
        (a candidate just over a threshold), the exact rational candidate is kept instead."""
        snapped = self._witness(x, layers, _snap)
        if above is None or snapped.deviation[0] > above:
            return snapped
        exact = self._witness(x, layers, _clamp)
        return exact if exact.deviation[0] > snapped.deviation[0] else snapped

    def _witness(self, x: Sequence[Fraction], layers: Sequence[ExactLayer],
                 fit: Callable[[Fraction, Fraction, Fraction], Fraction]) -> Witness:
        xs = tuple(fit(Fraction(v), lo, hi) for v, (lo, hi) in zip(x, self.inputs))
        if fit is _snap:
            fast = self._witness_of_doubles(xs, layers)
            if fast is not None:
                return fast
        clamped: list[ExactLayer] = []
        for li, (w, b) in enumerate(layers):
            w0, b0 = self.layers[li]
            rw, rb = self.box.weights[li], self.box.biases[li]
            cw = [[fit(Fraction(w[i][j]), w0[i][j] - rw[i][j], w0[i][j] + rw[i][j]) for j in range(len(b0))]
                  for i in range(len(w0))]
            cb = [fit(Fraction(b[j]), b0[j] - rb[j], b0[j] + rb[j]) for j in range(len(b0))]
            clamped.append((cw, cb))
        act = self.net.hidden_activation
        zp = forward_enclosure(clamped, xs, act)
        dev = deviation_enclosure(self.net, self.metric, zp, self._original_outputs(xs))
        return Witness(xs, tuple(clamped), dev)

    def _witness_of_doubles(self, xs: tuple[Fraction, ...], layers: Sequence[ExactLayer]) -> Witness | None:
        """``_witness(.., _snap)`` for parameters given as float64 arrays (the attack's and the
        engine's candidates); None when it does not apply (see _doubles_deviation)."""
        got = self._doubles_deviation(xs, layers)
        return None if got is None else _exact_witness(xs, *got)

    def _doubles_deviation(self, xs: tuple[Fraction, ...], layers: Sequence[ExactLayer]
                           ) -> tuple[Interval, list[tuple[np.ndarray, np.ndarray]]] | None:
        """(deviation, clipped parameters) in numpy: clipping a double into the box's inward
        doubles gives the double _snap gives, and the outputs are computed exactly in integers.
        None when the candidate is not all finite float64 arrays of the network's shapes, or the
        hidden units are smooth."""
        act = self.net.hidden_activation
        if act not in ("relu", "identity") or not all(
                isinstance(w, np.ndarray) and isinstance(b, np.ndarray) for w, b in layers):
            return None
        ws = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in layers]
        if len(ws) != len(self.layers) or not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in ws):
            return None
        bounds = self.box.inward_doubles()
        if any(w.shape != wl.shape or b.shape != bl.shape for (w, b), (wl, _, bl, _) in zip(ws, bounds)):
            return None
        clipped = [(np.clip(w, wl, wh), np.clip(b, bl, bh)) for (w, b), (wl, wh, bl, bh) in zip(ws, bounds)]
        zp = dyadic_forward(clipped, xs, act)  # type: ignore[arg-type]
        if zp is None:  # pragma: no cover - relu / identity with doubles always have a dyadic pass
            return None
        return deviation_enclosure(self.net, self.metric, [(v, v) for v in zp], self._original_outputs(xs)), clipped

    def _original_outputs(self, xs: tuple[Fraction, ...]) -> list[Interval]:
        """The unperturbed network's outputs at xs (exact; kept for the last few inputs)."""
        hit = self._z_cache.get(xs)
        if hit is None:
            hit = forward_enclosure(self.layers, xs, self.net.hidden_activation)
            if len(self._z_cache) > 32:
                self._z_cache.clear()
            self._z_cache[xs] = hit
        return hit

    def attack(self) -> Witness | None:
        """The best validated witness from a float64 attack (None if it found nothing)."""
        lo = np.array([float(a) for a, _ in self.inputs])
        hi = np.array([float(b) for _, b in self.inputs])
        best: Witness | None = None
        top: tuple[Interval, tuple[Fraction, ...], list[tuple[np.ndarray, np.ndarray]]] | None = None
        for cand in attack(self.net, self.box, self.metric, lo, hi):
            layers = list(zip(cand.weights, cand.biases))  # float64 arrays: validated in numpy and integers
            xs = tuple(_snap(to_fraction(v), a, b) for v, (a, b) in zip(cand.x, self.inputs))
            got = self._doubles_deviation(xs, layers)  # type: ignore[arg-type]
            if got is not None:  # exact Fractions only for the best one, at the end
                if top is None or got[0][0] > top[0][0]:
                    top = (got[0], xs, got[1])
                continue
            wit = self.validate(list(xs), layers)  # type: ignore[arg-type]
            if best is None or wit.deviation[0] > best.deviation[0]:
                best = wit
        if top is not None and (best is None or top[0][0] > best.deviation[0]):
            best = _exact_witness(top[1], top[0], top[2])
        return best

    def interval_witness(self) -> Witness | None:
        """One hidden layer at a fixed input: there every parameter occurs once, so the exact
        interval bound on each output is attained by choosing every parameter at one end of its
        interval, independently. The best of those networks (each output maximized and
        minimized), validated like any witness; None where this does not apply (deeper networks,
        input regions, smooth units, softmax confidence, the class metric)."""
        if not self.local or len(self.layers) != 2 or self.net.hidden_activation not in ("relu", "identity") or \
                self.metric is Metric.CLASS or self._softmax_confidence():
            return None
        x = [lo for lo, _ in self.inputs]
        (w1, b1), (w2, b2) = self.layers
        (e1, e2), f1 = self.box.weights, self.box.biases[0]
        relu = self.net.hidden_activation == "relu"
        (fw1, fb1), (fw2, fb2) = [(layer.weights, layer.biases) for layer in self.net.layers]
        fe1, fe2 = self.box.float_weights(0), self.box.float_weights(1)
        ff1, ff2 = self.box.float_biases(0), self.box.float_biases(1)
        sign = [(v > 0) - (v < 0) for v in x]
        sgn = np.array([float(v) for v in sign])
        xf = np.array([float(v) for v in x])
        rad_f = np.abs(xf) @ fe1 + ff1
        ends_f = np.stack([xf @ fw1 + fb1 + s * rad_f for s in (1.0, -1.0)])  # float64, to choose
        dead = np.zeros(len(fb1), dtype=bool)
        if relu:
            # off at both ends, with a margin far above float64's rounding: h = 0 whichever end, so
            # the ends tie exactly and need no exact look (exact_choice would pick 1 as well)
            scale = np.abs(xf) @ np.abs(fw1) + np.abs(fb1) + rad_f
            dead = ends_f.max(axis=0) < -1e-9 * scale
            ends_f = np.maximum(ends_f, 0.0)

        def exact_choice(j: int, k: int, direction: int) -> int:
            c = b1[j] + sum((w1[i][j] * x[i] for i in range(len(x))), Fraction(0))
            r = f1[j] + sum((e1[i][j] * abs(x[i]) for i in range(len(x))), Fraction(0))
            vals = []
            for s in (1, -1):
                h = max(c + s * r, Fraction(0)) if relu else c + s * r
                vals.append(direction * w2[j][k] * h + e2[j][k] * abs(h))
            return 1 if vals[0] >= vals[1] else -1

        xs = tuple(x)  # a point of the inputs (its bounds are [x, x])
        top: tuple[Interval, list[tuple[np.ndarray, np.ndarray]]] | None = None
        for k in range(len(b2)):
            for direction in (1, -1):  # maximize, then minimize, output k
                # unit j's best end s, and its weight to output k at the end t = sign(direction * h):
                # direction * (w + t e) * h = direction * w * h + e * |h|
                vals = direction * fw2[:, k] * ends_f + fe2[:, k] * np.abs(ends_f)
                s_end = np.where(vals[0] >= vals[1], 1.0, -1.0)
                close = (np.abs(vals[0] - vals[1]) <= 1e-9 * (np.abs(vals[0]) + np.abs(vals[1])) + 1e-300) & ~dead
                for j in np.nonzero(close)[0]:  # a near tie: decided exactly
                    s_end[j] = exact_choice(int(j), k, direction)
                h_end = np.where(s_end > 0, ends_f[0], ends_f[1])
                t_end = np.where(direction * h_end >= 0, 1.0, -1.0)
                w1p = fw1 + fe1 * sgn[:, None] * s_end[None, :]  # float64: validated on the fast path
                b1p = fb1 + ff1 * s_end
                w2p = fw2.copy()
                w2p[:, k] += t_end * fe2[:, k]
                b2p = fb2.copy()
                b2p[k] += direction * ff2[k]
                got = self._doubles_deviation(xs, [(w1p, b1p), (w2p, b2p)])  # type: ignore[list-item]
                if got is not None and (top is None or got[0][0] > top[0][0]):
                    top = got  # exact Fractions only for the best one, at the end
        return None if top is None else _exact_witness(xs, *top)

    def identity_witness(self) -> Witness:
        """theta' = theta: deviation 0, the trivial lower end of every certified interval."""
        x = [lo for lo, _ in self.inputs]
        if self.net.hidden_activation in ("relu", "identity"):  # theta as its float64 arrays: the fast path
            return self.validate(x, [(layer.weights, layer.biases) for layer in self.net.layers])  # type: ignore[misc]
        return self.validate(x, self.layers)

    # -- the decision "exists x, theta': D > t" -------------------------------
    def unsupported(self) -> str | None:
        if self._softmax_confidence() and not getattr(self.effective_backend, "supports_softmax", False):
            return ("softmax confidence needs exp, which z3's arithmetic cannot express; "
                    "use --metric logit or --metric class (or the dReal backend once installed)")
        return self.effective_backend.unsupported(self.problem)

    def _softmax_confidence(self) -> bool:
        return self.metric is Metric.CONFIDENCE and self.net.output_activation == "softmax"

    def exceeds(self, t: Fraction) -> tuple[Answer, Witness | None, str]:
        """SAT with a validated witness (D > t), UNSAT (proved D <= t), or UNKNOWN with a reason.
        An UNKNOWN may still carry a validated witness whose deviation is not above t."""
        why = self.unsupported()
        if why:
            return Answer.UNKNOWN, None, why
        if self._softmax_confidence() or (uses_sigmoid_threshold(self.net, self.metric) and self.z_point is None
                                          and getattr(self.effective_backend, "supports_softmax", False)):
            # a backend with exp (supports_softmax) takes softmax, and the sigmoid on both sides, natively
            return self._solve(softmax_condition(self.net, t, self.z_point), t)
        if uses_sigmoid_threshold(self.net, self.metric) and self.z_point is None:  # global, or smooth hidden units
            return self._exceeds_pieces(t)
        cond = violation_condition(self.net, self.metric, t, self.z_point)
        if cond is None:
            return Answer.UNSAT, None, "no output value can deviate by more than that"
        ans, wit, reason = self._solve(cond, t)
        if ans is Answer.UNKNOWN and wit is not None and uses_sigmoid_threshold(self.net, self.metric):
            # the candidate fell into the rounding gap of the sigmoid threshold: ask for a
            # violation beyond the gap, where every solution is a true one
            inner = violation_condition(self.net, self.metric, t, self.z_point, inner=True)
            if inner is not None:
                ans2, wit2, reason2 = self._solve(inner, t)
                if ans2 is Answer.SAT:
                    return ans2, wit2, reason2
                if ans2 is Answer.UNSAT:
                    reason = f"{reason}; no violation beyond the 1e-20 rounding gap of the threshold"
        return ans, wit, reason

    def _solve(self, cond: object, t: Fraction) -> tuple[Answer, Witness | None, str]:
        rem = self.remaining()
        if rem is not None and rem <= 0:
            return Answer.UNKNOWN, None, "timeout"
        self.solver_calls += 1
        out = self.backend.solve(self.problem, cond, rem)  # type: ignore[arg-type]
        if out.answer is Answer.UNSAT:
            return Answer.UNSAT, None, out.reason
        if out.answer is Answer.UNKNOWN:
            return Answer.UNKNOWN, None, out.reason
        assert out.input is not None and out.layers is not None
        wit = self.validate(out.input, out.layers, above=t)
        if wit.deviation[0] > t:
            return Answer.SAT, wit, out.reason
        note = " (the candidate was rebuilt from approximate solver values)" if out.approximate else ""
        return (Answer.UNKNOWN, wit,
                f"the solver's candidate did not validate: its exact deviation lies in "
                f"[{float(wit.deviation[0]):.17g}, {float(wit.deviation[1]):.17g}], not above {float(t):.17g}{note}")

    def initial_pieces(self) -> list[Interval]:
        """The range of the original output z over the region, cut into 4 pieces."""
        zl, zu = self.ob.output[0]
        n = 4 if zu > zl else 1
        return [(zl + (zu - zl) * i / n, zl + (zu - zl) * (i + 1) / n) for i in range(n)]

    def solve_piece(self, piece: Interval, t: Fraction) -> tuple[Answer, Witness | None, str]:
        """Is D > t possible with the original output z in ``piece``? (global logistic confidence)"""
        why = self.unsupported()
        if why:
            return Answer.UNKNOWN, None, why
        cond = violation_condition(self.net, self.metric, t, None, piece)
        if cond is None:
            return Answer.UNSAT, None, "no output value can deviate by more than that"
        return self._solve(cond, t)

    def _exceeds_pieces(self, t: Fraction) -> tuple[Answer, Witness | None, str]:
        """Global confidence with a logistic output: z = z(x) varies too. Split the range of z
        into pieces with rational thresholds; refine a piece where a candidate fails."""
        if self.pieces is None:
            self.pieces = self.initial_pieces()
        queue = list(self.pieces)
        done: list[Interval] = []
        best: Witness | None = None
        ties = 0
        try:
            while queue:
                piece = queue.pop()
                ans, wit, reason = self.solve_piece(piece, t)
                if ans is Answer.SAT:
                    queue.append(piece)
                    return ans, wit, reason
                if ans is Answer.UNSAT:
                    done.append(piece)
                    continue
                if wit is None:  # timeout or solver unknown
                    a, b = piece
                    rem = self.remaining()
                    if (getattr(self.effective_backend, "unknown_is_tie", False) and b - a >= MIN_PIECE
                            and (rem is None or rem > 0) and ties < TIE_SPLITS):
                        # before the deadline the engine's unknown is a near tie at the piece's threshold:
                        # each half has a threshold of its own; the other pieces go first
                        ties += 1
                        mid = (a + b) / 2
                        queue[:0] = [(a, mid), (mid, b)]
                        continue
                    queue.append(piece)
                    return ans, best, reason
                if best is None or wit.deviation[0] > best.deviation[0]:
                    best = wit
                a, b = piece
                if b - a < MIN_PIECE:
                    queue.append(piece)
                    return Answer.UNKNOWN, best, f"{reason}; the z-range piece is narrower than 2^-40"
                mid = (a + b) / 2
                queue += [(a, mid), (mid, b)]
            return Answer.UNSAT, best, f"unsat on all {len(done)} pieces of the output range"
        finally:
            self.pieces = done + queue


def _exact_witness(xs: tuple[Fraction, ...], dev: Interval, layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> Witness:
    """A Witness of float64 parameters, as the exact Fractions of the doubles."""
    exact = tuple(([[Fraction(v) for v in row] for row in w.tolist()], [Fraction(v) for v in b.tolist()])
                  for w, b in layers)
    return Witness(xs, exact, dev)


@one_blas_thread
def check(model: Network | str | Path, scheme: Scheme | ParameterBox | str, prop: Property,
          delta: float | Fraction | str | None, *, solver: str = "auto", timeout: float | None = None,
          precision: float | None = None) -> Verdict:
    """Decide the property "max D <= delta" over the parameter box of ``scheme``.

    robust only from a sound bound or an UNSAT answer; violated only with a witness re-checked
    exactly; unknown otherwise (timeout, solver unknown, unsupported activation, interrupt).
    ``precision`` is dReal's delta (``solver="dreal"`` only).
    """
    start = time.monotonic()
    net, path = resolve_model(model)
    box, spec = resolve_box(net, scheme)
    metric = prop.metric
    if metric is Metric.CLASS:
        if delta is not None:
            raise PropertyError("the class metric does not use --delta; leave it out.")
        d = Fraction(0)
    else:
        if delta is None:
            raise PropertyError("--delta is required (or use --quantify).")
        d = parse_delta(delta)
    backend = get_backend(solver, precision=precision)
    deadline = None if timeout is None else start + float(timeout)
    q = Query(net, box, prop, backend, deadline)
    base = dict(property=prop.kind, metric=metric.value, quant=spec, model=path, solver=q.solver_name,
                delta=(d if metric is not Metric.CLASS else None),
                input=getattr(prop, "input", None),
                region=(prop.region.bounds if isinstance(prop, GlobalRobustness) else None))

    def verdict(status: Status, reason: str, witness: Witness | None = None, **kw: object) -> Verdict:
        return Verdict(status, reason, witness=witness, time_s=time.monotonic() - start, **base, **kw)  # type: ignore[arg-type]

    try:
        ub = q.upper_bound()
        if ub <= d:
            return verdict(Status.ROBUST, f"interval bound: max deviation <= {float(ub):.6g} <= delta")
        wit = q.interval_witness()
        if wit is not None and wit.deviation[0] > d:
            return verdict(Status.VIOLATED, "a witness at the ends of the exact interval bound (one hidden layer), "
                                            "validated exactly", wit)
        wit = q.attack()
        if wit is not None and wit.deviation[0] > d:
            return verdict(Status.VIOLATED, "a witness found by search over the box vertices, validated exactly", wit)
        from .search import decide_by_optimization  # noqa: PLC0415 - search imports this module

        decided = decide_by_optimization(q, d, wit)  # global logistic confidence on the engine
        if decided is not None and (decided[0] is not Answer.UNKNOWN or q.expired()):
            ans, wit, reason = decided
        else:
            ans, wit, reason = q.exceeds(d)
            if decided is not None:
                reason = f"{decided[2]}; then {reason}"
        if ans is Answer.SAT:
            return verdict(Status.VIOLATED, f"{reason}; witness validated exactly", wit)
        if ans is Answer.UNSAT:
            return verdict(Status.ROBUST, f"proved: {reason} for deviation > delta")
        return verdict(Status.UNKNOWN, reason)
    except KeyboardInterrupt:
        return verdict(Status.UNKNOWN, "interrupted", interrupted=True)


def check_local(model: Network | str | Path, scheme: Scheme | ParameterBox | str, input: Sequence[float],
                delta: float | Fraction | str | None, *, metric: Metric | str = "confidence",
                solver: str = "auto", timeout: float | None = None) -> Verdict:
    """Local robustness at one input: max over theta' in B of D(x, theta') <= delta."""
    return check(model, scheme, LocalRobustness(input, metric), delta, solver=solver, timeout=timeout)


def check_global(model: Network | str | Path, scheme: Scheme | ParameterBox | str,
                 region: InputRegion | Sequence[Sequence[float]], delta: float | Fraction | str | None, *,
                 metric: Metric | str = "confidence", solver: str = "auto", timeout: float | None = None) -> Verdict:
    """Global robustness over an input box: max over x in X, theta' in B of D <= delta."""
    return check(model, scheme, GlobalRobustness(region, metric), delta, solver=solver, timeout=timeout)
