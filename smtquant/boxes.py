"""ParameterBox (the radius of every parameter) and InputRegion (a box of inputs).

Radii are kept exactly (Fractions) for solvers and certificates, and as float64 arrays rounded
*up* for fast floating-point proposers; the float box always contains the exact one.

>>> from smtquant.network import Network
>>> net = Network.from_lists([[[1.0], [-1.0]]], [[0.5]])
>>> box = ParameterBox.uniform(net, Fraction(1, 32))
>>> box.radius(0, "weights", (1, 0)), box.max_radius
(Fraction(1, 32), Fraction(1, 32))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .errors import PropertyError
from .exact import float_down, float_up, to_fraction
from .network import Network

__all__ = ["ParameterBox", "InputRegion"]


def _freeze(a: object) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ParameterBox:
    """B(theta, eps): for layer i, ``weights[i][r][c]`` and ``biases[i][c]`` are exact radii >= 0."""

    network: Network
    weights: tuple[tuple[tuple[Fraction, ...], ...], ...]
    biases: tuple[tuple[Fraction, ...], ...]
    label: str = ""

    def __post_init__(self) -> None:
        for i, layer in enumerate(self.network.layers):
            w, b = self.weights[i], self.biases[i]
            if len(w) != layer.n_in or any(len(r) != layer.n_out for r in w) or len(b) != layer.n_out:
                raise PropertyError(f"radii of layers[{i}] do not match its shape {layer.weights.shape}.")
            if any(v < 0 for r in w for v in r) or any(v < 0 for v in b):
                raise PropertyError(f"radii of layers[{i}] must be >= 0.")
        up: dict[Fraction, float] = {}  # one rounding per distinct radius (a scheme has few)

        def rounded(v: Fraction) -> float:
            f = up.get(v)
            if f is None:
                f = up[v] = float_up(v)
            return f

        object.__setattr__(self, "_float_w", tuple(_freeze([[rounded(v) for v in r] for r in w]) for w in self.weights))
        object.__setattr__(self, "_float_b", tuple(_freeze([rounded(v) for v in b]) for b in self.biases))
        object.__setattr__(self, "_inward", None)

    @classmethod
    def from_arrays(cls, network: Network, weights: Sequence[object], biases: Sequence[object], label: str = "") -> ParameterBox:
        """From per-layer arrays (floats or Fractions); floats are taken exactly."""
        w = tuple(tuple(tuple(to_fraction(v) if not isinstance(v, Fraction) else v for v in row) for row in _rows(m))
                  for m in weights)
        b = tuple(tuple(to_fraction(v) if not isinstance(v, Fraction) else v for v in _flat(m)) for m in biases)
        return cls(network, w, b, label)

    @classmethod
    def uniform(cls, network: Network, eps: Fraction | float, label: str = "") -> ParameterBox:
        e = eps if isinstance(eps, Fraction) else to_fraction(eps)
        return cls(
            network,
            tuple(tuple(tuple(e for _ in range(l.n_out)) for _ in range(l.n_in)) for l in network.layers),
            tuple(tuple(e for _ in range(l.n_out)) for l in network.layers),
            label,
        )

    def radius(self, layer: int, tensor: str, index: tuple[int, ...]) -> Fraction:
        if tensor == "weights":
            return self.weights[layer][index[0]][index[1]]
        return self.biases[layer][index[0]]

    @property
    def max_radius(self) -> Fraction:
        vals = [v for w in self.weights for r in w for v in r] + [v for b in self.biases for v in b]
        return max(vals) if vals else Fraction(0)

    def float_weights(self, layer: int) -> np.ndarray:
        """Weight radii of a layer as float64, each rounded up."""
        return self._float_w[layer]  # type: ignore[attr-defined,no-any-return]

    def float_biases(self, layer: int) -> np.ndarray:
        return self._float_b[layer]  # type: ignore[attr-defined,no-any-return]

    def inward_doubles(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]:
        """Per layer (w_lo, w_hi, b_lo, b_hi): the smallest and the largest double inside each
        parameter's interval [theta - eps, theta + eps] (theta is a double, so there is one).
        Clipping a double into them keeps it exactly in the box. Computed once per box.

        >>> from smtquant.network import Network
        >>> box = ParameterBox.uniform(Network.from_lists([[[1.0]]], [[0.5]]), Fraction(1, 3))
        >>> w_lo, w_hi, b_lo, b_hi = box.inward_doubles()[0]
        >>> Fraction(float(w_lo[0, 0])) >= Fraction(2, 3) > Fraction(float(w_lo[0, 0])) - Fraction(1, 2**52)
        True
        """
        hit = self._inward  # type: ignore[attr-defined]
        if hit is None:
            hit = tuple((*_inward(layer.weights, self.weights[i], self._float_w[i]),  # type: ignore[attr-defined]
                         *_inward(layer.biases, self.biases[i], self._float_b[i]))  # type: ignore[attr-defined]
                        for i, layer in enumerate(self.network.layers))
            object.__setattr__(self, "_inward", hit)
        return hit  # type: ignore[no-any-return]

    def contains(self, candidate: Network) -> bool:
        """Exactly: does every parameter of ``candidate`` lie within its radius of the centre?"""
        if candidate.sizes != self.network.sizes:
            return False
        for i, (lc, l0) in enumerate(zip(candidate.layers, self.network.layers)):
            for r in range(l0.n_in):
                for c in range(l0.n_out):
                    if abs(to_fraction(lc.weights[r, c]) - to_fraction(l0.weights[r, c])) > self.weights[i][r][c]:
                        return False
            for c in range(l0.n_out):
                if abs(to_fraction(lc.biases[c]) - to_fraction(l0.biases[c])) > self.biases[i][c]:
                    return False
        return True


def _inward(theta: np.ndarray, radii: tuple, radii_up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest double >= theta - eps and the largest double <= theta + eps, elementwise.
    Where eps is a double, theta +- eps is rounded to nearest and its exact error found by TwoSum
    (exact for finite doubles), which says whether to step one double inwards; other radii are
    handled in exact rationals."""
    is_double: dict[int, bool] = {}  # by object: a scheme repeats one Fraction object
    flat = [v for row in radii for v in row] if theta.ndim == 2 else list(radii)
    mask = np.empty(len(flat), dtype=bool)
    for k, v in enumerate(flat):
        got = is_double.get(id(v))
        if got is None:
            got = is_double[id(v)] = Fraction(float(v)) == v
        mask[k] = got
    t = theta.ravel()
    e = radii_up.ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = t - e, t + e
        # TwoSum: a + b = s + err exactly
        bb = lo - t
        err_lo = (t - (lo - bb)) + (-e - bb)
        bb = hi - t
        err_hi = (t - (hi - bb)) + (e - bb)
    lo = np.where(err_lo > 0, np.nextafter(lo, np.inf), lo)  # s < true: one double up
    hi = np.where(err_hi < 0, np.nextafter(hi, -np.inf), hi)  # s > true: one double down
    for k in np.flatnonzero(~mask | ~np.isfinite(lo) | ~np.isfinite(hi)).tolist():
        c, r = Fraction(float(t[k])), flat[k]
        lo[k], hi[k] = float_up(c - r), float_down(c + r)
    return _freeze(lo.reshape(theta.shape)), _freeze(hi.reshape(theta.shape))


def _rows(m: object) -> list:
    return [list(np.atleast_1d(r)) if not isinstance(r, (list, tuple)) else list(r) for r in m]  # type: ignore[attr-defined]


def _flat(m: object) -> list:
    return list(m) if isinstance(m, (list, tuple)) else list(np.asarray(m).ravel())


@dataclass(frozen=True, eq=False)
class InputRegion:
    """A box of inputs: ``bounds[i] = (lo_i, hi_i)`` with lo_i <= hi_i, exact Fractions."""

    bounds: tuple[tuple[Fraction, Fraction], ...]

    def __post_init__(self) -> None:
        if not self.bounds:
            raise PropertyError("region must have at least one dimension.")
        for i, (lo, hi) in enumerate(self.bounds):
            if lo > hi:
                raise PropertyError(f"region dimension {i}: lower bound {float(lo)!r} is above upper bound {float(hi)!r}.")

    @classmethod
    def from_pairs(cls, pairs: Sequence[Sequence[float]]) -> InputRegion:
        out = []
        for i, pair in enumerate(pairs):
            if len(pair) != 2:
                raise PropertyError(f"region dimension {i} must be a pair lo:hi. Got {list(pair)!r}.")
            lo, hi = pair
            for v in (lo, hi):
                if not isinstance(v, Fraction) and not math.isfinite(float(v)):
                    raise PropertyError(f"region dimension {i} has a non-finite bound {v!r}.")
            out.append((lo if isinstance(lo, Fraction) else to_fraction(lo),
                        hi if isinstance(hi, Fraction) else to_fraction(hi)))
        return cls(tuple(out))

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def as_floats(self) -> list[list[float]]:
        return [[float(lo), float(hi)] for lo, hi in self.bounds]

    def lower(self) -> np.ndarray:
        return np.array([float(lo) for lo, _ in self.bounds])

    def upper(self) -> np.ndarray:
        return np.array([float(hi) for _, hi in self.bounds])
