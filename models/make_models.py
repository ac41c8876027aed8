"""Make the shipped models in models/ and the malformed files in models/broken/ (deterministic).

Trained models: twin MLPs (hidden relu vs identity; same data, architecture and seed) on 2-D
binary data, a 3-class softmax model and a small regressor, all with scikit-learn's lbfgs solver.
Hand-built models: dyadic parameters whose logit z and maximum logit deviation under eps:1/32
(= fixed:4) are known exactly; this script re-derives those answers twice (closed-form interval
arithmetic and a brute force over the vertices of the parameter box) and stops if they differ.

Run from anywhere:  python models/make_models.py
"""

from __future__ import annotations

import itertools
import json
import pickle
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken"

try:
    from smtquant.loading import from_sklearn, save_model
    from smtquant.network import Network
except ImportError:  # run as a script from a checkout that is not installed
    sys.path.insert(0, str(HERE.parent))
    from smtquant.loading import from_sklearn, save_model
    from smtquant.network import Network

SEED = 0
EPS = Fraction(1, 32)  # eps:1/32 = fixed:4
NAMES = ("x1", "x2")


# -- data ------------------------------------------------------------------------------------
def moons() -> tuple[np.ndarray, np.ndarray]:
    """make_moons(200, noise=0.1, random_state=0); inputs already lie in about [-1.2, 2.2] x [-0.7, 1.3]."""
    return make_moons(n_samples=200, noise=0.1, random_state=SEED)


def separable() -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs around (-1, -1) and (1.5, 1.5), std 0.5: linearly separable, inputs in about [-2.5, 3]."""
    return make_blobs(n_samples=200, centers=[(-1.0, -1.0), (1.5, 1.5)], cluster_std=0.5, random_state=SEED)


def blobs3() -> tuple[np.ndarray, np.ndarray]:
    """Three blobs around (-1, -1), (1.5, -0.5), (0, 1.5), std 0.5."""
    return make_blobs(
        n_samples=150, centers=[(-1.0, -1.0), (1.5, -0.5), (0.0, 1.5)], cluster_std=0.5, random_state=SEED
    )


def regression() -> tuple[np.ndarray, np.ndarray]:
    """200 uniform points in [-2, 2]^2, target y = |x1| + x2 / 2 (representable by a small relu net)."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-2.0, 2.0, size=(200, 2))
    return x, np.abs(x[:, 0]) + 0.5 * x[:, 1]


DATASETS = {"moons": moons, "separable": separable, "blobs3": blobs3, "regression": regression}

# file name -> (dataset, estimator class, hidden_layer_sizes, hidden activation, L2 penalty alpha).
# Twins share everything but the activation. The 2-8-1 pair uses alpha 1e-2 because with the
# default 1e-4 lbfgs stops the relu twin in a local minimum (train accuracy 0.89, a linear boundary).
TRAINED = {
    "moons_relu.json": ("moons", MLPClassifier, (8,), "relu", 1e-2),
    "moons_linear.json": ("moons", MLPClassifier, (8,), "identity", 1e-2),
    "linear_relu.json": ("separable", MLPClassifier, (4,), "relu", 1e-4),
    "linear_linear.json": ("separable", MLPClassifier, (4,), "identity", 1e-4),
    "moons_relu_8x8.json": ("moons", MLPClassifier, (8, 8), "relu", 1e-4),
    "moons_linear_8x8.json": ("moons", MLPClassifier, (8, 8), "identity", 1e-4),
    "blobs_softmax.json": ("blobs3", MLPClassifier, (6,), "relu", 1e-4),
    "moons_logistic.json": ("moons", MLPClassifier, (8,), "logistic", 1e-2),
    "moons_tanh.json": ("moons", MLPClassifier, (8,), "tanh", 1e-2),
    "regressor_relu.json": ("regression", MLPRegressor, (4,), "relu", 1e-4),
}


def train(name: str) -> tuple[Network, float]:
    """Fit one trained model; return it (with input names) and its train accuracy (R^2 for the regressor)."""
    data, cls, hidden, activation, alpha = TRAINED[name]
    x, y = DATASETS[data]()
    est = cls(
        hidden_layer_sizes=hidden, activation=activation, solver="lbfgs", alpha=alpha, max_iter=2000, random_state=SEED
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)
    net = from_sklearn(est)
    net = Network(net.layers, net.hidden_activation, net.output_activation, NAMES, net.classes)
    return net, float(est.score(x, y))


# -- hand-built networks with known answers --------------------------------------------------
# file name -> (weights per layer, biases per layer, hidden activation, input x, z(x), max |z' - z| at eps 1/32)
HAND = {
    "hand_single.json": (
        [[[1.0]], [[1.0]]], [[0.0], [0.0]], "relu", (1,), Fraction(1), Fraction(65, 512),
    ),
    "hand_2x2.json": (
        [[[1.0, -1.0], [1.0, 0.5]], [[1.0], [-2.0]]], [[0.0, 0.5], [-1.0]], "relu", (1, 1), Fraction(1), Fraction(3, 8),
    ),
    "hand_linear.json": (
        [[[1.0, -1.0], [1.0, 0.5]], [[1.0], [-2.0]]], [[0.0, 0.5], [-1.0]], "identity", (1, 1), Fraction(1),
        Fraction(195, 512),
    ),
}


def _act(name: str, v: Fraction) -> Fraction:
    return max(v, Fraction(0)) if name == "relu" else v


def exact_logit(weights: list, biases: list, activation: str, x: tuple) -> Fraction:
    """z(x) of a one-output network in exact rationals."""
    h = [Fraction(v) for v in x]
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = [Fraction(b[j]) + sum(Fraction(w[i][j]) * h[i] for i in range(len(h))) for j in range(len(b))]
        if k < len(weights) - 1:
            h = [_act(activation, v) for v in h]
    return h[0]


def closed_form_deviation(weights: list, biases: list, activation: str, x: tuple, eps: Fraction) -> Fraction:
    """max |z' - z| over the box for one hidden layer (exact: every parameter occurs once)."""
    (w1, w2), (b1, b2) = weights, biases
    z = exact_logit(weights, biases, activation, x)
    hi_total, lo_total = Fraction(b2[0]) + eps, Fraction(b2[0]) - eps
    for j in range(len(b1)):
        c = Fraction(b1[j]) + sum(Fraction(w1[i][j]) * Fraction(x[i]) for i in range(len(x)))
        r = sum(eps * abs(Fraction(v)) for v in x) + eps
        hl, hu = _act(activation, c - r), _act(activation, c + r)
        corners = [w * h for w in (Fraction(w2[j][0]) - eps, Fraction(w2[j][0]) + eps) for h in (hl, hu)]
        hi_total += max(corners)
        lo_total += min(corners)
    return max(hi_total - z, z - lo_total)


def brute_force_deviation(weights: list, biases: list, activation: str, x: tuple, eps: Fraction) -> Fraction:
    """max |z' - z| over the vertices of the box (the extremes lie on vertices for these nets)."""
    z = exact_logit(weights, biases, activation, x)
    flat = [Fraction(v) for w, b in zip(weights, biases) for v in [*np.ravel(w).tolist(), *b]]
    best = Fraction(0)
    for signs in itertools.product((-1, 1), repeat=len(flat)):
        it = iter(p + s * eps for p, s in zip(flat, signs))
        ws, bs = [], []
        for w, b in zip(weights, biases):
            ws.append([[next(it) for _ in row] for row in w])
            bs.append([next(it) for _ in b])
        best = max(best, abs(exact_logit(ws, bs, activation, x) - z))
    return best


def hand_network(name: str) -> Network:
    weights, biases, activation, x, _z, _dev = HAND[name]
    return Network.from_lists(weights, biases, activation, "logistic", input_names=NAMES[: len(x)], classes=(0, 1))


def check_hand(name: str) -> tuple[Fraction, Fraction]:
    weights, biases, activation, x, z, dev = HAND[name]
    z_calc = exact_logit(weights, biases, activation, x)
    closed = closed_form_deviation(weights, biases, activation, x, EPS)
    brute = brute_force_deviation(weights, biases, activation, x, EPS)
    if not (z_calc == z and closed == brute == dev):
        raise SystemExit(f"{name}: documented z={z}, dev={dev}; computed z={z_calc}, closed={closed}, brute={brute}")
    return z, dev


# -- malformed files ------------------------------------------------------------------------
def _base() -> dict:
    return {
        "format": "smtquant-mlp",
        "version": 1,
        "hidden_activation": "relu",
        "output_activation": "logistic",
        "layers": [
            {"weights": [[1.0, -1.0], [1.0, 0.5]], "biases": [0.0, 0.5]},
            {"weights": [[1.0], [-2.0]], "biases": [-1.0]},
        ],
        "input_names": ["x1", "x2"],
        "classes": [0, 1],
    }


def _variant(**changes: object) -> dict:
    d = _base()
    for key, value in changes.items():
        if value is None:
            d.pop(key)
        else:
            d[key] = value
    return d


def _layers(w0: object = None, b0: object = None, w1: object = None, b1: object = None) -> list:
    base = _base()["layers"]
    return [
        {"weights": base[0]["weights"] if w0 is None else w0, "biases": base[0]["biases"] if b0 is None else b0},
        {"weights": base[1]["weights"] if w1 is None else w1, "biases": base[1]["biases"] if b1 is None else b1},
    ]


def broken_files() -> dict[str, bytes]:
    """File name -> exact bytes of every malformed file (see models/broken/README.md)."""
    def js(d: object) -> bytes:
        return (json.dumps(d, indent=1) + "\n").encode("utf-8")

    text = {
        "not_json.json": js(_base()).decode()[:120],
        "empty_file.json": "",
        "top_level_list.json": js([_base()]).decode(),
        "wrong_format.json": js(_variant(format="keras-mlp")).decode(),
        "wrong_version.json": js(_variant(version=2)).decode(),
        "bool_version.json": js(_variant(version=True)).decode(),
        "missing_layers.json": js(_variant(layers=None)).decode(),
        "empty_layers.json": js(_variant(layers=[])).decode(),
        "layer_not_object.json": js(_variant(layers=[[[1.0, -1.0], [1.0, 0.5]]])).decode(),
        "missing_biases.json": js(_variant(layers=[{"weights": [[1.0], [1.0]]}])).decode(),
        "empty_weights.json": js(_variant(layers=_layers(w0=[]))).decode(),
        "bad_shape.json": js(_variant(layers=_layers(w1=[[1.0], [-2.0], [0.5]]))).decode(),
        "bias_length.json": js(_variant(layers=_layers(b0=[0.0, 0.5, 1.0]))).decode(),
        "ragged_rows.json": js(_variant(layers=_layers(w0=[[1.0, -1.0], [1.0]]))).decode(),
        "nan_weight.json": js(_variant(layers=_layers(w0=[[1.0, float("nan")], [1.0, 0.5]]))).decode(),
        "inf_bias.json": js(_variant(layers=_layers(b1=[float("inf")]))).decode(),
        "string_weight.json": js(_variant(layers=_layers(w0=[[1.0, -1.0], ["0.5", 0.5]]))).decode(),
        "bool_weight.json": js(_variant(layers=_layers(w1=[[True], [-2.0]]))).decode(),
        "unknown_hidden_activation.json": js(_variant(hidden_activation="swish")).decode(),
        "missing_hidden_activation.json": js(_variant(hidden_activation=None)).decode(),
        "unknown_output_activation.json": js(_variant(output_activation="tanh")).decode(),
        "logistic_two_outputs.json": js(
            _variant(layers=_layers(w1=[[1.0, 0.0], [-2.0, 1.0]], b1=[-1.0, 0.0]))
        ).decode(),
        "softmax_one_output.json": js(_variant(output_activation="softmax", classes=None)).decode(),
        "input_names_length.json": js(_variant(input_names=["x1"])).decode(),
        "input_names_not_list.json": js(_variant(input_names="x1,x2")).decode(),
        "classes_length.json": js(_variant(classes=[0, 1, 2])).decode(),
        # valid JSON that Python cannot hold: an integer beyond the float range, one beyond
        # Python's 4300-digit parsing limit, and nesting deeper than the recursion limit
        "big_integer.json": js(_variant(layers=_layers(b1=["@"]))).decode().replace('"@"', "1" + "0" * 400),
        "huge_integer.json": js(_variant(layers=_layers(b1=["@"]))).decode().replace('"@"', "7" * 5000),
        "deep_nesting.json": "[" * 20000 + "]" * 20000 + "\n",
    }
    files = {name: t.encode("utf-8") for name, t in text.items()}
    # bytes that are not UTF-8 (a PNG signature and stray continuation bytes)
    files["binary_garbage.json"] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80\x81 not a model\n"
    # a pickled fitted MLPClassifier: to be refused unless the caller trusts it
    x, y = moons()
    est = MLPClassifier(hidden_layer_sizes=(2,), solver="lbfgs", max_iter=50, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)
    files["model.pkl"] = pickle.dumps(est, protocol=4)
    return files


# -- main -----------------------------------------------------------------------------------
def main() -> None:
    rows = []
    for name in TRAINED:
        net, acc = train(name)
        save_model(net, HERE / name)
        score = f"R^2 {acc:.4f}" if TRAINED[name][1] is MLPRegressor else f"acc {acc:.3f}"
        rows.append((name, net.describe(), score))
    for name in HAND:
        net = hand_network(name)
        save_model(net, HERE / name)
        z, dev = check_hand(name)
        rows.append((name, net.describe(), f"z = {z}, max|z'-z| = {dev} (eps 1/32)"))
    BROKEN.mkdir(exist_ok=True)
    for name, data in broken_files().items():
        (BROKEN / name).write_bytes(data)
    width = max(len(r[0]) for r in rows)
    arch = max(len(r[1]) for r in rows)
    print(f"{'model':<{width}}  {'architecture':<{arch}}  train")
    for name, desc, acc in rows:
        print(f"{name:<{width}}  {desc:<{arch}}  {acc}")


if __name__ == "__main__":
    main()
