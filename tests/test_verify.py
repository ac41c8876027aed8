"""Verification and quantification against answers computed independently: the closed form for
one hidden layer at a fixed input, brute force over the box vertices, and the two z3 encodings."""

from __future__ import annotations

import itertools
import os
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _nets import CTX, closed_form, dec, vertex_max_logit  # noqa: E402 - tests/ is on sys.path

import smtquant as sq
from smtquant.backends import get_backend
from smtquant.backends.base import Answer
from smtquant.exact import to_fraction
from smtquant.properties import LocalRobustness
from smtquant.verify import Query

MODELS = Path(__file__).resolve().parent.parent / "models"

TOL = Fraction(1, 10**6)
ONE_HIDDEN = ["moons_relu", "moons_linear", "linear_relu", "linear_linear", "hand_2x2", "hand_linear"]

CASES = [
    (name, scheme, x, metric)
    for name in ONE_HIDDEN
    for scheme, x in [("fixed:4", [0.5, 0.25]), ("eps:0.01", [-1.0, 0.75]), ("int:6", [1.5, -0.5]), ("rel:0.03", [0.0, 1.0])]
    for metric in ("confidence", "logit")
]


@pytest.mark.parametrize(("name", "scheme", "x", "metric"), CASES)
def test_quantify_matches_closed_form_one_hidden_layer(name: str, scheme: str, x: list[float], metric: str) -> None:
    net = sq.load_model(MODELS / f"{name}.json")
    box = sq.parse_scheme(scheme).box(net)
    xf = [to_fraction(v) for v in x]
    expected = closed_form(net, box, xf, metric)
    v = sq.quantify(net, scheme, LocalRobustness(x, metric))
    assert v.max_deviation is not None
    lo, hi = dec(v.max_deviation.lower), dec(v.max_deviation.upper)
    assert CTX.subtract(lo, Decimal("1e-30")) <= expected <= CTX.add(hi, Decimal("1e-30"))
    assert v.max_deviation.width <= TOL
    assert v.status is sq.Status.ROBUST
    assert v.witness is not None and v.witness.deviation[0] == v.max_deviation.lower
    # the decision flips at the certified value
    eps = min(Fraction(1, 10**9), Fraction(str(expected)) / 1000)
    above = Fraction(str(expected)) + eps
    below = Fraction(str(expected)) - eps
    assert sq.check_local(net, scheme, x, above, metric=metric).status is sq.Status.ROBUST
    bad = sq.check_local(net, scheme, x, below, metric=metric)
    assert bad.status is sq.Status.VIOLATED
    assert bad.witness is not None and bad.witness.deviation[0] > below


@pytest.mark.parametrize("solver", ["z3", "z3-direct"])
@pytest.mark.parametrize("metric", ["confidence", "logit"])
@pytest.mark.parametrize("name", ["moons_relu", "moons_linear", "hand_2x2"])
def test_solver_decides_both_sides_of_the_closed_form(name: str, metric: str, solver: str) -> None:
    """The bound and the attack settle these outright; ask the solver itself on both sides."""
    net = sq.load_model(MODELS / f"{name}.json")
    box = sq.parse_scheme("fixed:4").box(net)
    x = [0.5, 0.25]
    expected = Fraction(str(closed_form(net, box, [to_fraction(v) for v in x], metric)))
    q = Query(net, box, LocalRobustness(x, metric), get_backend(solver), None)
    ans, wit, _ = q.exceeds(expected - Fraction(1, 10**8))
    assert ans is Answer.SAT and wit is not None and wit.deviation[0] > expected - Fraction(1, 10**8)
    for li, (w, b) in enumerate(wit.layers):  # the witness lies in the box, exactly
        assert all(abs(w[i][j] - to_fraction(net.layers[li].weights[i, j])) <= box.weights[li][i][j]
                   for i in range(len(w)) for j in range(len(b)))
    ans, wit, _ = q.exceeds(expected + Fraction(1, 10**8))
    assert ans is Answer.UNSAT


def tiny_deep_net(seed: int, act: str) -> sq.Network:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(2, 2)).round(2), rng.normal(size=(2, 2)).round(2), rng.normal(size=(2, 1)).round(2)]
    bs = [rng.normal(size=2).round(2), rng.normal(size=2).round(2), rng.normal(size=1).round(2)]
    return sq.Network.from_lists(ws, bs, act, "logistic")


@pytest.mark.parametrize("act", ["relu", "identity"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_hidden_layers_backends_agree_and_contain_brute_force(seed: int, act: str) -> None:
    net = tiny_deep_net(seed, act)
    x = [0.5, -0.25]
    intervals = []
    for solver in ("z3", "z3-direct"):
        v = sq.quantify(net, "eps:0.0625", LocalRobustness(x, "logit"), solver=solver, tolerance=1e-5)
        assert v.status is sq.Status.ROBUST, v.reason
        intervals.append(v.max_deviation)
    (a, b) = intervals
    assert a.lower <= b.upper and b.lower <= a.upper  # overlapping certified intervals
    brute = vertex_max_logit(net, 0.0625, np.array(x))
    for iv in intervals:
        assert float(iv.upper) >= brute - 1e-12


def test_witness_is_in_the_box_and_reproduces_its_deviation() -> None:
    net = sq.load_model(MODELS / "moons_relu.json")
    v = sq.check_local(net, "fixed:2", [0.5, 0.25], 0.01)
    assert v.status is sq.Status.VIOLATED
    w = v.witness
    assert w is not None
    box = sq.parse_scheme("fixed:2").box(net)
    for li, (ww, bb) in enumerate(w.layers):
        for i, row in enumerate(ww):
            for j, val in enumerate(row):
                assert abs(val - to_fraction(net.layers[li].weights[i, j])) <= box.weights[li][i][j]
        for j, val in enumerate(bb):
            assert abs(val - to_fraction(net.layers[li].biases[j])) <= box.biases[li][j]
    # an independent float64 forward pass agrees with the exact deviation
    pert = sq.Network.from_lists([[[float(v) for v in r] for r in ww] for ww, _ in w.layers],
                                 [[float(v) for v in bb] for _, bb in w.layers], "relu", "logistic")
    xs = [float(v) for v in w.input]
    d = abs(pert.probabilities(xs)[1] - net.probabilities(xs)[1])
    assert abs(d - float(w.deviation[0])) < 1e-12 and d > 0.01


def test_global_logit_robust_and_violated_with_witness_in_region() -> None:
    net = sq.load_model(MODELS / "hand_2x2.json")
    region = [[-1.0, 1.0], [-1.0, 1.0]]
    v = sq.quantify(net, "fixed:4", sq.GlobalRobustness(region, "logit"), tolerance=1e-4, timeout=60)
    assert v.status is sq.Status.ROBUST, v.reason
    iv = v.max_deviation
    assert iv is not None and iv.width <= Fraction(1, 10**4)
    # the worst local value over a grid never exceeds the certified global upper bound
    for x in itertools.product(np.linspace(-1, 1, 5), repeat=2):
        lv = sq.quantify(net, "fixed:4", LocalRobustness(list(x), "logit"))
        assert lv.max_deviation.upper <= iv.upper + Fraction(1, 10**6)
    bad = sq.check_global(net, "fixed:4", region, iv.lower - Fraction(1, 10**3), metric="logit", timeout=60)
    assert bad.status is sq.Status.VIOLATED
    assert all(-1 <= float(c) <= 1 for c in bad.witness.input)
    good = sq.check_global(net, "fixed:4", region, iv.upper, metric="logit", timeout=60)
    assert good.status is sq.Status.ROBUST


def test_global_confidence_decides_with_pieces() -> None:
    net = sq.load_model(MODELS / "hand_2x2.json")
    region = [[-1.0, 1.0], [-1.0, 1.0]]
    v = sq.quantify(net, "fixed:4", sq.GlobalRobustness(region, "confidence"), tolerance=1e-2, timeout=120)
    assert v.status is sq.Status.ROBUST, v.reason
    iv = v.max_deviation
    assert sq.check_global(net, "fixed:4", region, iv.upper, timeout=120).status is sq.Status.ROBUST
    assert sq.check_global(net, "fixed:4", region, iv.lower * Fraction(99, 100), timeout=120).status is sq.Status.VIOLATED


def test_class_metric_local_logistic_and_softmax() -> None:
    net = sq.load_model(MODELS / "hand_single.json")
    # find a point near the decision boundary where a coarse box flips the class
    v_far = sq.check_local(net, "fixed:4", [3.0], None, metric="class")
    assert v_far.status is sq.Status.ROBUST
    soft = sq.load_model(MODELS / "blobs_softmax.json")
    flips = [sq.check_local(soft, "fixed:1", list(x), None, metric="class").status
             for x in itertools.product(np.linspace(-3, 3, 4), repeat=2)]
    assert sq.Status.UNKNOWN not in flips


def test_timeout_gives_unknown_never_robust() -> None:
    net = sq.load_model(MODELS / "moons_relu_8x8.json")
    v = sq.check_global(net, "fixed:6", [[-1.0, 2.0], [-1.0, 1.5]], 0.5, metric="logit", solver="z3-direct",
                        timeout=1.0)
    assert v.status in (sq.Status.UNKNOWN, sq.Status.VIOLATED)
    assert v.time_s < 3.0
    if v.status is sq.Status.UNKNOWN:
        assert "timeout" in v.reason


def test_tanh_hidden_units_answer_unknown_with_reason_or_bound() -> None:
    rng = np.random.default_rng(3)
    net = sq.Network.from_lists([rng.normal(size=(2, 3)), rng.normal(size=(3, 1))],
                                [rng.normal(size=3), rng.normal(size=1)], "tanh", "logistic")
    tight = sq.check_local(net, "fixed:4", [0.1, 0.2], 0.5)
    assert tight.status is sq.Status.ROBUST  # a sound interval bound suffices
    hard = sq.check_local(net, "fixed:4", [0.1, 0.2], 1e-4)
    assert hard.status in (sq.Status.VIOLATED, sq.Status.UNKNOWN)
    if hard.status is sq.Status.UNKNOWN:
        assert "tanh" in hard.reason


def test_softmax_confidence_is_unknown_not_guessed() -> None:
    soft = sq.load_model(MODELS / "blobs_softmax.json")
    v = sq.check_local(soft, "fixed:2", [0.0, 0.0], 0.3)
    assert v.status in (sq.Status.ROBUST, sq.Status.VIOLATED, sq.Status.UNKNOWN)
    if v.status is sq.Status.UNKNOWN:
        assert "softmax" in v.reason
    if v.status is sq.Status.VIOLATED:
        assert v.witness.deviation[0] > Fraction(3, 10)


def _tiny_identity_net(seed: int, sizes: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """A random identity net (weights to 3 decimals), its fixed:2 box, an input, and the float64
    parameters and radii per layer."""
    rng = np.random.default_rng(seed)
    net = sq.Network.from_lists([rng.normal(size=(a, b)).round(3) for a, b in zip(sizes, sizes[1:])],
                                [rng.normal(size=b).round(3) for b in sizes[1:]], "identity", "logistic")
    box = sq.parse_scheme("fixed:2").box(net)
    n = len(net.layers)
    return (net, box, np.array([0.7, -0.4]), tuple(l.weights for l in net.layers), tuple(l.biases for l in net.layers),
            tuple(box.float_weights(i) for i in range(n)), tuple(box.float_biases(i) for i in range(n)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_attack_climbs_to_a_block_optimal_vertex_and_finds_the_vertex_maximum(seed: int) -> None:
    """Identity hidden units: the output is linear in each layer's parameters with the others held,
    so a block-coordinate climb ends at a vertex where no one layer's change helps. On these tiny
    nets the attack's best candidate reaches the maximum over all 2^15 vertices of the box."""
    from smtquant.attack import _backward, _block_ascent, _forward, attack
    from smtquant.properties import Metric

    net, box, x, ws, bs, ew, eb = _tiny_identity_net(seed, (2, 2, 2, 1))
    z = net.forward(x)[0]
    start_w = tuple(w - e for w, e in zip(ws, ew))
    start_b = tuple(b - e for b, e in zip(bs, eb))
    for cand in _block_ascent(net, Metric.LOGIT, ws, bs, ew, eb, x, start_w, start_b):
        hs, pres = _forward(cand.weights, cand.biases, x, "identity")
        s = np.sign(hs[-1][0] - z)  # the direction this candidate climbed
        gw, gb, _ = _backward(cand.weights, hs, pres, np.array([s]), "identity")
        for i in range(3):  # every parameter sits at the end its gradient points to
            assert np.all((gw[i] == 0) | (np.sign(cand.weights[i] - ws[i]) == np.sign(gw[i])))
            assert np.all((gb[i] == 0) | (np.sign(cand.biases[i] - bs[i]) == np.sign(gb[i])))
    lo, hi = _vertex_extremes(ws, bs, ew, eb, x)
    best = max(hi - z, z - lo)
    found = attack(net, box, Metric.LOGIT, x, x)[0]
    assert found.score == pytest.approx(best, rel=1e-12)


def _vertex_extremes(ws, bs, ew, eb, x) -> tuple[float, float]:
    """min and max of the (one) output over every vertex of the box, in batches."""
    flat = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(ws, bs)])
    eps = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(ew, eb)])
    n = flat.size
    lo, hi = np.inf, -np.inf
    ids = np.arange(1 << 16)
    for chunk in range(max(1, (1 << n) >> 16)):
        codes = (chunk << 16) + ids[: min(1 << 16, 1 << n)]
        signs = ((codes[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        p, k = flat + eps * signs, 0
        h = np.broadcast_to(x, (len(codes), x.size))
        for w in ws:
            wi = p[:, k:k + w.size].reshape(-1, *w.shape)
            k += w.size
            h = np.einsum("bi,bij->bj", h, wi) + p[:, k:k + w.shape[1]]
            k += w.shape[1]
        lo, hi = min(lo, h[:, 0].min()), max(hi, h[:, 0].max())
    return lo, hi


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_end_search_reaches_the_vertex_maximum_of_three_identity_layers(seed: int) -> None:
    """Three identity hidden layers at a fixed input: the search over the ends of the first
    layer's units and the signs of the last layer's outgoing weights, with the two layers between
    in closed form, reaches the maximum and the minimum over all 2^21 vertices of the box, and
    its witnesses are vertices of the box that realize the value it claims."""
    from smtquant.attack import _end_search, _forward, attack
    from smtquant.properties import Metric

    net, box, x, ws, bs, ew, eb = _tiny_identity_net(seed, (2, 2, 2, 2, 1))
    z = net.forward(x)[0]
    lo, hi = _vertex_extremes(ws, bs, ew, eb, x)
    for g, want in ((1.0, hi - z), (-1.0, z - lo)):
        got = []
        for cand in _end_search(ws, bs, ew, eb, x, np.array([g]), np.random.default_rng(0), [], restarts=4):
            for w, e, wp in zip(ws + bs, ew + eb, cand.weights + cand.biases):
                assert np.allclose(np.abs(wp - w), e, rtol=0, atol=1e-12)  # a vertex of the box
            got.append(g * (_forward(cand.weights, cand.biases, x, "identity")[0][-1][0] - z))
        assert max(got) == pytest.approx(want, rel=1e-12)
    assert attack(net, box, Metric.LOGIT, x, x)[0].score == pytest.approx(max(hi - z, z - lo), rel=1e-12)


@pytest.mark.parametrize(("name", "scheme", "x", "metric"), CASES)
def test_interval_witness_attains_the_closed_form(name: str, scheme: str, x: list[float], metric: str) -> None:
    """One hidden layer at a fixed input: the network at the ends of the exact interval bound is a
    witness reaching the closed-form maximum (to the rounding of the ends to doubles in the box),
    so quantify certifies it without the attack or a solver."""
    net = sq.load_model(MODELS / f"{name}.json")
    box = sq.parse_scheme(scheme).box(net)
    q = Query(net, box, LocalRobustness(x, metric), get_backend("engine"), None)
    wit = q.interval_witness()
    assert wit is not None
    expected = closed_form(net, box, [to_fraction(v) for v in x], metric)
    got = dec(wit.deviation[0])
    assert got <= CTX.add(expected, Decimal("1e-30"))
    assert CTX.subtract(expected, got) <= Decimal("1e-12") * (1 + expected)
    for li, (w, b) in enumerate(wit.layers):  # inside the box, exactly
        assert all(abs(w[i][j] - to_fraction(net.layers[li].weights[i, j])) <= box.weights[li][i][j]
                   for i in range(len(w)) for j in range(len(b)))
        assert all(abs(b[j] - to_fraction(net.layers[li].biases[j])) <= box.biases[li][j] for j in range(len(b)))
    v = sq.quantify(net, scheme, LocalRobustness(x, metric), solver="engine", tolerance=1e-6)
    assert v.status is sq.Status.ROBUST and v.extra["solver_calls"] == 0


def test_interval_witness_breaks_near_ties_exactly() -> None:
    """The ends are chosen in float64 and, where a unit's two ends score within 1e-9 of each
    other, in exact arithmetic. Unit 0 here has output weight 0 and pre-activation centre 2^-58
    (from the input), so its ends differ in |u| by 2^-57 only, below float64's resolution at its
    radius; every end is a double, so the witness must attain the exact maximum exactly."""
    from _nets import closed_form_output_range

    net = sq.Network.from_lists([[[1.0, 0.5], [0.0, -0.75]], [[0.0], [0.375]]],
                                [[0.0, -0.125], [0.0625]], "identity", "identity")
    box = sq.parse_scheme("fixed:4").box(net)
    x = [2.0 ** -58, 0.25]
    q = Query(net, box, LocalRobustness(x, "logit"), get_backend("engine"), None)
    wit = q.interval_witness()
    assert wit is not None
    xs = [to_fraction(v) for v in x]
    lo, hi = closed_form_output_range(net, box, xs)
    (w1, b1), (w2, b2) = [([[to_fraction(v) for v in row] for row in layer.weights],
                           [to_fraction(v) for v in layer.biases]) for layer in net.layers]
    h = [b1[j] + sum(w1[i][j] * xs[i] for i in range(2)) for j in range(2)]
    z = b2[0] + sum(w2[j][0] * h[j] for j in range(2))
    assert wit.deviation[0] == max(hi - z, z - lo)


def test_interval_witness_with_units_off_at_both_ends_attains_the_maximum_exactly() -> None:
    """ReLU units off at both ends of their interval (by a margin far above float64's rounding)
    skip the exact tie-break, since h = 0 at either end; units at the edge are decided as before.
    At x = 0 each pre-activation is b +- eps_b: unit 0 is far off, unit 1's upper end is exactly
    0, unit 2's is 2^-50 (its bias radius is 1/32 + 2^-50; its output weight is negative, so
    maximizing wants h = 0 there) and unit 3 lies across 0. The witness attains the maximum exactly."""
    from _nets import closed_form_output_range

    eps = Fraction(1, 32)
    net = sq.Network.from_lists([[[0.5, -0.25, 0.75, 1.0], [0.125, 0.5, -1.0, 0.25]],
                                 [[1.0], [-0.5], [-2.0], [0.75]]], [[-1.0, -1 / 32, -1 / 32, 0.0], [0.0625]],
                                "relu", "identity")
    box = sq.ParameterBox.from_arrays(net, [np.full((2, 4), eps), np.full((4, 1), eps)],
                                      [np.array([eps, eps, eps + Fraction(1, 2**50), eps]), np.array([eps])])
    q = Query(net, box, LocalRobustness([0.0, 0.0], "logit"), get_backend("engine"), None)
    wit = q.interval_witness()
    assert wit is not None
    lo, hi = closed_form_output_range(net, box, [Fraction(0), Fraction(0)])
    z = Fraction(1, 16)  # at theta every hidden unit gives h = 0 (unit 3's pre-activation is 0)
    assert wit.deviation[0] == max(hi - z, z - lo) > eps


def test_resolve_box_shares_the_box_of_one_network_object_and_scheme() -> None:
    from smtquant.verify import resolve_box

    net = sq.load_model(MODELS / "moons_relu.json")
    twin = sq.load_model(MODELS / "moons_relu.json")  # equal parameters, another object
    box, spec = resolve_box(net, "fixed:4")
    assert spec == "fixed:4" and resolve_box(net, sq.parse_scheme("fixed:4"))[0] is box
    assert resolve_box(twin, "fixed:4")[0] is not box and resolve_box(net, "fixed:6")[0] is not box
    assert resolve_box(net, "fixed:6")[0].weights == sq.parse_scheme("fixed:6").box(net).weights
    assert box.weights == sq.parse_scheme("fixed:4").box(net).weights


def test_interval_witness_applies_only_where_the_interval_bound_is_exact() -> None:
    deep = sq.load_model(MODELS / "moons_relu_8x8.json")
    shallow = sq.load_model(MODELS / "moons_relu.json")
    box = sq.parse_scheme("fixed:4")
    assert Query(deep, box.box(deep), LocalRobustness([0.5, 0.25], "logit"), get_backend("engine"), None
                 ).interval_witness() is None
    region = sq.GlobalRobustness([[0, 1], [0, 1]], "logit")
    assert Query(shallow, box.box(shallow), region, get_backend("engine"), None).interval_witness() is None
    assert Query(shallow, box.box(shallow), LocalRobustness([0.5, 0.25], "class"), get_backend("engine"), None
                 ).interval_witness() is None


def test_check_and_quantify_run_with_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small matrix products are slower with several BLAS threads (much slower on busy cores), so
    check and quantify limit BLAS to one thread while they run and give the caller's limit back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen: list[list[int]] = []
    upper_bound = Query.upper_bound

    def spy(self: Query) -> Fraction:
        seen.append(blas_threads())
        return upper_bound(self)

    monkeypatch.setattr(Query, "upper_bound", spy)
    net = sq.load_model(MODELS / "moons_relu.json")
    with threadpool_limits(limits=2, user_api="blas"):
        outside = blas_threads()
        assert sq.check_local(net, "fixed:4", [0.5, 0.25], 0.5).status is not sq.Status.UNKNOWN
        assert sq.quantify(net, "fixed:4", LocalRobustness([0.5, 0.25])).status is sq.Status.ROBUST
        assert blas_threads() == outside
    assert len(seen) >= 2 and all(n == 1 for s in seen for n in s) and seen[0]
    if (os.cpu_count() or 1) >= 2:
        assert outside and max(outside) == 2  # so the limit inside was not the default


def test_auto_sends_softmax_confidence_to_a_backend_with_exp() -> None:
    """Softmax confidence needs exp: under --solver auto it goes to the smooth backend when that
    one has exp (dReal, when installed); other metrics stay with the engine."""
    from smtquant.backends import AutoBackend

    class WithExp:  # stands in for dReal, which these machines usually lack
        name = "with-exp"
        supports_softmax = True

        def unsupported(self, problem: object) -> None:
            return None

    auto = get_backend("auto")
    assert isinstance(auto, AutoBackend)
    with_exp = WithExp()
    routed = AutoBackend(auto.engine, auto.fallback, with_exp)  # type: ignore[arg-type]
    soft = sq.load_model(MODELS / "blobs_softmax.json")
    box = sq.parse_scheme("fixed:4").box(soft)
    x = [0.0, 0.0]
    q = Query(soft, box, LocalRobustness(x, "confidence"), routed, None)
    assert q.effective_backend is with_exp and q.unsupported() is None and q.solver_name == "with-exp"
    assert Query(soft, box, LocalRobustness(x, "logit"), routed, None).effective_backend is auto.engine
    if auto.softmax is None:  # no dReal here: the engine, which says why it cannot
        plain = Query(soft, box, LocalRobustness(x, "confidence"), auto, None)
        assert plain.effective_backend is auto.engine and "softmax" in (plain.unsupported() or "")
