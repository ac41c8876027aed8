"""The model IR: an immutable multi-layer perceptron with read-only float64 arrays.

Weights use scikit-learn's orientation: ``layers[i].weights`` has shape (n_in, n_out).

>>> net = Network.from_lists([[[1.0], [-1.0]]], [[0.5]], "relu", "logistic")
>>> net.n_inputs, net.n_outputs, net.n_parameters
(2, 1, 3)
>>> net.forward([1.0, 0.0]).tolist()
[1.5]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelFormatError

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "PIECEWISE_LINEAR",
    "Layer",
    "Network",
    "normalize_activation",
]

HIDDEN_ACTIVATIONS = ("relu", "identity", "tanh", "logistic")
OUTPUT_ACTIVATIONS = ("logistic", "softmax", "identity")
PIECEWISE_LINEAR = ("relu", "identity")
_ALIASES = {"linear": "identity", "sigmoid": "logistic"}


def normalize_activation(name: object, allowed: Sequence[str], where: str) -> str:
    """Return the canonical activation name ("linear" -> "identity") or raise."""
    if not isinstance(name, str):
        raise ModelFormatError(f"{where} must be a string, one of {', '.join(allowed)}. Got {name!r} instead.")
    canon = _ALIASES.get(name.lower(), name.lower())
    if canon not in allowed:
        raise ModelFormatError(f"{where} must be one of {', '.join(allowed)}. Got {name!r} instead.")
    return canon


def _frozen(a: object, where: str, ndim: int) -> np.ndarray:
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where} must be numbers. Got {type(a).__name__} ({exc}).") from None
    if arr.ndim != ndim:
        raise ModelFormatError(f"{where} must be a {ndim}-D array. Got shape {arr.shape} instead.")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ModelFormatError(f"{where}{list(bad)} = {arr[bad]} is not finite; parameters must be finite numbers.")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Layer:
    """One affine layer: ``weights`` (n_in, n_out) and ``biases`` (n_out,), read-only float64."""

    weights: np.ndarray
    biases: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _frozen(self.weights, "weights", 2))
        object.__setattr__(self, "biases", _frozen(self.biases, "biases", 1))
        if self.weights.shape[1] != self.biases.shape[0]:
            raise ModelFormatError(
                f"biases must have {self.weights.shape[1]} entries (one per output of weights "
                f"{self.weights.shape}). Got {self.biases.shape[0]} instead."
            )
        if self.weights.shape[0] == 0 or self.weights.shape[1] == 0:
            raise ModelFormatError(f"weights must have at least one row and column. Got shape {self.weights.shape}.")

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True, eq=False)
class Network:
    """An MLP: affine layers, one hidden activation between them, one output activation.

    ``forward`` returns the output layer's pre-activation z (the logits); ``probabilities``
    applies the output activation (a logistic output gives (1 - sigma(z), sigma(z))).
    """

    layers: tuple[Layer, ...]
    hidden_activation: str = "relu"
    output_activation: str = "logistic"
    input_names: tuple[str, ...] | None = None
    classes: tuple[object, ...] | None = None
    _sizes: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise ModelFormatError("layers must hold at least one layer. Got none.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ModelFormatError(f"layers[{i}] must be a Layer. Got {type(layer).__name__}.")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ModelFormatError(
                    f"layers[{i}].weights has {layers[i].n_in} rows; expected {layers[i - 1].n_out} "
                    f"(the outputs of layers[{i - 1}])."
                )
        object.__setattr__(self, "layers", layers)
        object.__setattr__(
            self, "hidden_activation",
            normalize_activation(self.hidden_activation, HIDDEN_ACTIVATIONS, "hidden_activation"),
        )
        object.__setattr__(
            self, "output_activation",
            normalize_activation(self.output_activation, OUTPUT_ACTIVATIONS, "output_activation"),
        )
        if self.output_activation == "softmax" and layers[-1].n_out < 2:
            raise ModelFormatError("a softmax output needs at least 2 output units. Got 1; use 'logistic'.")
        if self.output_activation == "logistic" and layers[-1].n_out != 1:
            raise ModelFormatError(
                f"a logistic output must have 1 unit (binary classifier). Got {layers[-1].n_out}; use 'softmax'."
            )
        if self.input_names is not None:
            names = tuple(str(n) for n in self.input_names)
            if len(names) != layers[0].n_in:
                raise ModelFormatError(f"input_names must have {layers[0].n_in} entries. Got {len(names)} instead.")
            object.__setattr__(self, "input_names", names)
        if self.classes is not None:
            classes = tuple(self.classes)
            expected = 2 if self.output_activation == "logistic" else layers[-1].n_out
            if self.output_activation != "identity" and len(classes) != expected:
                raise ModelFormatError(f"classes must have {expected} entries. Got {len(classes)} instead.")
            object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "_sizes", (layers[0].n_in,) + tuple(l.n_out for l in layers))

    @classmethod
    def from_lists(
        cls,
        weights: Sequence[object],
        biases: Sequence[object],
        hidden_activation: str = "relu",
        output_activation: str = "logistic",
        **kwargs: object,
    ) -> Network:
        """Build from per-layer weight and bias lists (sklearn orientation)."""
        if len(weights) != len(biases):
            raise ModelFormatError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors.")
        layers = tuple(Layer(np.asarray(w, dtype=float), np.asarray(b, dtype=float)) for w, b in zip(weights, biases))
        return cls(layers, hidden_activation, output_activation, **kwargs)  # type: ignore[arg-type]

    # -- shape facts -------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        """Units per layer, inputs first: (n_in, hidden..., n_out)."""
        return self._sizes

    @property
    def n_inputs(self) -> int:
        return self._sizes[0]

    @property
    def n_outputs(self) -> int:
        return self._sizes[-1]

    @property
    def n_parameters(self) -> int:
        return sum(l.weights.size + l.biases.size for l in self.layers)

    @property
    def is_piecewise_linear(self) -> bool:
        return self.hidden_activation in PIECEWISE_LINEAR

    def parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (name, array) for every tensor: 'layers[0].weights', 'layers[0].biases', ..."""
        for i, layer in enumerate(self.layers):
            yield f"layers[{i}].weights", layer.weights
            yield f"layers[{i}].biases", layer.biases

    def with_layers(self, layers: Sequence[Layer]) -> Network:
        """A copy with other parameters (same activations, names and classes)."""
        return Network(tuple(layers), self.hidden_activation, self.output_activation, self.input_names, self.classes)

    # -- float64 evaluation (for attacks and plots; never for certification) --
    def forward(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Output pre-activations z for one input (or a batch, shape (n, n_in)), in float64."""
        h = np.asarray(x, dtype=np.float64)
        for i, layer in enumerate(self.layers):
            h = h @ layer.weights + layer.biases
            if i < len(self.layers) - 1:
                h = activate(self.hidden_activation, h)
        return h

    def probabilities(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Class probabilities (logistic: (1 - s, s); softmax) or raw outputs for identity."""
        z = self.forward(x)
        if self.output_activation == "logistic":
            s = 1.0 / (1.0 + np.exp(-z))
            return np.concatenate([1.0 - s, s], axis=-1)
        if self.output_activation == "softmax":
            e = np.exp(z - np.max(z, axis=-1, keepdims=True))
            return e / np.sum(e, axis=-1, keepdims=True)
        return z

    def predict_class(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Index of the predicted class (logistic: 1 iff z > 0), as integers."""
        z = self.forward(x)
        if self.output_activation == "logistic":
            return (z[..., 0] > 0).astype(int)
        return np.argmax(z, axis=-1)

    def describe(self) -> str:
        """A one-line summary such as '2-8-1 relu -> logistic (33 parameters)'."""
        arch = "-".join(str(s) for s in self._sizes)
        return f"{arch} {self.hidden_activation} -> {self.output_activation} ({self.n_parameters} parameters)"


def activate(name: str, h: np.ndarray) -> np.ndarray:
    """A hidden activation in float64."""
    if name == "relu":
        return np.maximum(h, 0.0)
    if name == "identity":
        return h
    if name == "tanh":
        return np.tanh(h)
    return 1.0 / (1.0 + np.exp(-h))
