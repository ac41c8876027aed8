"""Helpers shared by the tests: brute force over the vertices of a parameter box."""

from __future__ import annotations

import itertools

import numpy as np

import smtquant as sq


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
