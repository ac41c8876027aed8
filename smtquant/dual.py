"""Exact bounds by dual decomposition: two identity hidden layers at a fixed input.

At a fixed input x the first hidden layer's pre-activations u range over a box [l, h] exactly
(each parameter occurs in one neuron), and for a given u the second layer's u2_m ranges over
[v_m^-(u), v_m^+(u)], v_m^s(u) = b2_m + s eb2_m + sum_i (W2_im u_i + s E2_im |u_i|). A linear
objective c.z' of the outputs is then, maximized over the last layer's parameters and u2,

    F(u) = K + sum_m G_m(u),   G_m(u) = max over a in {w_m + e_m, w_m - e_m}, s in {+1, -1} of a v_m^s(u)

with w_m = sum_k c_k W3_mk, e_m = sum_k |c_k| E3_mk, K = c.b3 + |c|.eb3. Each piece a v_m^s is a
sum of functions of one u_i each, so for multipliers lam_m (vectors over i) with sum_m lam_m = 0,

    max_u F(u) <= K + sum_m max_u [G_m(u) + lam_m . u] = D(lam),

and every inner maximum splits into one-variable maxima over [l_i, h_i], attained at l_i, h_i
or 0: D(lam) is computed exactly in rational arithmetic for any lam. Subgradient steps in float64
only choose lam. Where the subproblems' maximizers agree on one u, D(lam) = F(u): the bound is
the maximum, and u gives the witness (built and validated exactly like any other).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .backends.base import Problem
from .exact import ExactLayer, _is_dyadic, _scaled

__all__ = ["TwoLayerDual"]

_ZERO = Fraction(0)


def _sign(v: Fraction) -> int:
    return (v > 0) - (v < 0)


def first_layer_range(problem: Problem) -> tuple[list[Fraction], list[Fraction], list[Fraction]]:
    """At a fixed input x: x, and the centre c and radius r of each first-layer pre-activation's
    exact range [c - r, c + r] over the box."""
    w1, b1 = problem.layers[0]
    e1, f1 = problem.box.weights[0], problem.box.biases[0]
    x = [lo for lo, _ in problem.inputs]
    c = [b1[i] + sum((w1[j][i] * x[j] for j in range(len(x))), _ZERO) for i in range(len(b1))]
    r = [f1[i] + sum((e1[j][i] * abs(x[j]) for j in range(len(x))), _ZERO) for i in range(len(b1))]
    return x, c, r


class TwoLayerDual:
    """Bounds on c.z' + const over the parameter box, for a network with two identity hidden
    layers at a fixed input (``applies``)."""

    @staticmethod
    def applies(problem: Problem) -> bool:
        return problem.hidden_activation == "identity" and len(problem.layers) == 3 and problem.fixed_input

    def __init__(self, problem: Problem) -> None:
        assert self.applies(problem)
        self.problem = problem
        (w1, b1), (w2, b2), (w3, b3) = problem.layers
        e1, e2, e3 = problem.box.weights
        f1, f2, f3 = problem.box.biases
        self.x, self.c1, self.r1 = first_layer_range(problem)
        n, m_count = len(b1), len(b2)
        self.lo = [c - r for c, r in zip(self.c1, self.r1)]
        self.hi = [c + r for c, r in zip(self.c1, self.r1)]
        # the points where a one-variable piece (a u + b |u|) can be largest on [l_i, h_i]: its ends,
        # and 0 for a concave one (b < 0; such corners (a, -sign a) never give the maximum over the
        # corners, as a v^(sign a) >= a v^(-sign a), but 0 keeps every inner maximum exact)
        self.pts = [[lo, min(max(_ZERO, lo), hi), hi] for lo, hi in zip(self.lo, self.hi)]
        self.pts_f = np.array([[float(p) for p in row] for row in self.pts]).T  # (3, n)
        self.w2, self.e2, self.b2, self.f2 = w2, e2, b2, f2
        self.w3, self.e3, self.b3, self.f3 = w3, e3, b3, f3
        self.W2 = np.array([[float(v) for v in row] for row in w2])  # (n, M)
        self.E2 = np.array([[float(v) for v in row] for row in e2])
        self.B2 = np.array([float(v) for v in b2])
        self.F2 = np.array([float(v) for v in f2])
        self.n, self.m = n, m_count

    # -- the pieces of one objective ------------------------------------------------
    def _pieces(self, c: dict[int, Fraction]) -> tuple[list[list[Fraction]], Fraction]:
        """Per m: the four (a, s) corners as a list [a_1, a_2] of slopes; and the constant K."""
        alphas = []
        for m in range(self.m):
            w = sum((ck * self.w3[m][k] for k, ck in c.items()), _ZERO)
            e = sum((abs(ck) * self.e3[m][k] for k, ck in c.items()), _ZERO)
            alphas.append([w + e, w - e])
        const = sum((ck * self.b3[k] + abs(ck) * self.f3[k] for k, ck in c.items()), _ZERO)
        return alphas, const

    def bound(self, c: dict[int, Fraction], const: Fraction, stop_at: Fraction | None = None,
              iters: int = 4000, deadline: float | None = None
              ) -> tuple[Fraction, tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]]:
        """(an exact upper bound on c.z' + const over the box, a witness (x, theta') whose value
        the caller computes exactly). The multipliers' search stops early once the float bound is
        at most ``stop_at``, when the subproblems agree on one u (the bound is then tight), or at
        ``deadline`` (time.monotonic()); the bound is valid wherever it stops."""
        alphas, k0 = self._pieces(c)
        base = const + k0
        al = np.array([[float(a) for a in row] for row in alphas])  # (M, 2)
        # in the float search only the corners s = sign(a) (a v^(sign a) >= a v^(-sign a) for every u,
        # so the others never attain the maximum), whose pieces are convex: largest at l_i or h_i
        sg = np.where(al >= 0, 1.0, -1.0)
        A = np.stack([al[:, a][None, :] * self.W2 for a in range(2)])  # (2, n, M)
        Bc = np.stack([np.abs(al[:, a])[None, :] * self.E2 for a in range(2)])
        C = np.stack([al[:, a] * (self.B2 + sg[:, a] * self.F2) for a in range(2)])  # (2, M)
        ends = self.pts_f[[0, 2]]  # (2, n): l and h
        P = ends[None, :, :, None]  # (1, 2, n, 1)
        aP = np.abs(P)
        n, M = self.n, self.m
        cols = np.arange(M)
        as_pts = np.array([0, 2])  # end index -> index into self.pts

        lo_e, hi_e = P[0, 0], P[0, 1]  # (n, 1): l and h
        alo_e, ahi_e = aP[0, 0], aP[0, 1]

        def dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
            slope = A + lam[None]  # (2, n, M)
            at_lo = slope * lo_e + Bc * alo_e  # the same products as a (2, 2, n, M) array, one end each
            at_hi = slope * hi_e + Bc * ahi_e
            arg = at_hi > at_lo  # (2, n, M): the end each piece takes (ties: the lower end, as argmax)
            piece = C + np.maximum(at_lo, at_hi).sum(axis=1)  # (2, M)
            kk = piece.argmax(axis=0)
            idx = as_pts[arg[kk, :, cols].astype(np.intp)]  # (M, n): the point each subproblem takes per u_i
            return float(base) + float(piece[kk, cols].sum()), idx

        lam = np.zeros((n, M))
        best_v, best_idx = dual(lam)
        best_lam = lam.copy()
        # the steps' scale: a share of the gap between the bound and a point's value at the start
        # (not of the objective's size, which a constant shifts)
        margin = 0.1 * max(best_v - float(base) - self._value(al, self._vote(best_idx)), 1e-12)
        # aim a little below stop_at: the exact D(lam) may differ from its float value by rounding
        target = None if stop_at is None else float(stop_at) - 1e-9 * (1.0 + abs(float(stop_at)))
        for it in range(iters):
            v, idx = dual(lam)
            if v < best_v:
                best_v, best_lam, best_idx = v, lam.copy(), idx
            if target is not None and best_v <= target:
                break
            if deadline is not None and it % 64 == 63 and time.monotonic() > deadline:
                break
            g = self.pts_f[idx, np.arange(n)[None, :]].T  # (n, M): each subproblem's maximizer
            g = g - g.mean(axis=1, keepdims=True)  # keeps sum_m lam_m = 0
            nrm = float((g * g).sum())
            if nrm < 1e-20:  # every subproblem takes the same u: the bound is attained there
                best_v, best_lam, best_idx = v, lam.copy(), idx
                break
            goal = best_v - margin / (1.0 + it / 50.0)  # Polyak steps towards a shrinking margin
            lam -= 0.1 * max(v - goal, 1e-12) / nrm * g
        upper = self._exact_dual(alphas, base, best_lam)
        return upper, self._witness(c, alphas, self._climb(al, best_idx))

    def _value(self, al: np.ndarray, idx: np.ndarray) -> float:
        """F(u) - K in float64, u given as point indices."""
        u = self.pts_f[idx, np.arange(self.n)]
        c2 = u @ self.W2 + self.B2
        r2 = np.abs(u) @ self.E2 + self.F2
        return float(np.maximum.reduce([al[:, a] * (c2 + s * r2) for a in range(2) for s in (1.0, -1.0)]).sum())

    def _vote(self, starts: np.ndarray) -> np.ndarray:
        return np.array([np.bincount(starts[:, i], minlength=3).argmax() for i in range(self.n)])

    def _climb(self, al: np.ndarray, starts: np.ndarray) -> list[int]:
        """A good u (as point indices): the best of the subproblems' maximizers (and their
        majority vote) under the true objective F, then improved one coordinate at a time."""
        n = self.n

        def value(idx: np.ndarray) -> float:
            return self._value(al, idx)

        cands = [starts[m] for m in range(len(starts))]
        cands.append(self._vote(starts))
        idx = max(cands, key=value).copy()
        best = value(idx)
        improved = True
        while improved:
            improved = False
            for i in range(n):
                for k in range(3):
                    if k == idx[i]:
                        continue
                    old, idx[i] = idx[i], k
                    v = value(idx)
                    if v > best + 1e-15 * (1.0 + abs(best)):
                        best, improved = v, True
                    else:
                        idx[i] = old
        return [int(k) for k in idx]

    def _exact_dual(self, alphas: list[list[Fraction]], base: Fraction, lam_f: np.ndarray) -> Fraction:
        """D(lam) in rational arithmetic, with lam's last column set so each row sums to 0.
        Every number here is dyadic when the model's are (floats are): then in integers over
        powers of two, else with Fractions."""
        n, M = self.n, self.m
        lam = [[Fraction(float(v)) for v in row[:-1]] for row in lam_f]
        for row in lam:
            row.append(-sum(row, _ZERO))
        flat_a = [a for row in alphas for a in row]
        w2 = [v for row in self.w2 for v in row]
        e2 = [v for row in self.e2 for v in row]
        pts = [p for row in self.pts for p in row]
        lam_flat = [v for row in lam for v in row]
        if not all(_is_dyadic(v) for group in (flat_a, w2, e2, pts, lam_flat) for v in group):
            return self._exact_dual_fractions(alphas, base, lam)
        A, ka = _scaled(flat_a)
        W, kw = _scaled(w2)
        E, ke = _scaled(e2)
        P, kp = _scaled(pts)
        L, kl = _scaled(lam_flat)
        k1 = max(ka + kw, kl)
        total = base
        for m in range(M):
            best: Fraction | None = None
            for ai in range(2):
                a_n = A[2 * m + ai]
                for s in (1, -1):
                    acc = 0
                    for i in range(n):
                        slope = (a_n * W[i * M + m] << (k1 - ka - kw)) + (L[i * M + m] << (k1 - kl))
                        bend = s * a_n * E[i * M + m] << k1
                        acc += max(slope * p * (1 << (ka + ke)) + bend * abs(p) for p in P[3 * i:3 * i + 3])
                    val = Fraction(acc, 1 << (k1 + ka + ke + kp)) + alphas[m][ai] * (self.b2[m] + s * self.f2[m])
                    if best is None or val > best:
                        best = val
            assert best is not None
            total += best
        return total

    def _exact_dual_fractions(self, alphas: list[list[Fraction]], base: Fraction, lam: list[list[Fraction]]) -> Fraction:
        total = base
        for m in range(self.m):
            best: Fraction | None = None
            for a in alphas[m]:
                for s in (1, -1):
                    val = a * (self.b2[m] + s * self.f2[m])
                    for i in range(self.n):
                        slope = a * self.w2[i][m] + lam[i][m]
                        bend = s * a * self.e2[i][m]
                        val += max(slope * p + bend * abs(p) for p in self.pts[i])
                    if best is None or val > best:
                        best = val
            assert best is not None
            total += best
        return total

    def _witness(self, c: dict[int, Fraction], alphas: list[list[Fraction]],
                 u_idx: Sequence[int]) -> tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]:
        """theta' that realizes u (the chosen points) in layer 1 and the best corner of every
        second-layer unit and output weight for it."""
        (w1, b1), (w2, b2), (w3, b3) = self.problem.layers
        e1, e2, e3 = self.problem.box.weights
        f1, f2, f3 = self.problem.box.biases
        x = self.x
        u = [self.pts[i][k] for i, k in enumerate(u_idx)]
        t = [(ui - c) / r if r else _ZERO for ui, c, r in zip(u, self.c1, self.r1)]
        n1 = len(b1)
        w1p = [[w1[j][i] + t[i] * e1[j][i] * _sign(x[j]) for i in range(n1)] for j in range(len(x))]
        b1p = [b1[i] + t[i] * f1[i] for i in range(n1)]
        w2p = [list(row) for row in w2]
        b2p = list(b2)
        u2 = []
        for m in range(self.m):
            base = b2[m] + sum((w2[i][m] * u[i] for i in range(n1)), _ZERO)
            rad = f2[m] + sum((e2[i][m] * abs(u[i]) for i in range(n1)), _ZERO)
            # the corner (a, s) with the largest a * v^s; s picks the end of u2_m's range
            s = max((1, -1), key=lambda s: max(a * (base + s * rad) for a in alphas[m]))
            for i in range(n1):
                w2p[i][m] = w2[i][m] + s * e2[i][m] * _sign(u[i])
            b2p[m] = b2[m] + s * f2[m]
            u2.append(base + s * rad)
        w3p = [[w3[m][k] + _sign(c.get(k, _ZERO) * u2[m]) * e3[m][k] for k in range(len(b3))] for m in range(self.m)]
        b3p = [b3[k] + _sign(c.get(k, _ZERO)) * f3[k] for k in range(len(b3))]
        return tuple(x), ((w1p, b1p), (w2p, b2p), (w3p, b3p))
