"""Tests for smtquant.network (the model IR) and for the facts models/README.md states about the
shipped models: architecture, train score, and the hand-computed answers of the hand-built nets."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import itertools
import random
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from smtquant.errors import ModelFormatError
from smtquant.exact import exact_layers, forward_enclosure
from smtquant.loading import load_model
from smtquant.network import Layer, Network

MODELS = Path(__file__).resolve().parent.parent / "models"
EPS = Fraction(1, 32)  # eps:0.03125, the radius of fixed:4


def _net(hidden: str = "relu", output: str = "logistic", **kwargs: object) -> Network:
    return Network.from_lists(
        [[[1.0, -1.0], [1.0, 0.5]], [[1.0], [-2.0]]] if output != "softmax" else [[[1.0, -1.0], [1.0, 0.5]]],
        [[0.0, 0.5], [-1.0]] if output != "softmax" else [[0.0, 0.5]],
        hidden, output, **kwargs,
    )


# -- invariants of the IR ----------------------------------------------------------------------
def test_arrays_are_read_only_float64_copies() -> None:
    w = np.array([[1.0, 2.0]])
    b = [0.5, -0.5]
    layer = Layer(w, b)  # type: ignore[arg-type]
    w[0, 0] = 99.0
    assert layer.weights[0, 0] == 1.0
    for arr in (layer.weights, layer.biases):
        assert arr.dtype == np.float64 and not arr.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        layer.weights[0, 0] = 3.0
    with pytest.raises(ValueError, match="read-only"):
        layer.biases[:] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.weights = np.zeros((1, 2))  # type: ignore[misc]


def test_network_is_frozen_and_layers_are_a_tuple() -> None:
    net = _net()
    assert isinstance(net.layers, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.hidden_activation = "tanh"  # type: ignore[misc]
    for _name, arr in net.parameters():
        with pytest.raises(ValueError):
            arr.flat[0] = 1.0


@pytest.mark.parametrize("model", ["hand_2x2.json", "moons_relu.json", "blobs_softmax.json"])
def test_loaded_arrays_are_read_only(model: str) -> None:
    net = load_model(MODELS / model)
    for _name, arr in net.parameters():
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[...] = 0.0


@pytest.mark.parametrize(
    "given, canonical",
    [("linear", "identity"), ("Linear", "identity"), ("identity", "identity"), ("ReLU", "relu"),
     ("sigmoid", "logistic"), ("tanh", "tanh")],
)
def test_activation_aliases(given: str, canonical: str) -> None:
    assert _net(hidden=given).hidden_activation == canonical


def test_unknown_activations() -> None:
    with pytest.raises(ModelFormatError, match=r"hidden_activation must be one of .* Got 'swish' instead"):
        _net(hidden="swish")
    with pytest.raises(ModelFormatError, match=r"output_activation must be one of .* Got 'relu' instead"):
        _net(output="relu")
    with pytest.raises(ModelFormatError, match=r"hidden_activation must be a string"):
        _net(hidden=None)  # type: ignore[arg-type]


def test_layer_shape_errors() -> None:
    with pytest.raises(ModelFormatError, match=r"biases must have 3 entries .* Got 2 instead"):
        Layer(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ModelFormatError, match=r"weights must be a 2-D array\. Got shape \(3,\)"):
        Layer(np.zeros(3), np.zeros(3))
    with pytest.raises(ModelFormatError, match=r"biases must be a 1-D array"):
        Layer(np.zeros((2, 1)), np.zeros((1, 1)))
    with pytest.raises(ModelFormatError, match=r"at least one row and column"):
        Layer(np.zeros((0, 2)), np.zeros(2))
    with pytest.raises(ModelFormatError, match=r"must be numbers"):
        Layer([[1.0, "a"]], [0.0, 0.0])  # type: ignore[arg-type]


def test_network_shape_errors() -> None:
    with pytest.raises(ModelFormatError, match=r"layers\[1\]\.weights has 3 rows; expected 2"):
        Network((Layer(np.ones((2, 2)), np.zeros(2)), Layer(np.ones((3, 1)), np.zeros(1))))
    with pytest.raises(ModelFormatError, match=r"at least one layer"):
        Network(())
    with pytest.raises(ModelFormatError, match=r"layers\[0\] must be a Layer"):
        Network(([[1.0]],))  # type: ignore[arg-type]
    with pytest.raises(ModelFormatError, match=r"2 weight matrices but 1 bias vectors"):
        Network.from_lists([[[1.0]], [[1.0]]], [[0.0]])
    with pytest.raises(ModelFormatError, match=r"a logistic output must have 1 unit"):
        Network.from_lists([[[1.0, 2.0]]], [[0.0, 0.0]], "relu", "logistic")
    with pytest.raises(ModelFormatError, match=r"a softmax output needs at least 2 output units"):
        Network.from_lists([[[1.0]]], [[0.0]], "relu", "softmax")
    with pytest.raises(ModelFormatError, match=r"input_names must have 2 entries\. Got 3 instead"):
        _net(input_names=("a", "b", "c"))
    with pytest.raises(ModelFormatError, match=r"classes must have 2 entries\. Got 1 instead"):
        _net(classes=(1,))
    with pytest.raises(ModelFormatError, match=r"classes must have 2 entries\. Got 3 instead"):
        _net(output="softmax", classes=(0, 1, 2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_parameters_are_rejected(bad: float) -> None:
    with pytest.raises(ModelFormatError, match=r"weights\[1, 0\] = .* is not finite"):
        Layer(np.array([[1.0, 2.0], [bad, 0.0]]), np.zeros(2))
    with pytest.raises(ModelFormatError, match=r"biases\[1\] = .* is not finite"):
        Layer(np.ones((1, 2)), np.array([0.0, bad]))


def test_shape_facts_and_describe() -> None:
    net = _net(input_names=["x1", "x2"], classes=[0, 1])
    assert net.sizes == (2, 2, 1)
    assert (net.n_inputs, net.n_outputs, net.n_parameters) == (2, 1, 9)
    assert net.input_names == ("x1", "x2") and net.classes == (0, 1)
    assert net.is_piecewise_linear and not _net(hidden="tanh").is_piecewise_linear
    assert [name for name, _ in net.parameters()] == [
        "layers[0].weights", "layers[0].biases", "layers[1].weights", "layers[1].biases",
    ]
    assert net.describe() == "2-2-1 relu -> logistic (9 parameters)"


def test_with_layers_returns_a_new_network() -> None:
    net = _net(input_names=("x1", "x2"), classes=(0, 1))
    other = net.with_layers([Layer(np.eye(2), np.zeros(2)), Layer(np.ones((2, 1)), np.zeros(1))])
    assert other is not net and other.input_names == net.input_names and other.classes == net.classes
    assert net.forward([1.0, 1.0])[0] == 1.0 and other.forward([1.0, 1.0])[0] == 2.0
    with pytest.raises(ModelFormatError):
        net.with_layers([Layer(np.eye(3), np.zeros(3)), Layer(np.ones((3, 1)), np.zeros(1))])


def test_forward_values_by_hand() -> None:
    x = [1.0, 1.0]
    assert _net("relu").forward(x).tolist() == [1.0]
    assert _net("identity").forward([1.0, 2.0]).tolist() == [1.0 * 3.0 - 2.0 * 0.5 - 1.0]
    assert _net("relu").forward([1.0, 2.0]).tolist() == [1.0 * 3.0 - 2.0 * 0.5 - 1.0]
    assert _net("relu").forward([2.0, 0.0]).tolist() == [1.0]  # hidden 1: -2 + 0.5 < 0 is cut
    assert _net("identity").forward([2.0, 0.0]).tolist() == [4.0]
    assert np.allclose(_net("tanh").forward(x), [np.tanh(2.0) - 2.0 * np.tanh(0.0) - 1.0])
    assert np.allclose(_net("logistic").forward(x), [1 / (1 + np.exp(-2.0)) - 2.0 * 0.5 - 1.0])


def test_batch_forward_equals_row_by_row() -> None:
    xs = np.random.default_rng(0).normal(size=(20, 2))
    for hidden in ("relu", "identity", "tanh", "logistic"):
        net = _net(hidden)
        assert np.array_equal(net.forward(xs), np.array([net.forward(x) for x in xs]))


def test_predict_class_logistic_is_z_positive() -> None:
    net = Network.from_lists([[[1.0]]], [[0.0]], "relu", "logistic")  # z = x
    assert net.predict_class([1e-300]) == 1
    assert net.predict_class([0.0]) == 0  # z = 0 is class 0 (1 iff z > 0)
    assert net.predict_class([-0.0]) == 0
    assert net.predict_class([-2.0]) == 0
    assert net.predict_class(np.array([[-1.0], [0.0], [5e-324], [3.0]])).tolist() == [0, 0, 1, 1]


def test_probabilities() -> None:
    net = Network.from_lists([[[1.0]]], [[0.0]], "relu", "logistic")
    assert net.probabilities([0.0]).tolist() == [0.5, 0.5]
    p = net.probabilities(np.array([[-3.0], [2.0]]))
    assert p.shape == (2, 2) and np.allclose(p.sum(axis=1), 1.0) and np.allclose(p[1, 1], 1 / (1 + np.exp(-2.0)))
    soft = _net(output="softmax")
    q = soft.probabilities([[1.0, 1.0], [2.0, 0.0]])
    assert np.allclose(q.sum(axis=1), 1.0)
    assert soft.predict_class([[1.0, 1.0], [-1.0, 1.0]]).tolist() == [0, 1]
    reg = _net(output="identity")
    assert np.array_equal(reg.probabilities([1.0, 1.0]), reg.forward([1.0, 1.0]))


# -- the shipped models and models/README.md ---------------------------------------------------
def _readme_sections() -> dict[str, dict[str, str]]:
    """{"model.json": {"Architecture": "2-8-1, ...", ...}}: the "- Key: value" items under "## model.json"."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    key = None
    for line in (MODELS / "README.md").read_text(encoding="utf-8").splitlines():
        head = re.match(r"^#+ (\S+)", line)
        item = re.match(r"^- ([^:]+): (.*)$", line)
        if head:
            current = sections.setdefault(head.group(1), {}) if head.group(1).endswith(".json") else None
            key = None
        elif item and current is not None:
            key = item.group(1)
            current[key] = item.group(2)
        elif line.startswith("  ") and current is not None and key is not None:  # an item continued
            current[key] += " " + line.strip()
        else:
            key = None
    return sections


README = _readme_sections()
SHIPPED = sorted(p.name for p in MODELS.glob("*.json"))
HAND = sorted(name for name in SHIPPED if name.startswith("hand_"))


def _frac(text: str) -> Fraction:
    """The fraction that starts ``text``, or follows its first ``z = ``."""
    m = re.match(r"^(?:z = )?(-?\d+(?:/\d+)?)", text.strip())
    assert m, text
    return Fraction(m.group(1))


def _last_value(text: str) -> Fraction:
    """The fraction after the last '=' (e.g. "max z' = (33/32)(17/16) + 1/32 = 577/512" -> 577/512)."""
    return _frac(text.rsplit("=", 1)[1])


def test_every_shipped_model_has_a_readme_section_and_back() -> None:
    assert SHIPPED and sorted(README) == SHIPPED
    assert set(HAND) == {"hand_single.json", "hand_2x2.json", "hand_linear.json"}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_architecture_matches_readme(name: str) -> None:
    net = load_model(MODELS / name)
    m = re.match(r"^([\d-]+), hidden (\w+), output (\w+) \((\d+) parameters\)$", README[name]["Architecture"])
    assert m, README[name]["Architecture"]
    assert "-".join(str(s) for s in net.sizes) == m.group(1)
    assert (net.hidden_activation, net.output_activation) == (m.group(2), m.group(3))
    assert net.n_parameters == int(m.group(4))
    assert net.input_names == (("x1",) if net.n_inputs == 1 else ("x1", "x2"))
    if net.output_activation == "identity":
        assert net.classes is None
    else:
        assert net.classes == tuple(range(max(2, net.n_outputs)))


@functools.lru_cache(maxsize=1)
def _make_models():
    spec = importlib.util.spec_from_file_location("make_models", MODELS / "make_models.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("name", [n for n in SHIPPED if not n.startswith("hand_")])
def test_shipped_train_score_matches_readme(name: str) -> None:
    pytest.importorskip("sklearn")
    mm = _make_models()
    x, y = mm.DATASETS[mm.TRAINED[name][0]]()
    net = load_model(MODELS / name)
    if net.output_activation == "identity":
        z = net.forward(x)[:, 0]
        score, documented = 1 - np.sum((y - z) ** 2) / np.sum((y - y.mean()) ** 2), README[name]["Train R^2"]
        assert abs(score - float(documented)) <= 0.5e-4
    else:
        score, documented = np.mean(net.predict_class(x) == y), README[name]["Train accuracy"]
        assert abs(score - float(documented.split()[0])) <= 0.5e-3


def _input_of(name: str) -> tuple[Fraction, ...]:
    text = re.match(r"^x = \(([^)]*)\)$", README[name]["Input"]).group(1)  # type: ignore[union-attr]
    return tuple(Fraction(v) for v in text.split(","))


def _z(layers: list, x: tuple[Fraction, ...], hidden: str) -> Fraction:
    (lo, hi), = forward_enclosure(layers, x, hidden)
    assert lo == hi  # relu / identity: exact
    return lo


@pytest.mark.parametrize("name", HAND)
def test_hand_built_logit_is_the_documented_fraction(name: str) -> None:
    net = load_model(MODELS / name)
    assert all(np.all(a * 64 == np.round(a * 64)) for _, a in net.parameters())  # dyadic, exact in binary
    x = _input_of(name)
    z = _z(exact_layers(net), x, net.hidden_activation)
    assert z == _frac(README[name]["Logit"])
    assert float(z) == float(net.forward([float(v) for v in x])[0])


def _vertex_extremes(net: Network, x: tuple[Fraction, ...]) -> tuple[Fraction, Fraction]:
    """min and max of z' over the vertices of the box eps = 1/32 (all 2^n_parameters sign patterns)."""
    base = exact_layers(net)
    n = net.n_parameters
    lo = hi = None
    for signs in itertools.product((-EPS, EPS), repeat=n):
        it = iter(signs)
        layers = [([[v + next(it) for v in row] for row in w], [v + next(it) for v in b]) for w, b in base]
        z = _z(layers, x, net.hidden_activation)
        lo = z if lo is None else min(lo, z)
        hi = z if hi is None else max(hi, z)
    return lo, hi  # type: ignore[return-value]


@pytest.mark.parametrize("name", HAND)
def test_hand_built_max_logit_deviation_is_the_documented_fraction(name: str) -> None:
    net = load_model(MODELS / name)
    x = _input_of(name)
    z = _z(exact_layers(net), x, net.hidden_activation)
    lo, hi = _vertex_extremes(net, x)
    documented = _frac(README[name]["Max logit deviation"])
    assert max(hi - z, z - lo) == documented
    # the documented output range and the class verdict
    upper, lower = README[name]["Output range"].split(";")
    assert upper.startswith("max z' = ") and lower.strip().startswith("min z' = ")
    assert (_last_value(upper), _last_value(lower)) == (hi, lo)
    assert lo > 0 and README[name]["Class"].startswith("robust")
    # no interior point of the box does better than the vertices (z' is monotone in each parameter)
    rng = random.Random(0)
    base = exact_layers(net)
    for _ in range(100):
        layers = [([[v + EPS * Fraction(rng.randint(-8, 8), 8) for v in row] for row in w],
                   [v + EPS * Fraction(rng.randint(-8, 8), 8) for v in b]) for w, b in base]
        assert abs(_z(layers, x, net.hidden_activation) - z) <= documented


def test_hand_built_answers_in_numbers() -> None:
    assert _frac(README["hand_single.json"]["Max logit deviation"]) == Fraction(65, 512)
    assert _frac(README["hand_2x2.json"]["Max logit deviation"]) == Fraction(3, 8)
    assert _frac(README["hand_linear.json"]["Max logit deviation"]) == Fraction(195, 512)
    for name in HAND:
        assert _frac(README[name]["Logit"]) == 1


def test_make_models_check_agrees() -> None:
    mm = _make_models()
    for name in HAND:
        assert mm.check_hand(name) == (_frac(README[name]["Logit"]), _frac(README[name]["Max logit deviation"]))
