"""Helpers shared by the tests: brute force over the vertices of a parameter box, and the closed
form of the output range of a one-hidden-layer net at a fixed input."""

from __future__ import annotations

import itertools
from decimal import Context, Decimal
from fractions import Fraction

import numpy as np

import smtquant as sq
from smtquant.exact import to_fraction


def vertex_max_logit(net: sq.Network, eps: float, x: np.ndarray) -> float:
    """max |z' - z| over every vertex of the box eps around every parameter (a lower bound on the
    true maximum; equal to it when the maximum lies at a vertex)."""
    flat = np.concatenate([np.concatenate([l.weights.ravel(), l.biases]) for l in net.layers])
    z = net.forward(x)[0]
    best = 0.0
    for signs in itertools.product((-1.0, 1.0), repeat=flat.size):
        p = flat + eps * np.array(signs)
        layers, k = [], 0
        for l in net.layers:
            w = p[k:k + l.weights.size].reshape(l.weights.shape)
            k += l.weights.size
            b = p[k:k + l.biases.size]
            k += l.biases.size
            layers.append(sq.Layer(w, b))
        best = max(best, abs(net.with_layers(layers).forward(x)[0] - z))
    return best


CTX = Context(prec=50)


def sigmoid_dec(q: Fraction) -> Decimal:
    x = CTX.divide(Decimal(q.numerator), Decimal(q.denominator))
    return CTX.divide(1, CTX.add(1, CTX.exp(CTX.minus(x))))


def closed_form_output_range(net: sq.Network, box: sq.ParameterBox, x: list[Fraction]) -> tuple[Fraction, Fraction]:
    """min and max of z' over the box for a one-hidden-layer, one-output net at input x.

    Every parameter occurs once, so each hidden unit's pre-activation ranges independently over
    [c - r, c + r]; the output is maximized term by term over its weight interval and the
    activation interval (the extremes of w * h are at corners)."""
    (w1, b1), (w2, b2) = [(layer.weights, layer.biases) for layer in net.layers]
    lo_z = hi_z = to_fraction(b2[0])
    lo_z -= box.biases[1][0]
    hi_z += box.biases[1][0]
    for j in range(w1.shape[1]):
        c = to_fraction(b1[j]) + sum(to_fraction(w1[i, j]) * x[i] for i in range(len(x)))
        r = box.biases[0][j] + sum(box.weights[0][i][j] * abs(x[i]) for i in range(len(x)))
        lo, hi = c - r, c + r
        if net.hidden_activation == "relu":
            lo, hi = max(lo, Fraction(0)), max(hi, Fraction(0))
        e = box.weights[1][j][0]
        w = to_fraction(w2[j, 0])
        corners = [a * b for a in (w - e, w + e) for b in (lo, hi)]
        lo_z += min(corners)
        hi_z += max(corners)
    return lo_z, hi_z


def closed_form(net: sq.Network, box: sq.ParameterBox, x: list[Fraction], metric: str) -> Decimal:
    lo_z, hi_z = closed_form_output_range(net, box, x)
    z = net.forward([float(v) for v in x])[0]
    (w1, b1), (w2, b2) = [(layer.weights, layer.biases) for layer in net.layers]
    h = []
    for j in range(w1.shape[1]):
        c = to_fraction(b1[j]) + sum(to_fraction(w1[i, j]) * x[i] for i in range(len(x)))
        h.append(max(c, Fraction(0)) if net.hidden_activation == "relu" else c)
    zq = to_fraction(b2[0]) + sum(to_fraction(w2[j, 0]) * h[j] for j in range(len(h)))
    assert abs(float(zq) - z) < 1e-9
    if metric == "logit":
        m = max(hi_z - zq, zq - lo_z)
        return CTX.divide(Decimal(m.numerator), Decimal(m.denominator))
    s = sigmoid_dec(zq)
    return max(CTX.subtract(sigmoid_dec(hi_z), s), CTX.subtract(s, sigmoid_dec(lo_z)))


def dec(q: Fraction) -> Decimal:
    return CTX.divide(Decimal(q.numerator), Decimal(q.denominator))
