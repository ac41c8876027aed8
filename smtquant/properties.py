"""Properties (local / global robustness), output metrics, the exact deviation of a witness,
and the violation condition "D > t" as linear atoms over the outputs z' (perturbed) and z.

>>> Metric("class") is Metric.CLASS
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from .boxes import InputRegion
from .errors import PropertyError
from .exact import Interval, logit_lower, logit_upper, sigmoid_bounds, softmax_bounds, to_fraction
from .network import Network

__all__ = [
    "Metric",
    "LocalRobustness",
    "GlobalRobustness",
    "Property",
    "Atom",
    "Condition",
    "deviation_enclosure",
    "violation_condition",
    "parse_delta",
    "uses_sigmoid_threshold",
    "SoftmaxCondition",
    "softmax_condition",
]


class Metric(str, Enum):
    """How the deviation between the original and the perturbed network is measured."""

    CONFIDENCE = "confidence"  # max_k |p'_k - p_k| (identity output: |z' - z|)
    LOGIT = "logit"  # max_k |z'_k - z_k|
    CLASS = "class"  # 1 if the predicted class changes, else 0 (delta unused)

    def __str__(self) -> str:
        return self.value


def _coerce_metric(m: Metric | str) -> Metric:
    try:
        return Metric(m)
    except ValueError:
        raise PropertyError(f"metric must be one of confidence, logit, class. Got {m!r} instead.") from None


@dataclass(frozen=True, eq=False)
class LocalRobustness:
    """max over theta' in B of D(x, theta') <= delta, at one input x (exact Fractions)."""

    input: tuple[Fraction, ...]
    metric: Metric = Metric.CONFIDENCE

    kind = "local"

    def __init__(self, input: Sequence[float | Fraction], metric: Metric | str = Metric.CONFIDENCE) -> None:
        vals = []
        for i, v in enumerate(input):
            if not isinstance(v, Fraction):
                try:
                    f = float(v)
                except (TypeError, ValueError):
                    raise PropertyError(f"input[{i}] must be a number. Got {v!r} instead.") from None
                if not math.isfinite(f):
                    raise PropertyError(f"input[{i}] = {v!r} is not finite.")
                v = to_fraction(f)
            vals.append(v)
        if not vals:
            raise PropertyError("input must have at least one value.")
        object.__setattr__(self, "input", tuple(vals))
        object.__setattr__(self, "metric", _coerce_metric(metric))

    def check_network(self, net: Network) -> None:
        if len(self.input) != net.n_inputs:
            raise PropertyError(f"input has {len(self.input)} values; the model expects {net.n_inputs}.")
        _check_metric(net, self.metric)

    def point_bounds(self) -> list[Interval]:
        return [(v, v) for v in self.input]


@dataclass(frozen=True, eq=False)
class GlobalRobustness:
    """max over x in X and theta' in B of D(x, theta') <= delta, over an input box X."""

    region: InputRegion
    metric: Metric = Metric.CONFIDENCE

    kind = "global"

    def __init__(self, region: InputRegion | Sequence[Sequence[float]], metric: Metric | str = Metric.CONFIDENCE) -> None:
        if not isinstance(region, InputRegion):
            region = InputRegion.from_pairs(region)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "metric", _coerce_metric(metric))

    def check_network(self, net: Network) -> None:
        if self.region.dim != net.n_inputs:
            raise PropertyError(f"region has {self.region.dim} dimensions; the model expects {net.n_inputs}.")
        _check_metric(net, self.metric)

    def point_bounds(self) -> list[Interval]:
        return list(self.region.bounds)


Property = LocalRobustness | GlobalRobustness


def _check_metric(net: Network, metric: Metric) -> None:
    if metric is Metric.CLASS and net.output_activation == "identity":
        raise PropertyError("the class metric needs a classifier (logistic or softmax output); this model is a regressor.")


def parse_delta(value: object) -> Fraction:
    """delta > 0, finite; decimal strings are taken exactly ("0.01" is 1/100)."""
    try:
        if isinstance(value, str):
            d = Fraction(value.strip())
        elif isinstance(value, Fraction):
            d = value
        else:
            f = float(value)  # type: ignore[arg-type]
            if not math.isfinite(f):
                raise ValueError(value)
            d = to_fraction(f)
    except (ValueError, TypeError, ZeroDivisionError):
        raise PropertyError(f"--delta must be a positive number. Got {value!r} instead.") from None
    if d <= 0:
        raise PropertyError(f"--delta must be > 0. Got {value!r} instead.")
    return d


# --------------------------------------------------------------------------- deviation

def _abs_diff(a: Interval, b: Interval) -> Interval:
    lo, hi = a[0] - b[1], a[1] - b[0]
    if lo >= 0:
        return lo, hi
    if hi <= 0:
        return -hi, -lo
    return Fraction(0), max(-lo, hi)


def _class_of(net: Network, z: Sequence[Interval]) -> int | None:
    """The predicted class if the enclosure determines it (numpy argmax tie-breaking), else None."""
    if net.output_activation == "logistic":
        lo, hi = z[0]
        if lo > 0:
            return 1
        if hi <= 0:
            return 0
        return None
    for c in range(len(z)):
        if all((z[k][1] < z[c][0]) if k < c else (z[k][1] <= z[c][0]) for k in range(len(z)) if k != c):
            return c
    return None


def deviation_enclosure(net: Network, metric: Metric, zp: Sequence[Interval], z: Sequence[Interval]) -> Interval:
    """An enclosure of D for perturbed outputs in ``zp`` and original outputs in ``z``
    (treated independently, so it is sound for any coupling between them)."""
    if metric is Metric.CLASS:
        cp, c = _class_of(net, zp), _class_of(net, z)
        if cp is not None and c is not None:
            return (Fraction(0), Fraction(0)) if cp == c else (Fraction(1), Fraction(1))
        return Fraction(0), Fraction(1)
    if metric is Metric.LOGIT or net.output_activation == "identity":
        encl = [_abs_diff(a, b) for a, b in zip(zp, z)]
    elif net.output_activation == "logistic":
        sp = (sigmoid_bounds(zp[0][0])[0], sigmoid_bounds(zp[0][1])[1])
        s = (sigmoid_bounds(z[0][0])[0], sigmoid_bounds(z[0][1])[1])
        encl = [_abs_diff(sp, s)]
    else:
        encl = [_abs_diff(a, b) for a, b in zip(softmax_bounds(zp), softmax_bounds(z))]
    return max(e[0] for e in encl), max(e[1] for e in encl)


# --------------------------------------------------------------------------- conditions

@dataclass(frozen=True)
class Atom:
    """sum(c * z'_k for k, c in zp) + sum(d * z_k for k, d in z)  OP  const, OP in > >= < <=."""

    zp: tuple[tuple[int, Fraction], ...]
    z: tuple[tuple[int, Fraction], ...]
    op: str
    const: Fraction


Condition = tuple[tuple[Atom, ...], ...]  # a disjunction of conjunctions of atoms

_ONE, _MINUS = Fraction(1), Fraction(-1)


def uses_sigmoid_threshold(net: Network, metric: Metric) -> bool:
    """True when "D > t" is a sigmoid-level condition (logistic output, confidence metric)."""
    return metric is Metric.CONFIDENCE and net.output_activation == "logistic"


def violation_condition(
    net: Network, metric: Metric, t: Fraction, z_point: Sequence[Fraction] | None, z_piece: Interval | None = None,
    *, inner: bool = False,
) -> Condition | None:
    """A condition over (z', z) that holds whenever D > t (a sound over-approximation).

    ``z_point``: the exact original outputs (local); ``None`` for global, where z is symbolic and
    ``z_piece`` = [a, b] restricts z_0 (logistic confidence only). With ``inner=True`` the
    irrational sigmoid thresholds are rounded the other way: every solution is then a true
    violation (used to confirm a candidate that fell into the rounding gap). Returns None when
    the condition is unsatisfiable outright (e.g. sigma(z) + t >= 1 on both sides).
    Softmax confidence is not linear; callers must not ask for it.
    """
    n = net.n_outputs
    branches: list[tuple[Atom, ...]] = []
    if metric is Metric.CLASS:
        return _class_condition(net, z_point)
    if metric is Metric.LOGIT or net.output_activation == "identity":
        for k in range(n):
            if z_point is not None:
                branches.append((Atom(((k, _ONE),), (), ">", z_point[k] + t),))
                branches.append((Atom(((k, _ONE),), (), "<", z_point[k] - t),))
            else:
                branches.append((Atom(((k, _ONE),), ((k, _MINUS),), ">", t),))
                branches.append((Atom(((k, _ONE),), ((k, _MINUS),), "<", -t),))
        return tuple(branches)
    if net.output_activation != "logistic":
        raise ValueError("softmax confidence has no linear violation condition")
    # logistic confidence: sigma(z') > sigma(z) + t  or  sigma(z') < sigma(z) - t, z in [a, b]
    if z_point is not None:
        a = b = z_point[0]
        guard: tuple[Atom, ...] = ()
    else:
        assert z_piece is not None
        a, b = z_piece
        guard = (Atom((), ((0, _ONE),), ">=", a), Atom((), ((0, _ONE),), "<=", b))
    if not inner:
        p_up = sigmoid_bounds(a)[0] + t  # sigma(z) + t >= p_up on the piece
        if p_up < 1:
            branches.append(guard + (Atom(((0, _ONE),), (), ">", logit_lower(p_up)),))
        p_dn = sigmoid_bounds(b)[1] - t  # sigma(z) - t <= p_dn on the piece
        if p_dn > 0:
            branches.append(guard + (Atom(((0, _ONE),), (), "<", logit_upper(p_dn)),))
    else:
        p_up = sigmoid_bounds(b)[1] + t  # sigma(z) + t <= p_up on the piece
        if p_up < 1:
            branches.append(guard + (Atom(((0, _ONE),), (), ">", logit_upper(p_up)),))
        p_dn = sigmoid_bounds(a)[0] - t  # sigma(z) - t >= p_dn on the piece
        if p_dn > 0:
            branches.append(guard + (Atom(((0, _ONE),), (), "<", logit_lower(p_dn)),))
    return tuple(branches) if branches else None


def _class_condition(net: Network, z_point: Sequence[Fraction] | None) -> Condition:
    n = net.n_outputs
    if net.output_activation == "logistic":
        if z_point is not None:
            if z_point[0] > 0:
                return ((Atom(((0, _ONE),), (), "<=", Fraction(0)),),)
            return ((Atom(((0, _ONE),), (), ">", Fraction(0)),),)
        return (
            (Atom((), ((0, _ONE),), ">", Fraction(0)), Atom(((0, _ONE),), (), "<=", Fraction(0))),
            (Atom((), ((0, _ONE),), "<=", Fraction(0)), Atom(((0, _ONE),), (), ">", Fraction(0))),
        )
    zero = Fraction(0)
    branches: list[tuple[Atom, ...]] = []
    classes = range(n)
    if z_point is not None:
        c = _class_of(net, [(v, v) for v in z_point])
        assert c is not None
        classes = range(c, c + 1)
    for c in classes:
        guard: tuple[Atom, ...] = ()
        if z_point is None:  # argmax z(x) == c with numpy's first-index tie-breaking
            guard = tuple(
                Atom((), ((k, _ONE), (c, _MINUS)), "<" if k < c else "<=", zero) for k in range(n) if k != c
            )
        for k in range(n):
            if k != c:  # argmax z'(x) != c because z'_k beats z'_c
                branches.append(guard + (Atom(((k, _ONE), (c, _MINUS)), (), ">=" if k < c else ">", zero),))
    return tuple(branches)


# --------------------------------------------------------------------------- softmax confidence

@dataclass(frozen=True)
class SoftmaxCondition:
    """exists k: |softmax(z')_k - softmax(z)_k| > t. Not linear in the outputs: only backends with
    ``supports_softmax = True`` (they have exp) accept it. A logistic output (one unit) is the
    softmax of the logits (0, z), i.e. |sigma(z') - sigma(z)| > t. ``z_point``: the exact original
    outputs (local, piecewise-linear network); None when z is symbolic (global, or smooth hidden units)."""

    t: Fraction
    z_point: tuple[Fraction, ...] | None


def softmax_condition(net: Network, t: Fraction, z_point: Sequence[Fraction] | None) -> SoftmaxCondition:
    """The violation condition "D > t" of the confidence metric on a softmax (or logistic) output."""
    if net.output_activation not in ("softmax", "logistic"):
        raise ValueError("softmax_condition is for softmax and logistic outputs; use violation_condition")
    return SoftmaxCondition(Fraction(t), None if z_point is None else tuple(Fraction(v) for v in z_point))
