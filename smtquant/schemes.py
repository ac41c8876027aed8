"""Quantization schemes: a spec string -> the exact radius of every parameter (a ParameterBox) and the rounding.

Spec strings (SPEC section 3)::

    fixed:F          round to the nearest multiple of 2^-F (ties to even); eps = 2^-(F+1); no range limit
    fixed:I.F        the same, representable range [-2^(I-1), 2^(I-1) - 2^-F] (I counts the sign bit);
                     a parameter whose rounded value leaves the range is a SchemeError that names it
    int:B            symmetric uniform, one scale per tensor (each layer's weight matrix, and separately
                     its bias vector): s = max|t| / (2^(B-1) - 1), theta_hat = s * round(theta / s),
                     eps = s / 2 for every entry of the tensor (s = eps = 0 for an all-zero tensor)
    int:B:channel    one scale per output neuron for the weights: column j of a layer's weight matrix
                     (shape (n_in, n_out)) has its own s_j; the bias vector keeps one per-tensor scale
    float16          round to nearest even into IEEE half (11 significant bits, subnormals below 2^-14)
    bfloat16         round to nearest even into bfloat16 (8 significant bits, subnormals below 2^-126);
                     eps_i = half an ulp of the binade holding |theta_i| (theta_i = 0 gives eps_i = 0);
                     a parameter that rounds beyond the largest finite value is a SchemeError
    eps:E            eps = E for every parameter (E an exact decimal, 0 or in [1e-1000, 1e300)); theta_hat = theta
    rel:R            eps_i = R * |theta_i| (R an exact decimal, same range as E); theta_hat = theta

    S@weights        quantize weights only: eps = 0 for the biases, which ``quantize`` leaves unchanged
    S1/S2/.../Sn     one scheme per layer in layer order (each may carry its own @weights); n must equal
                     the number of layers, which is checked by ``box`` and ``quantize``

Family names are case-insensitive and whitespace around every token is ignored; ``Scheme.spec`` is
the canonical spelling. Every radius is an exact Fraction, and the float64 network returned by
``quantize`` lies exactly inside ``box`` (a rounded value that is not a float is converted to the
nearest float, moved one ulp toward theta if that conversion left the box).

>>> from smtquant.network import Network
>>> net = Network.from_lists([[[0.3], [-1.2]]], [[0.05]])
>>> s = parse_scheme(" Fixed:3 ")
>>> s.spec, s.box(net).max_radius
('fixed:3', Fraction(1, 16))
>>> s.quantize(net).layers[0].weights.tolist()
[[0.25], [-1.25]]
>>> parse_scheme("int:8@weights / eps:0.010").spec
'int:8@weights/eps:0.01'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction

import numpy as np

from .boxes import ParameterBox
from .errors import SchemeError
from .exact import to_fraction
from .network import Layer, Network

__all__ = ["MAX_BITS", "Scheme", "parse_scheme", "scheme_for_bits"]

MAX_BITS = 1024
"""The largest bit count accepted by fixed:F, fixed:I.F and int:B (a guard against absurd sizes)."""

_FORMS = (
    "fixed:F, fixed:I.F, int:B, int:B:channel, float16, bfloat16, eps:E, rel:R "
    "(optionally S@weights, or S1/S2/... per layer)"
)
_INT_RE = re.compile(r"[+-]?\d+")
_FIXED_RE = re.compile(r"([+-]?\d+)(?:\.([+-]?\d+))?")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_EXPONENTS = (-1000, 300)  # E and R are 0 or in [1e-1000, 1e300)


@dataclass(frozen=True)
class _FloatFormat:
    name: str
    precision: int  # significant bits, the hidden bit included
    emin: int  # exponent of the smallest normal number
    emax: int  # exponent of the largest binade

    @property
    def max_finite(self) -> Fraction:
        return (2 - Fraction(1, 2 ** (self.precision - 1))) * Fraction(2) ** self.emax


_FLOAT_FORMATS = {
    "float16": _FloatFormat("float16", 11, -14, 15),
    "bfloat16": _FloatFormat("bfloat16", 8, -126, 127),
}


@dataclass(frozen=True)
class _Part:
    """One parsed scheme without the per-layer split: family, its numbers, and @weights."""

    family: str  # "fixed" | "int" | "float16" | "bfloat16" | "eps" | "rel"
    bits: int = 0  # fixed: F (fractional bits); int: B
    int_bits: int | None = None  # fixed:I.F: I
    channel: bool = False  # int:B:channel
    value: Fraction = Fraction(0)  # eps: E; rel: R
    value_text: str = ""  # canonical decimal spelling of value
    weights_only: bool = False

    @property
    def spec(self) -> str:
        if self.family == "fixed":
            base = f"fixed:{self.bits}" if self.int_bits is None else f"fixed:{self.int_bits}.{self.bits}"
        elif self.family == "int":
            base = f"int:{self.bits}" + (":channel" if self.channel else "")
        elif self.family in ("eps", "rel"):
            base = f"{self.family}:{self.value_text}"
        else:
            base = self.family
        return base + ("@weights" if self.weights_only else "")


# -- parsing -----------------------------------------------------------------------------------


def _canonical_decimal(d: Decimal) -> str:
    """The shortest spelling of an exact decimal: 0.010 -> 0.01, 1e-3 -> 0.001, 2.5E-12 -> 2.5e-12."""
    if d == 0:
        return "0"
    exact = Context(prec=len(d.as_tuple().digits) + 2, Emax=10**6, Emin=-(10**6))
    n = d.normalize(exact)
    return format(n, "f") if -7 < n.adjusted() < 16 else format(n, "e")


def _parse_decimal(text: str, where: str, letter: str) -> tuple[Fraction, str]:
    if not _DECIMAL_RE.fullmatch(text):
        raise SchemeError(f"{where}: {letter} must be a finite decimal number >= 0. Got {text!r} instead.")
    try:
        d = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only what Decimal reads
        raise SchemeError(f"{where}: {letter} must be a finite decimal number >= 0. Got {text!r} instead.") from None
    if d < 0:
        raise SchemeError(f"{where}: {letter} must be a finite decimal number >= 0. Got {text!r} instead.")
    low, high = _DECIMAL_EXPONENTS
    if d != 0 and not low <= d.adjusted() < high:
        raise SchemeError(f"{where}: {letter} must be 0 or between 1e{low} and 1e{high}. Got {text!r} instead.")
    return Fraction(d), _canonical_decimal(d)


def _parse_bits(text: str, where: str, what: str, low: int) -> int:
    if not _INT_RE.fullmatch(text) or not low <= int(text) <= MAX_BITS:
        raise SchemeError(f"{where}: {what} must be an integer between {low} and {MAX_BITS}. Got {text!r} instead.")
    return int(text)


def _parse_part(text: str, where: str) -> _Part:
    unknown = SchemeError(f"{where} is not known; expected one of {_FORMS}")
    if not text:
        raise unknown
    base, *mods = [t.strip() for t in text.split("@")]
    if len(mods) > 1 or (mods and mods[0].lower() != "weights"):
        raise unknown
    weights_only = bool(mods)
    fields = [f.strip() for f in base.split(":")]
    family = fields[0].lower()
    args = fields[1:]
    if family == "fixed" and len(args) == 1:
        m = _FIXED_RE.fullmatch(args[0])
        if m is None:
            raise SchemeError(
                f"{where}: expected fixed:F or fixed:I.F with integer bit counts. Got {args[0]!r} instead."
            )
        if m.group(2) is None:
            frac = _parse_bits(m.group(1), where, "F (fractional bits)", 0)
            return _Part("fixed", bits=frac, weights_only=weights_only)
        ibits = _parse_bits(m.group(1), where, "I (integer bits, sign included)", 1)
        frac = _parse_bits(m.group(2), where, "F (fractional bits)", 0)
        return _Part("fixed", bits=frac, int_bits=ibits, weights_only=weights_only)
    if family == "int" and len(args) in (1, 2):
        if len(args) == 2 and args[1].lower() != "channel":
            raise unknown
        b = _parse_bits(args[0], where, "B (bits)", 2)
        return _Part("int", bits=b, channel=len(args) == 2, weights_only=weights_only)
    if family in _FLOAT_FORMATS and not args:
        return _Part(family, weights_only=weights_only)
    if family in ("eps", "rel") and len(args) == 1:
        value, canon = _parse_decimal(args[0], where, "E" if family == "eps" else "R")
        return _Part(family, value=value, value_text=canon, weights_only=weights_only)
    raise unknown


def _parse(spec: object) -> tuple[_Part, ...]:
    if not isinstance(spec, str):
        raise SchemeError(f"a quantization scheme must be a string such as 'fixed:4'. Got {type(spec).__name__}.")
    full = " ".join(spec.split())  # one line in every message, whatever the input held
    if not full:
        raise SchemeError(f"the quantization scheme is empty; expected one of {_FORMS}")
    texts = [t.strip() for t in full.split("/")]
    if len(texts) == 1:
        return (_parse_part(texts[0], f"scheme {full!r}"),)
    return tuple(_parse_part(t, f"scheme {full!r}, part for layers[{i}] {t!r}") for i, t in enumerate(texts))


# -- rounding one tensor ------------------------------------------------------------------------


def _fmt(q: Fraction) -> str:
    if q.denominator == 1 and abs(q) < 10**16:
        return str(q.numerator)
    return repr(float(q))


def _float_in_box(q: Fraction, theta: float, centre: Fraction, eps: Fraction) -> float:
    """The float nearest q (which lies in [centre - eps, centre + eps]), moved one ulp toward theta if
    the conversion left that interval: q is then strictly between theta and the float, so one step suffices."""
    f = float(q)
    if abs(to_fraction(f) - centre) > eps:
        f = math.nextafter(f, theta)
        if abs(to_fraction(f) - centre) > eps:  # pragma: no cover - impossible when |q - centre| <= eps
            raise SchemeError(f"internal error: {float(q)!r} is not within {float(eps)!r} of {theta!r}")
    return f


def _round_float_format(fmt: _FloatFormat, theta: float, centre: Fraction) -> tuple[Fraction, Fraction]:
    """(eps, rounded value) of theta in an IEEE-like binary format with subnormals."""
    if centre == 0:
        return Fraction(0), Fraction(0)
    e = max(math.frexp(abs(theta))[1] - 1, fmt.emin)  # |theta| in [2^e, 2^(e+1)), or subnormal
    ulp = Fraction(2) ** (e - fmt.precision + 1)
    return ulp / 2, round(centre / ulp) * ulp


def _int_scale(part: _Part, centres: dict[tuple[int, ...], Fraction]) -> Callable[[tuple[int, ...]], Fraction]:
    """int:B: the scale of each entry, one per tensor or (int:B:channel weights) one per column."""
    levels = 2 ** (part.bits - 1) - 1
    if part.channel and all(len(idx) == 2 for idx in centres):
        per_column: dict[int, Fraction] = {}
        for (_, c), v in centres.items():
            per_column[c] = max(per_column.get(c, Fraction(0)), abs(v))
        scales = {c: m / levels for c, m in per_column.items()}
        return lambda idx: scales[idx[1]]
    scale = max(abs(v) for v in centres.values()) / levels
    return lambda idx: scale


def _quantize_fixed(part: _Part, arr: np.ndarray, name: str, spec: str) -> tuple[list, np.ndarray] | None:
    """fixed:F (and fixed:I.F) in numpy: theta * 2^F is exact for doubles, numpy rounds half to
    even like ``round`` on a Fraction, and k * 2^-F is exact while it stays a normal double, so
    these are the numbers the per-entry path computes in Fractions. None where that argument
    does not cover the tensor (very many fractional bits, huge or non-finite values)."""
    if part.bits > 1000:
        return None
    theta = np.asarray(arr, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        k = np.round(theta * 2.0 ** part.bits)
    if not np.isfinite(k).all() or (k.size and float(np.abs(k).max()) >= 2.0**52):
        return None
    q = k * 2.0 ** -part.bits
    if part.int_bits is not None:
        m = part.int_bits - 1 + part.bits  # k must lie in [-2^m, 2^m - 1]
        if m <= 52:
            bad = np.flatnonzero(((k < -(2.0**m)) | (k > 2.0**m - 1)).ravel())
            if bad.size:
                idx = np.unravel_index(int(bad[0]), theta.shape)
                step = Fraction(1, 2**part.bits)
                lo, hi = -Fraction(2) ** (part.int_bits - 1), Fraction(2) ** (part.int_bits - 1) - step
                where = f"{name}[{','.join(str(int(i)) for i in idx)}]"
                raise SchemeError(f"{spec}: {where} = {float(theta[idx])!r} is outside [{_fmt(lo)}, {_fmt(hi)}]")
    values = np.where(q != theta, np.where(q == 0, 0.0, q), theta)  # a value rounded to zero is +0.0
    values.setflags(write=False)
    eps = Fraction(1, 2 ** (part.bits + 1))
    radii: list = [eps] * theta.shape[0] if theta.ndim == 1 else [[eps] * theta.shape[1] for _ in range(theta.shape[0])]
    return radii, values


def _quantize_tensor(part: _Part, arr: np.ndarray, name: str, spec: str, is_bias: bool) -> tuple[list, np.ndarray]:
    """(radii as nested lists of Fractions, rounded float64 values) for one weight matrix or bias vector."""
    radii = np.empty(arr.shape, dtype=object)
    if part.weights_only and is_bias:
        radii.fill(Fraction(0))
        return radii.tolist(), arr
    if part.family == "fixed":
        fast = _quantize_fixed(part, arr, name, spec)
        if fast is not None:
            return fast
    thetas = {idx: float(arr[idx]) for idx in np.ndindex(arr.shape)}
    centres = {idx: to_fraction(t) for idx, t in thetas.items()}
    if part.family in ("eps", "rel"):
        for idx, centre in centres.items():
            radii[idx] = part.value if part.family == "eps" else part.value * abs(centre)
        return radii.tolist(), arr

    values = np.array(arr, dtype=np.float64)
    scale_of = _int_scale(part, centres) if part.family == "int" else None
    fmt = _FLOAT_FORMATS.get(part.family)
    step = Fraction(1, 2**part.bits)
    lo = hi = None
    if part.family == "fixed" and part.int_bits is not None:
        lo = -Fraction(2) ** (part.int_bits - 1)
        hi = Fraction(2) ** (part.int_bits - 1) - step
    for idx, centre in centres.items():
        theta = thetas[idx]
        where = f"{name}[{','.join(str(i) for i in idx)}]"
        if part.family == "fixed":
            eps, q = step / 2, round(centre / step) * step
            if lo is not None and hi is not None and not lo <= q <= hi:
                raise SchemeError(f"{spec}: {where} = {theta!r} is outside [{_fmt(lo)}, {_fmt(hi)}]")
        elif scale_of is not None:
            s = scale_of(idx)
            eps, q = (s / 2, round(centre / s) * s) if s != 0 else (Fraction(0), Fraction(0))
        elif fmt is not None:
            eps, q = _round_float_format(fmt, theta, centre)
            if abs(q) > fmt.max_finite:
                m = _fmt(fmt.max_finite)
                raise SchemeError(f"{spec}: {where} = {theta!r} overflows {fmt.name} (largest finite value {m})")
        else:  # pragma: no cover - the parser admits no other family
            raise SchemeError(f"{spec}: cannot round with family {part.family!r}")
        radii[idx] = eps
        if q != centre:
            f = _float_in_box(q, theta, centre, eps)
            values[idx] = math.copysign(f, theta) if f == 0 and fmt is not None else f  # float16(-1e-9) is -0.0
    values.setflags(write=False)
    return radii.tolist(), values


# -- the public objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    """A parsed quantization scheme; ``spec`` is its canonical spelling (equal schemes, equal specs).

    >>> Scheme("fixed:2.4") == parse_scheme(" fixed : 2.4 ")
    True
    >>> parse_scheme("float16/INT:4:Channel@Weights").spec
    'float16/int:4:channel@weights'
    """

    spec: str

    def __post_init__(self) -> None:
        parts = _parse(self.spec)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "spec", "/".join(p.spec for p in parts))

    def __str__(self) -> str:
        return self.spec

    def _layer_parts(self, net: Network) -> tuple[_Part, ...]:
        parts: tuple[_Part, ...] = self._parts  # type: ignore[attr-defined]
        n = len(net.layers)
        if len(parts) == 1:
            return parts * n
        if len(parts) != n:
            raise SchemeError(
                f"{self.spec}: {len(parts)} per-layer schemes for a network with {n} layer{'s' if n != 1 else ''}"
            )
        return parts

    def _apply(self, net: Network) -> list[tuple[list, np.ndarray, list, np.ndarray]]:
        out = []
        for i, (part, layer) in enumerate(zip(self._layer_parts(net), net.layers)):
            w_rad, w_val = _quantize_tensor(part, layer.weights, f"layers[{i}].weights", self.spec, False)
            b_rad, b_val = _quantize_tensor(part, layer.biases, f"layers[{i}].biases", self.spec, True)
            out.append((w_rad, w_val, b_rad, b_val))
        return out

    def box(self, net: Network) -> ParameterBox:
        """The exact radius of every parameter of ``net`` under this scheme (labelled with ``spec``).

        >>> from smtquant.network import Network
        >>> net = Network.from_lists([[[0.5, -2.0]], [[3.0], [1.0]]], [[0.0, 0.25], [-1.0]])
        >>> box = parse_scheme("int:3/eps:0.01@weights").box(net)
        >>> box.weights[0], box.biases[0], box.biases[1]
        (((Fraction(1, 3), Fraction(1, 3)),), (Fraction(1, 24), Fraction(1, 24)), (Fraction(0, 1),))
        """
        rows = self._apply(net)
        weights = tuple(tuple(tuple(r) for r in w) for w, _, _, _ in rows)
        biases = tuple(tuple(b) for _, _, b, _ in rows)
        return ParameterBox(net, weights, biases, label=self.spec)

    def quantize(self, net: Network) -> Network:
        """The quantized network theta_hat (float64); it lies exactly inside ``box(net)``.

        >>> from smtquant.network import Network
        >>> net = Network.from_lists([[[0.1], [1000.3]]], [[-1e-8]])
        >>> q = parse_scheme("float16").quantize(net)
        >>> q.layers[0].weights.tolist(), q.layers[0].biases.tolist()
        ([[0.0999755859375], [1000.5]], [-0.0])
        """
        rows = self._apply(net)
        return net.with_layers([Layer(w, b) for _, w, _, b in rows])


def parse_scheme(spec: str) -> Scheme:
    """Parse a scheme spec string (see the module docstring); a bad one is a one-line SchemeError.

    >>> parse_scheme("eps:1e-3").spec
    'eps:0.001'
    >>> parse_scheme("fixd:4")
    Traceback (most recent call last):
    ...
    smtquant.errors.SchemeError: scheme 'fixd:4' is not known; expected one of fixed:F, fixed:I.F, int:B, \
int:B:channel, float16, bfloat16, eps:E, rel:R (optionally S@weights, or S1/S2/... per layer)
    """
    return Scheme(spec)


_BIT_FAMILIES = ("fixed", "int")


def scheme_for_bits(family: str, bits: int) -> Scheme:
    """The scheme of a bit-width search: "fixed" -> fixed:{bits}, "int" -> int:{bits}.

    >>> scheme_for_bits("int", 6).spec
    'int:6'
    """
    if family not in _BIT_FAMILIES:
        raise SchemeError(f"the bit family must be one of {', '.join(_BIT_FAMILIES)}. Got {family!r} instead.")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise SchemeError(f"{family}: the number of bits must be an integer. Got {bits!r} instead.")
    return parse_scheme(f"{family}:{int(bits)}")
