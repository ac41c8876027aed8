"""Zonotope bounds (smtquant/zonotope.py): every sampled network in the box, at every sampled input
of the region, lies inside the bounds, computed exactly; and on an input region they bound the
difference z' - z far more tightly than interval arithmetic."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import smtquant as sq
from smtquant.backends import get_backend
from smtquant.engine import tighten
from smtquant.exact import forward_enclosure
from smtquant.properties import GlobalRobustness
from smtquant.verify import Query, resolve_box
from smtquant.zonotope import affine_bounds, centre_arrays

MODELS = Path(__file__).resolve().parent.parent / "models"


def _net(seed: int, act: str, sizes: tuple[int, ...]) -> sq.Network:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(size=b) * 0.5 for b in sizes[1:]]
    return sq.Network.from_lists(ws, bs, act, "softmax" if sizes[-1] > 1 else "logistic")


def _zonotope(q: Query):
    p = q.problem
    n = len(p.layers)
    ws, bs = centre_arrays(p.layers)
    return affine_bounds(ws, bs, p.hidden_activation, [p.box.float_weights(i) for i in range(n)],
                         [p.box.float_biases(i) for i in range(n)], p.inputs)


def _exact_layers(p, rng: np.random.Generator, vertex: bool):
    """A parameter vector of the box, exact: a vertex (every parameter at an end) or a random point."""
    out = []
    for li, (w, b) in enumerate(p.layers):
        rw, rb = p.box.weights[li], p.box.biases[li]

        def pick(c: Fraction, r: Fraction) -> Fraction:
            if vertex:
                return c + r if rng.random() < 0.5 else c - r
            return c + r * Fraction(int(rng.integers(-1000, 1001)), 1000)

        out.append(([[pick(w[i][j], rw[i][j]) for j in range(len(b))] for i in range(len(w))],
                    [pick(b[j], rb[j]) for j in range(len(b))]))
    return out


def _pre_activations(layers, x, act):
    """Every layer's pre-activations, exactly."""
    h = list(x)
    pre = []
    for w, b in layers:
        u = [b[j] + sum(w[i][j] * h[i] for i in range(len(h))) for j in range(len(b))]
        pre.append(u)
        h = [max(v, Fraction(0)) for v in u] if act == "relu" else u
    return pre


@pytest.mark.parametrize("act", ["relu", "identity"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_sampled_point_lies_inside_the_bounds(act: str, seed: int) -> None:
    net = _net(seed, act, (2, 6, 5, 2))
    box, _ = resolve_box(net, "fixed:3")
    region = [[-1.0, 0.5], [-0.25, 1.5]]
    q = Query(net, box, GlobalRobustness(region, "logit"), get_backend("engine"), None)
    zb = _zonotope(q)
    assert zb is not None
    rng = np.random.default_rng(seed)
    coeffs = ({0: Fraction(1)}, {0: Fraction(-1)}), ({0: Fraction(-1)}, {0: Fraction(1)}), \
        ({0: Fraction(1, 3), 1: Fraction(2)}, {1: Fraction(-2)})
    uppers = [zb.upper(a, b, Fraction(0)) for a, b in coeffs]
    for k in range(60):
        x = [Fraction(lo) + (Fraction(hi) - Fraction(lo)) * Fraction(int(rng.integers(0, 65)), 64) for lo, hi in region]
        if k % 4 == 0:
            x = [Fraction(region[i][int(rng.integers(0, 2))]) for i in range(2)]  # a corner of the region
        orig = _pre_activations(q.problem.layers, x, act)
        pert = _pre_activations(_exact_layers(q.problem, rng, vertex=k % 2 == 0), x, act)
        for li, (uo, up) in enumerate(zip(orig, pert)):
            for j, (a, b) in enumerate(zip(uo, up)):
                assert Fraction(zb.ol[li][j]) <= a <= Fraction(zb.oh[li][j])
                assert Fraction(zb.pl[li][j]) <= b <= Fraction(zb.ph[li][j])
                assert Fraction(zb.dl[li][j]) <= b - a <= Fraction(zb.dh[li][j])
        for (a, b), up_bound in zip(coeffs, uppers):
            value = sum(c * pert[-1][k2] for k2, c in a.items()) + sum(c * orig[-1][k2] for k2, c in b.items())
            assert value <= up_bound


def test_global_difference_bound_is_far_tighter_than_intervals() -> None:
    net = sq.load_model(MODELS / "moons_relu.json")
    box, _ = resolve_box(net, "fixed:4")
    q = Query(net, box, GlobalRobustness([[-1.2, 2.2], [-0.7, 1.3]], "logit"), get_backend("engine"), None)
    zb = _zonotope(q)
    z_up = zb.upper({0: Fraction(1)}, {0: Fraction(-1)}, Fraction(0))
    interval = q.problem.perturbed_bounds.output[0][1] - q.problem.original_bounds.output[0][0]
    exact = sq.quantify(net, "fixed:4", q.prop, solver="engine", tolerance=1e-3, timeout=120)
    assert exact.max_deviation.upper <= z_up  # sound
    assert z_up < interval / 10  # and the interval bound is more than ten times looser here


def test_parameters_that_are_not_doubles_give_no_zonotope() -> None:
    layers = (([[Fraction(1, 3)]], [Fraction(0)]), ([[Fraction(1)]], [Fraction(0)]))
    assert centre_arrays(layers) is None
    assert centre_arrays((([[Fraction(1, 4)]], [Fraction(-3)]),)) is not None


def test_tighten_only_narrows_the_interval_bounds() -> None:
    net = sq.load_model(MODELS / "moons_relu_8x8.json")
    box, _ = resolve_box(net, "fixed:4")
    q = Query(net, box, GlobalRobustness([[-1.2, 2.2], [-0.7, 1.3]], "logit"), get_backend("engine"), None)
    p, t = q.problem, tighten(q.problem)
    assert t is not p and tighten(p) is t and t.diff_bounds is not None
    narrower = 0
    for old, new in ((p.perturbed_bounds, t.perturbed_bounds), (p.original_bounds, t.original_bounds)):
        for lo_layer, new_layer in zip(old.pre, new.pre):
            for (a, b), (c, d) in zip(lo_layer, new_layer):
                assert a <= c <= d <= b
                narrower += (c, d) != (a, b)
    assert narrower > 0


def test_local_output_bound_contains_the_exact_range() -> None:
    """At a fixed input the original network is a point; the perturbed bounds must contain the
    outputs of box vertices, checked with the exact forward pass."""
    net = sq.load_model(MODELS / "moons_relu_8x8.json")
    box, _ = resolve_box(net, "fixed:4")
    q = Query(net, box, sq.LocalRobustness([0.3, 0.2], "logit"), get_backend("engine"), None)
    zb = _zonotope(q)
    rng = np.random.default_rng(5)
    x = [lo for lo, _ in q.problem.inputs]
    for _ in range(20):
        z = forward_enclosure(_exact_layers(q.problem, rng, vertex=True), x, "relu")[0][0]
        assert Fraction(zb.pl[-1][0]) <= z <= Fraction(zb.ph[-1][0])
