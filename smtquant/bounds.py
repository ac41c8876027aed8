"""Sound bound propagation under parameter perturbation and an input box (exact rationals).

Interval arithmetic over the parameter box: every weight w' in [w - e, w + e] multiplies an
interval of activations. For one hidden layer at a fixed input it is exact (each parameter
occurs once); otherwise it over-approximates, which is sound for "robust".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .boxes import ParameterBox
from .exact import ExactLayer, Interval, sigmoid_bounds, tanh_bounds

__all__ = ["LayerBounds", "propagate_intervals"]


@dataclass(frozen=True)
class LayerBounds:
    """Pre-activation intervals of every layer (the last one is the output z)."""

    pre: tuple[tuple[Interval, ...], ...]

    @property
    def output(self) -> tuple[Interval, ...]:
        return self.pre[-1]

    def stable_relus(self) -> tuple[tuple[bool | None, ...], ...]:
        """Per hidden neuron: True if always active (lo >= 0), False if always off (hi <= 0), else None."""
        out = []
        for layer in self.pre[:-1]:
            out.append(tuple(True if lo >= 0 else False if hi <= 0 else None for lo, hi in layer))
        return tuple(out)


def _mul(wl: Fraction, wh: Fraction, hl: Fraction, hh: Fraction) -> Interval:
    if hl >= 0:  # the common case after ReLU: a non-negative activation
        return (wl * hl if wl >= 0 else wl * hh), (wh * hh if wh >= 0 else wh * hl)
    c = (wl * hl, wl * hh, wh * hl, wh * hh)
    return min(c), max(c)


def _activate(name: str, lo: Fraction, hi: Fraction) -> Interval:
    if name == "relu":
        return max(lo, Fraction(0)), max(hi, Fraction(0))
    if name == "identity":
        return lo, hi
    if name == "tanh":
        return tanh_bounds(lo)[0], tanh_bounds(hi)[1]
    return sigmoid_bounds(lo)[0], sigmoid_bounds(hi)[1]


def propagate_intervals(
    layers: Sequence[ExactLayer],
    hidden_activation: str,
    inputs: Sequence[Interval],
    box: ParameterBox | None,
) -> LayerBounds:
    """Interval bounds of every pre-activation over inputs x in ``inputs`` and theta' in ``box``
    (``box=None``: the unperturbed network)."""
    h: list[Interval] = list(inputs)
    pre_all = []
    for li, (w, b) in enumerate(layers):
        n_out = len(b)
        rw = box.weights[li] if box is not None else None
        rb = box.biases[li] if box is not None else None
        pre: list[Interval] = []
        for j in range(n_out):
            eb = rb[j] if rb is not None else Fraction(0)
            lo, hi = b[j] - eb, b[j] + eb
            for i, (hl, hh) in enumerate(h):
                e = rw[i][j] if rw is not None else Fraction(0)
                ml, mh = _mul(w[i][j] - e, w[i][j] + e, hl, hh)
                lo += ml
                hi += mh
            pre.append((lo, hi))
        pre_all.append(tuple(pre))
        if li < len(layers) - 1:
            h = [_activate(hidden_activation, lo, hi) for lo, hi in pre]
    return LayerBounds(tuple(pre_all))

