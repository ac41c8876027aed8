"""The nested dual-decomposition bound for three identity hidden layers at a fixed input
(smtquant/dual3.py): checked against brute force over every vertex of the parameter box (an
identity network's outputs are multilinear in the parameters, so their extremes lie there),
against an independent evaluation of the unreduced dual in Fractions, and inside the engine."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pytest

import smtquant as sq
from smtquant import dual3
from smtquant.backends import get_backend
from smtquant.dual3 import ThreeLayerDual
from smtquant.exact import dyadic_forward
from smtquant.properties import LocalRobustness
from smtquant.verify import Query


def _net(seed: int, sizes: tuple[int, ...]) -> sq.Network:
    rng = np.random.default_rng(seed)
    return sq.Network.from_lists([rng.normal(size=(a, b)).round(3) for a, b in zip(sizes, sizes[1:])],
                                 [rng.normal(size=b).round(3) for b in sizes[1:]], "identity",
                                 "logistic" if sizes[-1] == 1 else "softmax")


def _query(net: sq.Network, scheme: str, x) -> Query:  # type: ignore[no-untyped-def]
    return Query(net, sq.parse_scheme(scheme).box(net), LocalRobustness(x, "logit"), get_backend("engine"), None)


def _vertex_max(q: Query, c: dict[int, Fraction]) -> float:
    """max of c.z' over every vertex of the box, in float64, in batches of 2^16 vertices."""
    cen = np.concatenate([np.concatenate([np.array(w, float).ravel(), np.array(b, float)]) for w, b in q.layers])
    rad = np.concatenate([np.concatenate([np.array(w, float).ravel(), np.array(b, float)])
                          for w, b in zip(q.box.weights, q.box.biases)])
    x = np.array([float(v) for v, _ in q.problem.inputs])
    n = cen.size
    cvec = np.array([float(c.get(j, 0)) for j in range(len(q.layers[-1][1]))])
    ids = np.arange(min(1 << 16, 1 << n))
    top = -np.inf
    for chunk in range(max(1, (1 << n) >> 16)):
        signs = ((((chunk << 16) + ids)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        p, k = cen + rad * signs, 0
        h = np.broadcast_to(x, (len(ids), x.size))
        for w, b in q.layers:
            n_in, n_out = len(w), len(b)
            h = np.einsum("vi,vij->vj", h, p[:, k:k + n_in * n_out].reshape(-1, n_in, n_out))
            k += n_in * n_out
            h = h + p[:, k:k + n_out]
            k += n_out
        top = max(top, float((h @ cvec).max()))
    return top


def _random_multipliers(dual: ThreeLayerDual, rng: np.random.Generator, scale: float):  # type: ignore[no-untyped-def]
    return (rng.normal(size=(dual.k, dual.m)) * scale, rng.normal(size=(dual.k, 2, dual.m, dual.n)) * scale)


@pytest.mark.parametrize(("seed", "sizes", "scheme", "x"), [
    (0, (2, 2, 2, 2, 1), "fixed:1", [0.6, -0.3]),
    (1, (2, 2, 2, 2, 1), "fixed:2", [0.6, -0.3]),
    (2, (1, 2, 2, 3, 1), "fixed:1", [0.8]),
    (3, (1, 2, 2, 1, 2), "fixed:2", [-0.5]),
])
def test_bound_holds_for_any_multipliers_and_meets_the_vertex_maximum(seed: int, sizes, scheme: str, x) -> None:
    q = _query(_net(seed, sizes), scheme, x)
    dual = ThreeLayerDual(q.problem)
    rng = np.random.default_rng(seed)
    tight = 0
    for out in range(sizes[-1]):
        for s in (1, -1):
            c = {out: Fraction(s)}
            if sizes[-1] > 1:
                c[1 - out] = Fraction(int(rng.integers(-2, 3)), 2)
            top = _vertex_max(q, c)
            a, k0 = dual._pieces(c)
            beta = dual._beta(a)
            for scale in (0.0, 0.3, 5.0):  # any multipliers give a bound (their sums are made 0)
                lam, mu = _random_multipliers(dual, rng, scale)
                assert float(dual._exact_dual(a, beta, k0, lam, mu)) >= top - 1e-9
            stopped, _ = dual.bound(c, Fraction(0), deadline=0.0)  # past its deadline: still a bound
            assert float(stopped) >= top - 1e-9
            upper, (xw, layers) = dual.bound(c, Fraction(0))
            zp = dyadic_forward(layers, xw, "identity")
            assert zp is not None
            for (w, b), (wp, bp), ew, eb in zip(q.layers, layers, q.box.weights, q.box.biases):  # in the box, exactly
                assert all(abs(wp[i][j] - w[i][j]) <= ew[i][j] for i in range(len(w)) for j in range(len(b)))
                assert all(abs(bp[j] - b[j]) <= eb[j] for j in range(len(b)))
            val = float(sum(v * zp[k] for k, v in c.items()))
            assert val <= top + 1e-9 <= float(upper) + 2e-9
            tight += float(upper) - top < 1e-6
    assert tight >= sizes[-1]  # the multipliers' search closes the gap in most directions here


def _unreduced_dual(dual: ThreeLayerDual, c: dict[int, Fraction], lam: np.ndarray, mu: np.ndarray) -> Fraction:
    """The nested dual written out in Fractions with all four corners (end of u2_m, sign of |u2_m|)
    and u1_i over its ends and 0 (where the interval holds 0): the form the reduced evaluation
    drops dominated terms from. The multipliers' last entries are set to make the sums 0."""
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = dual.problem.layers
    e1, e2, e3, e4 = dual.problem.box.weights
    f1, f2, f3, f4 = dual.problem.box.biases
    K, M, N = dual.k, dual.m, dual.n
    lamq = [[Fraction(float(v)) for v in row] for row in lam]
    for m in range(M):
        lamq[K - 1][m] = -sum((lamq[k][m] for k in range(K - 1)), Fraction(0))
    muq = [[[[Fraction(float(v)) for v in mu[k, j, m]] for m in range(M)] for j in range(2)] for k in range(K)]
    for k in range(K):
        for j in range(2):
            for i in range(N):
                muq[k][j][M - 1][i] = -sum((muq[k][j][m][i] for m in range(M - 1)), Fraction(0))
    pts = [[lo, hi] + ([Fraction(0)] if lo < 0 < hi else []) for lo, hi in zip(dual.lo, dual.hi)]
    total = sum((co * b4[o] + abs(co) * f4[o] for o, co in c.items()), Fraction(0))
    for k in range(K):
        w = sum((co * w4[k][o] for o, co in c.items()), Fraction(0))
        e = sum((abs(co) * e4[k][o] for o, co in c.items()), Fraction(0))
        best_k = None
        for j, a in enumerate((w + e, w - e)):
            val = a * b3[k] + abs(a) * f3[k]
            for m in range(M):
                best_m = None
                for sg in (1, -1):  # the sign of |u2_m| in the radius of u3_k
                    A = a * w3[m][k] + sg * abs(a) * e3[m][k] + lamq[k][m]
                    for s2 in (1, -1):  # the end of u2_m's interval
                        v = A * (b2[m] + s2 * f2[m])
                        for i in range(N):
                            v += max((A * w2[i][m] + muq[k][j][m][i]) * p + A * s2 * e2[i][m] * abs(p) for p in pts[i])
                        best_m = v if best_m is None or v > best_m else best_m
                val += best_m
            best_k = val if best_k is None or val > best_k else best_k
        total += best_k
    return total


def test_reduced_integer_evaluation_equals_the_unreduced_dual_in_fractions() -> None:
    """Dropping the dominated corners and the point 0 changes no value: the integer evaluation
    equals the dual with every corner, for random multipliers, with first-layer ranges that
    cross 0, a two-output objective and a non-dyadic input (1/3, -2/7). (The multipliers are on a
    grid of 2^-20, which the integer evaluation's rounding of them keeps exactly.)"""
    net = _net(4, (2, 4, 3, 3, 2))
    q = _query(net, "fixed:1", [Fraction(1, 3), Fraction(-2, 7)])
    dual = ThreeLayerDual(q.problem)
    assert any(lo < 0 < hi for lo, hi in zip(dual.lo, dual.hi))
    rng = np.random.default_rng(0)
    for trial in range(4):
        c = {0: Fraction(1 - 2 * (trial % 2)), 1: Fraction(int(rng.integers(-3, 4)), 4)}
        a, k0 = dual._pieces(c)
        lam, mu = (np.round(v * 2.0**20) / 2.0**20 for v in _random_multipliers(dual, rng, 0.5 if trial < 2 else 0.0))
        assert dual._exact_dual(a, dual._beta(a), k0, lam, mu) == _unreduced_dual(dual, c, lam, mu)


def test_float_search_value_matches_the_exact_value() -> None:
    """The float dual the search minimizes and the certified one it reports are the same function:
    at the multipliers it stops with, the bound it returns is within rounding of its float value,
    and above the exact value there."""
    net = _net(7, (2, 6, 5, 4, 1))
    q = _query(net, "fixed:3", [0.25, -0.5])
    dual = ThreeLayerDual(q.problem)
    seen: dict[str, object] = {}
    certified = dual._certified_dual

    def spy(a, beta, base, lam, mu):  # type: ignore[no-untyped-def]
        seen["lam"], seen["mu"] = lam, mu
        return certified(a, beta, base, lam, mu)

    dual._certified_dual = spy  # type: ignore[method-assign]
    upper, _ = dual.bound({0: Fraction(1)}, Fraction(0), iters=300)
    lam, mu = seen["lam"], seen["mu"]
    assert isinstance(lam, np.ndarray) and isinstance(mu, np.ndarray) and np.abs(mu).max() > 0
    a, k0 = dual._pieces({0: Fraction(1)})
    exact = dual._exact_dual(a, dual._beta(a), k0, lam, mu)
    assert exact <= upper <= exact + Fraction(1, 10**9)
    # the same value recomputed in float64 from the formula, vertex by vertex of the copies
    a, k0 = dual._pieces({0: Fraction(1)})
    af = np.array([[float(v) for v in row] for row in a])
    total = float(k0)
    lo, hi = dual.pts_f
    lam = lam - lam.mean(axis=0, keepdims=True)
    mu = mu - mu.mean(axis=2, keepdims=True)
    for k in range(dual.k):
        vals = []
        for j in range(2):
            v = af[k, j] * dual.B3_f[k] + abs(af[k, j]) * dual.F3_f[k]
            for m in range(dual.m):
                cands = []
                for sg in (1.0, -1.0):
                    A = af[k, j] * dual.W3_f[m, k] + sg * abs(af[k, j]) * dual.E3_f[m, k] + lam[k, m]
                    u = A * (dual.B2_f[m] + np.sign(A) * dual.F2_f[m])
                    terms = [(A * dual.W2_f[:, m] + mu[k, j, m]) * p + abs(A) * dual.E2_f[:, m] * np.abs(p) for p in (lo, hi)]
                    cands.append(u + float(np.maximum(*terms).sum()))
                v += max(cands)
            vals.append(v)
        total += max(vals)
    assert float(upper) == pytest.approx(total, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("seed", "dual_first"), [(5, True), (6, True), (6, False)])
def test_engine_with_and_without_the_dual_certifies_the_same_maximum(seed: int, dual_first: bool, monkeypatch) -> None:
    """Either order (the dual first, or the branch and bound first as for fine perturbations,
    chosen by SEARCH_FIRST_GAP) certifies the maximum the engine finds without the dual."""
    from smtquant.engine import EngineBackend

    net = _net(seed, (2, 5, 4, 3, 1))
    prop = LocalRobustness([0.3, -0.7], "logit")
    monkeypatch.setattr(EngineBackend, "SEARCH_FIRST_GAP", Fraction(0) if dual_first else Fraction(10**9))
    if not dual_first:  # no probe of the dual before the branch and bound (it would close this small net)
        monkeypatch.setattr(EngineBackend, "DUAL_PROBE_SHARE", 0.0)
    searched = []
    box = EngineBackend._maximize_box
    monkeypatch.setattr(EngineBackend, "_maximize_box", lambda self, *a, **k: searched.append(a) or box(self, *a, **k))
    calls = []
    bound = ThreeLayerDual._bound
    monkeypatch.setattr(ThreeLayerDual, "_bound", lambda self, *a, **k: calls.append(a) or bound(self, *a, **k))
    v = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert (calls if dual_first else searched) and v.status is sq.Status.ROBUST
    assert v.max_deviation.upper - v.max_deviation.lower <= Fraction(1, 10**6)
    top = v.max_deviation.lower
    for delta, want in ((top * Fraction(1001, 1000), sq.Status.ROBUST), (top * Fraction(999, 1000), sq.Status.VIOLATED)):
        got = sq.check(net, "fixed:2", prop, delta=delta, solver="engine", timeout=120)
        assert got.status is want  # (a violation may already be found by the attack)
        assert want is sq.Status.VIOLATED or ("dual decomposition" in got.reason) is dual_first
    monkeypatch.setattr(EngineBackend, "_dual_first", lambda self, *a, **k: None)
    monkeypatch.setattr(EngineBackend, "_dual_decide", lambda self, problem, condition, deadline=None: (None, condition))
    w = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120)
    assert w.status is sq.Status.ROBUST
    assert abs(w.max_deviation.upper - v.max_deviation.upper) <= Fraction(2, 10**6)
    assert abs(w.max_deviation.lower - v.max_deviation.lower) <= Fraction(2, 10**6)


def test_a_short_dual_probe_decides_a_check_far_from_the_maximum_before_the_search(monkeypatch) -> None:
    """Where the order rule sends a check to the branch and bound first, the dual is still asked
    first for a share of the time: with delta 2% above the maximum it decides
    at once, and the search never starts."""
    from smtquant.engine import EngineBackend

    net = _net(6, (2, 5, 4, 3, 1))
    prop = LocalRobustness([0.3, -0.7], "logit")
    top = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120).max_deviation.lower
    monkeypatch.setattr(EngineBackend, "SEARCH_FIRST_GAP", Fraction(10**9))  # the branch and bound first
    searched = []
    box = EngineBackend._solve_box
    monkeypatch.setattr(EngineBackend, "_solve_box", lambda self, *a, **k: searched.append(a) or box(self, *a, **k))
    got = sq.check(net, "fixed:2", prop, delta=top * Fraction(102, 100), solver="engine", timeout=120)
    assert got.status is sq.Status.ROBUST and "dual decomposition" in got.reason and not searched
    monkeypatch.setattr(EngineBackend, "DUAL_PROBE_SHARE", 0.0)
    got = sq.check(net, "fixed:2", prop, delta=top * Fraction(102, 100), solver="engine", timeout=120)
    assert got.status is sq.Status.ROBUST and searched


def test_branch_and_bound_goes_first_only_for_fine_perturbations() -> None:
    """The order is chosen from the zonotope bound's excess over the first-order estimate: a fine
    scheme (fixed:8) sends the maximization to the branch and bound first, a coarse one (fixed:1)
    to the nested dual first, whatever the constant (a check's delta) added to the objective;
    nets without three identity layers never ask."""
    from smtquant.engine import EngineBackend, tighten

    eng = EngineBackend()
    for sizes, scheme, want in (((2, 5, 4, 3, 1), "fixed:8", True), ((2, 5, 4, 3, 1), "fixed:1", False),
                                ((2, 5, 4, 1), "fixed:8", False)):
        net = _net(5, sizes)
        problem = tighten(_query(net, scheme, [0.3, -0.7]).problem)
        for zp, z in (({0: Fraction(1)}, {0: Fraction(-1)}), ({0: Fraction(-1)}, {0: Fraction(1)})):
            for shift in (Fraction(0), Fraction(-50), Fraction(7, 3)):
                assert eng._search_first(problem, zp, z, shift) is want


def test_a_later_call_on_the_same_objective_resumes_from_the_best_multipliers() -> None:
    """The multipliers do not depend on the objective's constant: a second call with the same
    coefficients starts where the first ended (one iteration gives the first call's bound,
    shifted by the new constant, exactly); other coefficients start afresh."""
    from smtquant.engine import tighten

    net = _net(5, (2, 5, 4, 3, 1))
    problem = tighten(_query(net, "fixed:2", [0.3, -0.7]).problem)
    up, down = {0: Fraction(1)}, {0: Fraction(-1)}
    cold = ThreeLayerDual(problem).bound(up, Fraction(0), iters=1)[0]
    dual = ThreeLayerDual(problem)
    searched = dual.bound(up, Fraction(0), iters=300)[0]
    assert searched < cold
    assert dual.bound(up, Fraction(5, 3), iters=1)[0] == searched + Fraction(5, 3)
    assert dual.bound(down, Fraction(0), iters=1)[0] == ThreeLayerDual(problem).bound(down, Fraction(0), iters=1)[0]


def test_a_check_looks_at_every_branch_then_resumes_the_open_ones(monkeypatch) -> None:
    """A check asks the nested dual about each branch briefly, then again about the branches left
    open, which resume their search trees; the last branch's first call gets all the time left.
    Here every first call is cut to its deadline's passing at once (the root's bound then makes
    one step), so neither branch closes in it; the second round decides."""
    from smtquant.engine import EngineBackend

    net = _net(6, (2, 5, 4, 3, 1))
    prop = LocalRobustness([0.3, -0.7], "logit")
    top = sq.quantify(net, "fixed:2", prop, solver="engine", tolerance=1e-6, timeout=120).max_deviation.lower
    monkeypatch.setattr(EngineBackend, "SEARCH_FIRST_GAP", Fraction(0))  # the dual first
    calls: list = []
    real = ThreeLayerDual.search

    windows: list = []

    def search(self, c, const, stop_at=None, deadline=None, tol=Fraction(0), decide=False):  # type: ignore[no-untyped-def]
        key = tuple(sorted(c.items()))
        calls.append(key)
        windows.append(deadline - time.monotonic())
        first = calls.count(key) == 1
        return real(self, c, const, stop_at=stop_at, deadline=time.monotonic() if first else deadline, tol=tol,
                    decide=decide)

    monkeypatch.setattr(ThreeLayerDual, "search", search)
    got = sq.check(net, "fixed:2", prop, delta=top * Fraction(102, 100), solver="engine", timeout=120)
    assert got.status is sq.Status.ROBUST and "dual decomposition" in got.reason
    both = {((0, Fraction(1)),), ((0, Fraction(-1)),)}
    assert set(calls[:2]) == both and len(calls) >= 3 and calls[2] in both
    # the first branch's look gets DUAL_LOOK_SHARE (15%) of the time, the last branch all that is left
    assert windows[0] < 0.2 * 120 and windows[1] > 0.8 * 120


def test_the_restart_after_a_third_of_the_time_keeps_the_bound_and_helps(monkeypatch) -> None:
    """The one restart at PHASE of a call's time (from the best multipliers, with the margin set
    from the gap then; PHASE_MIN_S lowered to 0 here), on a clock that ticks once per reading:
    on a tiny net the bound still meets
    the maximum over every vertex; on a 2-4-4-3-1 net, with the same number of iterations, it
    ends lower than without the restart (PHASE = 2: never before the deadline), and above its
    own witness's exact value. A call shorter than PHASE_MIN_S takes the path without it."""
    import smtquant.dual3 as dual3

    def run(q: Query, phase: float, deadline: float, min_s: float) -> tuple[Fraction, float]:
        clock = iter(range(10**9))
        monkeypatch.setattr(dual3.time, "monotonic", lambda: next(clock) * 1e-3)
        dual = ThreeLayerDual(q.problem)
        monkeypatch.setattr(dual, "PHASE", phase)
        monkeypatch.setattr(dual, "PHASE_MIN_S", min_s)
        monkeypatch.setattr(dual, "STALL", 10**9)  # no stall: the clock alone ends the search
        upper, (xw, layers) = dual.bound({0: Fraction(1)}, Fraction(0), deadline=deadline)
        zp = dyadic_forward(layers, xw, "identity")
        assert zp is not None
        return upper, float(zp[0])

    tiny = _query(_net(1, (2, 2, 2, 2, 1)), "fixed:2", [0.6, -0.3])
    upper, _ = run(tiny, 1 / 3, 0.3, 0.0)
    assert float(upper) >= _vertex_max(tiny, {0: Fraction(1)}) - 1e-9
    q = _query(_net(1, (2, 4, 4, 3, 1)), "fixed:1", [0.6, -0.3])
    with_restart, witness = run(q, 1 / 3, 1.0, 0.0)
    without, _ = run(q, 2.0, 1.0, 0.0)
    assert witness <= float(with_restart) < float(without)
    # a call shorter than PHASE_MIN_S gets no restart: the same path as without
    assert run(q, 1 / 3, 1.0, 30.0)[0] == without


def _kernel_args(rng: np.random.Generator, K: int, M: int, N: int):  # type: ignore[no-untyped-def]
    """Random inputs of the float search's kernels, in bound's shapes."""
    U, V = rng.normal(size=(M, N)), rng.normal(size=(M, N)) * 0.2
    return dict(A0=rng.normal(size=(K, 2, M, 2)), lam=rng.normal(size=(K, M)) * 0.3,
                mu=rng.normal(size=(K, 2, M, N)) * 0.3, tw=np.abs(rng.normal(size=N)), lo=rng.normal(size=N),
                U=U, V=V, UpV=U + V, UmV=U - V, Lw=rng.normal(size=M), Le=np.abs(rng.normal(size=M)),
                bf=rng.normal(size=(K, 2)))


def _kernels_numpy(d):  # type: ignore[no-untyped-def]
    """The dual's copies' values, the chosen copies, the subgradient and the step, written with
    numpy from the formulas in dual3's docstring (independently of bound's numpy path)."""
    A = d["A0"] + d["lam"][:, None, :, None]  # (K, 2, M, 2)
    W = np.where((A >= 0)[..., None], d["UpV"][None, None, :, None, :], d["UmV"][None, None, :, None, :])
    gain = np.maximum(A[..., None] * W + (d["mu"] * d["tw"])[:, :, :, None, :], 0.0).sum(-1)
    piece = A * d["Lw"][:, None] + np.abs(A) * d["Le"][:, None] + (d["mu"] @ d["lo"])[..., None] + gain
    s_all = piece.argmax(-1)
    tc = d["bf"] + piece.max(-1).sum(-1)
    K, _, M, _ = A.shape
    kk, mm = np.arange(K), np.arange(M)
    ci = (tc[:, 1] > tc[:, 0]).astype(np.intp)
    s_sel = s_all[kk, ci]
    a = A[kk[:, None], ci[:, None], mm[None, :], s_sel]  # (K, M)
    Wsel = np.where((a >= 0)[..., None], d["UpV"][None], d["UmV"][None])
    pos = a[..., None] * Wsel + (d["mu"] * d["tw"])[kk, ci] > 0
    sa = np.sign(a)
    h2 = d["Lw"] + sa * d["Le"] + (pos * (d["U"][None] + sa[..., None] * d["V"][None])).sum(-1)
    g_lam = h2 - h2.mean(axis=0)
    pbar = pos.mean(axis=1)
    g_mu = d["tw"] * (pos - pbar[:, None, :])
    return s_all, tc, ci, s_sel, pos, g_lam, pbar, float((g_lam**2).sum() + (g_mu**2).sum()), g_mu


def _run_kernels(kernels, d, step: float):  # type: ignore[no-untyped-def]
    k_dual, k_grad, k_move = kernels
    K, _, M, _ = d["A0"].shape
    N = d["tw"].shape[0]
    s_all, tc = np.empty((K, 2, M), dtype=np.intp), np.empty((K, 2))
    k_dual(d["A0"], d["lam"], d["mu"], d["tw"], d["lo"], d["UpV"], d["UmV"], d["Lw"], d["Le"], d["bf"], s_all, tc)
    ci = (tc[:, 1] > tc[:, 0]).astype(np.intp)
    s_sel = s_all[np.arange(K), ci]
    pos, g_lam, pbar = np.empty((K, M, N), dtype=np.bool_), np.empty((K, M)), np.empty((K, N))
    nrm = k_grad(d["A0"], d["lam"], d["mu"], d["tw"], d["UpV"], d["UmV"], d["U"], d["V"], d["Lw"], d["Le"],
                 ci, s_sel, pos, g_lam, pbar)
    lam, mu = d["lam"].copy(), d["mu"].copy()
    k_move(lam, mu, g_lam, pos, pbar, d["tw"], ci, step)
    return s_all, tc, ci, s_sel, pos, g_lam, pbar, nrm, lam, mu


def _assert_kernels_match(kernels, d, tol: float) -> None:  # type: ignore[no-untyped-def]
    s_all, tc, ci, s_sel, pos, g_lam, pbar, nrm, lam, mu = _run_kernels(kernels, d, 0.25)
    e_s, e_tc, e_ci, e_ssel, e_pos, e_glam, e_pbar, e_nrm, e_gmu = _kernels_numpy(d)
    assert np.allclose(tc, e_tc, rtol=tol, atol=tol)
    assert (s_all == e_s).all() and (ci == e_ci).all() and (s_sel == e_ssel).all() and (pos == e_pos).all()
    assert np.allclose(g_lam, e_glam, atol=tol) and np.allclose(pbar, e_pbar, atol=tol)
    assert nrm == pytest.approx(e_nrm, rel=tol)
    K = len(ci)
    e_mu = d["mu"].copy()
    e_mu[np.arange(K), ci] -= 0.25 * e_gmu
    assert np.allclose(lam, d["lam"] - 0.25 * e_glam, atol=tol) and np.allclose(mu, e_mu, atol=tol)
    others = np.ones(d["mu"].shape[:2], dtype=bool)
    others[np.arange(K), ci] = False
    assert (mu[others] == d["mu"][others]).all()  # the copies not chosen do not move


def test_the_loop_form_of_the_search_kernels_is_the_numpy_form() -> None:
    """The loops numba compiles (run here as plain Python) compute what the formulas say."""
    rng = np.random.default_rng(0)
    for K, M, N in ((1, 1, 1), (3, 4, 5), (2, 6, 3)):
        _assert_kernels_match((dual3._dual_py, dual3._grad_py, dual3._move_py), _kernel_args(rng, K, M, N), 1e-12)


def test_the_compiled_kernels_and_the_numpy_path_give_the_same_bounds(monkeypatch) -> None:
    pytest.importorskip("numba")
    assert dual3.load_kernels()  # numba installed: they load (what a forking program calls first)
    compiled = dual3._kernels()
    assert compiled is not None
    _assert_kernels_match(compiled, _kernel_args(np.random.default_rng(1), 64, 64, 64), 1e-9)  # the suite net's shapes
    q = _query(_net(1, (2, 2, 2, 2, 1)), "fixed:2", [0.6, -0.3])  # 2^19 vertices
    c = {0: Fraction(-1)}
    top = _vertex_max(q, c)
    fast = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=1)[0]
    long_fast = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=300)[0]
    monkeypatch.setattr(dual3, "_KERNELS", [None])  # numba absent: the numpy path
    plain = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=1)[0]
    long_plain = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=300)[0]
    assert abs(fast - plain) < 1e-12  # the same multipliers (zero): certified bounds within rounding
    assert min(long_fast, long_plain) >= top - 1e-9 and float(long_fast) == pytest.approx(float(long_plain), abs=1e-6)


def test_the_certified_bound_lies_just_above_the_exact_dual() -> None:
    """For random multipliers (any give a bound), the float evaluation plus its rounding margin is
    at least the exact dual in Fractions and within 1e-10 of it, on nets with a non-dyadic input
    and a two-output objective; without the margin the float value falls below the exact one
    somewhere (the margin is needed)."""
    below = 0
    for seed, sizes, scheme, x in ((4, (2, 4, 3, 3, 2), "fixed:1", [Fraction(1, 3), Fraction(-2, 7)]),
                                   (7, (2, 6, 5, 4, 1), "fixed:3", [0.25, -0.5])):
        dual = ThreeLayerDual(_query(_net(seed, sizes), scheme, x).problem)
        rng = np.random.default_rng(seed)
        for trial in range(12):
            c = {0: Fraction(1 - 2 * (trial % 2))}
            if sizes[-1] > 1:
                c[1] = Fraction(int(rng.integers(-3, 4)), 3)
            a, k0 = dual._pieces(c)
            beta = dual._beta(a)
            scale = (0.0, 0.5, 50.0)[trial % 3]
            lam, mu = _random_multipliers(dual, rng, scale)
            exact = dual._exact_dual(a, beta, k0, lam, mu)
            cert = dual._certified_dual(a, beta, k0, lam, mu)
            assert exact <= cert <= exact + Fraction(1, 10**10) * (1 + abs(exact))
            parts = dual._tau_err(a, lam, mu)
            assert parts is not None
            tau = parts[0]
            plain = k0 + sum(max(beta[k, j] + Fraction(float(tau[k, j])) for j in range(2)) for k in range(dual.k))
            below += plain < exact
    assert below >= 1


def test_a_node_s_dual_built_from_its_parent_equals_a_fresh_one() -> None:
    """_with_ends (the branch and bound's children) gives the same exact pieces, floats and bounds
    as building the dual with those ends from the problem, for ends at either end, one or three
    at a time, on first-layer ranges that cross 0 (a non-dyadic input)."""
    q = _query(_net(4, (2, 4, 3, 3, 2)), "fixed:1", [Fraction(1, 3), Fraction(-2, 7)])
    root = ThreeLayerDual(q.problem)
    assert any(lo < 0 < hi for lo, hi in zip(root.lo, root.hi))
    c = {0: Fraction(1), 1: Fraction(-1, 3)}
    for ends in ({0: 1}, {2: 0}, {0: 1, 1: 0, 3: 1}):
        for built in (root._with_ends(ends), root._with_ends({0: 1})._with_ends(ends) if 0 in ends else None):
            if built is None:
                continue
            fresh = ThreeLayerDual(q.problem, ends)
            assert built.ends == fresh.ends and built.lo == fresh.lo and built.hi == fresh.hi
            for name in ("U", "V", "Lw", "Le"):
                assert (getattr(built, name) == getattr(fresh, name)).all(), name
            for name in ("U_f", "V_f", "Lw_f", "Le_f", "t_f", "l_f", "pts_f"):
                assert np.array_equal(getattr(built, name), getattr(fresh, name)), name
            a, k0 = fresh._pieces(c)
            lam, mu = _random_multipliers(fresh, np.random.default_rng(len(ends)), 0.4)
            assert built._exact_dual(a, fresh._beta(a), k0, lam, mu) == fresh._exact_dual(a, fresh._beta(a), k0, lam, mu)
            assert built.bound(c, Fraction(0), iters=50)[0] == fresh.bound(c, Fraction(0), iters=50)[0]
    assert root.ends == {} and not (root.U == 0).all()  # the parent is left as it was


def _corner_max(dual: ThreeLayerDual, c: dict[int, Fraction]) -> Fraction:
    """The exact maximum of c.z' over the box, by enumeration: u1 over the corners of its box and
    u2 over the ends of its intervals (the objective is convex in each layer's pre-activations
    given the one before), the last two layers in closed form (each u3_k and output weight at its
    best end, independently)."""
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = dual.problem.layers
    _, e2, e3, e4 = dual.problem.box.weights
    _, f2, f3, f4 = dual.problem.box.biases
    n, m, kn = dual.n, dual.m, dual.k
    const = sum((co * b4[o] + abs(co) * f4[o] for o, co in c.items()), Fraction(0))
    pieces = [(sum((co * w4[k][o] for o, co in c.items()), Fraction(0)),
               sum((abs(co) * e4[k][o] for o, co in c.items()), Fraction(0))) for k in range(kn)]
    top = None
    for ends1 in range(1 << n):
        u1 = [dual.hi[i] if ends1 >> i & 1 else dual.lo[i] for i in range(n)]
        cen2 = [b2[j] + sum((w2[i][j] * u1[i] for i in range(n)), Fraction(0)) for j in range(m)]
        rad2 = [f2[j] + sum((e2[i][j] * abs(u1[i]) for i in range(n)), Fraction(0)) for j in range(m)]
        for ends2 in range(1 << m):
            u2 = [cen2[j] + (rad2[j] if ends2 >> j & 1 else -rad2[j]) for j in range(m)]
            val = const
            for k in range(kn):
                cen = b3[k] + sum((w3[j][k] * u2[j] for j in range(m)), Fraction(0))
                rad = f3[k] + sum((e3[j][k] * abs(u2[j]) for j in range(m)), Fraction(0))
                w, e = pieces[k]
                val += max(a * (cen + s * rad) for a in (w + e, w - e) for s in (1, -1))
            top = val if top is None or val > top else top
    assert top is not None
    return top


def test_the_corner_enumeration_is_the_vertex_maximum() -> None:
    """The reference the search's tests use against brute force over every parameter vertex."""
    q = _query(_net(1, (2, 2, 2, 2, 1)), "fixed:2", [0.6, -0.3])
    dual = ThreeLayerDual(q.problem)
    for s in (1, -1):
        assert float(_corner_max(dual, {0: Fraction(s)})) == pytest.approx(_vertex_max(q, {0: Fraction(s)}), abs=1e-9)


def _value(c: dict[int, Fraction], witness) -> Fraction:  # type: ignore[no-untyped-def]
    x, layers = witness
    zp = dyadic_forward(layers, x, "identity")
    assert zp is not None
    return sum((co * zp[o] for o, co in c.items()), Fraction(0))


@pytest.mark.parametrize(("seed", "sizes", "scheme"), [
    (0, (2, 4, 4, 3, 1), "fixed:1"), (1, (2, 4, 4, 3, 1), "fixed:1"), (2, (2, 5, 4, 3, 1), "fixed:1"),
    (3, (2, 4, 5, 3, 1), "fixed:2"),
])
def test_the_search_over_first_layer_ends_is_sound_and_tighter_than_its_root(seed: int, sizes, scheme: str,
                                                                            monkeypatch) -> None:
    """With few iterations per node (so that nodes split), the search's bound lies above the
    exact maximum (corner enumeration) and its witness below, and it is never above the bound
    of its root alone (the same iterations); where the root's bound does not meet its witness,
    the splits make it tighter."""
    q = _query(_net(seed, sizes), scheme, [0.45, -0.2])
    monkeypatch.setattr(ThreeLayerDual, "ROOT_ITERS", (40, 40))
    monkeypatch.setattr(ThreeLayerDual, "NODE_ITERS", 20)
    tighter = 0
    for s in (1, -1):
        c = {0: Fraction(s)}
        shift = Fraction(-7, 3)  # the constant moves every value alike
        top = _corner_max(ThreeLayerDual(q.problem), c) + shift
        root, _ = ThreeLayerDual(q.problem).bound(c, shift, iters=40, phase=False)
        dual = ThreeLayerDual(q.problem)
        upper, witness = dual.search(c, shift)
        tree = dual._trees[tuple(sorted(c.items()))]
        assert shift + _value(c, witness) <= top <= upper <= root
        assert tree.count > 1 or upper == top  # it split, or the root's bound met its witness
        tighter += upper < root
    assert tighter >= 1


def test_the_search_closes_at_its_threshold_and_stops_at_a_witness_above_it(monkeypatch) -> None:
    """A check (decide): a threshold above the root's bound closes the root; one below some
    witness stops at once with that witness (nothing split). A maximization reopens a node closed
    at a higher threshold in a later call, and with tolerance 0 ends within the root's bound."""
    q = _query(_net(0, (2, 4, 4, 3, 1)), "fixed:1", [0.45, -0.2])
    monkeypatch.setattr(ThreeLayerDual, "ROOT_ITERS", (40, 40))
    monkeypatch.setattr(ThreeLayerDual, "NODE_ITERS", 20)
    c = {0: Fraction(1)}
    key = tuple(sorted(c.items()))
    top = _corner_max(ThreeLayerDual(q.problem), c)
    root, _ = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=40, phase=False)
    high = ThreeLayerDual(q.problem)
    upper, _ = high.search(c, Fraction(0), stop_at=root + 1, decide=True)
    assert upper <= root + 1 and high._trees[key].count == 1 and not high._trees[key].open
    low = ThreeLayerDual(q.problem)
    upper, witness = low.search(c, Fraction(0), stop_at=top - 100, decide=True)
    assert _value(c, witness) > top - 100 and low._trees[key].count == 1
    # maximization: closed at root + 1, then reopened and split when asked without a threshold
    closed, _ = high.search(c, Fraction(0), stop_at=root + 1)
    assert high._trees[key].count == 1 and closed <= root + 1
    upper, witness = high.search(c, Fraction(0))  # the root's search goes on, then it splits
    assert high._trees[key].count > 1 and _value(c, witness) <= top <= upper <= root


@pytest.mark.parametrize(("seed", "sizes"), [(0, (2, 4, 4, 3, 1)), (2, (2, 5, 4, 3, 1))])
def test_searches_build_witnesses_only_where_they_may_decide_or_improve(seed: int, sizes, monkeypatch) -> None:
    """A check's search (decide) just above and just below the exact maximum answers as corner
    enumeration does, and a maximization reaches that maximum; below the root a node's witness is
    built only where its float value comes near the check's threshold or the best witness so far,
    so on these nets some nodes go without."""
    q = _query(_net(seed, sizes), "fixed:1", [0.45, -0.2])
    monkeypatch.setattr(ThreeLayerDual, "ROOT_ITERS", (40, 40))
    monkeypatch.setattr(ThreeLayerDual, "NODE_ITERS", 20)
    calls = [0]
    witness = ThreeLayerDual._witness

    def counted(self, *a):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return witness(self, *a)
    monkeypatch.setattr(ThreeLayerDual, "_witness", counted)
    skipped = 0
    for s in (1, -1):
        c = {0: Fraction(s)}
        key = tuple(sorted(c.items()))
        top = _corner_max(ThreeLayerDual(q.problem), c)
        root, _ = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=40, phase=False)
        assert root > top  # the root alone does not decide near the maximum
        for thr in (top + (root - top) / 100, top - (root - top) / 100, None):
            dual = ThreeLayerDual(q.problem)
            calls[0] = 0
            if thr is None:  # a maximization
                upper, found = dual.search(c, Fraction(0), tol=Fraction(1, 10**9))
                assert found is not None and top - Fraction(1, 10**9) <= _value(c, found) <= top <= upper
                assert upper <= top + Fraction(2, 10**9)
            else:
                upper, found = dual.search(c, Fraction(0), stop_at=thr, decide=True)
                if thr > top:
                    assert upper <= thr
                else:
                    assert found is not None and _value(c, found) > thr
            nodes = dual._trees[key].count
            assert calls[0] <= nodes and (nodes > 1 or (thr is not None and thr < top))
            skipped += calls[0] < nodes
    assert skipped >= 3


def test_a_maximization_after_a_check_on_the_same_objective_has_a_witness(monkeypatch) -> None:
    """A check's tree may end without a witness (none came near its threshold); a maximization
    resuming that tree still returns one, below the exact maximum, and a bound above it."""
    q = _query(_net(0, (2, 4, 4, 3, 1)), "fixed:1", [0.45, -0.2])
    monkeypatch.setattr(ThreeLayerDual, "ROOT_ITERS", (40, 40))
    monkeypatch.setattr(ThreeLayerDual, "NODE_ITERS", 20)
    c = {0: Fraction(1)}
    top = _corner_max(ThreeLayerDual(q.problem), c)
    dual = ThreeLayerDual(q.problem)
    upper, witness = dual.search(c, Fraction(0), stop_at=top + 1, decide=True)
    assert upper <= top + 1 and witness is None  # closed at the root, its witness far below
    upper, witness = dual.search(c, Fraction(0), stop_at=top + 1)
    assert witness is not None and _value(c, witness) <= top <= upper


def test_the_search_resumes_its_tree_in_a_later_call(monkeypatch) -> None:
    """A call cut by its deadline leaves the tree as it is; the next call with the same
    coefficients (another constant) goes on from it, and ends where one uncut call ends."""
    q = _query(_net(1, (2, 4, 4, 3, 1)), "fixed:1", [0.45, -0.2])
    monkeypatch.setattr(ThreeLayerDual, "ROOT_ITERS", (40, 40))
    monkeypatch.setattr(ThreeLayerDual, "NODE_ITERS", 20)
    c = {0: Fraction(-1)}
    key = tuple(sorted(c.items()))
    whole = ThreeLayerDual(q.problem)
    one, _ = whole.search(c, Fraction(0))
    cut = ThreeLayerDual(q.problem)
    cut.search(c, Fraction(0), deadline=time.monotonic())  # the root's first bound, then the deadline
    assert cut._trees[key].count == 1
    two, _ = cut.search(c, Fraction(5))
    # (the certified bounds, float values plus a rounding margin, agree to about 1e-15)
    assert abs(two - 5 - one) < 1e-12 and cut._trees[key].count == whole._trees[key].count


def test_an_early_split_of_the_root_is_kept_where_its_children_close_else_undone(monkeypatch) -> None:
    """The root's split tried after PROBE_AT iterations: undone (children never close enough), the
    root's search runs on to its iterations and the search ends exactly as without the try, with
    as many nodes; kept (any children), the root's search stops there and the check and a
    maximization still end with the exact maximum between witness and bound."""
    q = _query(_net(0, (2, 4, 4, 3, 1)), "fixed:1", [0.45, -0.2])
    monkeypatch.setattr(ThreeLayerDual, "ROOT_ITERS", (40, 40))
    monkeypatch.setattr(ThreeLayerDual, "NODE_ITERS", 20)
    roots: list[tuple[int, bool]] = []  # each root search: (iterations, stopped for the split)
    bound = ThreeLayerDual._bound

    def recorded(self, *a):  # type: ignore[no-untyped-def]
        out = bound(self, *a)
        if not self.ends:
            roots.append((self.last_iters, self.last_split))
        return out
    monkeypatch.setattr(ThreeLayerDual, "_bound", recorded)
    for s in (1, -1):
        c = {0: Fraction(s)}
        key = tuple(sorted(c.items()))
        top = _corner_max(ThreeLayerDual(q.problem), c)
        root, _ = ThreeLayerDual(q.problem).bound(c, Fraction(0), iters=40, phase=False)
        assert root > top
        thr = top + (root - top) / 100
        runs = {}
        for name, at, close in (("never", 10**9, 0.0), ("undone", 10, -math.inf), ("kept", 10, math.inf)):
            monkeypatch.setattr(ThreeLayerDual, "PROBE_AT", at)
            monkeypatch.setattr(ThreeLayerDual, "PROBE_CLOSE", close)
            dual = ThreeLayerDual(q.problem)
            roots.clear()
            upper, _ = dual.search(c, Fraction(0), stop_at=thr, decide=True)
            runs[name] = (upper, dual._trees[key].count, roots[0])
            assert upper <= thr and len(roots) == 1
        assert runs["undone"] == runs["never"] and runs["never"][2] == (40, False)
        assert runs["kept"][2] == (11, True) and runs["kept"][1] >= 3
        dual = ThreeLayerDual(q.problem)
        upper, witness = dual.search(c, Fraction(0), tol=Fraction(1, 10**9))
        assert top - Fraction(1, 10**9) <= _value(c, witness) <= top <= upper <= top + Fraction(2, 10**9)


def test_witnesses_are_polished_by_single_flips_of_the_corner() -> None:
    """The float objective at a corner (u1 ends, u2 ends) is the exact value of the witness built
    there; its maximum over every corner is the corner enumeration's; the polish ends at a corner
    no single flip improves, never below where it started."""
    q = _query(_net(2, (2, 4, 4, 3, 1)), "fixed:1", [0.45, -0.2])
    dual = ThreeLayerDual(q.problem)
    rng = np.random.default_rng(0)
    for s in (1, -1):
        c = {0: Fraction(s)}
        a, k0 = dual._pieces(c)
        af = np.array([[float(v) for v in row] for row in a])
        grid = np.array([[(v >> i) & 1 for i in range(8)] for v in range(256)])
        vals = dual._corners_f(af, grid[:, :4], grid[:, 4:]) + float(k0)
        assert vals.max() == pytest.approx(float(_corner_max(dual, c)), abs=1e-9)
        for _ in range(5):
            idx, s2 = rng.integers(0, 2, 4), rng.integers(0, 2, 4)
            start = dual._corners_f(af, idx[None], s2[None])[0]
            pi, ps = dual._polish(af, idx, s2)
            end = dual._corners_f(af, pi[None], ps[None])[0]
            assert end >= start
            flips = [dual._corners_f(af, (pi ^ (np.arange(4) == i))[None], ps[None])[0] for i in range(4)]
            flips += [dual._corners_f(af, pi[None], (ps ^ (np.arange(4) == j))[None])[0] for j in range(4)]
            assert max(flips) <= end + 1e-9
            exact = _value(c, dual._witness(c, a, pi, ps))
            assert float(exact) == pytest.approx(end + float(k0), abs=1e-9)


def test_an_open_maximization_says_how_far_the_dual_and_the_branch_and_bound_got() -> None:
    """Where the branch and bound got no node in (the dual took the time), the reason keeps the
    dual's: how many nodes its search over first-layer ends made. Otherwise the branch and
    bound's reason stands."""
    from smtquant.engine import SearchResult, _combined
    pre = SearchResult(Fraction(5), (Fraction(3), None), False, 0,
                       "engine: dual decomposition bound not within the tolerance after 85 nodes over first-layer ends")
    none = SearchResult(None, None, False, 0, "timeout after 0 nodes")
    some = SearchResult(Fraction(4), (Fraction(2), None), False, 7, "timeout after 7 nodes")
    out = _combined(pre, none, Fraction(0))
    assert out.upper == 5 and not out.complete
    assert out.reason == pre.reason + "; branch and bound: timeout after 0 nodes"
    out = _combined(pre, some, Fraction(0))
    assert out.upper == 4 and out.best == pre.best and out.reason == "timeout after 7 nodes"


def test_the_dual_s_look_before_the_branch_and_bound_is_capped(monkeypatch) -> None:
    """The look at the nested dual before the branch and bound (fine perturbations) lasts
    DUAL_PROBE_SHARE of the time left, at most DUAL_PROBE_S seconds, also without a timeout."""
    from smtquant.engine import EngineBackend
    monkeypatch.setattr(dual3.time, "monotonic", lambda: 100.0)
    eng = EngineBackend()
    assert eng._probe_deadline(110.0) == pytest.approx(100.0 + EngineBackend.DUAL_PROBE_SHARE * 10.0)
    assert eng._probe_deadline(160.0) == pytest.approx(100.0 + EngineBackend.DUAL_PROBE_S)
    assert eng._probe_deadline(None) == pytest.approx(100.0 + EngineBackend.DUAL_PROBE_S)
