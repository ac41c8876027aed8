"""The numpy / integer fast paths give exactly the numbers of the Fraction code they stand in for:
each test runs both on the same data (the slow one with the fast one switched off) and compares."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smtquant as sq
from smtquant import bounds, schemes
from smtquant.boxes import ParameterBox
from smtquant.errors import SchemeError
from smtquant.exact import exact_layers, float_down, float_up, to_fraction
from smtquant.network import Network
from smtquant.verify import Query

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRICKY = [0.0, -0.0, 5e-324, -5e-324, 2.0**-1022, 1e-310, -3e-320, 0.1, -0.7, 1.5, 1e300, -1e308, 2.0**52 + 1]


def floats(max_abs: float = 4.0) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(-max_abs, max_abs), st.sampled_from(TRICKY), st.integers(-64, 64).map(lambda k: k / 8))


RADII = [Fraction(0), Fraction(1, 32), Fraction(1, 2**60), Fraction(1, 127), Fraction(3, 2**1080),
         Fraction(1, 2**1074) + Fraction(1, 10**400), Fraction(5, 3)]


@FAST
@given(st.lists(floats(1e308), min_size=6, max_size=6), st.lists(floats(), min_size=3, max_size=3),
       st.sampled_from(RADII), st.sampled_from(RADII))
def test_inward_doubles_are_the_exact_roundings_of_the_box_ends(w, b, ew, eb):
    net = Network.from_lists([[w[:3], w[3:]]], [b], output_activation="identity")
    box = ParameterBox(net, ((tuple([ew] * 3), tuple([eb] * 3)),), (tuple([eb] * 3),))
    w_lo, w_hi, b_lo, b_hi = box.inward_doubles()[0]
    for i in range(2):
        for j in range(3):
            c = to_fraction(net.layers[0].weights[i, j])
            r = box.weights[0][i][j]
            assert float(w_lo[i, j]) == float_up(c - r) and float(w_hi[i, j]) == float_down(c + r)
    for j in range(3):
        c = to_fraction(b[j])
        assert float(b_lo[j]) == float_up(c - eb) and float(b_hi[j]) == float_down(c + eb)


@st.composite
def small_nets(draw: st.DrawFn) -> tuple[Network, list[tuple[Fraction, Fraction]]]:
    sizes = [2] + draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)) + [1]
    ws = [[[draw(floats()) for _ in range(sizes[k + 1])] for _ in range(sizes[k])] for k in range(len(sizes) - 1)]
    bs = [[draw(floats()) for _ in range(sizes[k + 1])] for k in range(len(sizes) - 1)]
    net = Network.from_lists(ws, bs, hidden_activation=draw(st.sampled_from(["relu", "identity"])))
    x = [to_fraction(draw(floats())) for _ in range(2)]
    width = [to_fraction(abs(draw(floats(2.0)))) for _ in range(2)]
    region = draw(st.booleans())
    inputs = [(v - d, v + d) if region else (v, v) for v, d in zip(x, width)]
    return net, inputs


@FAST
@given(small_nets(), st.sampled_from([Fraction(0), Fraction(1, 32), Fraction(1, 2**40)]), st.booleans())
def test_integer_interval_propagation_equals_the_fraction_one(case, eps, perturbed):
    net, inputs = case
    layers = exact_layers(net)
    box = ParameterBox.uniform(net, eps) if perturbed else None
    fast = bounds._dyadic_propagate(layers, net.hidden_activation, inputs, box)
    assert fast is not None
    slow = _without(bounds, "_dyadic_propagate", lambda: bounds.propagate_intervals(layers, net.hidden_activation,
                                                                                     inputs, box))
    assert fast.pre == slow.pre


def test_integer_interval_propagation_leaves_non_dyadic_numbers_to_fractions():
    net = Network.from_lists([[[1.0]], [[2.0]]], [[0.5], [0.0]], hidden_activation="relu")
    layers = exact_layers(net)
    third = [(Fraction(1, 3), Fraction(1, 3))]
    assert bounds._dyadic_propagate(layers, "relu", third, None) is None
    assert bounds._dyadic_propagate(layers, "relu", [(Fraction(1), Fraction(1))],
                                    ParameterBox.uniform(net, Fraction(1, 127))) is None
    got = bounds.propagate_intervals(layers, "relu", third, ParameterBox.uniform(net, Fraction(1, 127)))
    lo, hi = got.output[0]  # relu(w x + b) with w in 1 +- 1/127, b in 0.5 +- 1/127, then times 2 +- 1/127
    e = Fraction(1, 127)
    assert lo == (2 - e) * ((1 - e) / 3 + Fraction(1, 2) - e) - e


@FAST
@given(st.lists(st.one_of(floats(), st.floats(-1e-3, 1e-3), st.sampled_from([0.5, -2.5, 0.375, 2.0**-9 * 3])),
                min_size=6, max_size=6),
       st.sampled_from(["fixed:0", "fixed:2", "fixed:4", "fixed:8", "fixed:20", "fixed:60", "fixed:3.2",
                        "fixed:1.4", "fixed:16.40", "fixed:2.52"]))
def test_fixed_point_in_numpy_equals_the_fraction_rounding(vals, spec):
    part = schemes._parse(spec)[0]
    arr = np.array(vals).reshape(2, 3)

    def run(fast: bool):
        try:
            if fast:
                return schemes._quantize_tensor(part, arr, "w", spec, False)
            return _without(schemes, "_quantize_fixed", lambda: schemes._quantize_tensor(part, arr, "w", spec, False))
        except SchemeError as e:
            return str(e)

    a, b = run(True), run(False)
    if isinstance(a, str) or isinstance(b, str):
        assert a == b  # the same error, naming the same first entry
        return
    assert a[0] == b[0]
    assert np.array_equal(a[1], b[1]) and np.array_equal(np.signbit(a[1]), np.signbit(b[1]))


def test_fixed_point_out_of_range_names_the_first_entry():
    net = Network.from_lists([[[0.5, 3.0], [-4.5, 0.25]]], [[0.0, 0.0]], output_activation="identity")
    with pytest.raises(SchemeError, match=r"fixed:3\.2: layers\[0\]\.weights\[1,0\] = -4\.5 is outside \[-4, 3\.75\]"):
        sq.parse_scheme("fixed:3.2").box(net)


@pytest.mark.parametrize("act", ["relu", "identity"])
def test_a_float_candidate_validates_like_its_fraction_copy(act):
    rng = np.random.default_rng(7)
    sizes = [2, 5, 4, 1]
    ws = [rng.normal(size=(a, b)).tolist() for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(size=b).tolist() for b in sizes[1:]]
    net = Network.from_lists(ws, bs, hidden_activation=act)
    for spec in ("fixed:4", "int:5"):  # power-of-two radii, and radii with a factor 1/15
        box = sq.parse_scheme(spec).box(net)
        q = Query(net, box, sq.LocalRobustness([0.3, -0.6], metric="logit"), None, None)  # type: ignore[arg-type]
        for _ in range(5):
            # a candidate partly outside the box: clipping into it is part of validation
            cand = [(np.array(w) + rng.uniform(-0.2, 0.2, size=np.shape(w)), np.array(b) + rng.uniform(-0.2, 0.2, size=len(b)))
                    for w, b in zip(ws, bs)]
            x = [Fraction(0.3), Fraction(-0.6)]
            fast = q.validate(x, cand)  # type: ignore[arg-type]
            as_fractions = [([[to_fraction(v) for v in row] for row in w.tolist()], [to_fraction(v) for v in b.tolist()])
                            for w, b in cand]
            slow = q.validate(x, as_fractions)
            assert fast.deviation == slow.deviation
            assert fast.layers == slow.layers
            assert box.contains(net.with_layers([sq.Layer(np.array([[float(v) for v in r] for r in w]),
                                                          np.array([float(v) for v in b])) for w, b in fast.layers]))


def _without(module, name, call):
    """call() with module.name replaced by a function that declines (the slow path runs)."""
    saved = getattr(module, name)
    setattr(module, name, lambda *a, **k: None)
    try:
        return call()
    finally:
        setattr(module, name, saved)


@FAST
@given(st.lists(st.tuples(st.integers(-2**20, 2**20), st.integers(0, 60)), min_size=4, max_size=4),
       st.sampled_from(["abs", "relu"]), st.booleans(), st.booleans())
def test_hull_plane_constants_in_integers_equal_the_fraction_ones(nums, kind, flat_m, flat_r):
    from smtquant import engine

    q = [Fraction(n, 2**e) for n, e in nums]
    ml, mh = sorted(q[:2])
    rl, rh = sorted(abs(v) for v in q[2:])
    mh, rh = (ml if flat_m else mh), (rl if flat_r else rh)
    fast = engine._hull_planes(kind, ml, mh, rl, rh)
    slow = _without(engine, "_vertex_ints", lambda: engine._hull_planes(kind, ml, mh, rl, rh))
    assert fast == slow
    third = Fraction(1, 3)  # not dyadic: the Fraction path
    assert engine._vertex_ints(kind, [(third, third, third)]) is None
