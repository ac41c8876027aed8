"""The vertex route: identity networks over an input region are asked at the region's vertices.

The vertices against brute force over line intersections; the engine's answers on the vertex
route against its search over input boxes (VERTEX_LIMIT = 0) and against brute force over the
vertices of the parameter box at every corner of the input box."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from _nets import vertex_max_logit  # noqa: E402 - tests/ is on sys.path

import smtquant as sq
from smtquant.backends import get_backend
from smtquant.engine import EngineBackend, tighten
from smtquant.properties import GlobalRobustness, violation_condition
from smtquant.verify import Query
from smtquant.vertices import region_vertices

F = Fraction


def _feasible(p, inputs, cuts) -> bool:
    return (all(lo <= v <= hi for v, (lo, hi) in zip(p, inputs))
            and all(sum((a * v for a, v in zip(ac, p)), F(0)) <= b for ac, b in cuts))


def _brute_vertices(inputs, cuts) -> set:
    """Every feasible point where two independent boundary lines of a 2-D region meet."""
    lines = [((F(1), F(0)), inputs[0][0]), ((F(1), F(0)), inputs[0][1]), ((F(0), F(1)), inputs[1][0]),
             ((F(0), F(1)), inputs[1][1])] + [(tuple(a), b) for a, b in cuts]
    out = set()
    for (a, b), (c, d) in itertools.combinations(lines, 2):
        det = a[0] * c[1] - a[1] * c[0]
        if det == 0:
            continue
        p = ((b * c[1] - a[1] * d) / det, (a[0] * d - b * c[0]) / det)
        if _feasible(p, inputs, cuts):
            out.add(p)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_region_vertices_are_the_brute_force_vertices(seed: int) -> None:
    rng = np.random.default_rng(seed)
    empty = 0
    for _ in range(60):
        lo = [F(int(rng.integers(-4, 2)), 2) for _ in range(2)]
        inputs = [(v, v + F(int(rng.integers(1, 5)), 2)) for v in lo]
        cuts = [((F(int(rng.integers(-3, 4))), F(int(rng.integers(-3, 4)))), F(int(rng.integers(-4, 5)), 3))
                for _ in range(int(rng.integers(0, 4)))]
        cuts = [(a, b) for a, b in cuts if a != (0, 0)]
        got = region_vertices(inputs, cuts)
        assert got is not None and len(got) == len(set(got))
        assert set(got) == _brute_vertices(inputs, cuts)
        empty += not got
    assert empty < 60


def test_region_vertices_in_one_and_many_dimensions() -> None:
    box3 = [(F(0), F(1)), (F(-1), F(2)), (F(5), F(5))]  # the third coordinate fixed
    corners = region_vertices(box3, [])
    assert corners is not None and sorted(corners) == sorted((a, b, F(5)) for a in (0, 1) for b in (-1, 2))
    # a cut on the fixed coordinate only: all or nothing
    assert region_vertices(box3, [((F(0), F(0), F(1)), F(6))]) == region_vertices(box3, [((F(0), F(0), F(2)), F(10))])
    assert region_vertices(box3, [((F(0), F(0), F(1)), F(4))]) == []
    # one free coordinate: the interval cut down
    assert region_vertices([(F(0), F(4)), (F(1), F(1))], [((F(2), F(1)), F(5))]) == [(F(0), F(1)), (F(2), F(1))]
    assert region_vertices([(F(0), F(4)), (F(1), F(1))], [((F(-1), F(0)), F(-5))]) == []
    # not computed: cuts in three free dimensions, or more corners than the limit
    assert region_vertices([(F(0), F(1))] * 3, [((F(1), F(1), F(1)), F(1))]) is None
    assert region_vertices([(F(0), F(1))] * 5, []) is None
    assert len(region_vertices([(F(0), F(1))] * 5, [], limit=32) or []) == 32


def _identity_net(seed: int, sizes: tuple[int, ...]) -> sq.Network:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)).round(3) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(size=b).round(3) for b in sizes[1:]]
    return sq.Network.from_lists(ws, bs, "identity", "logistic")


REGION = [[-0.5, 1.0], [-1.0, 0.25]]


@pytest.mark.parametrize(("seed", "sizes"), [(0, (2, 2, 1)), (1, (2, 2, 2, 1)), (2, (2, 3, 1)),
                                             (3, (2, 3, 3, 3, 1))])
def test_vertex_route_meets_box_search_and_brute_force(seed: int, sizes: tuple[int, ...],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Global logit quantify on the vertex route contains the brute-force maximum (parameter-box
    vertices at every input corner) and overlaps the box search's interval; checks on either side
    of it agree between the routes, and the route taken is the one named."""
    net = _identity_net(seed, sizes)
    scheme = "fixed:3"
    prop = GlobalRobustness(REGION, "logit")
    eps = float(sq.parse_scheme(scheme).box(net).weights[0][0][0])
    n_params = sum(layer.weights.size + layer.biases.size for layer in net.layers)
    brute = (max(vertex_max_logit(net, eps, np.array(c)) for c in itertools.product(*REGION))
             if n_params <= 15 else None)  # (2^n forward passes per corner)
    got = {}
    for limit in (EngineBackend.VERTEX_LIMIT, 0):
        monkeypatch.setattr(EngineBackend, "VERTEX_LIMIT", limit)
        v = sq.quantify(net, scheme, prop, solver="engine", tolerance=1e-6, timeout=120)
        assert v.status is sq.Status.ROBUST, v.reason
        iv = v.max_deviation
        assert iv.width <= F(1, 10**6)
        if brute is not None:
            assert float(iv.upper) >= brute - 1e-9  # brute force is a lower bound...
            assert float(iv.lower) <= brute + 1e-9  # ...and at vertices of both boxes the maximum
        assert all(lo <= float(c) <= hi for c, (lo, hi) in zip(v.witness.input, REGION))
        got[limit] = iv
        for delta, expected in ((iv.upper + F(1, 10**5), sq.Status.ROBUST), (iv.lower - F(1, 10**5), sq.Status.VIOLATED)):
            w = sq.check(net, scheme, prop, delta, solver="engine", timeout=120)
            assert w.status is expected, (limit, w.reason)
    a, b = got[EngineBackend.VERTEX_LIMIT], got[0]
    assert a.lower <= b.upper and b.lower <= a.upper
    # the backend itself says which route it took
    monkeypatch.setattr(EngineBackend, "VERTEX_LIMIT", 16)
    q = Query(net, sq.parse_scheme(scheme).box(net), prop, get_backend("engine"), None)
    cond = violation_condition(net, sq.Metric.LOGIT, a.upper + F(1, 10**5), None)
    out = EngineBackend().solve(q.problem, cond, 120)
    assert out.answer.value == "unsat" and "vertices of the input region" in out.reason
    # below the maximum the backend itself (no attack before it) finds a witness in the region
    cond = violation_condition(net, sq.Metric.LOGIT, a.lower - F(1, 10**5), None)
    out = EngineBackend().solve(q.problem, cond, 120)
    assert out.answer.value == "sat" and "vertex of the input region" in out.reason
    w = q.validate(out.input, out.layers)
    assert w.deviation[0] > a.lower - F(1, 10**5)
    assert all(lo <= float(c) <= hi for c, (lo, hi) in zip(w.input, REGION))


@pytest.mark.parametrize("seed", [4, 5])
def test_vertex_route_with_guards_on_the_original_logit(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logistic confidence over a region is cut into pieces of the original logit z: the guards
    a <= z <= b become half-planes. The routes certify the same maximum on each piece, including
    pieces that miss the region (no vertex: upper None, complete)."""
    net = _identity_net(seed, (2, 3, 2, 1))
    q = Query(net, sq.parse_scheme("fixed:3").box(net), GlobalRobustness(REGION, "confidence"),
              get_backend("engine"), None)
    root = tighten(q.problem)
    zl, zh = root.original_bounds.output[0]
    cuts = [zl - 1, zl + (zh - zl) / 3, zl + (zh - zl) * 2 / 3, zh, zh + 1]
    tol = F(1, 10**7)
    seen_empty = False
    for a, b in zip(cuts, cuts[1:]):
        for s in (F(1), F(-1)):
            res = {}
            for limit in (16, 0):
                monkeypatch.setattr(EngineBackend, "VERTEX_LIMIT", limit)
                res[limit] = EngineBackend().maximize(root, {0: s}, {}, F(0), tol, None, 120, z_range=(0, a, b))
            on, off = res[16], res[0]
            assert on.complete and off.complete
            assert "vertices" in on.reason or on.upper is None
            if on.upper is None:  # the piece misses the region: no witness on either route
                assert on.best is None and off.best is None
                seen_empty = True
                continue
            assert abs(on.upper - off.upper) <= 2 * tol
            x, _ = on.best[1]
            zx = net.forward(np.array([float(v) for v in x]))[0]
            assert float(a) - 1e-9 <= zx <= float(b) + 1e-9  # the witness lies in the piece
    assert seen_empty
    # and the whole query, decided with pieces, on both sides of its maximum
    monkeypatch.setattr(EngineBackend, "VERTEX_LIMIT", 16)
    prop = GlobalRobustness(REGION, "confidence")
    v = sq.quantify(net, "fixed:3", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert v.status is sq.Status.ROBUST, v.reason
    lo, up = v.max_deviation.lower, v.max_deviation.upper
    assert sq.check(net, "fixed:3", prop, up + F(1, 10**6), solver="engine", timeout=120).status is sq.Status.ROBUST
    assert sq.check(net, "fixed:3", prop, lo - F(1, 10**6), solver="engine", timeout=120).status is sq.Status.VIOLATED
