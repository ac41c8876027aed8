"""The dual-decomposition bound for two identity hidden layers at a fixed input (smtquant/dual.py):
checked against brute force over every vertex of the parameter box (where the maximum of an
identity network's outputs lies: they are multilinear in the parameters), and inside the engine
against the branch-and-bound search it short-cuts."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

import smtquant as sq
from smtquant.backends import get_backend
from smtquant.dual import TwoLayerDual
from smtquant.exact import dyadic_forward
from smtquant.properties import LocalRobustness
from smtquant.verify import Query


def _net(seed: int, sizes: tuple[int, ...]) -> sq.Network:
    rng = np.random.default_rng(seed)
    return sq.Network.from_lists([rng.normal(size=(a, b)).round(3) for a, b in zip(sizes, sizes[1:])],
                                 [rng.normal(size=b).round(3) for b in sizes[1:]], "identity",
                                 "logistic" if sizes[-1] == 1 else "softmax")


def _vertex_max(q: Query, c: dict[int, Fraction]) -> float:
    """max of c.z' over every vertex of the box, in float64, all vertices at once."""
    layers = q.layers
    cen = np.concatenate([np.concatenate([np.array(w, float).ravel(), np.array(b, float)]) for w, b in layers])
    rad = np.concatenate([np.concatenate([np.array(w, float).ravel(), np.array(b, float)])
                          for w, b in zip(q.box.weights, q.box.biases)])
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=cen.size)))
    p = cen[None, :] + signs * rad[None, :]
    h = np.tile(np.array([float(v) for v, _ in q.problem.inputs]), (len(p), 1))
    k = 0
    for w, b in layers:
        n_in, n_out = len(w), len(b)
        wm = p[:, k:k + n_in * n_out].reshape(-1, n_in, n_out)
        k += n_in * n_out
        h = np.einsum("vi,vij->vj", h, wm) + p[:, k:k + n_out]
        k += n_out
    return float((h @ np.array([float(c.get(j, 0)) for j in range(h.shape[1])])).max())


@pytest.mark.parametrize(("seed", "sizes", "scheme"), [(0, (2, 2, 2, 1), "fixed:1"), (1, (2, 2, 2, 1), "fixed:2"),
                                                       (2, (1, 2, 2, 2), "fixed:1"), (3, (2, 3, 2, 1), "fixed:2")])
def test_dual_bound_holds_for_any_multipliers_and_meets_the_vertex_maximum(seed: int, sizes, scheme: str) -> None:
    tight = _check_dual_against_vertices(seed, sizes, scheme)
    assert tight >= 1  # (9 of the 10 directions here are tight; one has a duality gap of 0.02)


def _check_dual_against_vertices(seed: int, sizes: tuple[int, ...], scheme: str) -> int:
    net = _net(seed, sizes)
    x = [0.6, -0.3][:sizes[0]]
    q = Query(net, sq.parse_scheme(scheme).box(net), LocalRobustness(x, "logit"), get_backend("engine"), None)
    dual = TwoLayerDual(q.problem)
    rng = np.random.default_rng(seed)
    tight = 0
    for out in range(sizes[-1]):
        for s in (1, -1):
            c = {out: Fraction(s)}
            if sizes[-1] > 1:
                c[1 - out] = Fraction(int(rng.integers(-2, 3)), 2)
            top = _vertex_max(q, c)
            alphas, k0 = dual._pieces(c)
            for scale in (0.0, 0.3, 5.0):  # any multipliers give a bound (their rows are made to sum to 0)
                lam = rng.normal(size=(dual.n, dual.m)) * scale
                assert float(dual._exact_dual(alphas, k0, lam)) >= top - 1e-9
            stopped, _ = dual.bound(c, Fraction(0), deadline=0.0)  # past its deadline: still a bound
            assert float(stopped) >= top - 1e-9
            upper, (xw, layers) = dual.bound(c, Fraction(0))
            zp = dyadic_forward(layers, xw, "identity")
            assert zp is not None
            val = sum(v * zp[k] for k, v in c.items())
            for (w, b), (wp, bp), ew, eb in zip(q.layers, layers, q.box.weights, q.box.biases):  # in the box, exactly
                assert all(abs(wp[i][j] - w[i][j]) <= ew[i][j] for i in range(len(w)) for j in range(len(b)))
                assert all(abs(bp[j] - b[j]) <= eb[j] for j in range(len(b)))
            assert upper >= top - 1e-9
            assert abs(val - top) <= 1e-9  # the witness climbs to the vertex maximum on these nets
            tight += upper - val < 1e-9  # where the subproblems agree on one u, bound and witness meet
    return tight


def test_integer_and_fraction_evaluations_of_the_dual_agree() -> None:
    net = _net(4, (2, 4, 3, 1))
    q = Query(net, sq.parse_scheme("fixed:3").box(net), LocalRobustness([0.25, 0.5], "logit"),
              get_backend("engine"), None)
    dual = TwoLayerDual(q.problem)
    alphas, k0 = dual._pieces({0: Fraction(-1)})
    rng = np.random.default_rng(0)
    for _ in range(5):
        lam = rng.normal(size=(dual.n, dual.m))
        rows = [[Fraction(float(v)) for v in row[:-1]] for row in lam]
        for row in rows:
            row.append(-sum(row, Fraction(0)))
        assert dual._exact_dual(alphas, k0, lam) == dual._exact_dual_fractions(alphas, k0, rows)


@pytest.mark.parametrize("seed", [5, 6])
def test_engine_with_and_without_the_dual_certifies_the_same_maximum(seed: int, monkeypatch) -> None:
    from smtquant.engine import EngineBackend

    net = _net(seed, (2, 6, 5, 1))
    prop = LocalRobustness([0.3, -0.7], "logit")
    calls = []
    bound = TwoLayerDual.bound
    monkeypatch.setattr(TwoLayerDual, "bound", lambda self, *a, **k: calls.append(a) or bound(self, *a, **k))
    v = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert calls and v.status is sq.Status.ROBUST
    assert v.max_deviation.upper - v.max_deviation.lower <= Fraction(1, 10**6)
    top = v.max_deviation.lower
    for delta, want in ((top * Fraction(1001, 1000), sq.Status.ROBUST), (top * Fraction(999, 1000), sq.Status.VIOLATED)):
        got = sq.check(net, "fixed:2", prop, delta=delta, solver="engine", timeout=120)
        assert got.status is want  # (a violation may already be found by the attack)
        assert want is sq.Status.VIOLATED or "dual decomposition" in got.reason
    monkeypatch.setattr(EngineBackend, "_dual_first", lambda self, *a, **k: None)
    monkeypatch.setattr(EngineBackend, "_dual_decide", lambda self, problem, condition: (None, condition))
    w = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert w.status is sq.Status.ROBUST
    assert abs(w.max_deviation.upper - v.max_deviation.upper) <= Fraction(2, 10**6)
    assert abs(w.max_deviation.lower - v.max_deviation.lower) <= Fraction(2, 10**6)


def test_each_subproblem_is_maximized_over_its_whole_interval_zero_included() -> None:
    """D(lam) = K + sum_m max over corners (a, s) of [a (b2_m + s eb2_m) + sum_i max over u_i in [l_i, h_i]
    of ((a W2_im + lam_im) u_i + s a E2_im |u_i|)]: recomputed here on a grid of each interval (its ends
    and 0 included), with first-layer ranges that cross 0."""
    net = _net(10, (2, 5, 4, 1))
    q = Query(net, sq.parse_scheme("fixed:1").box(net), LocalRobustness([0.1, 0.2], "logit"),
              get_backend("engine"), None)
    dual = TwoLayerDual(q.problem)
    lo = np.array([float(v) for v in dual.lo])
    hi = np.array([float(v) for v in dual.hi])
    assert ((lo < 0) & (hi > 0)).any()
    grid = np.stack([np.linspace(a, b, 401) for a, b in zip(lo, hi)])  # (n, 401)
    grid = np.concatenate([grid, np.clip(0.0, lo, hi)[:, None]], axis=1)
    rng = np.random.default_rng(1)
    for s in (1, -1):
        alphas, k0 = dual._pieces({0: Fraction(s)})
        al = np.array([[float(a) for a in row] for row in alphas])
        for trial in range(20):
            lam = rng.normal(size=(dual.n, dual.m)) * (0.02 if trial % 2 else 1.0)
            lam -= lam.mean(axis=1, keepdims=True)
            total = float(k0)
            for m in range(dual.m):
                total += max(a * (dual.B2[m] + sg * dual.F2[m])
                             + float(((a * dual.W2[:, m] + lam[:, m])[:, None] * grid
                                      + sg * a * dual.E2[:, m][:, None] * np.abs(grid)).max(axis=1).sum())
                             for a in al[m] for sg in (1, -1))
            assert float(dual._exact_dual(alphas, k0, lam)) == pytest.approx(total, rel=1e-12, abs=1e-12)


def test_rational_input_engine_with_the_dual_agrees_with_z3() -> None:
    """A non-dyadic input (1/3, -2/7): the dual's exact evaluation takes the Fraction path and its
    witness the exact forward pass; z3 on the weight-eliminated encoding agrees."""
    net = _net(5, (2, 6, 5, 1))
    prop = LocalRobustness([Fraction(1, 3), Fraction(-2, 7)], "logit")
    v = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=60)
    assert v.status is sq.Status.ROBUST and v.max_deviation.upper - v.max_deviation.lower <= Fraction(1, 10**6)
    w = sq.quantify(net, "fixed:2", prop, solver="z3", tolerance=1e-4, timeout=60)
    assert w.max_deviation.lower <= v.max_deviation.upper and v.max_deviation.lower <= w.max_deviation.upper
