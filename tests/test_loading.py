"""Tests for smtquant.loading: malformed files, the exact JSON round trip, and the scikit-learn,
skops and joblib/pickle loaders."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from smtquant.errors import ModelFormatError
from smtquant.loading import from_sklearn, load_model, network_from_dict, save_model, to_json_dict
from smtquant.network import Network

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

MODELS = Path(__file__).resolve().parent.parent / "models"
BROKEN = MODELS / "broken"

# file in models/broken -> phrases its one-line error message must contain (kept equal to broken/README.md)
EXPECTED_ERRORS: dict[str, tuple[str, ...]] = {
    "bad_shape.json": ("layers[1].weights has shape (3, 1); expected (2, 1)",),
    "bias_length.json": ("layers[0].biases has 3 entries; expected 2",),
    "big_integer.json": ("layers[1].biases[0] has 401 digits, too large for a float.",),
    "binary_garbage.json": ("cannot read (UnicodeDecodeError:",),
    "bool_version.json": ('"version" must be 1. Got True instead.',),
    "bool_weight.json": ("layers[1].weights[0][0] must be a number. Got True instead.",),
    "classes_length.json": ("classes must have 2 entries. Got 3 instead.",),
    "deep_nesting.json": ("cannot parse JSON (RecursionError:",),
    "empty_file.json": ("not valid JSON (Expecting value at line 1, column 1)",),
    "empty_layers.json": ('"layers" must be a non-empty list',),
    "empty_weights.json": ("layers[0].weights must be a non-empty list of rows",),
    "huge_integer.json": ("cannot parse JSON (ValueError:", "4300 digits"),
    "inf_bias.json": ("layers[1].biases[0] = inf is not finite",),
    "input_names_length.json": ("input_names must have 2 entries. Got 1 instead.",),
    "input_names_not_list.json": ('"input_names" must be a list of strings',),
    "layer_not_object.json": ('layers[0] must be an object with "weights" and "biases"',),
    "logistic_two_outputs.json": ("a logistic output must have 1 unit", "Got 2"),
    "missing_biases.json": ('layers[0] must be an object with "weights" and "biases"',),
    "missing_hidden_activation.json": ('"hidden_activation" must be a string', "Got None instead"),
    "missing_layers.json": ('"layers" must be a non-empty list',),
    "model.pkl": ("refusing to unpickle without --trust",),
    "nan_weight.json": ("layers[0].weights[0][1] = nan is not finite",),
    "not_json.json": ("not valid JSON (Expecting value at line 6, column 13)",),
    "ragged_rows.json": ("layers[0].weights[1] has 1 entries; expected 2",),
    "softmax_one_output.json": ("a softmax output needs at least 2 output units",),
    "string_weight.json": ("layers[0].weights[1][0] must be a number. Got '0.5' instead.",),
    "top_level_list.json": ("top level must be a JSON object. Got list instead.",),
    "unknown_hidden_activation.json": (
        '"hidden_activation" must be one of relu, identity, tanh, logistic', "Got 'swish' instead",
    ),
    "unknown_output_activation.json": (
        '"output_activation" must be one of logistic, softmax, identity', "Got 'tanh' instead",
    ),
    "wrong_format.json": ('"format" must be "smtquant-mlp". Got \'keras-mlp\' instead.',),
    "wrong_version.json": ('"version" must be 1. Got 2 instead.',),
}

BROKEN_FILES = sorted(p for p in BROKEN.iterdir() if p.name != "README.md")
SHIPPED = sorted(MODELS.glob("*.json"))


def _one_line_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(ModelFormatError) as info:
        load_model(path, **kwargs)  # type: ignore[arg-type]
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    assert msg.startswith(f"{path}: "), msg
    return msg


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _moons(n: int = 40, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.uniform(-2.0, 2.0, size=(n, 2))
    if classes == 2:
        return x, (x[:, 0] * x[:, 1] > 0).astype(int)
    return x, np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.7, 0.7])


def _inputs() -> np.ndarray:
    return np.random.default_rng(2).normal(scale=2.0, size=(64, 2))


# -- models/broken: one malformed file per loader error -------------------------------------
def test_broken_directory_is_populated() -> None:
    assert len(BROKEN_FILES) >= 20


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.name)
def test_broken_file_is_rejected_with_one_named_line(path: Path) -> None:
    assert path.name in EXPECTED_ERRORS, f"{path.name} has no entry in EXPECTED_ERRORS (and broken/README.md)"
    msg = _one_line_error(path)
    for phrase in EXPECTED_ERRORS[path.name]:
        assert phrase in msg, f"{phrase!r} not in {msg!r}"


def test_every_expected_error_has_its_file() -> None:
    assert sorted(EXPECTED_ERRORS) == [p.name for p in BROKEN_FILES]


def test_broken_readme_table_matches_the_tests() -> None:
    table = {}
    for line in (BROKEN / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| (\S+) \| (.*) \|$", line)
        if m and m.group(1) not in ("file", "---"):
            table[m.group(1)] = tuple(re.findall(r"`([^`]*)`", m.group(2)))
    assert table == EXPECTED_ERRORS


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "no such file" in _one_line_error(tmp_path / "absent.json")
    assert "is a directory" in _one_line_error(tmp_path)


def test_nan_and_infinity_literals_are_what_python_json_accepts() -> None:
    assert "NaN" in (BROKEN / "nan_weight.json").read_text(encoding="utf-8")
    assert "Infinity" in (BROKEN / "inf_bias.json").read_text(encoding="utf-8")
    with pytest.raises(UnicodeDecodeError):
        (BROKEN / "binary_garbage.json").read_bytes().decode("utf-8")


def test_network_from_dict_reports_without_a_path() -> None:
    with pytest.raises(ModelFormatError, match=r"^top level must be a JSON object\. Got str instead\.$"):
        network_from_dict("{}")


# -- exact JSON round trip --------------------------------------------------------------------
def _same_bits(a: Network, b: Network) -> None:
    assert a.sizes == b.sizes
    assert (a.hidden_activation, a.output_activation) == (b.hidden_activation, b.output_activation)
    assert a.input_names == b.input_names
    assert a.classes == b.classes
    for la, lb in zip(a.layers, b.layers):
        for x, y in ((la.weights, lb.weights), (la.biases, lb.biases)):
            assert x.dtype == y.dtype == np.float64
            assert np.array_equal(x, y)
            assert np.array_equal(x.view(np.uint64), y.view(np.uint64))  # same bits, also for -0.0


def test_shipped_models_exist() -> None:
    assert len(SHIPPED) >= 11


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_json_round_trip_is_bit_exact(path: Path, tmp_path: Path) -> None:
    net = load_model(path)
    out = tmp_path / path.name
    save_model(net, out)
    _same_bits(net, load_model(out))
    assert out.read_bytes() == path.read_bytes()  # the shipped files were written by save_model


def test_round_trip_of_awkward_floats(tmp_path: Path) -> None:
    values = [0.1, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3, -2.5e-17, 123456789.123]
    net = Network.from_lists([[values]], [[float(v) * 0.5 for v in values]], "tanh", "softmax",
                             input_names=("only",), classes=tuple(f"c{i}" for i in range(len(values))))
    path = tmp_path / "awkward.json"
    save_model(net, path)
    back = load_model(path)
    _same_bits(net, back)
    assert to_json_dict(back) == to_json_dict(net)
    assert not list(tmp_path.glob("*.tmp"))


def test_save_model_to_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    net = load_model(MODELS / "hand_single.json")
    target = tmp_path / "no" / "such" / "dir" / "m.json"
    with pytest.raises(ModelFormatError, match=r"cannot write") as info:
        save_model(net, target)
    assert str(info.value).startswith(str(target)) and "\n" not in str(info.value)


def test_linear_alias_in_json_reads_as_identity(tmp_path: Path) -> None:
    d = to_json_dict(load_model(MODELS / "hand_linear.json"))
    d["hidden_activation"] = "linear"
    assert network_from_dict(d).hidden_activation == "identity"


# -- from_sklearn ------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "identity", "tanh", "logistic"])
def test_from_sklearn_binary_classifier_matches_predict_proba(activation: str, quiet: None) -> None:
    x, y = _moons()
    est = MLPClassifier(hidden_layer_sizes=(5, 3), activation=activation, max_iter=30, random_state=0).fit(x, y)
    net = from_sklearn(est)
    assert net.sizes == (2, 5, 3, 1)
    assert (net.hidden_activation, net.output_activation) == (activation, "logistic")
    assert net.classes == (0, 1) and all(type(c) is int for c in net.classes)
    xs = _inputs()
    assert np.allclose(net.probabilities(xs), est.predict_proba(xs), rtol=1e-12, atol=1e-14)
    assert np.array_equal(net.predict_class(xs), est.predict(xs))


def test_from_sklearn_softmax_classifier(quiet: None) -> None:
    x, y = _moons(60, classes=3)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=40, random_state=0).fit(x, y)
    net = from_sklearn(est)
    assert net.sizes == (2, 4, 3) and net.output_activation == "softmax" and net.classes == (0, 1, 2)
    xs = _inputs()
    assert np.allclose(net.probabilities(xs), est.predict_proba(xs), rtol=1e-12, atol=1e-14)
    assert np.array_equal(net.predict_class(xs), est.predict(xs))


def test_from_sklearn_string_classes(quiet: None) -> None:
    x, y = _moons()
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=10, random_state=0).fit(x, np.array(["no", "yes"])[y])
    assert from_sklearn(est).classes == ("no", "yes")


def test_from_sklearn_regressor(quiet: None) -> None:
    x, _ = _moons()
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, random_state=0).fit(x, x[:, 0] - x[:, 1] ** 2)
    net = from_sklearn(est)
    assert net.sizes == (2, 4, 1) and net.output_activation == "identity" and net.classes is None
    xs = _inputs()
    assert np.allclose(net.forward(xs)[:, 0], est.predict(xs), rtol=1e-12, atol=1e-12)


def test_from_sklearn_two_output_regressor(quiet: None) -> None:
    x, _ = _moons()
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=20, random_state=0).fit(x, np.c_[x[:, 0], -x[:, 1]])
    net = from_sklearn(est)
    assert net.sizes == (2, 3, 2)
    assert np.allclose(net.forward(_inputs()), est.predict(_inputs()), rtol=1e-12, atol=1e-12)


def test_from_sklearn_refuses_unfitted_models() -> None:
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(ModelFormatError, match=r"not fitted") as info:
            from_sklearn(est)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("obj", [LogisticRegression(), "model.json", None], ids=["LogisticRegression", "str", "None"])
def test_from_sklearn_refuses_other_objects(obj: object) -> None:
    with pytest.raises(ModelFormatError, match=r"expected a fitted MLPClassifier or MLPRegressor\. Got \w+ instead"):
        from_sklearn(obj)


def test_from_sklearn_refuses_poisson_regressor(quiet: None) -> None:
    x, _ = _moons()
    est = MLPRegressor(hidden_layer_sizes=(3,), loss="poisson", max_iter=10, random_state=0).fit(x, np.abs(x[:, 0]))
    with pytest.raises(ModelFormatError, match=r"out_activation_ must be one of logistic, softmax, identity"):
        from_sklearn(est)


def test_from_sklearn_copies_the_parameters(quiet: None) -> None:
    x, y = _moons()
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=10, random_state=0).fit(x, y)
    net = from_sklearn(est)
    before = net.layers[0].weights.copy()
    est.coefs_[0][0, 0] += 1.0
    assert np.array_equal(net.layers[0].weights, before)


# -- skops -------------------------------------------------------------------------------------
def test_skops_lbfgs_classifier_needs_no_trust(tmp_path: Path, quiet: None) -> None:
    sio = pytest.importorskip("skops.io")
    x, y = _moons()
    est = MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=20, random_state=0).fit(x, y)
    path = tmp_path / "m.skops"
    sio.dump(est, path)
    # skops 0.16 trusts everything an lbfgs MLPClassifier holds; if that changes, trust is required
    if sio.get_untrusted_types(file=path):
        assert "--trust" in _one_line_error(path)
        net = load_model(path, trust=True)
    else:
        net = load_model(path)
    xs = _inputs()
    assert np.allclose(net.probabilities(xs), est.predict_proba(xs), rtol=1e-12, atol=1e-14)


def test_skops_adam_classifier_needs_trust(tmp_path: Path, quiet: None) -> None:
    sio = pytest.importorskip("skops.io")
    x, y = _moons()
    est = MLPClassifier(hidden_layer_sizes=(3,), solver="adam", max_iter=5, random_state=0).fit(x, y)
    path = tmp_path / "m.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:  # skops 0.16: the fitted AdamOptimizer is not trusted by default
        msg = _one_line_error(path)
        assert "--trust" in msg and all(t in msg for t in untrusted)
    net = load_model(path, trust=True)
    xs = _inputs()
    assert np.allclose(net.probabilities(xs), est.predict_proba(xs), rtol=1e-12, atol=1e-14)


def test_skops_regressor_and_non_mlp(tmp_path: Path, quiet: None) -> None:
    sio = pytest.importorskip("skops.io")
    x, y = _moons()
    reg = MLPRegressor(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=20, random_state=0).fit(x, x[:, 0])
    sio.dump(reg, tmp_path / "r.skops")
    assert np.allclose(load_model(tmp_path / "r.skops", trust=True).forward(_inputs())[:, 0], reg.predict(_inputs()))
    sio.dump(LogisticRegression().fit(x, y), tmp_path / "lr.skops")
    assert "expected a fitted MLPClassifier or MLPRegressor" in _one_line_error(tmp_path / "lr.skops", trust=True)


def test_skops_pipeline_is_refused(tmp_path: Path, quiet: None) -> None:
    sio = pytest.importorskip("skops.io")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _moons()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=10))
    sio.dump(pipe.fit(x, y), tmp_path / "p.skops")
    assert "holds a Pipeline" in _one_line_error(tmp_path / "p.skops", trust=True)


def test_corrupt_skops_file(tmp_path: Path) -> None:
    pytest.importorskip("skops.io")
    path = tmp_path / "bad.skops"
    path.write_bytes(b"this is not a zip archive")
    assert "cannot read skops file" in _one_line_error(path, trust=True)


# -- joblib / pickle ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".joblib", ".pkl", ".pickle", ".PKL"])
def test_pickles_need_trust(suffix: str, tmp_path: Path, quiet: None) -> None:
    x, y = _moons()
    est = MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=20, random_state=0).fit(x, y)
    path = tmp_path / f"m{suffix}"
    if suffix == ".joblib":
        joblib = pytest.importorskip("joblib")
        joblib.dump(est, path)
    else:
        path.write_bytes(pickle.dumps(est))
    msg = _one_line_error(path)
    assert "--trust" in msg and "refusing to unpickle" in msg
    net = load_model(path, trust=True)
    xs = _inputs()
    assert np.allclose(net.probabilities(xs), est.predict_proba(xs), rtol=1e-12, atol=1e-14)


def test_refusal_happens_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cos\nsystem\n(S'echo should not run'\ntR.")  # would run a command if unpickled
    assert "--trust" in _one_line_error(path)


def test_shipped_pickle_is_a_fitted_mlp() -> None:
    # read with pickletools only (no code runs): the pickle names sklearn's MLPClassifier
    import pickletools

    ops = [arg for op, arg, _ in pickletools.genops((BROKEN / "model.pkl").read_bytes()) if isinstance(arg, str)]
    assert "MLPClassifier" in ops


def test_trusted_pickle_of_a_network_and_of_other_objects(tmp_path: Path) -> None:
    net = load_model(MODELS / "hand_2x2.json")
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(net))
    back = load_model(tmp_path / "net.pkl", trust=True)
    _same_bits(net, back)
    assert not any(arr.flags.writeable for _, arr in back.parameters())
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    assert "expected a fitted MLPClassifier or MLPRegressor. Got dict" in _one_line_error(tmp_path / "dict.pkl",
                                                                                           trust=True)


@pytest.mark.parametrize(
    "data, phrase",
    [
        (b"\x89 not a pickle", "cannot unpickle ("),  # joblib says KeyError, pickle UnpicklingError
        (b"", "cannot unpickle ("),
        (b"cno_such_module_for_smtquant_tests\nThing\n.", "cannot unpickle (ModuleNotFoundError"),
    ],
    ids=["garbage", "empty", "missing-module"],
)
def test_corrupt_trusted_pickle_is_one_line(data: bytes, phrase: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(data)
    assert phrase in _one_line_error(path, trust=True)
