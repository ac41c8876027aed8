"""Exact arithmetic: float conversion and rational enclosures checked against Decimal at high precision."""

from __future__ import annotations

import math
from decimal import Context, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtquant.exact import (
    exp_bounds,
    forward_enclosure,
    logit_lower,
    logit_upper,
    sigmoid_bounds,
    softmax_bounds,
    tanh_bounds,
    to_fraction,
)


def dec(q: Fraction) -> Decimal:
    return Context(prec=80).divide(Decimal(q.numerator), Decimal(q.denominator))


def test_to_fraction_is_exact_not_decimal() -> None:
    assert to_fraction(0.1) != Fraction(1, 10)
    assert float(to_fraction(0.1)) == 0.1
    assert to_fraction(5e-324) == Fraction(1, 2**1074)
    with pytest.raises(ValueError):
        to_fraction(float("nan"))


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-700, max_value=700, allow_nan=False))
def test_exp_bounds_enclose_decimal_exp(v: float) -> None:
    q = to_fraction(v)
    lo, hi = exp_bounds(q)
    with localcontext() as ctx:
        ctx.prec = 80
        e = dec(q).exp()
        assert dec(lo) * (1 - Decimal("1e-55")) <= e <= dec(hi) * (1 + Decimal("1e-55"))
    assert (hi - lo) <= hi * Fraction(1, 2**70)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-50, max_value=50, allow_nan=False))
def test_sigmoid_and_tanh_enclose(v: float) -> None:
    q = to_fraction(v)
    lo, hi = sigmoid_bounds(q)
    with localcontext() as ctx:
        ctx.prec = 80
        s = 1 / (1 + (-dec(q)).exp())
        slack = Decimal("1e-70")  # the Decimal reference itself rounds at 80 digits
        assert dec(lo) - slack <= s <= dec(hi) + slack
    assert hi - lo <= Fraction(1, 2**70)
    tlo, thi = tanh_bounds(q)
    assert float(tlo) - 1e-15 <= math.tanh(v) <= float(thi) + 1e-15
    assert tlo <= thi


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1 - 1e-9))
def test_logit_bounds_are_on_the_right_side(p: float) -> None:
    q = to_fraction(p)
    lo, hi = logit_lower(q), logit_upper(q)
    assert sigmoid_bounds(lo)[1] <= q <= sigmoid_bounds(hi)[0]
    assert lo <= hi
    assert float(hi - lo) < 1e-9 * max(1.0, abs(math.log(p / (1 - p))))


def test_softmax_bounds_sum_to_one_within_width() -> None:
    z = [(Fraction(1), Fraction(1)), (Fraction(-2), Fraction(-2)), (Fraction(1, 3), Fraction(1, 3))]
    encl = softmax_bounds(z)
    assert sum(lo for lo, _ in encl) <= 1 <= sum(hi for _, hi in encl)
    e = [math.exp(1), math.exp(-2), math.exp(1 / 3)]
    for (lo, hi), v in zip(encl, e):
        assert float(lo) <= v / sum(e) + 1e-16 and v / sum(e) - 1e-16 <= float(hi)


def test_forward_enclosure_relu_is_exact() -> None:
    layers = [([[Fraction(1), Fraction(-1)]], [Fraction(0), Fraction(1, 2)]), ([[Fraction(2)], [Fraction(3)]], [Fraction(-1)])]
    z = forward_enclosure(layers, [Fraction(3, 4)], "relu")
    # hidden: relu(3/4) = 3/4, relu(-3/4 + 1/2) = 0; z = 2*3/4 + 0 - 1 = 1/2
    assert z == [(Fraction(1, 2), Fraction(1, 2))]
