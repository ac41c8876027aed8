"""Exact rational arithmetic: float -> Fraction, exact forward passes, and rational enclosures
of exp / sigmoid / logit / softmax rounded on the sound side.

Nothing here uses floating point to decide anything: floats are only used as starting guesses
that are then proved or widened.

>>> to_fraction(0.1) == Fraction(3602879701896397, 36028797018963968)
True
>>> lo, hi = sigmoid_bounds(Fraction(0))
>>> lo == hi == Fraction(1, 2)
True
>>> lo, hi = exp_bounds(Fraction(1))
>>> float(lo) <= 2.718281828459045 <= float(hi) and hi - lo < Fraction(1, 2**60)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np

__all__ = [
    "dyadic_forward",
    "identity_outputs",
    "Interval",
    "ExactLayer",
    "to_fraction",
    "fractions_of",
    "exact_layers",
    "exp_bounds",
    "sigmoid_bounds",
    "tanh_bounds",
    "logit_bracket",
    "logit_lower",
    "logit_upper",
    "softmax_bounds",
    "forward_enclosure",
    "float_down",
    "float_up",
    "floor_dyadic",
    "ceil_dyadic",
]

Interval = tuple[Fraction, Fraction]
ExactLayer = tuple[list[list[Fraction]], list[Fraction]]  # (weights [n_in][n_out], biases [n_out])

DEFAULT_BITS = 80


def to_fraction(v: float | int | Fraction | np.floating) -> Fraction:
    """The exact value of a float (a dyadic rational); never through a decimal string."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, (int, np.integer)):
        return Fraction(int(v))
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"cannot convert non-finite value {f!r} to an exact rational")
    return Fraction(*f.as_integer_ratio())


def fractions_of(a: np.ndarray | Sequence[float]) -> list:
    """Nested lists of exact Fractions with the shape of ``a``."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return to_fraction(float(arr))  # type: ignore[return-value]
    return [fractions_of(row) if arr.ndim > 1 else to_fraction(float(row)) for row in arr]


def exact_layers(net: object) -> list[ExactLayer]:
    """The network's parameters as exact Fractions, layer by layer."""
    return [(fractions_of(l.weights), fractions_of(l.biases)) for l in net.layers]  # type: ignore[attr-defined]


def float_down(q: Fraction) -> float:
    """The largest float <= q (-inf below the float range)."""
    try:
        f = float(q)
    except OverflowError:
        return -math.inf if q < 0 else math.nextafter(math.inf, 0)
    if math.isfinite(f) and Fraction(*f.as_integer_ratio()) > q:
        f = math.nextafter(f, -math.inf)
    return f


def float_up(q: Fraction) -> float:
    """The smallest float >= q (inf above the float range)."""
    return -float_down(-q)


def floor_dyadic(q: Fraction, bits: int) -> Fraction:
    """The largest multiple of 2**-bits that is <= q."""
    return Fraction((q.numerator << bits) // q.denominator, 1 << bits)


def ceil_dyadic(q: Fraction, bits: int) -> Fraction:
    """The smallest multiple of 2**-bits that is >= q."""
    return Fraction(-((-q.numerator << bits) // q.denominator), 1 << bits)


def _exp_nonneg(a: Fraction, bits: int) -> Interval:
    """Enclosure of exp(a) for a >= 0, relative width about 2**-bits."""
    if a == 0:
        return Fraction(1), Fraction(1)
    # argument reduction: y = a / 2**m <= 1/32, then square m times
    m = max(0, a.numerator.bit_length() - a.denominator.bit_length() + 6)
    work = bits + m + 16
    y_lo = floor_dyadic(a / (1 << m), work)
    y_hi = ceil_dyadic(a / (1 << m), work)

    def taylor(y: Fraction) -> tuple[Fraction, Fraction]:
        total, term, n = Fraction(1), Fraction(1), 0
        # remainder after term n: <= 2 * y^(n+1) / (n+1)!  (y <= 1/32 so e^y <= 2)
        while True:
            n += 1
            term = term * y / n
            total += term
            nxt = term * y / (n + 1)
            if nxt * 2 < Fraction(1, 1 << work):
                return total, total + 2 * nxt

    lo, _ = taylor(y_lo)
    _, hi = taylor(y_hi)
    lo, hi = floor_dyadic(lo, work), ceil_dyadic(hi, work)
    for _ in range(m):
        lo = floor_dyadic(lo * lo, work)
        hi = ceil_dyadic(hi * hi, work)
    return lo, hi


def exp_bounds(q: Fraction, bits: int = DEFAULT_BITS) -> Interval:
    """Rationals lo <= exp(q) <= hi with relative width about 2**-bits."""
    q = Fraction(q)
    if q >= 0:
        return _exp_nonneg(q, bits)
    lo, hi = _exp_nonneg(-q, bits)
    return 1 / hi, 1 / lo


def sigmoid_bounds(q: Fraction, bits: int = DEFAULT_BITS) -> Interval:
    """Rationals lo <= sigma(q) = 1 / (1 + exp(-q)) <= hi."""
    q = Fraction(q)
    if q == 0:
        return Fraction(1, 2), Fraction(1, 2)
    e_lo, e_hi = exp_bounds(-q, bits)
    return 1 / (1 + e_hi), 1 / (1 + e_lo)


def tanh_bounds(q: Fraction, bits: int = DEFAULT_BITS) -> Interval:
    """Rationals lo <= tanh(q) <= hi (tanh(q) = 2 sigma(2q) - 1)."""
    lo, hi = sigmoid_bounds(2 * Fraction(q), bits)
    return 2 * lo - 1, 2 * hi - 1


def _logit_guess(p: Fraction) -> float:
    num, den = p, 1 - p
    return (math.log(num.numerator) - math.log(num.denominator)) - (
        math.log(den.numerator) - math.log(den.denominator)
    )


@lru_cache(maxsize=4096)
def logit_bracket(p: Fraction, bits: int = DEFAULT_BITS) -> Interval:
    """Rationals lo <= logit(p) <= hi, proved by sigmoid enclosures (sigma(lo) <= p <= sigma(hi)),
    narrowed by bisection to a width of about 2**-(bits - 10) times max(1, |logit(p)|)."""
    p = Fraction(p)
    if not 0 < p < 1:
        raise ValueError(f"logit needs 0 < p < 1. Got {p}.")
    g = to_fraction(_logit_guess(p))
    step = to_fraction(max(1e-300, abs(float(g)) * 2.0**-50, 2.0**-60))
    lo = g
    while sigmoid_bounds(lo, bits)[1] > p:
        lo = g - step
        step *= 4
    step = to_fraction(max(1e-300, abs(float(g)) * 2.0**-50, 2.0**-60))
    hi = g
    while sigmoid_bounds(hi, bits)[0] < p:
        hi = g + step
        step *= 4
    target = Fraction(max(1, abs(int(g))), 1 << (bits - 10))
    while hi - lo > target:
        mid = floor_dyadic((lo + hi) / 2, bits + 8 + max(0, g.numerator.bit_length() - g.denominator.bit_length()))
        if not lo < mid < hi:
            break
        s_lo, s_hi = sigmoid_bounds(mid, bits)
        if s_hi <= p:
            lo = mid
        elif s_lo >= p:
            hi = mid
        else:
            break  # the enclosure of sigma(mid) contains p: as narrow as this precision allows
    return lo, hi


def logit_lower(p: Fraction, bits: int = DEFAULT_BITS) -> Fraction:
    """A rational t <= logit(p) = ln(p / (1 - p)) (proved: sigma(t) <= p), very close to it."""
    return logit_bracket(Fraction(p), bits)[0]


def logit_upper(p: Fraction, bits: int = DEFAULT_BITS) -> Fraction:
    """A rational t >= logit(p) (proved: sigma(t) >= p), very close to it."""
    return logit_bracket(Fraction(p), bits)[1]


def softmax_bounds(z: Sequence[Interval], bits: int = DEFAULT_BITS) -> list[Interval]:
    """Enclosures of softmax(z)_k for z given as intervals (p_k = 1 / sum_j exp(z_j - z_k))."""
    out = []
    for k, (zk_lo, zk_hi) in enumerate(z):
        s_lo, s_hi = Fraction(0), Fraction(0)
        for j, (zj_lo, zj_hi) in enumerate(z):
            if j == k:
                s_lo += 1
                s_hi += 1
                continue
            s_lo += exp_bounds(zj_lo - zk_hi, bits)[0]
            s_hi += exp_bounds(zj_hi - zk_lo, bits)[1]
        out.append((1 / s_hi, 1 / s_lo))
    return out


def _act_interval(name: str, lo: Fraction, hi: Fraction, bits: int) -> Interval:
    if name == "relu":
        return max(lo, Fraction(0)), max(hi, Fraction(0))
    if name == "identity":
        return lo, hi
    if name == "tanh":
        return tanh_bounds(lo, bits)[0], tanh_bounds(hi, bits)[1]
    if name == "logistic":
        return sigmoid_bounds(lo, bits)[0], sigmoid_bounds(hi, bits)[1]
    raise ValueError(f"unknown activation {name!r}")


def _is_dyadic(q: Fraction) -> bool:
    d = q.denominator
    return d & (d - 1) == 0


def _scaled(values: Sequence[Fraction]) -> tuple[list[int], int]:
    """Dyadic rationals as integers over one power of two: values[i] = ints[i] / 2**e."""
    e = max((q.denominator.bit_length() - 1 for q in values), default=0)
    return [q.numerator << (e - (q.denominator.bit_length() - 1)) for q in values], e


def _scaled_floats(values: Sequence[float]) -> tuple[list[int], int]:
    """Finite floats as integers over one power of two (exact)."""
    ratios = [float(v).as_integer_ratio() for v in values]
    e = max((d.bit_length() - 1 for _, d in ratios), default=0)
    return [n << (e - (d.bit_length() - 1)) for n, d in ratios], e


def dyadic_forward(layers: Sequence[ExactLayer], x: Sequence[Fraction], hidden_activation: str) -> list[Fraction] | None:
    """The exact outputs z of a relu / identity network whose parameters are dyadic rationals
    (every float is one; the input may be any rational), computed with integers over one common
    denominator per layer: the same numbers as Fraction arithmetic, many times faster. None if a
    parameter is not dyadic (or the activation is smooth): use forward_enclosure then. A layer
    may also be given as float64 arrays (weights (n_in, n_out), biases (n_out,)).

    >>> dyadic_forward([([[Fraction(1, 2)], [Fraction(-3)]], [Fraction(1, 4)])], [Fraction(1), Fraction(1, 8)], "relu")
    [Fraction(3, 8)]
    """
    if hidden_activation not in ("relu", "identity"):
        return None
    xs = [Fraction(v) for v in x]
    den = math.lcm(*(v.denominator for v in xs)) if xs else 1
    h = [v.numerator * (den // v.denominator) for v in xs]  # h[i] / den
    for li, (w, b) in enumerate(layers):
        if isinstance(w, np.ndarray):  # doubles: exact ratios straight from the floats
            wi, ew = _scaled_floats(w.ravel().tolist())
            bi, eb = _scaled_floats(np.asarray(b).tolist())
        else:
            flat = [Fraction(v) for row in w for v in row]
            bias = [Fraction(v) for v in b]
            if not all(_is_dyadic(v) for v in flat) or not all(_is_dyadic(v) for v in bias):
                return None
            wi, ew = _scaled(flat)  # w / 2**ew
            bi, eb = _scaled(bias)  # b / 2**eb
        prod_den = den << ew
        new_den = math.lcm(prod_den, 1 << eb)
        kp, kb = new_den // prod_den, new_den // (1 << eb)
        n_out = len(b)
        out = []
        for j in range(n_out):
            s = 0
            for i, hv in enumerate(h):
                if hv:
                    s += wi[i * n_out + j] * hv
            out.append(s * kp + bi[j] * kb)
        if li < len(layers) - 1 and hidden_activation == "relu":
            out = [v if v > 0 else 0 for v in out]
        h, den = out, new_den
    return [Fraction(v, den) for v in h]


def forward_enclosure(
    layers: Sequence[ExactLayer], x: Sequence[Fraction], hidden_activation: str, bits: int = DEFAULT_BITS
) -> list[Interval]:
    """Output pre-activations z for exact parameters and input, as intervals.

    For relu / identity hidden units every interval is a single exact rational (lo == hi);
    smooth hidden units give enclosures of width about 2**-bits.
    """
    fast = dyadic_forward(layers, x, hidden_activation)
    if fast is not None:
        return [(v, v) for v in fast]
    h: list[Interval] = [(Fraction(v), Fraction(v)) for v in x]
    for li, (w, b) in enumerate(layers):
        n_out = len(b)
        new: list[Interval] = []
        exact = all(lo == hi for lo, hi in h)
        for j in range(n_out):
            if exact:
                s = b[j] + sum((w[i][j] * h[i][0] for i in range(len(h))), Fraction(0))
                lo = hi = s
            else:
                lo = hi = b[j]
                for i in range(len(h)):
                    a, c = w[i][j] * h[i][0], w[i][j] * h[i][1]
                    lo += min(a, c)
                    hi += max(a, c)
            if li < len(layers) - 1:
                lo, hi = _act_interval(hidden_activation, lo, hi, bits)
            new.append((lo, hi))
        h = new
    return h


def identity_outputs(layers: Sequence[ExactLayer], x: Sequence[Fraction]) -> list[Fraction]:
    """The exact outputs of an identity network."""
    out = dyadic_forward(layers, x, "identity")
    if out is None:
        out = [lo for lo, _ in forward_enclosure(layers, x, "identity")]  # exact for identity units
    return out
