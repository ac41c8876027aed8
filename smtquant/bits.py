"""The fewest bits: a bisection over bit widths, sound because the parameter boxes are nested.

For both bit families the box shrinks as bits grow, around the same centre θ:

* ``fixed:F`` has radius ε = 2^-(F+1) on every parameter, halved by each extra bit;
* ``int:B`` has radius s/2 with s = max|w| / (2^(B-1) - 1), which decreases in B.

So B(θ, ε_{b+1}) ⊂ B(θ, ε_b): a property proved robust at b bits holds at every b' > b, and a
witness found at b bits lies in the box of every b' < b. "Proved robust at b" is therefore
monotone in b and a bisection finds the smallest b at which it is proved, with the answer at
one bit less either violated (a validated witness) or unknown (reported as such: the true
minimum may then be lower than what could be proved).

The per-layer mode starts from the uniform answer and lowers one layer at a time (largest
layer first, by bisection, the other layers held), repeating until no single layer can be
lowered by one bit with a proof; each accepted assignment was itself proved robust. It is a
greedy descent: locally minimal, not necessarily the global optimum of the model size.

>>> from smtquant.network import Network, Layer
>>> import numpy as np
>>> net = Network((Layer(np.array([[1.0]]), np.array([0.0])), Layer(np.array([[1.0]]), np.array([0.0]))),
...               hidden_activation="identity", output_activation="identity")
>>> layer_widths(net, "fixed", [3, 3])   # |w| = 1 needs 2 integer bits (sign included) + 3
[5, 5]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import PropertyError, SchemeError
from .network import Network
from .properties import Metric, Property
from .result import Status, Verdict
from .schemes import MAX_BITS, parse_scheme
from .verify import check, resolve_model

__all__ = ["FAMILIES", "MIN_BITS", "fewest_bits", "layer_widths", "model_size_bits", "bits_scheme"]

FAMILIES = ("fixed", "int")
MIN_BITS = {"fixed": 0, "int": 2}
"""The smallest width of each family: fixed:0 (ε = 1/2) and int:2 (the levels -1, 0, 1)."""

Progress = Callable[[str, Verdict], None]


def bits_scheme(family: str, bits: int | Sequence[int]) -> str:
    """The scheme string for a uniform width or one width per layer.

    >>> bits_scheme("fixed", 4), bits_scheme("int", [8, 6])
    ('fixed:4', 'int:8/int:6')
    """
    if isinstance(bits, int):
        return f"{family}:{bits}"
    if len(set(bits)) == 1:
        return f"{family}:{bits[0]}"
    return "/".join(f"{family}:{b}" for b in bits)


def _integer_bits(values: Sequence[float], frac: int) -> int:
    """The integer bits (sign included) a signed fixed-point format with ``frac`` fractional bits
    needs for every one of ``values`` (already rounded to that grid): -2^(I-1) <= v <= 2^(I-1) - 2^-F."""
    need = 1
    ulp = Fraction(1, 2**frac)
    for v in values:
        q = Fraction(v)
        while not (-Fraction(2 ** (need - 1)) <= q <= Fraction(2 ** (need - 1)) - ulp):
            need += 1
    return need


def layer_widths(net: Network, family: str, bits: Sequence[int]) -> list[int]:
    """The stored width of one parameter of each layer: int:B stores B bits; fixed:F stores the
    integer bits its rounded layer needs (sign included) plus F."""
    if family == "int":
        return list(bits)
    q = parse_scheme(bits_scheme(family, bits)).quantize(net)
    out = []
    for layer, f in zip(q.layers, bits):
        values = [float(v) for v in layer.weights.ravel()] + [float(v) for v in layer.biases]
        out.append(_integer_bits(values, f) + f)
    return out


def model_size_bits(net: Network, family: str, bits: Sequence[int]) -> int:
    """Σ parameters × stored width: the model's size in bits under a per-layer assignment."""
    widths = layer_widths(net, family, bits)
    return sum((layer.weights.size + layer.biases.size) * w for layer, w in zip(net.layers, widths))


@dataclass
class _Search:
    net: Network
    prop: Property
    delta: Any
    family: str
    solver: str
    timeout: float | None
    on_check: Progress | None
    tried: list[dict[str, Any]] = field(default_factory=list)
    cache: dict[tuple[int, ...], Verdict] = field(default_factory=dict)

    def check(self, bits: Sequence[int]) -> Verdict:
        key = tuple(bits)
        if key in self.cache:
            return self.cache[key]
        spec = bits_scheme(self.family, list(bits))
        v = check(self.net, parse_scheme(spec), self.prop, self.delta, solver=self.solver, timeout=self.timeout)
        self.cache[key] = v
        self.tried.append({"quant": spec, "status": v.status.value, "time_s": round(v.time_s, 6)})
        if self.on_check is not None:
            self.on_check(spec, v)
        if v.interrupted:
            raise KeyboardInterrupt
        return v

    def lowest(self, assignment: list[int], layer: int | None, floor: int) -> tuple[int, Verdict | None]:
        """Bisect the smallest width (of ``layer``, or of all layers when None) proved robust, the
        current value being proved already. Returns it and the verdict one bit below (None at the floor)."""
        def at(b: int) -> list[int]:
            if layer is None:
                return [b] * len(assignment)
            a = list(assignment)
            a[layer] = b
            return a

        good = assignment[0] if layer is None else assignment[layer]
        bad, bad_v = floor - 1, None
        while good - bad > 1:
            mid = (good + bad) // 2
            v = self.check(at(mid))
            if v.status is Status.ROBUST:
                good = mid
            else:
                bad, bad_v = mid, v
        return good, (bad_v if bad >= floor else None)


def fewest_bits(model: Network | str | Path, prop: Property, delta: Any = None, *, family: str = "fixed",
                max_bits: int = 16, min_bits: int | None = None, per_layer: bool = False, solver: str = "auto",
                timeout: float | None = None, on_check: Progress | None = None) -> Verdict:
    """The fewest bits of ``family`` ("fixed": fractional bits of fixed:F; "int": B of int:B) for
    which ``prop`` is proved robust, searched in [min_bits, max_bits].

    Returns the Verdict at the answer (status robust, quant = the scheme at the answer) with
    ``extra`` holding ``bits``, ``family``, ``below`` (the answer one bit less: violated with its
    witness, or unknown) and ``tried`` (every check made). When even ``max_bits`` is not proved,
    the Verdict is the one at ``max_bits`` (violated or unknown) and ``bits`` is None. With
    ``per_layer``, ``extra["per_layer"]`` holds a proved per-layer assignment of smaller or
    equal model size and both sizes in bits. ``timeout`` applies to each check.
    """
    start = time.monotonic()
    if family not in FAMILIES:
        raise SchemeError(f"--family must be one of {', '.join(FAMILIES)}. Got {family!r} instead.")
    floor = MIN_BITS[family] if min_bits is None else min_bits
    if not isinstance(max_bits, int) or isinstance(max_bits, bool) or not MIN_BITS[family] <= max_bits <= MAX_BITS:
        raise PropertyError(f"--max-bits must be an integer between {MIN_BITS[family]} and {MAX_BITS} for the "
                            f"{family} family. Got {max_bits!r} instead.")
    if not isinstance(floor, int) or not MIN_BITS[family] <= floor <= max_bits:
        raise PropertyError(f"--min-bits must be an integer between {MIN_BITS[family]} and --max-bits ({max_bits}). "
                            f"Got {min_bits!r} instead.")
    net, _path = resolve_model(model)
    prop.check_network(net)
    if prop.metric is Metric.CLASS and delta is not None:
        raise PropertyError("the class metric does not use --delta; leave it out.")
    if prop.metric is not Metric.CLASS and delta is None:
        raise PropertyError("--delta is required: the fewest bits for which the deviation stays <= delta.")
    s = _Search(net, prop, delta, family, solver, timeout, on_check)
    n_layers = len(net.layers)

    def finish(v: Verdict, reason: str, **extra: Any) -> Verdict:
        info = {"bits": None, "family": family, "below": None, **extra, "tried": s.tried}
        return replace(v, reason=reason, time_s=time.monotonic() - start, extra={**v.extra, **info})

    top: Verdict | None = None
    try:
        top = s.check([max_bits] * n_layers)
        if top.status is not Status.ROBUST:
            return finish(top, f"not proved robust at any width up to {max_bits} bits: at "
                               f"{top.quant}, {top.status.value}: {top.reason}")
        best, below = s.lowest([max_bits] * n_layers, None, floor)
    except KeyboardInterrupt:
        proved = [k for k, v in s.cache.items() if v.status is Status.ROBUST]
        low = min(proved)[0] if proved else None
        v = top if top is not None else Verdict(Status.UNKNOWN, "interrupted", property=prop.kind,
                                                 metric=prop.metric.value)
        return finish(replace(v, status=Status.UNKNOWN, interrupted=True, witness=None, reason="interrupted"),
                      "interrupted" + (f"; robust proved at {low} bits so far, fewer not examined" if low is not None
                                       else ""), best_proved=low)
    answer = s.cache[tuple([best] * n_layers)]
    if below is None:
        reason = (f"proved robust at {answer.quant}, the smallest width searched "
                  f"({family} family, --min-bits {floor})")
    elif below.status is Status.VIOLATED:
        reason = f"proved robust at {answer.quant}; violated at {below.quant} (witness validated exactly)"
    else:
        reason = (f"proved robust at {answer.quant}; unknown at {below.quant} ({below.reason}), so the true "
                  "minimum may be lower")
    extra: dict[str, Any] = {"bits": best, "below": _below_json(below)}
    if per_layer:
        extra["per_layer"] = _per_layer(s, best, floor, n_layers)
    return finish(answer, reason, **extra)


def _below_json(v: Verdict | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"quant": v.quant, "status": v.status.value, "reason": v.reason,
            "witness": v.witness.to_json() if v.witness is not None and v.status is Status.VIOLATED else None}


def _per_layer(s: _Search, uniform: int, floor: int, n_layers: int) -> dict[str, Any]:
    """Greedy descent from the uniform answer, one layer at a time, largest layer first."""
    net = s.net
    assignment = [uniform] * n_layers
    order = sorted(range(n_layers), key=lambda li: -(net.layers[li].weights.size + net.layers[li].biases.size))
    complete = True
    try:
        for _ in range(4):
            changed = False
            for li in order:
                low, _ = s.lowest(assignment, li, floor)
                if low != assignment[li]:
                    assignment[li], changed = low, True
            if not changed:
                break
        else:
            complete = False
    except KeyboardInterrupt:
        complete = False
    spec = bits_scheme(s.family, assignment)
    return {
        "quant": spec,
        "bits": assignment,
        "size_bits": model_size_bits(net, s.family, assignment),
        "uniform_quant": bits_scheme(s.family, uniform),
        "uniform_size_bits": model_size_bits(net, s.family, [uniform] * n_layers),
        "locally_minimal": complete,
    }
