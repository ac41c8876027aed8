"""The exact engine against the z3 encodings, brute force over the box vertices, and the
closed form: one catalogue, the same statuses, overlapping certified intervals."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _nets import vertex_max_logit  # noqa: E402 - tests/ is on sys.path

import smtquant as sq
from smtquant.backends import get_backend
from smtquant.engine import Engine
from smtquant.exact import forward_enclosure
from smtquant.properties import GlobalRobustness, LocalRobustness
from smtquant.verify import Query

MODELS = Path(__file__).resolve().parent.parent / "models"


def tiny_net(seed: int, act: str, sizes: tuple[int, ...] = (2, 3, 2, 1)) -> sq.Network:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)).round(3) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(size=b).round(3) for b in sizes[1:]]
    return sq.Network.from_lists(ws, bs, act, "logistic")


CATALOGUE = [
    ("tiny-relu-0", lambda: tiny_net(0, "relu")),
    ("tiny-identity-1", lambda: tiny_net(1, "identity")),
    ("tiny-relu-2", lambda: tiny_net(2, "relu", (2, 2, 2, 1))),
    ("moons_relu", lambda: sq.load_model(MODELS / "moons_relu.json")),
    ("moons_linear", lambda: sq.load_model(MODELS / "moons_linear.json")),
    ("hand_2x2", lambda: sq.load_model(MODELS / "hand_2x2.json")),
]


@pytest.mark.parametrize(("name", "make"), CATALOGUE, ids=[c[0] for c in CATALOGUE])
@pytest.mark.parametrize("kind", ["local", "global"])
def test_engine_interval_overlaps_z3_and_decides_the_same(name: str, make, kind: str) -> None:
    net = make()
    prop = LocalRobustness([0.5, -0.25], "logit") if kind == "local" else GlobalRobustness([[-0.5, 0.5], [0, 1]], "logit")
    eng = sq.quantify(net, "fixed:3", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert eng.status is sq.Status.ROBUST, eng.reason
    assert eng.max_deviation.width <= Fraction(1, 10**6)
    if kind == "local":  # z3's own interval (bisection) where it is quick
        z3v = sq.quantify(net, "fixed:3", prop, solver="z3", tolerance=1e-3, timeout=60)
        assert z3v.status is sq.Status.ROBUST, z3v.reason
        a, b = eng.max_deviation, z3v.max_deviation
        assert a.lower <= b.upper and b.lower <= a.upper
    # decisions on both sides of the certified value agree between engine and z3-direct
    lo, up = eng.max_deviation.lower, eng.max_deviation.upper
    for delta, expected in ((up + Fraction(1, 10**5), sq.Status.ROBUST), (lo - Fraction(1, 10**5), sq.Status.VIOLATED)):
        if delta <= 0:
            continue
        # z3-direct (the reference encoding) takes ~15 s per unsat near the boundary on identity nets
        for solver in ("engine", "z3", "z3-direct") if net.hidden_activation == "relu" else ("engine", "z3"):
            v = sq.check(net, "fixed:3", prop, delta, solver=solver, timeout=120)
            assert v.status is expected, (solver, v.reason)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("act", ["relu", "identity"])
def test_engine_upper_contains_brute_force_over_vertices(seed: int, act: str) -> None:
    net = tiny_net(seed, act, (2, 2, 2, 1))
    x = np.array([0.75, -0.5])
    v = sq.quantify(net, "eps:0.125", LocalRobustness(list(x), "logit"), solver="engine")
    brute = vertex_max_logit(net, 0.125, x)
    assert float(v.max_deviation.upper) >= brute - 1e-12
    assert float(v.max_deviation.lower) >= brute - 1e-6  # the max of a ReLU net over the box is at a vertex here


def test_engine_confidence_local_matches_closed_form_path() -> None:
    net = sq.load_model(MODELS / "moons_relu_8x8.json")
    for x in ([0.0, 0.5], [1.0, 0.0], [-0.5, 0.75]):
        a = sq.quantify(net, "fixed:6", LocalRobustness(x, "confidence"), solver="engine")
        b = sq.quantify(net, "fixed:6", LocalRobustness(x, "confidence"), solver="z3", tolerance=1e-4, timeout=120)
        assert a.status is sq.Status.ROBUST
        assert a.max_deviation.width <= Fraction(1, 10**6)
        if b.status is sq.Status.ROBUST:
            assert a.max_deviation.lower <= b.max_deviation.upper and b.max_deviation.lower <= a.max_deviation.upper


def test_certificate_is_an_upper_bound_for_any_multipliers() -> None:
    """Weak duality with the variable box holds for arbitrary lam >= 0, not only optimal ones."""
    net = tiny_net(5, "relu")
    prop = LocalRobustness([0.3, 0.2], "logit")
    q = Query(net, sq.parse_scheme("eps:0.1").box(net), prop, get_backend("engine"), None)
    eng = Engine(q.problem)
    out_var = next(iter(eng.enc.zp[0].coef))
    g = {out_var: Fraction(1)}
    status, y, bound, _ = eng._solve_lp(g, [], {})
    assert status == "ok"
    rng = np.random.default_rng(0)
    for _ in range(5):
        lam = list(rng.uniform(0, 2, size=len(eng.enc.rows)))
        other = eng._certificate(g, lam, {}, [], eng.enc.lo, eng.enc.hi)
        assert other >= bound - Fraction(1, 10**9)  # never below the LP optimum (up to its float error)
    # the same at a node whose phases replace rows in place (warm LP) and tighten bounds
    k = next(i for i, nr in enumerate(eng.enc.neurons) if nr.pre >= 0)
    for ph in (1, -1):
        status, _, node_bound, certify = eng._solve_lp(g, [], {k: ph})
        if status != "ok":
            continue
        node = eng.last_node
        assert node is not None and (node.low or ph < 0)  # an active phase: a row held at >= 0 too
        assert certify() >= node_bound - Fraction(1, 10**9)
        for _ in range(3):
            lam = list(rng.uniform(0, 2, size=len(eng.enc.rows)))
            assert eng._certificate(g, lam, node.repl, [], *node.exact()) >= node_bound - Fraction(1, 10**9)
    # the bound dominates the output of the network replayed (exactly) from the LP point
    x, layers = eng.replay(y)
    zp = forward_enclosure(layers, x, "relu")[0][0]
    assert zp <= bound
    for li, (w, b) in enumerate(layers):  # and the replayed parameters lie in the box, exactly
        w0, b0 = q.layers[li]
        assert all(abs(w[i][j] - w0[i][j]) <= q.box.weights[li][i][j] for i in range(len(w)) for j in range(len(b)))
        assert all(abs(b[j] - b0[j]) <= q.box.biases[li][j] for j in range(len(b)))


def test_engine_global_class_metric_and_witness_in_region() -> None:
    net = sq.load_model(MODELS / "moons_relu.json")
    v = sq.check_global(net, "fixed:1", [[-1.0, 2.0], [-1.0, 1.5]], None, metric="class", solver="engine", timeout=120)
    assert v.status is sq.Status.VIOLATED
    assert all(lo <= float(c) <= hi for c, (lo, hi) in zip(v.witness.input, [(-1, 2), (-1, 1.5)]))
    assert v.witness.deviation[0] == 1


@pytest.mark.parametrize(("act", "sizes"), [("relu", (2, 5, 4, 1)), ("identity", (2, 4, 3, 1))])
def test_sub_box_context_of_the_root_engine_matches_a_fresh_engine(act: str, sizes: tuple[int, ...]) -> None:
    """A sub-box searched as a context of the root encoding (rows replaced in place, one warm LP)
    certifies the same maximum as an engine built on the sub-box alone, and no sampled point of
    the sub-box exceeds it."""
    from smtquant.engine import EngineBackend, tighten

    net = tiny_net(7, act, sizes)
    q = Query(net, sq.parse_scheme("fixed:3").box(net), GlobalRobustness([[-1.0, 1.0], [-0.5, 1.5]], "logit"),
              get_backend("engine"), None)
    root = tighten(q.problem)
    backend = EngineBackend()
    tol = Fraction(1, 10**7)
    subs = EngineBackend.split(root)
    subs = EngineBackend.split(subs[1]) + [subs[0]]
    rng = np.random.default_rng(3)
    if act == "identity":  # the sub-boxes get their own hull planes for the identity units
        eng = backend.engine_for(root)
        hull = {r for rows in eng.enc.hull_rows.values() for r in rows}
        assert hull and all(hull & set(eng.box_context(sub).repl) for sub in subs)
    for sub in subs:
        for s in (Fraction(1), Fraction(-1)):
            zp, z = {0: s}, {0: -s}
            in_ctx = backend._maximize_box(sub, zp, z, Fraction(0), tol, None, None, None, None, root=root)
            alone = EngineBackend()._maximize_box(sub, zp, z, Fraction(0), tol, None, None, None, None)
            assert in_ctx.complete and alone.complete
            assert abs(in_ctx.upper - alone.upper) <= 2 * tol
            for _ in range(20):  # random points of the sub-box and its parameter box stay below
                x = [lo + (hi - lo) * Fraction(int(rng.integers(0, 101)), 100) for lo, hi in sub.inputs]
                layers = [([[w[i][j] + q.box.weights[li][i][j] * int(rng.choice([-1, 1])) for j in range(len(b))]
                            for i in range(len(w))], [b[j] + q.box.biases[li][j] * int(rng.choice([-1, 1]))
                                                      for j in range(len(b))]) for li, (w, b) in enumerate(q.layers)]
                val = s * (forward_enclosure(layers, x, act)[0][0] - forward_enclosure(q.layers, x, act)[0][0])
                assert val <= in_ctx.upper


@pytest.mark.parametrize("act", ["relu", "identity"])
def test_lp_tightened_bounds_are_narrower_and_hold_at_sampled_points(act: str, monkeypatch) -> None:
    from smtquant import engine as engine_mod
    from smtquant.engine import lp_tighten, tighten

    net = tiny_net(11, act, (2, 5, 5, 5, 1))
    box = sq.parse_scheme("fixed:1").box(net)
    q = Query(net, box, LocalRobustness([0.4, -0.3], "logit"), get_backend("engine"), None)
    before = tighten(q.problem)
    after = lp_tighten(before)
    narrower = 0
    for la, lb in zip(before.perturbed_bounds.pre, after.perturbed_bounds.pre):
        for (a, b), (c, d) in zip(la, lb):
            assert a <= c and d <= b
            narrower += (c, d) != (a, b)
    assert narrower > 0  # the LP does tighten the third hidden layer here
    rng = np.random.default_rng(0)
    x = [lo for lo, _ in q.problem.inputs]
    for _ in range(200):
        layers = [([[w[i][j] + box.weights[li][i][j] * Fraction(int(rng.integers(-4, 5)), 4) for j in range(len(b))]
                    for i in range(len(w))], [b[j] + box.biases[li][j] * Fraction(int(rng.integers(-4, 5)), 4)
                                              for j in range(len(b))]) for li, (w, b) in enumerate(q.layers)]
        h = list(x)
        for li, (w, b) in enumerate(layers):
            u = [b[j] + sum(w[i][j] * h[i] for i in range(len(h))) for j in range(len(b))]
            assert all(lo <= v <= hi for v, (lo, hi) in zip(u, after.perturbed_bounds.pre[li]))
            h = [max(v, Fraction(0)) for v in u] if act == "relu" else u
    v = sq.quantify(net, "fixed:1", q.prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is sq.Status.ROBUST
    # z3's interval (certified, if wider when it stops) overlaps the engine's
    z3v = sq.quantify(net, "fixed:1", q.prop, solver="z3", tolerance=1e-3, timeout=20)
    assert v.max_deviation.lower <= z3v.max_deviation.upper and z3v.max_deviation.lower <= v.max_deviation.upper
    # and the engine without the LP tightening certifies the same maximum
    monkeypatch.setattr(engine_mod, "lp_tighten", lambda p, *a: p)
    w = sq.quantify(net, "fixed:1", q.prop, solver="engine", tolerance=1e-6, timeout=120)
    assert abs(w.max_deviation.upper - v.max_deviation.upper) <= Fraction(2, 10**6)


@pytest.mark.parametrize("act", ["relu", "identity"])
def test_box_lp_bounds_hold_in_both_networks_and_deep_boxes_certify_the_same_maximum(act: str, monkeypatch) -> None:
    """Over an input box, box_lp_tighten narrows pre-activation bounds of the perturbed and the
    original network from the second hidden layer on; sampled (x, theta') stay inside them. A
    global search that sends every box straight to that path (MAX_SPLITS = 0: LP bounds and an
    engine of the box's own) certifies the same maximum as the default search."""
    from smtquant.engine import EngineBackend, box_lp_tighten, tighten

    net = tiny_net(11, act, (2, 5, 5, 5, 1))
    scheme = "fixed:1" if act == "relu" else "fixed:3"  # (identity at fixed:1 takes about 70 s)
    box = sq.parse_scheme(scheme).box(net)
    prop = GlobalRobustness([[0.2, 0.6], [-0.5, -0.1]], "logit")
    q = Query(net, box, prop, get_backend("engine"), None)
    before = tighten(q.problem)
    after = box_lp_tighten(before)
    narrower = {True: 0, False: 0}
    for perturbed in (True, False):
        pair = ((before.perturbed_bounds, after.perturbed_bounds) if perturbed
                else (before.original_bounds, after.original_bounds))
        for li, (la, lb) in enumerate(zip(pair[0].pre, pair[1].pre)):
            for (a, b), (c, d) in zip(la, lb):
                assert a <= c and d <= b
                narrower[perturbed] += (c, d) != (a, b)
                if li == 0:
                    assert (c, d) == (a, b)  # the first layer is left to interval arithmetic
    assert narrower[True] > 0
    # the original identity network is affine in x: its zonotope bounds are exact already
    assert narrower[False] > 0 if act == "relu" else narrower[False] == 0
    rng = np.random.default_rng(5)
    for trial in range(300):
        x = [lo + (hi - lo) * Fraction(int(rng.integers(0, 9)), 8) for lo, hi in q.problem.inputs]
        scale = 0 if trial % 2 else 1  # odd trials: the original network
        layers = [([[w[i][j] + scale * box.weights[li][i][j] * Fraction(int(rng.integers(-4, 5)), 4)
                     for j in range(len(b))] for i in range(len(w))],
                   [b[j] + scale * box.biases[li][j] * Fraction(int(rng.integers(-4, 5)), 4) for j in range(len(b))])
                  for li, (w, b) in enumerate(q.layers)]
        bounds = after.perturbed_bounds if scale else after.original_bounds
        h = list(x)
        for li, (w, b) in enumerate(layers):
            u = [b[j] + sum(w[i][j] * h[i] for i in range(len(h))) for j in range(len(b))]
            assert all(lo <= v <= hi for v, (lo, hi) in zip(u, bounds.pre[li]))
            h = [max(v, Fraction(0)) for v in u] if act == "relu" else u
    v = sq.quantify(net, scheme, prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is sq.Status.ROBUST
    calls = []
    monkeypatch.setattr(EngineBackend, "MAX_SPLITS", 0)
    monkeypatch.setattr(EngineBackend, "VERTEX_LIMIT", 0)  # the search over input boxes, not the vertices
    monkeypatch.setattr(EngineBackend, "BOX_LP_BOUNDS", ("relu", "identity"))  # identity boxes skip them by default
    monkeypatch.setattr("smtquant.engine.box_lp_tighten", lambda p, *a: calls.append(p) or box_lp_tighten(p, *a))
    # every deep box first gets a budgeted search in the root's model (DEEP_TRY nodes); with a
    # budget of 1 most of them go on to the LP bounds, with none all of them do
    for budget in (1, 0):
        calls.clear()
        monkeypatch.setattr(EngineBackend, "DEEP_TRY", budget)
        w = sq.quantify(net, scheme, prop, solver="engine", tolerance=1e-6, timeout=120)
        assert calls and w.status is sq.Status.ROBUST
        assert abs(w.max_deviation.upper - v.max_deviation.upper) <= Fraction(2, 10**6)


@pytest.mark.parametrize("kind", ["abs", "relu"])
@pytest.mark.parametrize("box", [(-1, 2, 0.5, 3), (0.25, 0.75, 1, 1.5), (-2, -1, 0, 0.5), (0.3, 0.3, 0.2, 0.9),
                                 (-1, 1, 0.7, 0.7), (1, 1, 2, 2)])
def test_hull_planes_hold_on_the_region_and_touch_every_vertex(box, kind: str) -> None:
    from smtquant.engine import _hull_planes

    def f(u):
        return abs(u) if kind == "abs" else max(u, 0)

    ml, mh, rl, rh = (Fraction(v) for v in box)
    planes = _hull_planes(kind, ml, mh, rl, rh)
    if ml == mh and rl == rh:  # u ranges over one interval: the chord row already is the envelope
        assert planes == []
        return
    assert planes
    verts = [(m, r, m + s * r) for m in (ml, mh) for r in (rl, rh) for s in (-1, 1)]
    for (am, ar, au), b in planes:
        slack = [am * m + ar * r + au * u + b - f(u) for m, r, u in verts]
        assert min(slack) >= 0  # exact: the plane is above f(u) at every vertex, hence on the region
        assert min(slack) < Fraction(1, 10**9)  # and touches it (b is not padded)
    for m, r, u in verts:  # together the planes are the concave envelope: exact at the vertices
        assert min(am * m + ar * r + au * u + b for (am, ar, au), b in planes) - f(u) < Fraction(1, 10**9)
    rng = np.random.default_rng(1)
    for _ in range(500):
        m = float(ml) + float(mh - ml) * rng.random()
        r = float(rl) + float(rh - rl) * rng.random()
        u = m + r * rng.uniform(-1, 1)
        assert min(float(am) * m + float(ar) * r + float(au) * u + float(b) for (am, ar, au), b in planes) >= f(u) - 1e-12
    # strictly below the chord (triangle) of f over u's whole range [ml - rh, mh + rh] somewhere
    lo, hi = ml - rh, mh + rh
    if lo < 0 < hi:
        assert any(min(am * m + ar * r + au * u + b for (am, ar, au), b in planes)
                   < f(lo) + (f(hi) - f(lo)) * (u - lo) / (hi - lo) for m, r, u in verts)


@pytest.mark.parametrize(("act", "kind"), [("identity", "local"), ("identity", "global"), ("relu", "local")])
def test_hull_rows_tighten_the_root_and_keep_the_maximum(kind: str, act: str, monkeypatch) -> None:
    """ReLU units get hull rows at a fixed input only (on input regions they slowed the LPs)."""
    from smtquant import engine as engine_mod

    net = tiny_net(5 if act == "identity" else 4, act, (2, 6, 6, 1))
    prop = LocalRobustness([0.4, -0.3], "logit") if kind == "local" else GlobalRobustness([[-0.5, 0.5], [-0.2, 1]], "logit")
    box = sq.parse_scheme("fixed:2").box(net)
    q = Query(net, box, prop, get_backend("engine"), None)
    problem = engine_mod.tighten(q.problem)

    def root(eng: Engine) -> float:
        g = {next(iter(eng.enc.zp[0].coef)): Fraction(1)}
        for v in eng.enc.z[0].coef:
            g[v] = Fraction(-1)
        status, _, value, certify = eng._solve_lp(g, [], {})
        assert status == "ok"
        return float(certify())

    with_hull = Engine(problem)
    assert with_hull.enc.hull_rows and all(with_hull.enc.hull_rows.values())
    v = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    monkeypatch.setattr(engine_mod, "_hull_planes", lambda *a: [])
    without = Engine(problem)
    assert not any(without.enc.hull_rows.values())
    assert root(with_hull) < root(without) - 1e-6
    w = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is w.status is sq.Status.ROBUST
    assert abs(w.max_deviation.upper - v.max_deviation.upper) <= Fraction(2, 10**6)


def test_a_floor_from_the_observer_closes_nodes_and_is_reported(monkeypatch) -> None:
    """quantify's observer certifies the best deviation in any direction; a direction's search may
    close every node below it, and with the true maximum as floor it needs fewer nodes."""
    from smtquant.engine import EngineBackend

    net = tiny_net(4, "relu", (2, 6, 6, 1))
    prop = LocalRobustness([0.4, -0.3], "logit")
    v = sq.quantify(net, "fixed:1", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is sq.Status.ROBUST
    q = Query(net, sq.parse_scheme("fixed:1").box(net), prop, get_backend("engine"), None)
    z0 = q.z_point[0]
    tol = Fraction(1, 10**6)
    seen = []
    for s in (Fraction(1), Fraction(-1)):
        plain = EngineBackend().maximize(q.problem, {0: s}, {}, -s * z0, tol, None, 60)
        floored = EngineBackend().maximize(q.problem, {0: s}, {}, -s * z0, tol, None, 60,
                                           observe=lambda *a: seen.append(a) or v.max_deviation.lower)
        assert plain.complete and floored.complete
        assert plain.upper <= v.max_deviation.upper + tol  # each direction is below the maximum
        assert floored.nodes <= plain.nodes
        assert floored.floor in (None, v.max_deviation.lower)
    assert seen and all(len(a) == 4 for a in seen)


@pytest.mark.parametrize("kind", ["local", "global"])
def test_dive_points_below_the_floor_are_not_replayed_exactly(monkeypatch, kind: str) -> None:
    """An optimizing search replays a dive's LP point exactly only if its float64 replay is near
    or above the best value so far: with the true maximum as the floor, the search takes the same
    nodes to the same bound as when it replays every dive point, with fewer exact replays."""
    from smtquant.engine import EngineBackend

    net = tiny_net(6, "relu", (2, 6, 6, 6, 1)) if kind == "local" else tiny_net(4, "relu", (2, 6, 6, 1))
    prop = LocalRobustness([0.4, -0.3], "logit") if kind == "local" else GlobalRobustness([[-0.5, 0.5], [-0.2, 1]], "logit")
    v = sq.quantify(net, "fixed:1", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is sq.Status.ROBUST
    q = Query(net, sq.parse_scheme("fixed:1").box(net), prop, get_backend("engine"), None)
    tol = Fraction(1, 10**6)
    replays = {"filtered": 0, "all": 0}
    mode = ["filtered"]
    replay, dive = Engine.replay, Engine.dive

    def counted(self, y):  # type: ignore[no-untyped-def]
        replays[mode[0]] += 1
        return replay(self, y)

    monkeypatch.setattr(Engine, "replay", counted)
    results = {}
    for m in ("filtered", "all"):
        mode[0] = m
        if m == "all":  # the dive as before: every point replayed
            monkeypatch.setattr(Engine, "dive", lambda self, *a, worth=None, **k: dive(self, *a, **k))
        got = []
        for s in (Fraction(1), Fraction(-1)):
            zp, z, const = ({0: s}, {}, -s * q.z_point[0]) if kind == "local" else ({0: s}, {0: -s}, Fraction(0))
            res = EngineBackend().maximize(q.problem, zp, z, const, tol, v.max_deviation.lower, 60)
            assert res.complete and res.upper <= v.max_deviation.upper + tol
            got.append((res.nodes, res.upper))
        results[m] = got
    assert results["filtered"] == results["all"]
    assert replays["filtered"] < replays["all"]


@pytest.mark.parametrize(("act", "kind"), [("identity", "local"), ("relu", "local"), ("identity", "global"),
                                           ("relu", "global")])
def test_a_dive_fixes_every_phase_and_beats_the_point_it_starts_from(act: str, kind: str) -> None:
    """With every neuron's phase fixed the LP has no relaxation left: its optimum over the orthant
    of the replayed root point is at least that point's exact value, and no dive value exceeds
    the certified maximum."""
    from smtquant.engine import _lin_value

    net = tiny_net(6, act, (2, 5, 5, 1))
    prop = LocalRobustness([0.3, -0.2], "logit") if kind == "local" else GlobalRobustness([[-0.5, 0.5], [-0.2, 1]], "logit")
    v = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is sq.Status.ROBUST
    q = Query(net, sq.parse_scheme("fixed:2").box(net), prop, get_backend("engine"), None)
    for s in (Fraction(1), Fraction(-1)):
        eng = Engine(q.problem)
        e = eng.enc.zp[0].scaled(s).add(eng.enc.z[0], -s)

        def evaluate(y: np.ndarray, eng: Engine = eng, e=e):
            x, layers = eng.replay(y)
            zp, z = eng.outputs(x)
            return _lin_value(e.coef, e.const, eng.enc, zp, z), (x, layers)

        status, y, _, _ = eng._solve_lp(e.coef, [], {})
        assert status == "ok"
        start = evaluate(y)[0]
        signs = eng.point_signs(y)
        assert set(signs) == set(range(len(eng.enc.neurons))) and set(signs.values()) <= {1, -1}
        dived = [got[0] for got in eng.dive(e.coef, [], y, {}, None, evaluate)]
        assert dived, "the orthant of a replayed point is never empty"
        assert dived[0] >= start - Fraction(1, 10**9)
        assert max(dived) <= v.max_deviation.upper


def test_lp_time_limits_follow_the_deadline(monkeypatch) -> None:
    """Every LP stops at the engine's deadline: past it, no LP starts ("timeout") and a search
    returns incomplete; before it, the warm HiGHS model solves even after it has run longer in all
    than the time left (HiGHS compares its time limit with its run time summed over all runs, so a
    limit of just the time left would stop every later LP at once)."""
    import time

    import scipy.optimize

    from smtquant.engine import tighten

    net = tiny_net(3, "relu", (2, 6, 6, 1))
    box = sq.parse_scheme("fixed:2").box(net)
    q = Query(net, box, LocalRobustness([0.3, -0.2], "logit"), get_backend("engine"), None)
    eng = Engine(tighten(q.problem))
    assert eng.warm is not None
    out = next(iter(eng.enc.zp[0].coef))
    objectives = [{out: Fraction(1)}, {out: Fraction(-1)}]  # alternating: each LP needs simplex steps
    k = 0
    while eng.warm.h.getRunTime() < 0.3:
        assert eng._solve_lp(objectives[k % 2], [], {})[0] == "ok"
        k += 1
    monkeypatch.setattr(scipy.optimize, "linprog", lambda *a, **k: pytest.fail("fell back to linprog"))
    for _ in range(4):
        eng.deadline = time.monotonic() + 0.15  # less time left than HiGHS has run in all
        k += 1
        assert eng._solve_lp(objectives[k % 2], [], {})[0] == "ok"
    g = objectives[0]
    eng.deadline = time.monotonic() - 1.0
    assert eng._solve_lp(g, [], {})[0] == "timeout"
    res = eng.search(g, Fraction(0), [], lambda y: None, time.monotonic() - 1.0, tol=Fraction(1, 10**6))
    assert not res.complete and res.reason.startswith("timeout")


def _global_lp_engine(seed: int) -> tuple[Engine, dict[int, Fraction]]:
    """An engine (warm HiGHS model) of a 2-8-8-1 ReLU net over an input box, and the objective z' - z."""
    from smtquant.engine import tighten

    net = tiny_net(seed, "relu", (2, 8, 8, 1))
    q = Query(net, sq.parse_scheme("fixed:2").box(net), GlobalRobustness([[-1.0, 1.0], [-0.5, 1.5]], "logit"),
              get_backend("engine"), None)
    eng = Engine(tighten(q.problem))
    assert eng.warm is not None
    return eng, eng.enc.zp[0].add(eng.enc.z[0], Fraction(-1)).coef


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_second_child_started_where_the_first_ended_reaches_the_same_optimum(seed: int) -> None:
    """A node's phases are bounds only (an active ReLU holds its row u - h <= 0 at >= 0 too), so
    the second child, solved right after the first, starts where the first ended without a new
    basis. Its optimum, and its certified bound (whose multipliers include the rows' lower sides,
    so it is within 1e-6 of the LP value), match the same child started from the parent's basis."""
    eng, g = _global_lp_engine(seed)
    status, y, _, _ = eng._solve_lp(g, [], {})
    assert status == "ok"
    parent = eng.warm.last_basis
    unstable = [i for i, nr in enumerate(eng.enc.neurons) if nr.kind == "relu" and nr.pre >= 0]
    k = next(i for i in unstable if all(eng._solve_lp(g, [], {i: ph})[0] == "ok" for ph in (1, -1)))
    got: dict[int, list[float]] = {}
    for order in ((1, -1), (-1, 1)):
        eng.warm.asked = None  # (a fresh start: the first child sets its basis)
        for ph in order:
            st, _, f, certify = eng._solve_lp(g, [], {k: ph}, basis=parent)
            assert st == "ok"
            assert f - 1e-9 <= float(certify()) <= f + 1e-6 * (1 + abs(f))
            got.setdefault(ph, []).append(f)
        assert eng.warm.asked is parent[1] and eng.warm.at_optimum  # the second child skipped setBasis
        assert eng.last_node is not None and (eng.last_node.low or ph < 0)
    for a, b in got.values():  # solved second in one order, first in the other
        assert abs(a - b) <= 1e-9 * (1 + abs(a))


def test_lp_bounds_of_a_sub_box_are_the_same_in_its_own_model_and_in_the_roots() -> None:
    """box_lp_tighten solves every LP in one engine, each layer's in the context of the bounds
    found so far: in the sub-box's own model or in the root's (Engine.box_context), the
    bounds agree (to the outward rounding), are no wider than before, and some are narrower."""
    from smtquant.engine import EngineBackend, box_lp_tighten, tighten

    net = tiny_net(3, "relu", (2, 6, 5, 4, 1))
    q = Query(net, sq.parse_scheme("fixed:3").box(net), GlobalRobustness([[-1, 1], [-1, 1]], "logit"),
              get_backend("engine"), None)
    root = tighten(q.problem)  # (as the search's root is: with bounds on the difference, as its sub-boxes)
    sub = EngineBackend.split(EngineBackend.split(root)[0])[1]
    own = box_lp_tighten(sub, eng=Engine(sub))
    shared = box_lp_tighten(EngineBackend.split(EngineBackend.split(root)[0])[1], eng=Engine(root))
    narrower = 0
    for a, b, c in zip(own.perturbed_bounds.pre + own.original_bounds.pre,
                       shared.perturbed_bounds.pre + shared.original_bounds.pre,
                       sub.perturbed_bounds.pre + sub.original_bounds.pre):
        for (al, ah), (bl, bh), (cl, ch) in zip(a, b, c):
            assert abs(float(al - bl)) <= 1e-9 and abs(float(ah - bh)) <= 1e-9
            assert cl <= al <= ah <= ch and cl <= bl <= bh <= ch
            narrower += (al, ah) != (cl, ch)
    assert narrower > 0


@pytest.mark.parametrize("scheme", ["eps:0.1", "fixed:4"])
def test_the_float_certificate_is_never_below_the_exact_one_and_within_1e_9(scheme: str) -> None:
    """_float_certificate evaluates the weak-duality bound in float64 plus a proven rounding
    margin: for the same multipliers it is >= the bound summed exactly in rationals, and close
    to it, at the root, at nodes (rows replaced in place) and with an extra guard row. The
    multipliers have 40-bit mantissas within 2^40 of each other, so the exact certificate uses
    them as they are. (With the margin left out the float value falls below the exact one.)"""
    net = tiny_net(7, "relu", (2, 6, 5, 1))
    q = Query(net, sq.parse_scheme(scheme).box(net), GlobalRobustness([[-0.5, 0.5], [0, 1]], "logit"),
              get_backend("engine"), None)
    eng = Engine(q.problem)
    out_var = next(iter(eng.enc.zp[0].coef))
    g = {out_var: Fraction(1), next(iter(eng.enc.z[0].coef)): Fraction(-1, 3)}
    guard = ({out_var: Fraction(1, 7)}, Fraction(5, 3))
    rng = np.random.default_rng(1)
    units = [k for k, nr in enumerate(eng.enc.neurons) if nr.pre >= 0][:4]
    checked = 0
    for phases in ({}, {units[0]: 1}, {units[0]: -1, units[1]: 1}, {units[2]: 1, units[3]: -1}):
        node = eng._node_rows(phases)
        if node is None:
            continue
        lo, hi = node.exact()
        lo_f, hi_f = node.lo_f, node.hi_f
        assert all(Fraction(float(a)) <= v for a, v in zip(lo_f, lo)) and all(Fraction(float(b)) >= v for b, v in zip(hi_f, hi))
        for more in ([], [guard]):
            for _ in range(6):
                m = len(eng.enc.rows) + len(more)
                lam = np.ldexp(rng.integers(2**39, 2**40, size=m).astype(float), -40) * rng.choice([0.0, 1.0, 8.0], size=m)
                exact = eng._certificate(g, lam, node.repl, more, lo, hi)
                fast = eng._float_certificate(g, lam, node.repl, more, lo_f, hi_f)
                assert fast is not None
                assert fast >= exact
                assert float(fast - exact) <= 1e-9 * (1 + abs(float(exact)))
                checked += 1
    assert checked >= 24


@pytest.mark.parametrize("seed", [1, 2, 4, 5])
def test_a_child_lp_started_from_its_parents_basis_takes_fewer_pivots_and_the_same_optimum(seed: int) -> None:
    """Each node's LP starts from its parent's optimal basis: after HiGHS has moved elsewhere (the
    opposite objective on the other child), a child solved from the parent's basis reaches the
    same optimum as one solved from wherever HiGHS stood, in fewer dual simplex iterations. A
    basis of another shape (a different number of rows) is ignored."""
    eng, g = _global_lp_engine(seed)
    away = {v: -c for v, c in g.items()}
    status, y, _, _ = eng._solve_lp(g, [], {})
    assert status == "ok"
    root = eng.warm.last_basis
    assert root is not None and root[0] == eng.warm.m
    k = eng._branch(y, {})
    assert k is not None

    def child(ph: int, basis) -> tuple[str, float | None, int]:
        eng._solve_lp(away, [], {k: -ph})
        st, _, f, _ = eng._solve_lp(g, [], {k: ph}, basis=basis)
        return st, f, eng.warm.h.getInfo().simplex_iteration_count

    for ph in (1, -1):
        warm_st, warm_f, warm_it = child(ph, root)
        cold_st, cold_f, cold_it = child(ph, None)
        odd_st, odd_f, odd_it = child(ph, (root[0] + 3, root[1]))
        assert warm_st == cold_st == odd_st == "ok"
        assert abs(warm_f - cold_f) <= 1e-9 * (1 + abs(cold_f)) and abs(odd_f - cold_f) <= 1e-9 * (1 + abs(cold_f))
        assert warm_it < cold_it and warm_it < odd_it


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("kind", ["local", "global"])
@pytest.mark.parametrize("act", ["relu", "identity"])
def test_end_rows_keep_the_maximum_and_tighten_the_root(seed: int, kind: str, act: str, monkeypatch) -> None:
    """The last hidden units pinned to the end of [c - r, c + r] the objective prefers (every
    ReLU unit, identity units where that is monotone): the branch and bound certifies the same
    maximum in each direction as without those rows, at least the best box vertex (pinning the
    wrong end cuts the maximum off: these tests fail then), and the root LP's bound is no looser."""
    from smtquant import engine as engine_mod
    from smtquant.engine import EngineBackend

    # (brute force over the box's 2**17 vertices on the smaller net)
    net = tiny_net(seed, act, (2, 2, 2, 1) if kind == "local" and seed < 3 else (2, 3, 3, 1))
    x = [0.75, -0.5]
    prop = LocalRobustness(x, "logit") if kind == "local" else GlobalRobustness([[0.5, 1.0], [-0.75, -0.25]], "logit")
    scheme = "eps:0.125"
    q = Query(net, sq.parse_scheme(scheme).box(net), prop, get_backend("engine"), None)
    problem = engine_mod.tighten(q.problem)
    tol = Fraction(1, 10**7)
    best = Fraction(0)
    eng = Engine(problem)
    pinned_any = 0
    for s in (Fraction(1), Fraction(-1)):
        zp, z, const = ({0: s}, {}, -s * q.z_point[0]) if kind == "local" else ({0: s}, {0: -s}, Fraction(0))
        ups = {}
        for ends in ("1", "0"):  # the search itself (quantify may answer these nets without one)
            monkeypatch.setenv("SMTQUANT_END_ROWS", ends)
            res = EngineBackend()._maximize_box(problem, zp, z, const, tol, None, None, None, None)
            assert res.complete and res.upper is not None and res.best is not None
            assert res.upper - res.best[0] <= tol
            ups[ends] = res.upper
        assert abs(ups["1"] - ups["0"]) <= 2 * tol
        best = max(best, ups["1"])
        g = {next(iter(eng.enc.zp[0].coef)): s}
        for v in eng.enc.z[0].coef:
            g[v] = -s
        eng.ends = eng.end_rows(g, [])
        pinned_any += len(eng.ends)
        n_units = sum(1 for u in eng.layer_u[-2] if u in eng.enc.u_rows)
        assert len(eng.ends) <= n_units and (act == "identity" or len(eng.ends) == n_units)  # (no a_k = 0 here)
        status, _, _, certify = eng._solve_lp(g, [], {})
        assert status == "ok"
        pinned = certify()
        eng.ends = {}
        status, _, _, certify = eng._solve_lp(g, [], {})
        assert status == "ok" and pinned <= certify() + Fraction(1, 10**9)
    assert pinned_any > 0 or seed == 5
    if kind == "local" and seed < 3:
        assert float(best) >= vertex_max_logit(net, 0.125, np.array(x)) - 1e-12
