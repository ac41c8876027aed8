"""Checks over an input region by the maximization's best-first search (EngineBackend._solve_region)
against the depth-first search over boxes it replaced, on both sides of the certified maximum;
the branch objectives against the atoms they stand for; the pieces of global logistic confidence
halved where the engine reports a near tie."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import smtquant as sq
import smtquant.search as search
from smtquant.backends.base import Answer, CheckOutcome
from smtquant.engine import EngineBackend, _branch_objective
from smtquant.properties import Atom, GlobalRobustness, Metric, violation_condition

MODELS = Path(__file__).resolve().parent.parent / "models"
REGION = [[-0.5, 1.5], [-0.5, 1.0]]


def relu_net(seed: int, sizes: tuple[int, ...]) -> sq.Network:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)).round(3) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(size=b).round(3) for b in sizes[1:]]
    return sq.Network.from_lists(ws, bs, "relu", "logistic")


def _holds(atom: Atom, zp: list[Fraction], z: list[Fraction]) -> bool:
    v = sum((c * zp[k] for k, c in atom.zp), Fraction(0)) + sum((c * z[k] for k, c in atom.z), Fraction(0))
    return {">": v > atom.const, "<": v < atom.const, ">=": v >= atom.const, "<=": v <= atom.const}[atom.op]


def test_branch_objectives_hold_exactly_where_their_branches_do() -> None:
    net = sq.load_model(MODELS / "moons_relu.json")
    rnd = random.Random(0)
    conds = [violation_condition(net, Metric.LOGIT, Fraction(1, 3), None),
             violation_condition(net, Metric.CONFIDENCE, Fraction(1, 10), None, (Fraction(-1), Fraction(1, 2)))]
    branches = [b for c in conds for b in c]
    assert len(branches) == 4 and all(len(b) in (1, 3) for b in branches)
    for branch in branches:
        plan = _branch_objective(branch)
        assert plan is not None
        zp, z, const, z_range = plan
        assert (z_range is None) == (len(branch) == 1)
        for _ in range(300):
            zpv = [Fraction(rnd.randint(-40, 40), 16)]
            zv = [Fraction(rnd.randint(-40, 40), 16)]
            f = const + sum(c * zpv[k] for k, c in zp.items()) + sum(c * zv[k] for k, c in z.items())
            in_range = z_range is None or z_range[1] <= zv[z_range[0]] <= z_range[2]
            assert (f > 0 and in_range) == all(_holds(a, zpv, zv) for a in branch)
    # non-strict main atoms (the class metric) and other guards keep the depth-first route
    assert _branch_objective((Atom(((0, Fraction(1)),), (), "<=", Fraction(0)),)) is None
    guard = Atom(((0, Fraction(1)),), (), ">=", Fraction(0))
    assert _branch_objective((guard, guard, Atom(((0, Fraction(1)),), (), ">", Fraction(0)))) is None


CASES = [
    ("moons_relu", lambda: sq.load_model(MODELS / "moons_relu.json"), "fixed:4"),
    ("relu-2-6-5-1", lambda: relu_net(3, (2, 6, 5, 1)), "fixed:3"),
    ("relu-2-8-1", lambda: relu_net(4, (2, 8, 1)), "fixed:5"),
]


@pytest.mark.parametrize(("name", "make", "scheme"), CASES, ids=[c[0] for c in CASES])
def test_region_route_and_depth_first_route_decide_the_same_around_the_maximum(name, make, scheme,
                                                                              monkeypatch) -> None:
    # the logit metric: global logistic confidence within 1e-5 of its maximum takes either route
    # minutes here (the pieces of the output range); the route's pieces are tested below
    net = make()
    prop = GlobalRobustness(REGION, "logit")
    q = sq.quantify(net, scheme, prop, solver="engine", tolerance=1e-6, timeout=120)
    assert q.status is sq.Status.ROBUST, q.reason
    lo, up = q.max_deviation.lower, q.max_deviation.upper
    calls = []
    real = EngineBackend._solve_region

    def spy(self, *args):
        out = real(self, *args)
        calls.append(out)
        return out

    monkeypatch.setattr(EngineBackend, "_solve_region", spy)
    for delta, expected in ((up + Fraction(1, 10**5), sq.Status.ROBUST), (lo - Fraction(1, 10**5), sq.Status.VIOLATED)):
        for by_max in (True, False):
            monkeypatch.setattr(EngineBackend, "REGION_BY_MAXIMIZE", by_max)
            # without the attack, so that the backend itself must find the violation
            monkeypatch.setattr(sq.verify.Query, "attack", lambda self: None)
            n = len(calls)
            v = sq.check(net, scheme, prop, delta, solver="engine", timeout=120)
            assert v.status is expected, (by_max, delta, v.reason)
            if expected is sq.Status.VIOLATED:
                assert v.witness.deviation[0] > delta
            if by_max and "interval bound" not in v.reason:
                assert len(calls) > n and all(c is not None for c in calls[n:])  # the route was taken
            if not by_max:
                assert len(calls) == n


def test_a_violated_region_check_stops_at_the_first_witness_above_the_threshold(monkeypatch) -> None:
    net = relu_net(3, (2, 6, 5, 1))
    prop = GlobalRobustness(REGION, "logit")
    monkeypatch.setattr(sq.verify.Query, "attack", lambda self: None)
    q = sq.quantify(net, "fixed:3", prop, solver="engine", tolerance=1e-6, timeout=120)
    seen = []
    real = EngineBackend._maximize_region

    def spy(self, *args, **kw):
        res = real(self, *args, **kw)
        seen.append(res)
        return res

    monkeypatch.setattr(EngineBackend, "_maximize_region", spy)
    v = sq.check(net, "fixed:3", prop, q.max_deviation.lower / 2, solver="engine", timeout=120)
    assert v.status is sq.Status.VIOLATED
    # the search that found it stopped there: not complete, no upper bound claimed
    assert seen and not seen[-1].complete and seen[-1].upper is None and seen[-1].best[0] > 0


def test_global_confidence_pieces_are_halved_where_the_engine_reports_a_tie(monkeypatch) -> None:
    """The threshold route over pieces (check's fallback after the search by optimization)."""
    net = sq.load_model(MODELS / "moons_relu.json")
    prop = GlobalRobustness(REGION, "confidence")
    q = sq.quantify(net, "fixed:4", prop, solver="engine", tolerance=1e-3, timeout=120)
    assert q.status is sq.Status.ROBUST, q.reason
    up = q.max_deviation.upper
    real = EngineBackend.solve
    widths = []

    def tie_on_wide_pieces(self, problem, condition, timeout):
        a, b = condition[0][0].const, condition[0][1].const  # the piece's guards: a <= z <= b
        widths.append(b - a)
        if b - a > Fraction(1, 2):
            return CheckOutcome(Answer.UNKNOWN, "engine: an LP point with all phases fixed did not validate")
        return real(self, problem, condition, timeout)

    monkeypatch.setattr(EngineBackend, "solve", tie_on_wide_pieces)
    monkeypatch.setattr(search, "decide_by_optimization", lambda *a: None)  # straight to the fallback
    v = sq.check(net, "fixed:4", prop, up + Fraction(1, 10**5), solver="engine", timeout=120)
    assert v.status is sq.Status.ROBUST, v.reason
    assert max(widths) > Fraction(1, 2) >= min(widths)
    monkeypatch.setattr(EngineBackend, "unknown_is_tie", False)
    v = sq.check(net, "fixed:4", prop, up + Fraction(1, 10**5), solver="engine", timeout=120)
    assert v.status is sq.Status.UNKNOWN


def test_a_global_confidence_check_on_the_engine_searches_like_quantify(monkeypatch) -> None:
    """Global confidence with a logistic output: check runs quantify's best-first search over
    pieces of the output range, stopped once delta is decided. Below the certified lower end it
    finds a witness (validated exactly, within the interval), above the upper end it proves."""
    monkeypatch.setattr(search, "LOOK_SHARE", 0)  # the search alone, without the threshold look
    net = sq.load_model(MODELS / "moons_relu.json")
    prop = GlobalRobustness(REGION, "confidence")
    q = sq.quantify(net, "fixed:4", prop, solver="engine", tolerance=1e-3, timeout=120)
    assert q.status is sq.Status.ROBUST, q.reason
    lo, up = q.max_deviation.lower, q.max_deviation.upper
    below = sq.check(net, "fixed:4", prop, lo * Fraction(99, 100), solver="engine", timeout=120)
    above = sq.check(net, "fixed:4", prop, up * Fraction(101, 100), solver="engine", timeout=120)
    assert below.status is sq.Status.VIOLATED and above.status is sq.Status.ROBUST, (below.reason, above.reason)
    assert lo * Fraction(99, 100) < below.witness.deviation[0] <= up
    assert "witness of the search over pieces" in below.reason and "best-first" in above.reason  # not the threshold route
    z3_query = sq.verify.Query(net, sq.parse_scheme("fixed:4").box(net), prop, sq.backends.get_backend("z3"), None)
    assert search.decide_by_optimization(z3_query, lo, None) is None  # z3 has no maximize: the threshold route


def test_a_global_confidence_check_looks_through_the_threshold_route_first(monkeypatch) -> None:
    """Before the search over pieces, check gives the threshold route (which stops at its first
    violating point) LOOK_SHARE of the time left, and keeps its answer when it has one."""
    prop = GlobalRobustness(REGION, "confidence")
    monkeypatch.setattr(sq.verify.Query, "attack", lambda self: None)  # so that a route must find the witness
    budgets = []
    real = sq.verify.Query.exceeds

    def spy(self, t):
        budgets.append(self.remaining())
        return real(self, t)

    deep = sq.load_model(MODELS / "moons_relu_8x8.json")  # here the threshold route finds one at once
    q = sq.quantify(deep, "fixed:6", prop, solver="engine", tolerance=1e-3, timeout=120)
    lo, up = q.max_deviation.lower, q.max_deviation.upper
    assert q.status is sq.Status.ROBUST, q.reason
    monkeypatch.setattr(sq.verify.Query, "exceeds", spy)
    below = sq.check(deep, "fixed:6", prop, lo * Fraction(99, 100), solver="engine", timeout=100)
    assert below.status is sq.Status.VIOLATED, below.reason
    assert lo * Fraction(99, 100) < below.witness.deviation[0] <= up
    assert "witness at node" in below.reason  # the threshold route's witness: the search never ran
    assert len(budgets) == 1 and budgets[0] <= 0.1 * 100 + 1e-6
    # where the look decides nothing, the search gets the rest of the time and proves
    net = sq.load_model(MODELS / "moons_relu.json")
    q = sq.quantify(net, "fixed:4", prop, solver="engine", tolerance=1e-3, timeout=120)
    up = q.max_deviation.upper
    budgets.clear()
    monkeypatch.setattr(sq.verify.Query, "exceeds",
                        lambda self, t: (budgets.append(self.remaining()), (Answer.UNKNOWN, None, "looked"))[1])
    above = sq.check(net, "fixed:4", prop, up * Fraction(101, 100), solver="engine", timeout=100)
    assert above.status is sq.Status.ROBUST and "best-first" in above.reason, above.reason
    assert len(budgets) == 1 and budgets[0] <= 10 + 1e-6
    # without a deadline the look has LOOK_S seconds
    budgets.clear()
    sq.check(net, "fixed:4", prop, up * Fraction(101, 100), solver="engine")
    assert budgets == [pytest.approx(search.LOOK_S, abs=0.5)]


def test_tie_halvings_are_capped_when_every_piece_stays_unknown(monkeypatch) -> None:
    net = sq.load_model(MODELS / "moons_relu.json")
    calls = []

    def always_tied(self, problem, condition, timeout):
        calls.append(condition)
        return CheckOutcome(Answer.UNKNOWN, "engine: an LP point with all phases fixed did not validate")

    monkeypatch.setattr(EngineBackend, "solve", always_tied)
    monkeypatch.setattr(search, "decide_by_optimization", lambda *a: None)  # the fallback route
    monkeypatch.setattr(sq.verify.Query, "attack", lambda self: None)
    monkeypatch.setattr(sq.verify, "TIE_SPLITS", 5)
    v = sq.check(net, "fixed:4", GlobalRobustness(REGION, "confidence"), 0.3, solver="engine")  # no deadline
    assert v.status is sq.Status.UNKNOWN and "did not validate" in v.reason
    assert len(calls) == 5 + 1
