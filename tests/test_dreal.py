"""The dReal backend: statuses agree with the exact engine on the shipped ReLU/linear twins, smooth
(logistic/tanh hidden) nets and softmax confidence are decided, every violation is validated, and
without dReal `--solver dreal` fails with one line saying what to install.

Tests marked `dreal` are skipped when `import dreal` fails (it needs dReal's libibex.so: build it
with scripts/build_ibex.sh and put its lib directory on LD_LIBRARY_PATH).
"""

from __future__ import annotations

import itertools
import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import smtquant as sq
from smtquant.backends import Answer, get_backend
from smtquant.backends import dreal_backend as db
from smtquant.backends.envelope import EnvelopeBackend
from smtquant.backends.z3_backend import Z3EliminatedBackend
from smtquant.cli import main
from smtquant.exact import exact_layers, forward_enclosure
from smtquant.properties import GlobalRobustness, LocalRobustness, Metric, deviation_enclosure, softmax_condition
from smtquant.search import quantify
from smtquant.verify import Query, resolve_box, resolve_model

MODELS = Path(__file__).resolve().parent.parent / "models"
RELU, LINEAR, SOFTMAX = (str(MODELS / n) for n in ("moons_relu.json", "moons_linear.json", "blobs_softmax.json"))
SKIP_REASON = "dReal not installed (needs libibex.so): see README, section 'Smooth activations and dReal'"


def needs_dreal(fn):  # type: ignore[no-untyped-def]
    """Mark a test `dreal` and skip it, saying why, when dReal cannot be imported."""
    return pytest.mark.dreal(pytest.mark.skipif(not db.dreal_available(), reason=SKIP_REASON)(fn))


def query(model: object, quant: str, prop: object, *, timeout: float = 10.0, **kw: object) -> Query:
    net, _ = resolve_model(model)  # type: ignore[arg-type]
    box, _ = resolve_box(net, quant)
    return Query(net, box, prop, db.DrealBackend(**kw), time.monotonic() + timeout)  # type: ignore[arg-type]


def exact_deviation(q: Query, wit: sq.Witness) -> Fraction:
    """The witness's deviation recomputed from its numbers alone (lower end of the exact enclosure)."""
    for li, (w, b) in enumerate(wit.layers):  # inside the parameter box
        w0, b0 = q.layers[li]
        assert all(abs(w[i][j] - w0[i][j]) <= q.box.weights[li][i][j] for i in range(len(w0)) for j in range(len(b0)))
        assert all(abs(b[j] - b0[j]) <= q.box.biases[li][j] for j in range(len(b0)))
    assert all(lo <= v <= hi for v, (lo, hi) in zip(wit.input, q.inputs))
    act = q.net.hidden_activation
    zp = forward_enclosure(wit.layers, wit.input, act)
    z = forward_enclosure(q.layers, wit.input, act)
    return deviation_enclosure(q.net, q.metric, zp, z)[0]


def decide(q: Query, t: Fraction) -> str:
    """dReal's status for "max D <= t" through Query.exceeds (witnesses checked independently)."""
    ans, wit, reason = q.exceeds(t)
    if ans is Answer.SAT:
        assert wit is not None and exact_deviation(q, wit) > t, reason
        return "violated"
    if ans is Answer.UNSAT:
        assert reason.startswith("dreal: unsat"), reason
        return "robust"
    assert wit is None or wit.deviation[0] <= t  # an unvalidated delta-sat is never a violation
    return "unknown"


# --------------------------------------------------------------------------- without dReal

def test_solver_dreal_missing_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if db.dreal_available():  # simulate a machine without dReal
        monkeypatch.setattr(db, "_dreal", None)
        monkeypatch.setattr(db, "_IMPORT_ERROR", "ModuleNotFoundError: No module named 'dreal'")
    code = main(["local", RELU, "--input", "0.5,0.25", "--quant", "fixed:4", "--delta", "0.1", "--solver", "dreal"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "pip install dreal" in lines[0] and "build_ibex.sh" in lines[0]


# --------------------------------------------------------------------------- with dReal

@needs_dreal
def test_get_backend_precision() -> None:
    b = get_backend("dreal", precision=1e-5)
    assert b.name == "dreal" and b.precision == 1e-5  # type: ignore[attr-defined]
    assert get_backend("dreal").precision == db.DEFAULT_PRECISION  # type: ignore[attr-defined]


TWIN_LOCAL = [(0.5, 0.25), (-0.5, 0.5), (1.5, -0.25)]


@needs_dreal
@pytest.mark.parametrize("model", [RELU, LINEAR])
def test_twins_local_agree_with_engine_and_z3(model: str) -> None:
    decided = total = 0
    for quant, x in itertools.product(("fixed:4", "fixed:6", "fixed:8"), TWIN_LOCAL):
        prop = LocalRobustness(x)
        v = quantify(model, quant, prop, solver="engine", timeout=20)  # the engine's certified interval
        lo, hi = v.max_deviation.lower, v.max_deviation.upper
        q = query(model, quant, prop)
        qz = Query(q.net, q.box, prop, Z3EliminatedBackend(), time.monotonic() + 20)  # type: ignore[arg-type]
        for t, engine in ((lo * Fraction(97, 100), "violated"), (hi * Fraction(103, 100), "robust")):
            ans_z3 = qz.exceeds(t)[0]  # z3 on the same threshold, asked directly (no bound, no attack)
            assert ans_z3 is (Answer.SAT if engine == "violated" else Answer.UNSAT), (model, quant, x, float(t))
            got = decide(q, t)
            total += 1
            if got != "unknown":
                decided += 1
                assert got == engine, (model, quant, x, float(t))
    assert decided >= total - 2, f"dReal decided only {decided} of {total}"


@needs_dreal
@pytest.mark.parametrize(("model", "quant"), [(RELU, "fixed:4"), (RELU, "fixed:6"), (LINEAR, "fixed:4")])
def test_twins_global_agree_with_engine(model: str, quant: str) -> None:
    prop = GlobalRobustness([[0.5, 0.55], [0.25, 0.3]])
    v = quantify(model, quant, prop, solver="engine", timeout=20)
    lo, hi = v.max_deviation.lower, v.max_deviation.upper
    q = query(model, quant, prop, timeout=8)
    got = [decide(q, lo * Fraction(97, 100)), decide(q, hi * Fraction(103, 100))]
    assert got[0] in ("violated", "unknown") and got[1] in ("robust", "unknown")
    assert got != ["unknown", "unknown"]


@needs_dreal
@pytest.mark.parametrize("name", ["moons_logistic", "moons_tanh"])
def test_shipped_smooth_models_decided_by_dreal_and_envelopes(name: str) -> None:
    """The shipped logistic- and tanh-hidden models: dReal's answers on both sides of the certified
    interval (the interval bound is exact for one hidden layer at a fixed input)."""
    path = str(MODELS / f"{name}.json")
    prop = LocalRobustness((0.5, 0.25), "logit")
    q = query(path, "fixed:6", prop, timeout=20)
    hi = q.upper_bound()
    assert decide(q, hi * Fraction(101, 100)) == "robust"
    assert decide(q, hi * Fraction(9, 10)) == "violated"
    # the piecewise-linear envelopes (no dReal) give the same answers on the same thresholds
    qe = Query(q.net, q.box, prop, EnvelopeBackend(), time.monotonic() + 20)  # type: ignore[arg-type]
    assert qe.exceeds(hi * Fraction(101, 100))[0] is Answer.UNSAT
    assert qe.exceeds(hi * Fraction(9, 10))[0] is Answer.SAT


@needs_dreal
def test_direct_encoding_agrees() -> None:
    prop = LocalRobustness((0.5, 0.25))
    v = quantify(RELU, "fixed:4", prop, solver="engine")
    q = query(RELU, "fixed:4", prop, mode="direct")
    assert decide(q, v.max_deviation.lower * Fraction(97, 100)) == "violated"
    assert decide(q, v.max_deviation.upper * Fraction(103, 100)) == "robust"


def smooth_net(act: str, seed: int) -> sq.Network:
    rng = np.random.default_rng(seed)
    return sq.Network.from_lists([rng.normal(size=(2, 3)), rng.normal(size=(3, 1))],
                                 [rng.normal(size=3), rng.normal(size=1)], act, "logistic")


def sampled_lower(q: Query, x: tuple[float, ...], n_random: int = 2000) -> Fraction:
    """max D over every vertex of the box and random points of it, the best one recomputed exactly."""
    net = q.net
    flat = np.concatenate([np.concatenate([l.weights.ravel(), l.biases]) for l in net.layers])
    eps = np.concatenate([np.concatenate([np.array([[float(e) for e in r] for r in q.box.weights[li]]).ravel(),
                                          np.array([float(e) for e in q.box.biases[li]])])
                          for li in range(len(net.layers))])
    rng = np.random.default_rng(1)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=flat.size)))
    samples = np.vstack([signs, rng.uniform(-1, 1, size=(n_random, flat.size))])
    best, best_dev = None, -1.0
    z = net.forward(x)[0]
    for s in samples:
        p = flat + eps * s
        layers, k = [], 0
        for l in net.layers:
            w = p[k:k + l.weights.size].reshape(l.weights.shape)
            k += l.weights.size
            b = p[k:k + l.biases.size]
            k += l.biases.size
            layers.append(sq.Layer(w, b))
        zp = net.with_layers(layers).forward(x)[0]
        dev = abs(zp - z) if q.metric is Metric.LOGIT else abs(1 / (1 + np.exp(-zp)) - 1 / (1 + np.exp(-z)))
        if dev > best_dev:
            best, best_dev = layers, dev
    cand = net.with_layers(best)  # type: ignore[arg-type]
    wit = q.validate([Fraction(v) for v in x], exact_layers(cand))
    return wit.deviation[0]


@needs_dreal
@pytest.mark.parametrize("act", ["logistic", "tanh"])
@pytest.mark.parametrize("metric", ["confidence", "logit"])
def test_smooth_hidden_local_decided(act: str, metric: str) -> None:
    net = smooth_net(act, seed=3)
    for x in ((0.5, -0.25), (-1.0, 0.75)):
        q = query(net, "fixed:4", LocalRobustness(x, metric))
        upper = q.upper_bound()  # sound interval bound
        lower = sampled_lower(q, x)  # witnessed by a sample
        assert 0 < lower <= upper
        assert decide(q, upper * Fraction(102, 100)) == "robust"
        assert decide(q, lower * Fraction(98, 100)) == "violated"


@needs_dreal
def test_smooth_hidden_global_confidence() -> None:
    net = smooth_net("logistic", seed=3)
    prop = GlobalRobustness([[0.0, 0.25], [-0.25, 0.0]])
    q = query(net, "fixed:4", prop)
    wit = q.attack()
    assert wit is not None
    assert decide(q, wit.deviation[0] * Fraction(95, 100)) == "violated"
    assert decide(q, q.upper_bound() * Fraction(102, 100)) == "robust"


SOFTMAX_INPUTS = [(0.75, -2.25), (1.25, 1.0)]


@needs_dreal
@pytest.mark.parametrize("x", SOFTMAX_INPUTS)
def test_softmax_confidence_decided(x: tuple[float, float]) -> None:
    q = query(SOFTMAX, "fixed:4", LocalRobustness(x))
    assert q.unsupported() is None
    wit = q.attack()
    assert wit is not None and wit.deviation[0] > 0
    assert decide(q, wit.deviation[0] * Fraction(98, 100)) == "violated"
    assert decide(q, q.upper_bound() * Fraction(102, 100)) == "robust"


@needs_dreal
def test_softmax_at_the_maximum_is_never_violated() -> None:
    # here a vertex reaches the interval bound (up to the width of exp enclosures): D > upper has
    # no solution, but its non-strict relaxation touches that vertex, so dReal answers delta-sat;
    # that candidate must not become a violation
    q = query(SOFTMAX, "fixed:4", LocalRobustness((1.25, 1.0)))
    upper, wit = q.upper_bound(), q.attack()
    assert wit is not None and 0 <= upper - wit.deviation[0] < Fraction(1, 10**15)
    ans, _, reason = q.exceeds(upper)
    assert ans is not Answer.SAT
    assert ans is Answer.UNSAT or "did not validate" in reason


@needs_dreal
def test_softmax_confidence_cli_robust_by_dreal(capsys: pytest.CaptureFixture[str]) -> None:
    # delta between the best witness (0.390692) and the interval bound (0.390727): only the solver decides
    code = main(["local", SOFTMAX, "--input", "0.75,-2.25", "--quant", "fixed:4", "--delta", "0.3907",
                 "--metric", "confidence", "--solver", "dreal", "--json"])
    row = json.loads(capsys.readouterr().out)
    assert code == 0 and row["status"] == "robust" and row["solver"] == "dreal"
    assert "dreal: unsat" in row["reason"]


@needs_dreal
def test_cli_violation_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["local", RELU, "--input", "0.5,0.25", "--quant", "fixed:4", "--delta", "0.29", "--solver", "dreal",
                 "--json"])
    row = json.loads(capsys.readouterr().out)
    assert code == 1 and row["status"] == "violated" and row["witness"]["validated"] is True
    assert row["witness"]["deviation"] > 0.29


@needs_dreal
def test_timeout_gives_unknown() -> None:
    # global confidence just above the true maximum (0.0304): dReal needs far longer than 0.5 s
    q = query(LINEAR, "fixed:6", GlobalRobustness([[0.5, 0.55], [0.25, 0.3]]), precision=1e-9)
    cond = softmax_condition(q.net, Fraction(313, 10000), None)
    start = time.monotonic()
    out = q.backend.solve(q.problem, cond, 0.5)
    assert time.monotonic() - start < 5
    assert out.answer is Answer.UNKNOWN and out.reason == "timeout after 0.5 s"
