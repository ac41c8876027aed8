"""Tests for smtquant.schemes: spec parsing, exact radii, and concrete rounding that stays in the box."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtquant.boxes import ParameterBox
from smtquant.errors import SchemeError
from smtquant.network import Network
from smtquant.schemes import MAX_BITS, Scheme, parse_scheme, scheme_for_bits

FAST = settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------

TIES = [0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 0.375, 0.03125, 2.0**-15, -(2.0**-25), 2.0**-24 * 1.5]


def values(max_abs: float = 1e4) -> st.SearchStrategy[float]:
    """Finite floats of varied magnitude: large, unit, small, float16- and bfloat16-subnormal, ties."""
    return st.one_of(
        st.floats(-max_abs, max_abs),
        st.floats(-4.0, 4.0),
        st.floats(-1e-3, 1e-3),
        st.floats(-1e-6, 1e-6),  # float16 subnormals are below 2^-14 ~ 6.1e-5
        st.floats(-1e-38, 1e-38),  # bfloat16 subnormals are below 2^-126 ~ 1.2e-38
        st.integers(-256, 256).map(lambda k: k / 64),  # dyadic: exact ties of fixed:F and float formats
        st.sampled_from(TIES),
    )


@st.composite
def networks(draw: st.DrawFn, elements: st.SearchStrategy[float] | None = None, n_layers: int | None = None) -> Network:
    elements = values() if elements is None else elements
    n = draw(st.integers(1, 3)) if n_layers is None else n_layers
    sizes = draw(st.lists(st.integers(1, 4), min_size=n + 1, max_size=n + 1))
    weights = [[[draw(elements) for _ in range(sizes[i + 1])] for _ in range(sizes[i])] for i in range(n)]
    biases = [[draw(elements) for _ in range(sizes[i + 1])] for i in range(n)]
    return Network.from_lists(weights, biases, "relu", "identity")


def F(x: float) -> Fraction:
    return Fraction(*float(x).as_integer_ratio())


def tensors(net: Network):
    """(layer index, 'weights' | 'biases', array) for every tensor."""
    for i, layer in enumerate(net.layers):
        yield i, "weights", layer.weights
        yield i, "biases", layer.biases


def radii(box: ParameterBox, i: int, kind: str) -> np.ndarray:
    return np.array(box.weights[i] if kind == "weights" else box.biases[i], dtype=object)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays, signs of zero included."""
    return a.shape == b.shape and bool(np.all(a == b)) and bool(np.all(np.signbit(a) == np.signbit(b)))


# -- every scheme: the quantized network lies in the box ---------------------------------------

IN_RANGE_SPECS = [
    "fixed:0", "fixed:1", "fixed:4", "fixed:13", "fixed:15.8", "int:2", "int:3", "int:8", "int:3:channel",
    "int:16:channel", "float16", "bfloat16", "eps:0", "eps:0.01", "rel:0.125", "rel:3", "fixed:4@weights",
    "int:4:channel@weights", "float16@weights", "rel:0.5@weights",
]


@pytest.mark.parametrize("spec", IN_RANGE_SPECS)
@FAST
@given(data=st.data())
def test_quantized_network_lies_exactly_in_box(spec: str, data: st.DataObject) -> None:
    net = data.draw(networks())
    scheme = parse_scheme(spec)
    box = scheme.box(net)
    q = scheme.quantize(net)
    assert box.label == scheme.spec == spec
    assert box.network is net
    assert box.contains(q)
    assert q.sizes == net.sizes
    assert (q.hidden_activation, q.output_activation) == (net.hidden_activation, net.output_activation)
    for layer in q.layers:
        assert layer.weights.dtype == np.float64 and np.all(np.isfinite(layer.weights))


@pytest.mark.parametrize("spec", ["fixed:2", "int:2", "float16", "bfloat16", "eps:0.5", "rel:1"])
@FAST
@given(data=st.data())
def test_box_is_not_trivially_large(spec: str, data: st.DataObject) -> None:
    """A contained point is not a vacuous check: moving one parameter past its radius leaves the box."""
    net = data.draw(networks(st.floats(-100, 100)))
    box = parse_scheme(spec).box(net)
    w = net.layers[0].weights.copy()
    r = box.weights[0][0][0]
    w[0, 0] = float(F(w[0, 0]) + 2 * r + Fraction(1, 2**60) * max(1, abs(F(w[0, 0]))))
    moved = net.with_layers([type(net.layers[0])(w, net.layers[0].biases), *net.layers[1:]])
    assert not box.contains(moved)


# -- fixed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("frac", [0, 1, 3, 8, 20])
@FAST
@given(data=st.data())
def test_fixed_radius_and_grid(frac: int, data: st.DataObject) -> None:
    net = data.draw(networks())
    scheme = parse_scheme(f"fixed:{frac}")
    box, q = scheme.box(net), scheme.quantize(net)
    for i, kind, arr in tensors(net):
        assert all(v == Fraction(1, 2 ** (frac + 1)) for v in radii(box, i, kind).flat)
        got = getattr(q.layers[i], kind)
        for theta, v in zip(arr.flat, got.flat):
            assert (F(v) * 2**frac).denominator == 1  # a multiple of 2^-F
            # an independent reference in float arithmetic: scaling by 2^F is exact, round() is half-even
            assert v == math.ldexp(round(math.ldexp(theta, frac)), -frac)


def test_fixed_ties_go_to_even() -> None:
    net = _one_layer([[0.5, 1.5, 2.5, -0.5, -1.5, 0.75]], [0.0] * 6)
    assert parse_scheme("fixed:0").quantize(net).layers[0].weights.tolist() == [[0.0, 2.0, 2.0, 0.0, -2.0, 1.0]]
    assert parse_scheme("fixed:1").quantize(net).layers[0].weights.tolist() == [[0.5, 1.5, 2.5, -0.5, -1.5, 1.0]]


def _one_layer(weights: list[list[float]], biases: list[float]) -> Network:
    return Network.from_lists([weights], [biases], "relu", "identity")


def test_fixed_range_error_names_parameter_and_range() -> None:
    net = _one_layer([[0.0, 0.0, 0.0], [0.0, 0.0, 9.5]], [0.0, 0.0, 0.0])
    expected = "fixed:2.4: layers[0].weights[1,2] = 9.5 is outside [-2, 1.9375]"
    for method in ("box", "quantize"):
        with pytest.raises(SchemeError) as info:
            getattr(parse_scheme("fixed:2.4"), method)(net)
        assert str(info.value) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1.9375, True), (-2.0, True), (1.96, True),  # 1.96 rounds to 1.9375
        (1.96875, False),  # a tie that rounds (to even) up to 2.0
        (-2.03125, True),  # a tie that rounds (to even) down to -2.0
        (-2.09375, False), (2.0, False), (-2.5, False), (1e300, False),
    ],
)
def test_fixed_range_is_judged_on_the_rounded_value(value: float, ok: bool) -> None:
    net = _one_layer([[value]], [0.0])
    scheme = parse_scheme("fixed:2.4")
    if ok:
        assert scheme.box(net).contains(scheme.quantize(net))
    else:
        pattern = r"^fixed:2\.4: layers\[0\]\.weights\[0,0\] = .* is outside \[-2, 1\.9375\]$"
        with pytest.raises(SchemeError, match=pattern):
            scheme.quantize(net)


def test_fixed_range_names_biases_and_later_layers() -> None:
    net = Network.from_lists([[[0.5]], [[0.25]]], [[0.0], [-7.75]], "relu", "identity")
    with pytest.raises(SchemeError, match=r"^fixed:3\.1: layers\[1\]\.biases\[0\] = -7\.75 is outside \[-4, 3\.5\]$"):
        parse_scheme("fixed:3.1").box(net)
    # @weights leaves biases alone, so their range is not checked
    q = parse_scheme("fixed:3.1@weights").quantize(net)
    assert q.layers[1].biases.tolist() == [-7.75]


@FAST
@given(net=networks(st.one_of(st.floats(-6.0, 6.0), st.sampled_from([-4.0, 3.75, 3.875, -4.125]))))
def test_fixed_range_error_exactly_when_a_rounded_value_is_out_of_range(net: Network) -> None:
    scheme = parse_scheme("fixed:3.3")
    lo, hi = -4.0, 4.0 - 0.125
    rounded = [math.ldexp(round(math.ldexp(t, 3)), -3) for _, _, arr in tensors(net) for t in arr.flat]
    if all(lo <= r <= hi for r in rounded):
        assert scheme.box(net).contains(scheme.quantize(net))
    else:
        with pytest.raises(SchemeError, match=r"is outside \[-4, 3\.875\]$"):
            scheme.quantize(net)
        with pytest.raises(SchemeError, match=r"is outside \[-4, 3\.875\]$"):
            scheme.box(net)


# -- float16 / bfloat16 -----------------------------------------------------------------------


def _expected_half_ulp(theta: float, nextup) -> Fraction:
    """Half the gap between the two format numbers that bracket |theta| (found with a neighbour oracle)."""
    return (F(nextup(theta)) - F(theta)) / 2


def _f16_midpoint(bits: int) -> float:
    """The exact midpoint of two adjacent positive float16 numbers (a rounding tie), as a float64."""
    lo, hi = np.array([bits, bits + 1], dtype=np.uint16).view(np.float16).astype(np.float64)
    return float((lo + hi) / 2)


def _bf16_midpoint(bits: int) -> float:
    lo, hi = np.array([bits << 16, (bits + 1) << 16], dtype=np.uint32).view(np.float32).astype(np.float64)
    return float((lo + hi) / 2)


FLOAT16_VALUES = st.one_of(
    values(6e4),
    st.builds(lambda b, neg: -_f16_midpoint(b) if neg else _f16_midpoint(b), st.integers(0, 0x7BFE), st.booleans()),
)
BFLOAT16_VALUES = st.one_of(
    values(3e38),
    st.builds(lambda b, neg: -_bf16_midpoint(b) if neg else _bf16_midpoint(b), st.integers(0, 0x7F7E), st.booleans()),
)


def test_float_format_ties_go_to_even() -> None:
    ties = [1 + 2.0**-11, 1 + 3 * 2.0**-11, 2.0**-25, 3 * 2.0**-25, 65488.0]  # 65488: between 65472 and 65504
    net = _one_layer([ties], [0.0] * len(ties))
    got = parse_scheme("float16").quantize(net).layers[0].weights[0].tolist()
    assert got == [1.0, 1 + 2.0**-9, 0.0, 2.0**-23, 65472.0]
    assert got == [float(np.float16(t)) for t in ties]
    bties = [1 + 2.0**-8, 1 + 3 * 2.0**-8, 2.0**-134, 3 * 2.0**-134]
    got = parse_scheme("bfloat16").quantize(_one_layer([bties], [0.0] * 4)).layers[0].weights[0].tolist()
    assert got == [1.0, 1 + 2 * 2.0**-7, 0.0, 2.0**-132]


def _f16_floor(a: float) -> float:
    """Largest float16 <= a (a >= 0), via numpy."""
    h = np.float16(a)
    if float(h) > a:
        h = np.nextafter(h, np.float16(0))
    return float(h)


def _f16_nextup(a: float) -> float:
    return float(np.nextafter(np.float16(a), np.float16(np.inf)))


@FAST
@given(net=networks(FLOAT16_VALUES))
def test_float16_matches_numpy(net: Network) -> None:
    scheme = parse_scheme("float16")
    box, q = scheme.box(net), scheme.quantize(net)
    for i, kind, arr in tensors(net):
        rad = radii(box, i, kind)
        ref = arr.astype(np.float16).astype(np.float64)
        assert same_bits(getattr(q.layers[i], kind), ref)
        for theta, eps, r in zip(arr.flat, rad.flat, ref.flat):
            assert abs(F(r) - F(theta)) <= eps
            if theta == 0:
                assert eps == 0
                continue
            floor = _f16_floor(abs(theta))
            # half numpy's float16 spacing in the binade holding |theta| (normal and subnormal alike)
            assert eps == F(np.spacing(np.float16(floor))) / 2
            assert eps == _expected_half_ulp(floor, _f16_nextup)


@FAST
@given(
    bits=st.lists(st.integers(0, 0x7BFF), min_size=2, max_size=8),  # every finite positive float16 bit pattern
    signs=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_float16_representable_values_are_fixed_points(bits: list[int], signs: list[bool]) -> None:
    """Every finite float16 (subnormals included) is left unchanged with radius half numpy's spacing."""
    halves = np.array(bits, dtype=np.uint16).view(np.float16)
    vals = [(-1.0 if s else 1.0) * float(h) for h, s in zip(halves, signs)]
    net = _one_layer([vals], [vals[0]] * len(vals))
    scheme = parse_scheme("float16")
    box = scheme.box(net)
    assert same_bits(scheme.quantize(net).layers[0].weights, net.layers[0].weights)
    for h, eps in zip(halves, box.weights[0][0]):
        below = np.nextafter(h, np.float16(0)) if h == np.finfo(np.float16).max else h  # spacing(max) is inf
        assert eps == (F(np.spacing(below)) / 2 if h != 0 else 0)


def test_float16_subnormal_and_boundary_radii() -> None:
    net = _one_layer([[2.0**-24, 3 * 2.0**-26, 2.0**-14, 2.0**-14 * (1 - 2.0**-20), 1.0, 65504.0]], [0.0] * 6)
    eps = parse_scheme("float16").box(net).weights[0][0]
    assert eps == (
        Fraction(1, 2**25), Fraction(1, 2**25), Fraction(1, 2**25), Fraction(1, 2**25), Fraction(1, 2**11),
        Fraction(16),
    )


@pytest.mark.parametrize(
    ("spec", "value", "ok"),
    [
        ("float16", 65519.99, True), ("float16", 65520.0, False), ("float16", -1e5, False),
        ("bfloat16", 3.39e38, True), ("bfloat16", 3.4e38, False), ("bfloat16", -1e300, False),
    ],
)
def test_float_format_overflow_is_an_error_that_names_the_parameter(spec: str, value: float, ok: bool) -> None:
    net = _one_layer([[0.5], [value]], [0.0])
    scheme = parse_scheme(spec)
    if ok:
        q = scheme.quantize(net)
        assert scheme.box(net).contains(q)
        largest = Fraction(65504) if spec == "float16" else (2 - Fraction(1, 2**7)) * Fraction(2) ** 127
        assert F(q.layers[0].weights[1, 0]) == largest
        if spec == "float16":
            assert q.layers[0].weights[1, 0] == float(np.float16(value))
    else:
        for method in ("box", "quantize"):
            with pytest.raises(SchemeError, match=rf"^{spec}: layers\[0\]\.weights\[1,0\] = .* overflows {spec} "):
                getattr(scheme, method)(net)
    if spec == "float16" and not ok:
        with np.errstate(over="ignore"):
            assert np.isinf(np.float16(value))


def _bf16_bits(x: float) -> int:
    """The bfloat16 bit pattern of a value that is exactly a bfloat16 (top half of its float32)."""
    b = int(np.array([x], dtype=np.float32).view(np.uint32)[0])
    assert b & 0xFFFF == 0
    return b >> 16


def _bf16_from_bits(b: int) -> float:
    return float(np.array([b << 16], dtype=np.uint32).view(np.float32)[0])


def _bf16_nextup(a: float) -> float:
    return _bf16_from_bits(_bf16_bits(a) + 1)  # a >= 0


@FAST
@given(net=networks(BFLOAT16_VALUES))
def test_bfloat16_is_nearest_even_with_half_ulp_radius(net: Network) -> None:
    """Checked against a neighbour oracle built from float32 bit patterns (bfloat16 = top 16 bits)."""
    scheme = parse_scheme("bfloat16")
    box, q = scheme.box(net), scheme.quantize(net)
    for i, kind, arr in tensors(net):
        for theta, eps, v in zip(arr.flat, radii(box, i, kind).flat, getattr(q.layers[i], kind).flat):
            assert abs(F(v) - F(theta)) <= eps
            if theta == 0:
                assert eps == 0 and v == 0
                continue
            a = abs(v)
            # v is a bfloat16 number: at most 8 significant bits and a multiple of 2^-133
            assert (F(a) * 2**133).denominator == 1
            if a:
                n = (F(a) * 2**133).numerator
                assert (n >> ((n & -n).bit_length() - 1)).bit_length() <= 8
                assert math.copysign(1, v) == math.copysign(1, theta)
            # nearest: neither neighbour is closer; on a tie, the even pattern wins
            up = _bf16_nextup(a)
            down = _bf16_from_bits(_bf16_bits(a) - 1) if a else 0.0
            for nb in (up, down):
                assert abs(F(a) - F(abs(theta))) <= abs(F(nb) - F(abs(theta)))
                if abs(F(a) - F(abs(theta))) == abs(F(nb) - F(abs(theta))) and nb != a:
                    assert _bf16_bits(a) % 2 == 0
            # radius: half the gap between the bfloat16 numbers bracketing |theta|
            floor = a if a <= abs(theta) else down
            assert eps == _expected_half_ulp(floor, _bf16_nextup)


def test_bfloat16_subnormal_radius_and_relative_error_for_normals() -> None:
    net = _one_layer([[2.0**-133, 1e-39, 2.0**-126, 1.0, 3.0, -1e-30]], [0.0] * 6)
    eps = parse_scheme("bfloat16").box(net).weights[0][0]
    assert eps[:3] == (Fraction(1, 2**134),) * 3
    assert eps[3] == Fraction(1, 2**8) and eps[4] == Fraction(1, 2**7)
    assert Fraction(1, 2**9) < eps[5] / abs(F(-1e-30)) <= Fraction(1, 2**8)


# -- int:B ----------------------------------------------------------------------------------------


def _levels(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def _check_codes(values_: np.ndarray, s: Fraction, bits: int) -> set[int]:
    """Every value is s*k (up to the one-ulp nudge into the box) with |k| <= 2^(B-1) - 1; return the codes."""
    codes = set()
    for v in values_.flat:
        if s == 0:
            assert v == 0
            continue
        k = round(F(v) / s)
        assert abs(k) <= _levels(bits)
        assert abs(F(v) - k * s) <= F(np.spacing(abs(v)))
        codes.add(k)
    return codes


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@FAST
@given(data=st.data())
def test_int_per_tensor_scale_and_levels(bits: int, data: st.DataObject) -> None:
    net = data.draw(networks())
    scheme = parse_scheme(f"int:{bits}")
    box, q = scheme.box(net), scheme.quantize(net)
    for i, kind, arr in tensors(net):
        s = max(abs(F(t)) for t in arr.flat) / _levels(bits)
        assert all(r == s / 2 for r in radii(box, i, kind).flat)
        got = getattr(q.layers[i], kind)
        codes = _check_codes(got, s, bits)
        assert len(codes) <= 2**bits - 1
        # the largest magnitude is a level itself, so it is kept exactly
        j = int(np.argmax(np.abs(arr)))
        assert got.flat[j] == arr.flat[j]


@pytest.mark.parametrize("bits", [2, 3, 6])
@FAST
@given(data=st.data())
def test_int_channel_has_one_scale_per_output_neuron(bits: int, data: st.DataObject) -> None:
    net = data.draw(networks())
    box = parse_scheme(f"int:{bits}:channel").box(net)
    q = parse_scheme(f"int:{bits}:channel").quantize(net)
    for i, layer in enumerate(net.layers):
        w_rad = radii(box, i, "weights")
        for c in range(layer.n_out):
            s = max(abs(F(t)) for t in layer.weights[:, c]) / _levels(bits)
            assert all(r == s / 2 for r in w_rad[:, c])
            assert len(_check_codes(q.layers[i].weights[:, c], s, bits)) <= 2**bits - 1
        sb = max(abs(F(t)) for t in layer.biases) / _levels(bits)
        assert all(r == sb / 2 for r in radii(box, i, "biases"))
        _check_codes(q.layers[i].biases, sb, bits)


def test_int_zero_tensor_has_zero_radius() -> None:
    net = _one_layer([[0.0, 1.0], [-0.0, 3.0]], [0.0, 0.0])
    box = parse_scheme("int:4:channel").box(net)
    assert [r[0] for r in box.weights[0]] == [0, 0]
    assert box.biases[0] == (0, 0)
    assert box.weights[0][0][1] == Fraction(3, 14)
    assert parse_scheme("int:4").box(net).biases[0] == (0, 0)


def test_int_tie_whose_float_leaves_the_box_is_moved_one_ulp_toward_theta() -> None:
    # s = m/3 for int:3; theta = m/2 = 1.5 s is a tie that rounds to the even code 2, i.e. 2m/3,
    # whose nearest float lies above 2m/3 and so outside [theta - s/2, theta + s/2].
    m = 1.015625
    exact = Fraction(2) * F(m) / 3
    assert F(float(exact)) > exact  # the premise of this test
    net = _one_layer([[m, m / 2, -m / 2]], [0.0, 0.0, 0.0])
    scheme = parse_scheme("int:3")
    q = scheme.quantize(net).layers[0].weights[0]
    assert scheme.box(net).contains(scheme.quantize(net))
    assert q[1] == math.nextafter(float(exact), 0.0)
    assert q[2] == -q[1]
    assert F(q[1]) < exact and F(q[1]) - F(m / 2) <= F(m) / 6  # the nudged value is inside, just below 2m/3


# -- eps / rel --------------------------------------------------------------------------------------


@FAST
@given(net=networks())
def test_eps_and_rel_radii_are_exact_and_leave_parameters_alone(net: Network) -> None:
    eps_box = parse_scheme("eps:0.01").box(net)
    rel_box = parse_scheme("rel:0.1").box(net)
    for i, kind, arr in tensors(net):
        assert all(r == Fraction(1, 100) for r in radii(eps_box, i, kind).flat)
        assert all(r == Fraction(1, 10) * abs(F(t)) for r, t in zip(radii(rel_box, i, kind).flat, arr.flat))
    for spec in ("eps:0.01", "rel:0.1", "eps:0"):
        q = parse_scheme(spec).quantize(net)
        for a, b in zip(q.layers, net.layers):
            assert same_bits(a.weights, b.weights) and same_bits(a.biases, b.biases)


# -- modifiers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["fixed:3", "int:4", "int:3:channel", "float16", "bfloat16", "eps:0.25", "rel:0.5"])
@FAST
@given(net=networks(values(6e4)))
def test_weights_only_zeroes_bias_radii_and_keeps_biases(base: str, net: Network) -> None:
    full, weights_only = parse_scheme(base), parse_scheme(f"{base}@weights")
    box, q = weights_only.box(net), weights_only.quantize(net)
    full_box, full_q = full.box(net), full.quantize(net)
    assert box.contains(q)
    for i, layer in enumerate(net.layers):
        assert all(r == 0 for r in box.biases[i])
        assert same_bits(q.layers[i].biases, layer.biases)
        assert box.weights[i] == full_box.weights[i]
        assert same_bits(q.layers[i].weights, full_q.layers[i].weights)


MIXES = ["fixed:4/float16/int:3", "int:2:channel@weights/eps:0.5/rel:0.25@weights", "bfloat16/fixed:6.2/fixed:0"]


@pytest.mark.parametrize("spec", MIXES)
@FAST
@given(net=networks(values(30.0), n_layers=3))
def test_per_layer_schemes_apply_layer_by_layer(spec: str, net: Network) -> None:
    scheme = parse_scheme(spec)
    box, q = scheme.box(net), scheme.quantize(net)
    assert box.contains(q) and box.label == spec
    for i, part in enumerate(spec.split("/")):
        single = parse_scheme(part)
        single_box, single_q = single.box(net), single.quantize(net)
        assert box.weights[i] == single_box.weights[i] and box.biases[i] == single_box.biases[i]
        assert same_bits(q.layers[i].weights, single_q.layers[i].weights)
        assert same_bits(q.layers[i].biases, single_q.layers[i].biases)


@pytest.mark.parametrize(
    ("spec", "n_layers", "message"),
    [
        ("fixed:4/fixed:8", 3, "fixed:4/fixed:8: 2 per-layer schemes for a network with 3 layers"),
        (
            "fixed:4/ int:8@weights /eps:1", 2,
            "fixed:4/int:8@weights/eps:1: 3 per-layer schemes for a network with 2 layers",
        ),
        ("float16/float16", 1, "float16/float16: 2 per-layer schemes for a network with 1 layer"),
    ],
)
def test_per_layer_count_must_match_the_layers(spec: str, n_layers: int, message: str) -> None:
    net = Network.from_lists([[[1.0]]] * n_layers, [[0.0]] * n_layers, "relu", "identity")
    for method in ("box", "quantize"):
        with pytest.raises(SchemeError) as info:
            getattr(parse_scheme(spec), method)(net)
        assert str(info.value) == message


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("fixed:4", "fixed:4"), (" fixed : 4 ", "fixed:4"), ("FIXED:2.4", "fixed:2.4"), ("fixed:+3", "fixed:3"),
        ("fixed:04", "fixed:4"), ("int:8", "int:8"), ("int:8:channel", "int:8:channel"),
        ("Int:8:Channel @ Weights", "int:8:channel@weights"), ("float16", "float16"), ("BFloat16", "bfloat16"),
        ("eps:0.010", "eps:0.01"), ("eps:1e-3", "eps:0.001"), ("eps:2.5E-12", "eps:2.5e-12"), ("eps:100", "eps:100"),
        ("eps:0.0", "eps:0"), ("eps:9.5E299", "eps:9.5e+299"), ("rel:1e-1000", "rel:1e-1000"),
        ("eps:-0", "eps:0"), ("rel:.5", "rel:0.5"), ("rel:5.", "rel:5"),
        ("fixed:4 / fixed:8@weights", "fixed:4/fixed:8@weights"), ("\tfloat16/\nbfloat16 ", "float16/bfloat16"),
        (f"fixed:{MAX_BITS}", f"fixed:{MAX_BITS}"), ("int:2", "int:2"), ("fixed:1.0", "fixed:1.0"),
    ],
)
def test_valid_specs_have_a_canonical_spelling(spec: str, canonical: str) -> None:
    scheme = parse_scheme(spec)
    assert scheme.spec == canonical == str(scheme)
    assert scheme == Scheme(canonical) and hash(scheme) == hash(Scheme(canonical))
    assert parse_scheme(scheme.spec) == scheme


def test_decimal_parameters_are_exact() -> None:
    net = _one_layer([[0.1]], [0.0])
    assert parse_scheme("eps:0.1").box(net).weights[0][0][0] == Fraction(1, 10)
    assert parse_scheme("rel:0.1").box(net).weights[0][0][0] == Fraction(1, 10) * F(0.1)
    assert parse_scheme("eps:1e-30").box(net).biases[0][0] == Fraction(1, 10**30)


UNKNOWN = r"is not known; expected one of fixed:F, fixed:I\.F, int:B, int:B:channel, float16, bfloat16, eps:E, rel:R"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("fixd:4", r"^scheme 'fixd:4' " + UNKNOWN + r" \(optionally S@weights, or S1/S2/\.\.\. per layer\)$"),
        ("", r"^the quantization scheme is empty"),
        ("   ", r"^the quantization scheme is empty"),
        ("fixed", r"^scheme 'fixed' " + UNKNOWN),
        ("fixed:", r"^scheme 'fixed:': expected fixed:F or fixed:I\.F with integer bit counts\. Got '' instead\.$"),
        ("fixed:x", r"expected fixed:F or fixed:I\.F .* Got 'x' instead\.$"),
        ("fixed:4.5.6", r"Got '4\.5\.6' instead\.$"),
        ("fixed:-1", r"^scheme 'fixed:-1': F \(fractional bits\) must be an integer between 0 and 1024\. Got '-1'"),
        ("fixed:0.4", r"^scheme 'fixed:0\.4': I \(integer bits, sign included\) must be an integer between 1 and"),
        ("fixed:2.-1", r"F \(fractional bits\) must be an integer between 0 and 1024\. Got '-1' instead\.$"),
        ("fixed:1025", r"F \(fractional bits\) must be an integer between 0 and 1024\. Got '1025' instead\.$"),
        ("fixed:4:2", r"^scheme 'fixed:4:2' " + UNKNOWN),
        ("int:1", r"^scheme 'int:1': B \(bits\) must be an integer between 2 and 1024\. Got '1' instead\.$"),
        ("int:0", r"B \(bits\) must be an integer between 2"),
        ("int:-8", r"B \(bits\) must be an integer between 2"),
        ("int:8.5", r"B \(bits\) must be an integer between 2 and 1024\. Got '8\.5' instead\.$"),
        ("int:", r"B \(bits\) must be an integer .* Got '' instead\.$"),
        ("int", r"^scheme 'int' " + UNKNOWN),
        ("int:8:chan", r"^scheme 'int:8:chan' " + UNKNOWN),
        ("int:8:channel:2", r"^scheme 'int:8:channel:2' " + UNKNOWN),
        ("float16:3", r"^scheme 'float16:3' " + UNKNOWN),
        ("float32", r"^scheme 'float32' " + UNKNOWN),
        ("eps:-1", r"^scheme 'eps:-1': E must be a finite decimal number >= 0\. Got '-1' instead\.$"),
        ("eps:nan", r"E must be a finite decimal number >= 0\. Got 'nan' instead\.$"),
        ("eps:inf", r"E must be a finite decimal number >= 0\. Got 'inf' instead\.$"),
        ("eps:-inf", r"Got '-inf' instead\.$"),
        ("eps:", r"E must be a finite decimal number >= 0\. Got '' instead\.$"),
        ("eps:1e", r"Got '1e' instead\.$"),
        ("eps:0x10", r"Got '0x10' instead\.$"),
        ("eps:1_000", r"Got '1_000' instead\.$"),
        ("eps:1e5000", r"E must be 0 or between 1e-1000 and 1e300\. Got '1e5000' instead\.$"),
        ("eps:1e300", r"E must be 0 or between 1e-1000 and 1e300\. Got '1e300' instead\.$"),
        ("rel:1e-1001", r"R must be 0 or between 1e-1000 and 1e300\. Got '1e-1001' instead\.$"),
        ("eps:1/100", r"^scheme 'eps:1/100', part for layers\[1\] '100' " + UNKNOWN),
        ("eps", r"^scheme 'eps' " + UNKNOWN),
        ("rel:-0.5", r"^scheme 'rel:-0\.5': R must be a finite decimal number >= 0\. Got '-0\.5' instead\.$"),
        ("rel:abc", r"R must be a finite decimal number >= 0\. Got 'abc' instead\.$"),
        ("fixed:4@bias", r"^scheme 'fixed:4@bias' " + UNKNOWN),
        ("fixed:4@weights@weights", r"^scheme 'fixed:4@weights@weights' " + UNKNOWN),
        ("@weights", r"^scheme '@weights' " + UNKNOWN),
        ("fixed:4/", r"^scheme 'fixed:4/', part for layers\[1\] '' " + UNKNOWN),
        ("/fixed:4", r"^scheme '/fixed:4', part for layers\[0\] '' " + UNKNOWN),
        ("fixed:4//int:8", r"part for layers\[1\] '' " + UNKNOWN),
        ("fixed:4/fixd:8", r"^scheme 'fixed:4/fixd:8', part for layers\[1\] 'fixd:8' " + UNKNOWN),
        ("fixed:4/int:1", r"^scheme 'fixed:4/int:1', part for layers\[1\] 'int:1': B \(bits\) must be"),
        ("fixed:4\nfixed:8", r"^scheme 'fixed:4 fixed:8' " + UNKNOWN),  # one line, whatever the input held
        ("fix ed:4", r"^scheme 'fix ed:4' " + UNKNOWN),
    ],
)
def test_malformed_specs_raise_one_line_scheme_errors(spec: str, match: str) -> None:
    with pytest.raises(SchemeError, match=match) as info:
        parse_scheme(spec)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(SchemeError):
        Scheme(spec)


@pytest.mark.parametrize("spec", [None, 4, 4.0, b"fixed:4", ["fixed:4"]])
def test_non_string_specs_are_scheme_errors(spec: object) -> None:
    with pytest.raises(SchemeError, match=r"^a quantization scheme must be a string such as 'fixed:4'\. Got "):
        parse_scheme(spec)  # type: ignore[arg-type]


def test_scheme_is_frozen() -> None:
    scheme = parse_scheme("fixed:4")
    with pytest.raises(AttributeError):
        scheme.spec = "fixed:8"  # type: ignore[misc]


# -- scheme_for_bits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "bits", "spec"),
    [("fixed", 0, "fixed:0"), ("fixed", 7, "fixed:7"), ("int", 2, "int:2"), ("int", 16, "int:16"),
     ("int", np.int64(5), "int:5")],
)
def test_scheme_for_bits(family: str, bits: int, spec: str) -> None:
    scheme = scheme_for_bits(family, bits)
    assert isinstance(scheme, Scheme) and scheme.spec == spec


@pytest.mark.parametrize(
    ("family", "bits", "match"),
    [
        ("float16", 8, r"^the bit family must be one of fixed, int\. Got 'float16' instead\.$"),
        ("Fixed", 8, r"bit family must be one of fixed, int"),
        ("int", 1, r"^scheme 'int:1': B \(bits\) must be an integer between 2"),
        ("fixed", -1, r"F \(fractional bits\) must be an integer between 0"),
        ("int", 4.0, r"^int: the number of bits must be an integer\. Got 4\.0 instead\.$"),
        ("int", True, r"the number of bits must be an integer"),
    ],
)
def test_scheme_for_bits_rejects(family: str, bits: object, match: str) -> None:
    with pytest.raises(SchemeError, match=match):
        scheme_for_bits(family, bits)  # type: ignore[arg-type]
