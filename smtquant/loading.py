"""Model loaders and the JSON writer: smtquant JSON, fitted scikit-learn MLPs, skops files,
and joblib/pickle files behind an explicit trust flag (unpickling runs code).

This is the only module that imports scikit-learn (lazily, when a sklearn model is involved).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError
from .network import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Layer, Network, normalize_activation

__all__ = ["load_model", "from_sklearn", "to_json_dict", "save_model", "network_from_dict"]

FORMAT = "smtquant-mlp"
VERSION = 1
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def load_model(path: str | Path, *, trust: bool = False) -> Network:
    """Load a model file: smtquant JSON (``.json``), skops (``.skops``), or joblib/pickle
    (``.joblib``, ``.pkl``, ``.pickle``; only with ``trust=True``, since unpickling runs code).

    Every problem is a :class:`ModelFormatError` whose one-line message names the path.
    """
    p = Path(path)
    if not p.exists():
        raise ModelFormatError(f"{p}: no such file.")
    if p.is_dir():
        raise ModelFormatError(f"{p}: is a directory; expected a model file.")
    suffix = p.suffix.lower()
    try:
        if suffix in _PICKLE_SUFFIXES:
            if not trust:
                raise ModelFormatError(
                    f"{p}: refusing to unpickle without --trust (trust=True): loading a pickle runs "
                    "arbitrary code. Pass it only for files you made yourself, or use JSON/skops."
                )
            return _load_pickle(p)
        if suffix == ".skops":
            return _load_skops(p, trust=trust)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{p}: cannot read ({exc.__class__.__name__}: {exc}).") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None
        except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits, nesting too deep
            raise ModelFormatError(f"{p}: cannot parse JSON ({exc.__class__.__name__}: {exc}).") from None
        return network_from_dict(data)
    except ModelFormatError as exc:
        msg = str(exc)
        if msg.startswith(str(p)):
            raise
        raise ModelFormatError(f"{p}: {msg}") from None


def _reject_constant(name: str) -> float:
    raise ModelFormatError(f"JSON holds {name}; parameters must be finite numbers.")


def network_from_dict(data: Any) -> Network:
    """Validate and build a Network from the SPEC §4 dictionary."""
    if not isinstance(data, dict):
        raise ModelFormatError(f"top level must be a JSON object. Got {type(data).__name__} instead.")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise ModelFormatError(f'"format" must be "{FORMAT}". Got {fmt!r} instead.')
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise ModelFormatError(f'"version" must be {VERSION}. Got {version!r} instead.')
    hidden = normalize_activation(data.get("hidden_activation"), HIDDEN_ACTIVATIONS + ("linear",), '"hidden_activation"')
    output = normalize_activation(data.get("output_activation"), OUTPUT_ACTIVATIONS, '"output_activation"')
    layers_data = data.get("layers")
    if not isinstance(layers_data, list) or not layers_data:
        raise ModelFormatError('"layers" must be a non-empty list of {"weights", "biases"} objects.')
    layers = []
    n_prev = None
    for i, ld in enumerate(layers_data):
        where = f"layers[{i}]"
        if not isinstance(ld, dict) or "weights" not in ld or "biases" not in ld:
            raise ModelFormatError(f'{where} must be an object with "weights" and "biases".')
        w = _matrix(ld["weights"], f"{where}.weights")
        b = _vector(ld["biases"], f"{where}.biases")
        if n_prev is not None and w.shape[0] != n_prev:
            raise ModelFormatError(
                f"{where}.weights has shape {w.shape}; expected ({n_prev}, {w.shape[1]}). "
                f"Got {w.shape[0]} rows instead of the {n_prev} outputs of layers[{i - 1}]."
            )
        if b.shape[0] != w.shape[1]:
            raise ModelFormatError(f"{where}.biases has {b.shape[0]} entries; expected {w.shape[1]} (columns of weights).")
        layers.append(Layer(w, b))
        n_prev = w.shape[1]
    names = data.get("input_names")
    classes = data.get("classes")
    if names is not None and not isinstance(names, list):
        raise ModelFormatError('"input_names" must be a list of strings.')
    if classes is not None and not isinstance(classes, list):
        raise ModelFormatError('"classes" must be a list.')
    return Network(
        tuple(layers), hidden, output,
        tuple(names) if names is not None else None,
        tuple(classes) if classes is not None else None,
    )


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ModelFormatError(f"{where} must be a number. Got {v!r} instead.")
    try:
        f = float(v)
    except OverflowError:  # an integer literal beyond the float range
        raise ModelFormatError(f"{where} has {len(str(v))} digits, too large for a float.") from None
    if not math.isfinite(f):
        raise ModelFormatError(f"{where} = {v!r} is not finite; parameters must be finite numbers.")
    return f


def _vector(v: Any, where: str) -> np.ndarray:
    if not isinstance(v, list) or not v:
        raise ModelFormatError(f"{where} must be a non-empty list of numbers.")
    return np.array([_number(x, f"{where}[{j}]") for j, x in enumerate(v)], dtype=np.float64)


def _matrix(m: Any, where: str) -> np.ndarray:
    if not isinstance(m, list) or not m:
        raise ModelFormatError(f"{where} must be a non-empty list of rows (n_in rows of n_out numbers).")
    rows = [_vector(r, f"{where}[{i}]") for i, r in enumerate(m)]
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ModelFormatError(f"{where}[{i}] has {len(r)} entries; expected {width} like {where}[0]. Rows must be equal.")
    return np.vstack(rows)


def to_json_dict(net: Network) -> dict[str, Any]:
    """The SPEC §4 dictionary; floats are written with repr, so the round trip is exact."""
    d: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "hidden_activation": net.hidden_activation,
        "output_activation": net.output_activation,
        "layers": [{"weights": l.weights.tolist(), "biases": l.biases.tolist()} for l in net.layers],
    }
    if net.input_names is not None:
        d["input_names"] = list(net.input_names)
    if net.classes is not None:
        d["classes"] = [c.item() if isinstance(c, np.generic) else c for c in net.classes]
    return d


def save_model(net: Network, path: str | Path) -> None:
    """Write the network as smtquant JSON (atomically: a temporary file, then a rename)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(json.dumps(to_json_dict(net), indent=1) + "\n", encoding="utf-8")
        tmp.replace(p)
    except OSError as exc:
        raise ModelFormatError(f"{p}: cannot write ({exc.strerror or exc}).") from None


def from_sklearn(model: Any) -> Network:
    """Convert a fitted scikit-learn ``MLPClassifier`` or ``MLPRegressor``."""
    kind = type(model).__name__
    if kind not in ("MLPClassifier", "MLPRegressor"):
        raise ModelFormatError(f"expected a fitted MLPClassifier or MLPRegressor. Got {kind} instead.")
    if not hasattr(model, "coefs_"):
        raise ModelFormatError(f"the {kind} is not fitted (it has no coefs_); call fit first.")
    hidden = normalize_activation(model.activation, HIDDEN_ACTIVATIONS, f"{kind}.activation")
    out = model.out_activation_
    if out not in OUTPUT_ACTIVATIONS:
        raise ModelFormatError(f"{kind}.out_activation_ must be one of {', '.join(OUTPUT_ACTIVATIONS)}. Got {out!r}.")
    layers = tuple(Layer(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
                   for w, b in zip(model.coefs_, model.intercepts_))
    names = getattr(model, "feature_names_in_", None)
    classes = getattr(model, "classes_", None)
    if kind == "MLPClassifier" and out == "logistic" and classes is not None and len(classes) != 2:
        raise ModelFormatError(f"multi-label MLPClassifier (logistic output with {len(classes)} classes) is not supported.")
    return Network(
        layers, hidden, out,
        tuple(str(n) for n in names) if names is not None else None,
        tuple(c.item() if isinstance(c, np.generic) else c for c in classes) if classes is not None else None,
    )


def _load_pickle(p: Path) -> Network:
    try:
        import joblib  # noqa: PLC0415
    except ImportError:
        joblib = None  # type: ignore[assignment]
    try:
        if joblib is not None:
            obj = joblib.load(p)
        else:
            import pickle  # noqa: PLC0415
            with p.open("rb") as fh:
                obj = pickle.load(fh)  # noqa: S301 - caller passed trust=True
    except Exception as exc:  # a corrupt pickle can raise almost anything (also ImportError)
        raise ModelFormatError(f"{p}: cannot unpickle ({exc.__class__.__name__}: {exc}).") from None
    return _from_object(obj, p)


def _load_skops(p: Path, *, trust: bool) -> Network:
    try:
        import skops.io as sio  # noqa: PLC0415
    except ImportError:
        raise ModelFormatError(f"{p}: reading .skops files needs skops: pip install skops") from None
    try:
        untrusted = sio.get_untrusted_types(file=p)
        if untrusted and not trust:
            raise ModelFormatError(
                f"{p}: holds types skops does not trust by default ({', '.join(untrusted)}); "
                "pass --trust (trust=True) if you made this file."
            )
        obj = sio.load(p, trusted=untrusted)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{p}: cannot read skops file ({exc.__class__.__name__}: {exc}).") from None
    return _from_object(obj, p)


def _from_object(obj: Any, p: Path) -> Network:
    if isinstance(obj, Network):  # unpickling skips validation and leaves the arrays writable: rebuild
        layers = tuple(Layer(layer.weights, layer.biases) for layer in obj.layers)
        return Network(layers, obj.hidden_activation, obj.output_activation, obj.input_names, obj.classes)
    if hasattr(obj, "steps"):  # a Pipeline: only a bare MLP is a network we can verify
        raise ModelFormatError(f"{p}: holds a Pipeline; save the MLPClassifier/MLPRegressor step on its own.")
    return from_sklearn(obj)
