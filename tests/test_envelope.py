"""The envelope backend (logistic / tanh hidden units with z3's linear arithmetic) against answers
computed independently: the closed form for one hidden layer at a fixed input (Decimal
arithmetic, 60 digits), interval bounds, and float64 sampling of the parameter box and the input
region. Also the envelope itself (hypothesis) and the time limit."""

from __future__ import annotations

import time
from decimal import Context, Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smtquant as sq
from smtquant.backends.base import Answer
from smtquant.backends.envelope import (
    Envelope,
    EnvelopeBackend,
    Margin,
    act_bounds,
    condition_margin,
    deriv_bounds,
    evaluate_condition,
    segment_envelope,
)
from smtquant.backends.z3_backend import Z3EliminatedBackend
from smtquant.exact import sigmoid_bounds, tanh_bounds, to_fraction
from smtquant.properties import Atom, GlobalRobustness, LocalRobustness, violation_condition
from smtquant.verify import Query

CTX = Context(prec=60)


def smooth_net(seed: int, sizes: list[int], act: str, out: str = "logistic") -> sq.Network:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(size=b) for b in sizes[1:]]
    return sq.Network.from_lists(ws, bs, act, out)


def dec(q: Fraction) -> Decimal:
    return CTX.divide(Decimal(q.numerator), Decimal(q.denominator))


def act_dec(act: str, v: Decimal) -> Decimal:
    if act == "logistic":
        return CTX.divide(1, CTX.add(1, CTX.exp(CTX.minus(v))))
    e = CTX.exp(CTX.multiply(2, v))
    return CTX.divide(CTX.subtract(e, 1), CTX.add(e, 1))


def closed_form(net: sq.Network, box: sq.ParameterBox, x: list[Fraction], metric: str) -> Decimal:
    """max D over the box for a one-hidden-layer, one-output net at input x.

    Every parameter occurs once: hidden unit j's pre-activation ranges independently over
    [c_j - r_j, c_j + r_j], so h_j ranges over [act(c - r), act(c + r)] (act is increasing), and
    z' = sum_j v'_j h_j + b' is extreme at the corners of (v'_j, h_j) and of b'."""
    (w1, b1), (w2, b2) = [(layer.weights, layer.biases) for layer in net.layers]
    act = net.hidden_activation
    eb = dec(box.biases[1][0])
    z_hi = z_lo = z = dec(to_fraction(b2[0]))
    z_hi, z_lo = CTX.add(z_hi, eb), CTX.subtract(z_lo, eb)
    for j in range(w1.shape[1]):
        c = to_fraction(b1[j]) + sum(to_fraction(w1[i, j]) * x[i] for i in range(len(x)))
        r = box.biases[0][j] + sum(box.weights[0][i][j] * abs(x[i]) for i in range(len(x)))
        h_lo, h0, h_hi = act_dec(act, dec(c - r)), act_dec(act, dec(c)), act_dec(act, dec(c + r))
        v, e = dec(to_fraction(w2[j, 0])), dec(box.weights[1][j][0])
        corners = [CTX.multiply(a, h) for a in (CTX.subtract(v, e), CTX.add(v, e)) for h in (h_lo, h_hi)]
        z_hi = CTX.add(z_hi, max(corners))
        z_lo = CTX.add(z_lo, min(corners))
        z = CTX.add(z, CTX.multiply(v, h0))
    if metric == "logit" or net.output_activation == "identity":
        return max(CTX.subtract(z_hi, z), CTX.subtract(z, z_lo))
    s = act_dec("logistic", z)
    return max(CTX.subtract(act_dec("logistic", z_hi), s), CTX.subtract(s, act_dec("logistic", z_lo)))


def frac(d: Decimal) -> Fraction:
    return Fraction(str(d))


def in_box(net: sq.Network, box: sq.ParameterBox, layers: tuple) -> bool:
    for li, (w, b) in enumerate(layers):
        w0, b0 = net.layers[li].weights, net.layers[li].biases
        if any(abs(w[i][j] - to_fraction(w0[i, j])) > box.weights[li][i][j] for i in range(len(w)) for j in range(len(b))):
            return False
        if any(abs(b[j] - to_fraction(b0[j])) > box.biases[li][j] for j in range(len(b))):
            return False
    return True


# --------------------------------------------------------------------------- 1. the closed form

ONE_HIDDEN = [
    # (seed, sizes, hidden, output, scheme, x, metric)
    (0, [1, 3, 1], "logistic", "identity", "eps:0.05", [0.4], "logit"),
    (1, [1, 3, 1], "tanh", "logistic", "fixed:4", [-0.8], "logit"),
    (2, [2, 3, 1], "logistic", "logistic", "fixed:4", [0.3, -0.7], "logit"),
    (3, [2, 3, 1], "tanh", "identity", "eps:0.05", [1.1, 0.2], "confidence"),
    (4, [2, 3, 1], "logistic", "logistic", "eps:0.05", [-0.5, 0.9], "confidence"),
    (5, [2, 3, 1], "tanh", "logistic", "fixed:4", [0.25, 0.5], "confidence"),
]


@pytest.mark.parametrize(("seed", "sizes", "act", "out", "scheme", "x", "metric"), ONE_HIDDEN)
def test_one_hidden_layer_flips_at_the_closed_form(seed: int, sizes: list[int], act: str, out: str, scheme: str,
                                                   x: list[float], metric: str) -> None:
    net = smooth_net(seed, sizes, act, out)
    box = sq.parse_scheme(scheme).box(net)
    expected = frac(closed_form(net, box, [to_fraction(v) for v in x], metric))
    assert expected > 0
    q = Query(net, box, LocalRobustness(x, metric), EnvelopeBackend(), time.monotonic() + 30)
    below = expected * Fraction(999, 1000)
    ans, wit, reason = q.exceeds(below)
    assert ans is Answer.SAT, reason
    assert wit is not None and wit.deviation[0] > below and in_box(net, box, wit.layers)
    assert wit.deviation[1] >= wit.deviation[0] and wit.deviation[0] <= expected + Fraction(1, 10**30)
    ans, wit, reason = q.exceeds(expected * Fraction(1001, 1000))
    assert ans is Answer.UNSAT, reason


def test_check_end_to_end_with_the_envelope_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify.check takes a solver name; route it to the envelope backend for this test."""
    monkeypatch.setattr("smtquant.verify.get_backend", lambda *a, **k: EnvelopeBackend())
    net = smooth_net(2, [2, 3, 1], "logistic")
    box = sq.parse_scheme("fixed:4").box(net)
    x = [0.3, -0.7]
    expected = frac(closed_form(net, box, [to_fraction(v) for v in x], "logit"))
    good = sq.check_local(net, "fixed:4", x, expected * Fraction(1001, 1000), metric="logit", timeout=30)
    assert good.status is sq.Status.ROBUST, good.reason
    bad = sq.check_local(net, "fixed:4", x, expected * Fraction(999, 1000), metric="logit", timeout=30)
    assert bad.status is sq.Status.VIOLATED and bad.witness is not None
    assert bad.witness.deviation[0] > expected * Fraction(999, 1000)
    assert bad.solver == "envelope"


# --------------------------------------------------------------------------- 2. deeper nets: sampling

def sampled_outputs(net: sq.Network, box: sq.ParameterBox, xs: np.ndarray, n: int, seed: int) -> float:
    """The largest logit deviation of n random parameter vectors in the box (half of them box
    vertices) at every input in xs, in float64 (a lower bound on the true maximum)."""
    rng = np.random.default_rng(seed)
    eps_w = [np.array([[float(v) for v in r] for r in w]) for w in box.weights]
    eps_b = [np.array([float(v) for v in b]) for b in box.biases]
    z = net.forward(xs)  # (m, 1)
    best = 0.0
    for k in range(n):
        def draw(shape: tuple[int, ...], k: int = k) -> np.ndarray:
            return rng.choice([-1.0, 1.0], size=shape) if k % 2 == 0 else rng.uniform(-1.0, 1.0, size=shape)
        layers = [sq.Layer(l.weights + ew * draw(ew.shape), l.biases + eb * draw(eb.shape))
                  for l, ew, eb in zip(net.layers, eps_w, eps_b)]
        zp = net.with_layers(layers).forward(xs)
        best = max(best, float(np.max(np.abs(zp - z))))
    return best


def bisect_max(q: Query, lower: Fraction, upper: Fraction, steps: int, sampled: float) -> tuple[Fraction, Fraction]:
    """Narrow [lower, upper] around max D with the backend, checking every answer on the way:
    a robust t is never exceeded by a sample; a violated t has a witness above it in the box."""
    for _ in range(steps):
        t = (lower + upper) / 2
        q.deadline = time.monotonic() + 20
        ans, wit, reason = q.exceeds(t)
        if ans is Answer.UNSAT:
            assert sampled <= float(t) + 1e-12, (t, sampled, reason)
            upper = t
        elif ans is Answer.SAT:
            assert wit is not None and wit.deviation[0] > t and in_box(q.net, q.box, wit.layers)
            assert all(lo <= v <= hi for v, (lo, hi) in zip(wit.input, q.inputs))
            lower = wit.deviation[0]
        else:
            assert "timeout" in reason or "tolerance" in reason, reason
            break
    return lower, upper


DEEP = [
    (10, [2, 4, 4, 1], "logistic", "logistic", "fixed:4"),
    (11, [2, 4, 4, 1], "tanh", "identity", "eps:0.05"),
    (12, [2, 3, 1], "tanh", "logistic", "eps:0.05"),
]


@pytest.mark.parametrize(("seed", "sizes", "act", "out", "scheme"), DEEP)
def test_deeper_nets_agree_with_bounds_and_sampling(seed: int, sizes: list[int], act: str, out: str, scheme: str) -> None:
    net = smooth_net(seed, sizes, act, out)
    box = sq.parse_scheme(scheme).box(net)
    x = [0.3, -0.7]
    q = Query(net, box, LocalRobustness(x, "logit"), EnvelopeBackend(), None)
    ub = q.upper_bound()
    sampled = sampled_outputs(net, box, np.array([x]), 600, seed)
    assert sampled <= float(ub) + 1e-9
    q.deadline = time.monotonic() + 20
    ans, _, reason = q.exceeds(ub * Fraction(1001, 1000))
    assert ans is Answer.UNSAT, reason
    low = to_fraction(sampled) * Fraction(99, 100)
    q.deadline = time.monotonic() + 20
    ans, wit, reason = q.exceeds(low)
    assert ans is Answer.SAT and wit is not None and wit.deviation[0] > low, reason
    # in between: every answer of a bisection is checked against the samples and the box
    lower, upper = bisect_max(q, wit.deviation[0], ub, 6, sampled)
    assert upper - lower < (ub - low) / 32  # the certified interval narrows


# --------------------------------------------------------------------------- 3. global, small region

def test_global_small_region_agrees_with_grid_sampling() -> None:
    net = smooth_net(7, [2, 3, 1], "logistic")
    box = sq.parse_scheme("fixed:4").box(net)
    region = [[0.0, 0.5], [-0.5, 0.0]]
    grid = np.array([[a, b] for a in np.linspace(0.0, 0.5, 11) for b in np.linspace(-0.5, 0.0, 11)])
    sampled = sampled_outputs(net, box, grid, 300, 7)
    q = Query(net, box, GlobalRobustness(region, "logit"), EnvelopeBackend(), None)
    ub = q.upper_bound()
    assert sampled <= float(ub)
    low = to_fraction(sampled) * Fraction(99, 100)
    q.deadline = time.monotonic() + 20
    ans, wit, reason = q.exceeds(low)
    assert ans is Answer.SAT and wit is not None and wit.deviation[0] > low, reason
    q.deadline = time.monotonic() + 20
    assert q.exceeds(ub)[0] is Answer.UNSAT
    lower, upper = bisect_max(q, wit.deviation[0], ub, 6, sampled)
    assert upper - lower < (ub - low) / 32
    assert upper < ub / 2  # far below the interval bound, which treats z and z' independently


def test_global_confidence_with_pieces_is_consistent() -> None:
    net = smooth_net(8, [2, 3, 1], "tanh")
    box = sq.parse_scheme("eps:0.05").box(net)
    region = [[-0.25, 0.25], [0.0, 0.5]]
    q = Query(net, box, GlobalRobustness(region, "confidence"), EnvelopeBackend(), time.monotonic() + 30)
    ub = q.upper_bound()
    ans, _, reason = q.exceeds(ub)
    assert ans is Answer.UNSAT, reason
    ans, wit, reason = q.exceeds(ub / 20)
    assert ans is Answer.SAT and wit is not None and wit.deviation[0] > ub / 20, reason


def test_relu_and_identity_are_encoded_exactly() -> None:
    for act in ("relu", "identity"):
        net = smooth_net(9, [2, 4, 1], act)
        box = sq.parse_scheme("eps:0.05").box(net)
        prop = GlobalRobustness([[0.0, 0.5], [-0.5, 0.0]], "logit")
        qe = Query(net, box, prop, EnvelopeBackend(), None)
        qz = Query(net, box, prop, Z3EliminatedBackend(), None)
        ub = qe.upper_bound()
        for f in (Fraction(1, 4), Fraction(3, 4)):
            assert qe.exceeds(ub * f)[0] is qz.exceeds(ub * f)[0]


# --------------------------------------------------------------------------- 4. the envelope itself

def enclosure(act: str, u: Fraction) -> tuple[Fraction, Fraction]:
    """act(u) to 200 bits. An envelope line beyond this enclosure is wrong by more than its width
    (2^-200); the line may touch act closer than that (the tangent at 0 does), so the test refutes
    only what the enclosure proves."""
    return (sigmoid_bounds if act == "logistic" else tanh_bounds)(u, 200)


points = st.fractions(min_value=-8, max_value=8, max_denominator=2**20)


@settings(max_examples=150, deadline=None)
@given(act=st.sampled_from(["logistic", "tanh"]), p=points, q=points, s=st.fractions(min_value=0, max_value=1))
def test_segment_envelope_encloses_the_activation(act: str, p: Fraction, q: Fraction, s: Fraction) -> None:
    a, b = min(p, q), max(p, q)
    if a < 0 < b:  # segments never straddle 0: take the side that holds the point
        a, b = (a, Fraction(0)) if s < Fraction(1, 2) else (Fraction(0), b)
    seg = segment_envelope(act, a, b)
    u = a + (b - a) * s
    lo, hi = enclosure(act, u)
    assert seg.lower_at(u) <= hi and lo <= seg.upper_at(u)
    assert seg.upper_at(u) - seg.lower_at(u) <= (b - a) ** 2 + Fraction(1, 2**40)  # and it is tight


@settings(max_examples=60, deadline=None)
@given(act=st.sampled_from(["logistic", "tanh"]), p=points, q=points,
       cuts=st.lists(st.fractions(min_value=0, max_value=1), max_size=5), s=st.fractions(min_value=0, max_value=1))
def test_refined_envelope_encloses_the_activation(act: str, p: Fraction, q: Fraction, cuts: list[Fraction],
                                                  s: Fraction) -> None:
    lo, hi = min(p, q), max(p, q)
    env = Envelope(act, lo, hi, initial_segments=2)
    for c in cuts:
        env.add_breakpoint(lo + (hi - lo) * c)
    assert all(not (seg.a < 0 < seg.b) for seg in env.segments())
    u = lo + (hi - lo) * s
    f_lo, f_hi = enclosure(act, u)
    e_lo, e_hi = env.bounds_at(u)
    assert e_lo <= f_hi and f_lo <= e_hi


@given(act=st.sampled_from(["logistic", "tanh"]), u=points, d=st.fractions(min_value=-1, max_value=1))
@settings(max_examples=80, deadline=None)
def test_derivative_enclosure_is_consistent_with_the_mean_value_theorem(act: str, u: Fraction, d: Fraction) -> None:
    """act(u + d) - act(u) = act'(xi) d, and act' is monotone on each side of 0: the difference
    quotient lies between the derivative enclosures at the ends when both are on one side."""
    d = d / 1000
    if d == 0 or (u < 0 < u + d) or (u + d < 0 < u):
        return
    a, b = min(u, u + d), max(u, u + d)
    q_lo = (act_bounds(act, b)[0] - act_bounds(act, a)[1]) / (b - a)
    q_hi = (act_bounds(act, b)[1] - act_bounds(act, a)[0]) / (b - a)
    ends = [deriv_bounds(act, a), deriv_bounds(act, b)]
    assert min(e[0] for e in ends) <= q_hi and q_lo <= max(e[1] for e in ends)


def test_condition_evaluation_on_enclosures() -> None:
    one = Fraction(1)
    cond = ((Atom(((0, one),), ((0, -one),), ">", Fraction(1, 2)),), (Atom(((0, one),), ((0, -one),), "<", -one),))
    z = [(Fraction(0), Fraction(0))]
    assert evaluate_condition(cond, [(Fraction(6, 10), Fraction(7, 10))], z) is True
    assert evaluate_condition(cond, [(Fraction(4, 10), Fraction(6, 10))], z) is None
    assert evaluate_condition(cond, [(Fraction(-1, 10), Fraction(4, 10))], z) is False
    assert condition_margin(cond, [(Fraction(6, 10), Fraction(7, 10))], z) == Margin(True, Fraction(1, 10), Fraction(0))
    assert condition_margin(cond, [(Fraction(4, 10), Fraction(6, 10))], z) == Margin(False, Fraction(-1, 10), Fraction(0))
    # a guard on z alone that the enclosure cannot decide is left to the caller; one that surely fails is not
    guarded = ((Atom((), ((0, one),), ">=", Fraction(1)), Atom(((0, one),), (), ">", Fraction(0))),)
    assert condition_margin(guarded, [(one, one)], [(Fraction(1, 2), Fraction(2))]) == Margin(True, one, Fraction(0))
    assert condition_margin(guarded, [(one, one)], [(Fraction(0), Fraction(3, 4))]) == Margin(False, one, Fraction(1, 4))


# --------------------------------------------------------------------------- 5. time limit

def test_tiny_timeout_is_unknown_never_robust() -> None:
    net = smooth_net(13, [2, 4, 4, 1], "tanh")
    box = sq.parse_scheme("eps:0.05").box(net)
    q = Query(net, box, GlobalRobustness([[-1.0, 1.0], [-1.0, 1.0]], "logit"), EnvelopeBackend(), None)
    t = q.upper_bound() / 3
    start = time.monotonic()
    out = EnvelopeBackend().solve(q.problem, violation_condition(net, q.metric, t, None), 0.3)
    assert time.monotonic() - start < 3.0
    assert out.answer is not Answer.UNSAT
    if out.answer is Answer.UNKNOWN:
        assert "timeout" in out.reason
    q.deadline = time.monotonic() + 0.3
    ans, _, reason = q.exceeds(t)
    assert ans is not Answer.UNSAT
    if ans is Answer.UNKNOWN:
        assert "timeout" in reason
    v_start = time.monotonic()
    assert EnvelopeBackend().solve(q.problem, (), 0).answer is Answer.UNKNOWN
    assert time.monotonic() - v_start < 1.0
