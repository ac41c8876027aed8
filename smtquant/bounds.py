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
    fast = _dyadic_propagate(layers, hidden_activation, inputs, box)
    if fast is not None:
        return fast
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



def _dyadic(values: Sequence[Fraction]) -> tuple[list[int], int] | None:
    """Dyadic rationals as integers over one power of two (values[i] = ints[i] / 2**e); None if
    one is not dyadic."""
    e = 0
    for q in values:
        d = q.denominator
        if d & (d - 1):
            return None
        e = max(e, d.bit_length() - 1)
    return [q.numerator << (e - (q.denominator.bit_length() - 1)) for q in values], e


def _dyadic_propagate(layers: Sequence[ExactLayer], hidden_activation: str, inputs: Sequence[Interval],
                      box: ParameterBox | None) -> LayerBounds | None:
    """propagate_intervals for relu / identity networks whose numbers are all dyadic (floats,
    power-of-two radii, float inputs): the same intervals, computed with integers over one power
    of two per layer instead of Fractions. None when a number is not dyadic (or the hidden units
    are smooth): the caller then uses Fractions."""
    if hidden_activation not in ("relu", "identity"):
        return None
    got = _dyadic([v for iv in inputs for v in iv])
    if got is None:
        return None
    flat_h, eh = got
    hl, hh = flat_h[0::2], flat_h[1::2]
    pre_all = []
    for li, (w, b) in enumerate(layers):
        n_in, n_out = len(w), len(b)
        zero = [Fraction(0)] * n_out
        rw = box.weights[li] if box is not None else [zero] * n_in
        rb = box.biases[li] if box is not None else zero
        ws = _dyadic([v for row in w for v in row] + [v for row in rw for v in row] + list(b) + list(rb))
        if ws is None:
            return None
        ints, ew = ws
        k = n_in * n_out
        wi, ei, bi, fi = ints[:k], ints[k:2 * k], ints[2 * k:2 * k + n_out], ints[2 * k + n_out:]
        # products over 2**(ew + eh); biases (over 2**ew) scaled up to that
        shift = eh
        lo_out, hi_out = [], []
        for j in range(n_out):
            lo = (bi[j] - fi[j]) << shift
            hi = (bi[j] + fi[j]) << shift
            for i in range(n_in):
                c, r = wi[i * n_out + j], ei[i * n_out + j]
                wl, wh = c - r, c + r
                a, z = hl[i], hh[i]
                if a >= 0:  # the common case after ReLU: a non-negative activation
                    lo += wl * a if wl >= 0 else wl * z
                    hi += wh * z if wh >= 0 else wh * a
                else:
                    p = (wl * a, wl * z, wh * a, wh * z)
                    lo += min(p)
                    hi += max(p)
            lo_out.append(lo)
            hi_out.append(hi)
        den = 1 << (ew + eh)
        pre_all.append(tuple((Fraction(lo, den), Fraction(hi, den)) for lo, hi in zip(lo_out, hi_out)))
        eh += ew
        if hidden_activation == "relu":
            hl, hh = [max(v, 0) for v in lo_out], [max(v, 0) for v in hi_out]
        else:
            hl, hh = lo_out, hi_out
    return LayerBounds(tuple(pre_all))
