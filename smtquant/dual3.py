"""Exact bounds by nested dual decomposition: three identity hidden layers at a fixed input.

At a fixed input x the first hidden layer's pre-activations u1 range over a box [l, h] exactly,
and each later unit's pre-activation over an interval whose centre and radius are functions of
the layer before it (every parameter occurs in one neuron). For a linear objective c.z' of the
outputs, the last layer's parameters maximize to

    F = K + sum_k max over a in {w_k + e_k, w_k - e_k} of a u3_k,
    w_k = sum_o c_o W4_ko, e_k = sum_o |c_o| E4_ko, K = c.b4 + |c|.eb4,

and the third layer's to sum_k max_a [beta_ka + sum_m (a W3_mk u2_m + |a| E3_mk |u2_m|)]. Two
copies relax it, each with multipliers whose sums vanish, so the bound holds for any of them:

- lam (K x M): one copy of u2 per unit k (sum_k lam_k = 0). The copy of unit k and choice a
  meets sum_m max over s in {+1, -1} of A u2_m, A = a W3_mk + s |a| E3_mk + lam_km, and the largest
  A u2_m over u2_m's interval is A (b2_m + W2_m.u1) + |A| (eb2_m + E2_m.|u1|).
- mu (K x 2 x M x N): one copy of u1 per (k, a, m) (sum_m mu_kam = 0). Each copy's terms are
  convex in one u1_i each (|A| >= 0), so they are largest at l_i or h_i.

    D(lam, mu) = K + sum_k max_a [beta_ka + sum_m max_s (A Lw_m + |A| Le_m + mu_kam.l
                                                        + sum_i max(0, A U_mi + |A| V_mi + mu_kami t_i))]

with Lw_m = b2_m + W2_m.l, Le_m = eb2_m + E2_m.|l|, t = h - l, U_mi = W2_im t_i and
V_mi = E2_im (|h_i| - |l_i|): the value of the copies at l plus the gain of moving u1_i to h_i.
max_u F <= D(lam, mu) for every lam, mu with those sums 0. Subgradient steps in float64 choose
them; D is then bounded above at them in float64 with a proven bound on the rounding error
(_certified_dual; the exact evaluation in integers, _exact_dual, is the reference it is tested
against and the fallback where a float is not finite). On nets of 2 to 3 units
a layer the bound meets the maximum over all vertices of the box in most directions
(tests/test_dual3.py); whether it can leave a gap is not known.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .backends.base import Problem
from .dual import _sign, first_layer_range
from .exact import ExactLayer, identity_outputs

__all__ = ["ThreeLayerDual", "load_kernels"]

_ZERO = Fraction(0)

# The float search's step, for every copy and corner (k, a, m, s): about 10^6 gain terms
# sum_i max(0, A U_mi + |A| V_mi + mu_kami t_i), then the chosen copies' maximizers, the
# subgradient and the update. numpy makes about twenty passes over arrays of 10^5 to 10^6
# entries for a step; with numba installed (``pip install smtquant[fast]``) three compiled loops
# do it (_dual_py, _grad_py, _move_py). They are compiled with the fast-math flags that let LLVM
# reorder and vectorize their sums (3x faster steps at 64^3): they only choose the multipliers,
# and the certified bound is computed with numpy (_tau_err), in IEEE order.
_KERNELS: list = []  # [the compiled (dual, grad, move), or None without numba]; filled on first use
_FASTMATH = {"reassoc", "nsz", "contract"}  # reorder sums, ignore the sign of zero, fuse multiply-adds


def _kernels():
    if not _KERNELS:
        try:
            import numba  # noqa: PLC0415 - optional, and slow to import
        except ImportError:
            _KERNELS.append(None)
        else:
            compiled = None
            # compiled here, on a tiny case, and kept in numba's cache on disk (next to this file or
            # in the user's cache directory): a later process loads them in a fraction of the 2-3 s
            # a compile takes. Where the cache cannot be written they are compiled without it; a
            # numba that cannot compile them leaves numpy in use
            for cache in (True, False):
                try:
                    compiled = tuple(numba.njit(cache=cache, fastmath=_FASTMATH)(f)
                                     for f in (_dual_py, _grad_py, _move_py))
                    _run_tiny(*compiled)
                    break
                except Exception:  # noqa: BLE001 - any failure of the optional compiler
                    compiled = None
            _KERNELS.append(compiled)
    return _KERNELS[0]


def load_kernels() -> bool:
    """Load (or compile) the compiled loops now; True if numba provides them. A program that forks
    workers (a sweep, the benchmark) can call it first, so that each worker does not load them
    again (0.5 s a process: numba's import and its disk cache)."""
    return _kernels() is not None


def _run_tiny(dual, grad, move) -> None:  # type: ignore[no-untyped-def]
    one = np.ones
    s_all, tc = np.zeros((1, 2, 1), dtype=np.intp), np.zeros((1, 2))
    dual(one((1, 2, 1, 2)), one((1, 1)), one((1, 2, 1, 1)), one(1), one(1), one((1, 1)), one((1, 1)), one(1),
         one(1), one((1, 2)), s_all, tc)
    ci, pos, g_lam, pbar = np.zeros(1, dtype=np.intp), np.zeros((1, 1, 1), dtype=np.bool_), one((1, 1)), one((1, 1))
    grad(one((1, 2, 1, 2)), one((1, 1)), one((1, 2, 1, 1)), one(1), one((1, 1)), one((1, 1)), one((1, 1)),
         one((1, 1)), one(1), one(1), ci, s_all[:, 0], pos, g_lam, pbar)
    move(one((1, 1)), one((1, 2, 1, 1)), g_lam, pos, pbar, one(1), ci, 0.5)


def _dual_py(A0: np.ndarray, lam: np.ndarray, mu: np.ndarray, tw: np.ndarray, lo: np.ndarray,
             UpV: np.ndarray, UmV: np.ndarray, Lw: np.ndarray, Le: np.ndarray, bf: np.ndarray,
             s_all: np.ndarray, tc: np.ndarray) -> None:
    """The dual's float value at (lam, mu) by copies: tc[k, j] = beta_kj + sum_m max_s piece_kjms,
    s_all[k, j, m] the maximizing s (the first on a tie), with A = A0 + lam and piece = A Lw_m +
    |A| Le_m + mu_kjm.l + sum_i max(0, A W_mi + mu_kjmi t_i), W = UpV where A >= 0, else UmV."""
    K, J, M, S = A0.shape
    N = tw.shape[0]
    mt = np.empty(N)
    for k in range(K):
        for j in range(J):
            total = bf[k, j]
            for m in range(M):
                at_l = 0.0
                for i in range(N):
                    mt[i] = mu[k, j, m, i] * tw[i]
                    at_l += mu[k, j, m, i] * lo[i]
                best, pick = 0.0, 0
                for s in range(S):
                    a = A0[k, j, m, s] + lam[k, m]
                    W = UpV if a >= 0 else UmV
                    acc = 0.0
                    for i in range(N):
                        acc += max(a * W[m, i] + mt[i], 0.0)
                    piece = a * Lw[m] + abs(a) * Le[m] + at_l + acc
                    if s == 0 or piece > best:
                        best, pick = piece, s
                s_all[k, j, m] = pick
                total += best
            tc[k, j] = total


def _grad_py(A0: np.ndarray, lam: np.ndarray, mu: np.ndarray, tw: np.ndarray, UpV: np.ndarray,
             UmV: np.ndarray, U: np.ndarray, V: np.ndarray, Lw: np.ndarray, Le: np.ndarray,
             ci: np.ndarray, s_sel: np.ndarray, pos: np.ndarray, g_lam: np.ndarray, pbar: np.ndarray) -> float:
    """For the chosen copies (k, ci[k], m, s_sel[k, m]): pos[k, m, i] where the copy's u1_i is at
    h_i, the subgradient in lam (g_lam: each copy's u2 minus their mean over k) and the mean of
    pos over m (pbar: the subgradient in mu is t_i (pos - pbar)); returns its squared norm."""
    K, M, N = pos.shape
    cnt = np.empty(N)
    for k in range(K):
        j = ci[k]
        cnt[:] = 0.0
        for m in range(M):
            a = A0[k, j, m, s_sel[k, m]] + lam[k, m]
            W = UpV if a >= 0 else UmV
            sa = 1.0 if a > 0 else (-1.0 if a < 0 else 0.0)
            h = Lw[m] + sa * Le[m]
            for i in range(N):
                p = a * W[m, i] + mu[k, j, m, i] * tw[i] > 0
                pos[k, m, i] = p
                f = 1.0 if p else 0.0
                h += f * (U[m, i] + sa * V[m, i])
                cnt[i] += f
            g_lam[k, m] = h
        for i in range(N):
            pbar[k, i] = cnt[i] / M
    nrm = 0.0
    for m in range(M):
        mean = 0.0
        for k in range(K):
            mean += g_lam[k, m]
        mean /= K
        for k in range(K):
            g_lam[k, m] -= mean
            nrm += g_lam[k, m] * g_lam[k, m]
    for k in range(K):
        for i in range(N):
            p = pbar[k, i]  # sum over m of (pos - p)^2: M p of them are 1 - p, the rest -p
            nrm += tw[i] * tw[i] * M * (p * (1.0 - p) * (1.0 - p) + (1.0 - p) * p * p)
    return nrm


def _move_py(lam: np.ndarray, mu: np.ndarray, g_lam: np.ndarray, pos: np.ndarray, pbar: np.ndarray,
             tw: np.ndarray, ci: np.ndarray, step: float) -> None:
    """The subgradient step: lam -= step g_lam, mu[k, ci[k], m, i] -= step t_i (pos - pbar)."""
    K, M, N = pos.shape
    for k in range(K):
        j = ci[k]
        for m in range(M):
            lam[k, m] -= step * g_lam[k, m]
            for i in range(N):
                mu[k, j, m, i] -= step * tw[i] * ((1.0 if pos[k, m, i] else 0.0) - pbar[k, i])


def _over(values: np.ndarray) -> tuple[np.ndarray, int]:
    """An array of Fractions as integers (object array) over one common denominator D."""
    flat = values.ravel()
    den = math.lcm(*(v.denominator for v in flat)) if flat.size else 1
    ints = np.array([v.numerator * (den // v.denominator) for v in flat], dtype=object)
    return ints.reshape(values.shape), den


def _zero_sum(values: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
    """A float array rounded to integers over 2**e (an int64 array, e chosen so that no entry nor
    sum overflows), with the last entry along ``axis`` replaced so that every sum along ``axis``
    is exactly 0. Any multipliers give a bound: rounding them only moves the bound by about 2**-e
    times the copies' values."""
    if not np.isfinite(values).all() or (values.size and float(np.abs(values).max()) > 2.0 ** 30):
        values = np.zeros_like(values)  # (multipliers this far off help no bound; zero is one too)
    top = float(np.abs(values).max()) if values.size else 0.0
    e = min(40, 55 - max(0, math.ceil(math.log2(top + 1.0))) - values.shape[axis].bit_length())
    q = np.rint(np.ldexp(values, e)).astype(np.int64)
    q = np.moveaxis(q, axis, -1).copy()
    q[..., -1] = 0
    q[..., -1] = -q.sum(axis=-1)
    return np.moveaxis(q, -1, axis), 1 << e


class ThreeLayerDual:
    """Bounds on c.z' + const over the parameter box, for a network with three identity hidden
    layers at a fixed input (``applies``)."""

    ITERS = 20000
    STALL = 400  # iterations over which the float bound must keep improving, else a restart
    RESTARTS = 3  # restarts in a row without that improvement, then the search stops
    PHASE = 1 / 3  # of a call's time to its deadline: the restart with the margin reset (bound)
    PHASE_MIN_S = 30.0  # calls with less time get no such restart (it slows their first descent)

    @staticmethod
    def applies(problem: Problem) -> bool:
        return problem.hidden_activation == "identity" and len(problem.layers) == 4 and problem.fixed_input

    def __init__(self, problem: Problem, ends: dict[int, int] | None = None) -> None:
        """``ends``: first-layer units fixed at an end of their range (0: the lower, 1: the upper),
        a node of the branch and bound over those ends (the maximum lies at one of them)."""
        assert self.applies(problem)
        self.problem = problem
        self.ends = dict(ends or {})
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = problem.layers
        e2, e3, e4 = problem.box.weights[1:]
        f2, f3, f4 = problem.box.biases[1:]
        self.x, c1, r1 = first_layer_range(problem)
        self.c1, self.r1 = c1, r1
        n, m = len(b1), len(b2)
        lo = [c - r for c, r in zip(c1, r1)]
        hi = [c + r for c, r in zip(c1, r1)]
        for i, end in self.ends.items():
            lo[i] = hi[i] = hi[i] if end else lo[i]
        self.lo, self.hi = lo, hi
        t = [b - a for a, b in zip(lo, hi)]
        W2 = np.array(w2, dtype=object)  # (n, m)
        E2 = np.array(e2, dtype=object)
        lo_a = np.array(lo, dtype=object)
        alo = np.array([abs(v) for v in lo], dtype=object)
        t_a = np.array(t, dtype=object)
        dab = np.array([abs(b) - abs(a) for a, b in zip(lo, hi)], dtype=object)
        # exact pieces that do not depend on the objective
        self.U = (W2 * t_a[:, None]).T  # (m, n)
        self.V = (E2 * dab[:, None]).T
        self.Lw = np.array([b2[j] + (W2[:, j] * lo_a).sum() for j in range(m)], dtype=object)
        self.Le = np.array([f2[j] + (E2[:, j] * alo).sum() for j in range(m)], dtype=object)
        self.w2, self.e2, self.b2, self.f2 = w2, e2, b2, f2
        self.w3, self.e3, self.b3, self.f3 = w3, e3, b3, f3
        self.w4, self.e4, self.b4, self.f4 = w4, e4, b4, f4
        self.n, self.m, self.k = n, m, len(b3)
        fl = np.vectorize(float, otypes=[float])
        self.U_f, self.V_f = np.ascontiguousarray(fl(self.U)), np.ascontiguousarray(fl(self.V))  # rows m in order
        self.Lw_f, self.Le_f = fl(self.Lw), fl(self.Le)
        self.t_f, self.l_f = fl(t_a), fl(lo_a)
        self._ints: list | None = None  # the exact evaluation's integer forms (_int_forms)
        self.W2, self.E2 = W2, E2
        self.W2_f, self.E2_f = fl(W2), fl(E2)
        self.B2_f, self.F2_f = fl(np.array(b2, dtype=object)), fl(np.array(f2, dtype=object))
        self.W3_f = fl(np.array(w3, dtype=object))  # (m, k)
        self.E3_f = fl(np.array(e3, dtype=object))
        self._warm: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # objective -> its best multipliers
        self._trees: dict[tuple, _Tree] = {}  # objective -> its search tree (search)
        self.last_frac = np.full(n, 0.5)
        self.B3_f, self.F3_f = fl(np.array(b3, dtype=object)), fl(np.array(f3, dtype=object))
        self.pts_f = np.stack([fl(lo_a), fl(np.array(hi, dtype=object))])  # (2, n)

    def _with_ends(self, ends: dict[int, int]) -> ThreeLayerDual:
        """ThreeLayerDual(problem, ends) for ``ends`` that extend this dual's, built from this one:
        only what the newly fixed units change is recomputed (their columns of U and V become 0;
        a unit fixed at its upper end adds W2_i t_i to Lw and E2_i (|h_i| - |l_i|) to Le, exactly),
        in O(units x m) Fraction operations where a fresh build takes O(n x m) (0.26 s at 64^3)."""
        assert all(self.ends.get(i, e) == e for i, e in ends.items())
        new = {i: e for i, e in ends.items() if i not in self.ends}
        d = object.__new__(ThreeLayerDual)
        d.__dict__.update(self.__dict__)  # the layers' data and their floats are shared, read only
        d.ends = {**self.ends, **new}
        d.lo, d.hi = list(self.lo), list(self.hi)
        d.U, d.V, d.Lw, d.Le = self.U.copy(), self.V.copy(), self.Lw.copy(), self.Le.copy()
        d.U_f, d.V_f, d.t_f, d.l_f, d.pts_f = self.U_f.copy(), self.V_f.copy(), self.t_f.copy(), self.l_f.copy(), \
            self.pts_f.copy()
        for i, end in new.items():
            lo, hi = self.lo[i], self.hi[i]
            if end:
                d.Lw += self.W2[i] * (hi - lo)
                d.Le += self.E2[i] * (abs(hi) - abs(lo))
                d.lo[i] = hi
            else:
                d.hi[i] = lo
            d.U[:, i] = d.V[:, i] = _ZERO
            d.U_f[:, i] = d.V_f[:, i] = d.t_f[i] = 0.0
            d.l_f[i] = d.pts_f[0, i] = d.pts_f[1, i] = float(d.lo[i])
        fl = np.vectorize(float, otypes=[float])
        d.Lw_f, d.Le_f = fl(d.Lw), fl(d.Le)
        d._ints = None
        d._warm, d._trees = {}, {}
        d.last_frac = np.full(self.n, 0.5)
        return d

    def _int_forms(self) -> list:
        """The exact evaluation's integer forms of everything that does not depend on the objective."""
        if self._ints is None:
            lo_a = np.array(self.lo, dtype=object)
            t_a = np.array([b - a for a, b in zip(self.lo, self.hi)], dtype=object)
            self._ints = [_over(v) for v in (np.array(self.w3, dtype=object).T, np.array(self.e3, dtype=object).T,
                                             self.U, self.V, t_a, lo_a, self.Lw, self.Le)]
        return self._ints

    # -- the objective's last layer ------------------------------------------------------
    def _pieces(self, c: dict[int, Fraction]) -> tuple[np.ndarray, Fraction]:
        """a (K x 2: w_k + e_k, w_k - e_k) as Fractions, and the constant K."""
        a = np.empty((self.k, 2), dtype=object)
        for k in range(self.k):
            w = sum((co * self.w4[k][o] for o, co in c.items()), _ZERO)
            e = sum((abs(co) * self.e4[k][o] for o, co in c.items()), _ZERO)
            a[k, 0], a[k, 1] = w + e, w - e
        const = sum((co * self.b4[o] + abs(co) * self.f4[o] for o, co in c.items()), _ZERO)
        return a, const

    def _beta(self, a: np.ndarray) -> np.ndarray:
        return np.array([[a[k, j] * self.b3[k] + abs(a[k, j]) * self.f3[k] for j in range(2)] for k in range(self.k)],
                        dtype=object)

    # -- the float search ----------------------------------------------------------------
    def bound(self, c: dict[int, Fraction], const: Fraction, stop_at: Fraction | None = None,
              iters: int | None = None, deadline: float | None = None, phase: bool = True
              ) -> tuple[Fraction, tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]]:
        """(a certified upper bound on c.z' + const over the box, a witness (x, theta') whose value the
        caller computes exactly). The multipliers' search stops once the float bound is at most
        ``stop_at``, when it stalls, at ``iters`` iterations or at ``deadline`` (time.monotonic());
        the bound is valid wherever it stops. A later call with the same ``c`` starts from the best
        multipliers found so far (they do not depend on ``const``). ``phase``: the restart after
        PHASE of the time (see below). Sets last_iters (iterations done), last_converged (the
        search stalled or met a zero subgradient), last_reached (the float bound reached
        ``stop_at``) and last_float (the float bound)."""
        upper, witness = self._bound(c, const, stop_at, iters, deadline, phase, None)
        assert witness is not None
        return upper, witness

    def _bound(self, c: dict[int, Fraction], const: Fraction, stop_at: Fraction | None, iters: int | None,
               deadline: float | None, phase: bool, witness_above: Fraction | None, probe=None
               ) -> tuple[Fraction, tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]] | None]:
        """bound; the witness None where its float value is below ``witness_above`` (by more than
        rounding could explain: it would not be the best one a search keeps). ``probe``: called once,
        after PROBE_AT iterations, with (the best float bound, its multipliers, the copies' shares
        at h_i); where it returns True the search stops there (last_split: the caller has split the
        box instead)."""
        K, M, N = self.k, self.m, self.n
        if deadline is not None:  # keep the time of the certified bound and the witness at the end
            deadline -= self._exact_s()
        a, k0 = self._pieces(c)
        base = const + k0
        beta = self._beta(a)
        af = np.vectorize(float, otypes=[float])(a)  # (K, 2)
        bf = np.vectorize(float, otypes=[float])(beta)
        sg = np.array([1.0, -1.0])
        A0 = (af[:, :, None, None] * self.W3_f.T[:, None, :, None]
              + sg * np.abs(af)[:, :, None, None] * self.E3_f.T[:, None, :, None])  # (K, 2, M, 2)
        U, V, Lw, Le, tw, lo = self.U_f, self.V_f, self.Lw_f, self.Le_f, self.t_f, self.l_f
        kk, mm = np.arange(K), np.arange(M)

        UpV, UmV = U + V, U - V  # A U + |A| V = A (U + sign(A) V)
        kernels = _kernels()
        g_lam, pbar = np.empty((K, M)), np.empty((K, N))  # the last dual's subgradient (move)
        if kernels is not None:
            k_dual, k_grad, k_move = kernels
            s_all, tc = np.empty((K, 2, M), dtype=np.intp), np.empty((K, 2))

            def dual(lam: np.ndarray, mu: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
                k_dual(A0, lam, mu, tw, lo, UpV, UmV, Lw, Le, bf, s_all, tc)
                ci = (tc[:, 1] > tc[:, 0]).astype(np.intp)
                s_sel = s_all[kk, ci]  # (K, M), a copy
                pos = np.empty((K, M, N), dtype=np.bool_)
                nrm = k_grad(A0, lam, mu, tw, UpV, UmV, U, V, Lw, Le, ci, s_sel, pos, g_lam, pbar)
                return float(base) + float(tc[kk, ci].sum()), ci, s_sel, pos, nrm

            def move(lam: np.ndarray, mu: np.ndarray, ci: np.ndarray, pos: np.ndarray, step: float) -> None:
                k_move(lam, mu, g_lam, pos, pbar, tw, ci, step)
        else:
            gain = np.empty((K, 2, M, 2, N))

            def dual(lam: np.ndarray, mu: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
                A, mt, piece = self._pieces_np(A0, lam, mu, UpV, UmV, gain)
                s = (piece[..., 1] > piece[..., 0]).astype(np.intp)  # (K, 2, M)
                tau = np.take_along_axis(piece, s[..., None], -1)[..., 0]
                tc = bf + tau.sum(-1)  # (K, 2)
                ci = (tc[:, 1] > tc[:, 0]).astype(np.intp)
                s_sel = s[kk, ci]  # (K, M)
                a_sel = A[kk[:, None], ci[:, None], mm[None, :], s_sel]  # the chosen copies' gains, again
                pos = a_sel[..., None] * np.where((a_sel >= 0)[..., None], UpV[None], UmV[None]) + mt[kk, ci] > 0
                # the subgradient: each copy's u2 (at its maximizer) minus their mean over k, and
                # each copy's u1 minus their mean over m, t_i (pos - pbar)
                sA = np.sign(a_sel)
                h2 = Lw + sA * Le + (pos * (U[None] + sA[..., None] * V[None])).sum(-1)
                g_lam[:] = h2 - h2.mean(axis=0, keepdims=True)
                pbar[:] = pos.mean(axis=1)
                g_sel = tw * (pos - pbar[:, None, :])
                nrm = float((g_lam * g_lam).sum() + (g_sel * g_sel).sum())
                return float(base) + float(tc[kk, ci].sum()), ci, s_sel, pos, nrm

            def move(lam: np.ndarray, mu: np.ndarray, ci: np.ndarray, pos: np.ndarray, step: float) -> None:
                lam -= step * g_lam
                mu[kk, ci] -= step * (tw * (pos - pbar[:, None, :]))

        key = tuple(sorted(c.items()))  # the best multipliers do not depend on const: a later call
        warm = self._warm.get(key)  # on the same objective resumes from them
        lam = np.zeros((K, M)) if warm is None else warm[0].copy()
        mu = np.zeros((K, 2, M, N)) if warm is None else warm[1].copy()
        v0, ci, s_sel, pos, nrm = dual(lam, mu)
        best_v, best_lam, best_mu, best_pick = v0, lam.copy(), mu.copy(), (ci, s_sel, pos)
        low = float(base) + self._value_f(af, self._vote(pos), ci)  # a point's value: below the maximum
        ref = low if stop_at is None else max(low, float(stop_at))
        margin = 0.1 * max(v0 - ref, 1e-12)
        target = None if stop_at is None else float(stop_at) - 1e-9 * (1.0 + abs(float(stop_at)))
        history = [best_v]
        since, stalls = 0, 0  # the iteration of the last restart; stalls in a row
        # a call with at least PHASE_MIN_S seconds: one restart at the best multipliers after PHASE
        # of its time, with the margin set from the gap then. The first steps aim far below (they
        # move the multipliers a long way), the later ones close to the gap left (session 12: 7x
        # less gap after 60 s on a 3 x 64 fixed:6 maximum). In shorter calls (a check's looks at
        # its branches) the restart came before the descent was done and slowed it
        now = time.monotonic()
        window = None if deadline is None else deadline - now
        phase_at = None if not phase or window is None or window < self.PHASE_MIN_S else now + self.PHASE * window
        self.last_converged, self.last_split, it = False, False, 0
        for it in range(self.ITERS if iters is None else iters):
            if it:
                v, ci, s_sel, pos, nrm = dual(lam, mu)
                if v < best_v:
                    best_v, best_pick = v, (ci, s_sel, pos)
                    np.copyto(best_lam, lam)  # (into the same buffers: a fresh 4 MB array per improvement
                    np.copyto(best_mu, mu)  # cost 3.6 s of a 20 s check at 64^3, in page faults)
            else:
                v = v0
            if target is not None and best_v <= target:
                break
            now = time.monotonic() if deadline is not None else 0.0
            if deadline is not None and now > deadline:
                break
            if probe is not None and it == self.PROBE_AT:
                if probe(best_v, best_lam, best_mu, best_pick[2].reshape(-1, N).mean(axis=0)):
                    self.last_split = True
                    break
            if phase_at is not None and now > phase_at:
                phase_at = None
                lam, mu = best_lam.copy(), best_mu.copy()
                margin = 0.1 * max(best_v - ref, 1e-12)
                since, history = it + 1, [best_v]
                continue
            if it % 100 == 99:
                history.append(best_v)
                back = self.STALL // 100
                if len(history) > back:
                    if history[-1 - back] - best_v >= 0.002 * max(best_v - ref, 1e-12):
                        stalls = 0
                    else:  # restart at the best multipliers, aiming at half the gap left
                        stalls += 1
                        if stalls > self.RESTARTS:
                            self.last_converged = True
                            break
                        lam, mu = best_lam.copy(), best_mu.copy()
                        margin = 0.5 * max(best_v - ref, 1e-12)
                        since, history = it + 1, [best_v]
                        continue
            if nrm < 1e-20:
                self.last_converged = True
                break  # a zero subgradient: these multipliers minimize the dual
            goal = best_v - margin / (1.0 + (it - since) / 50.0)
            step = max(v - goal, 1e-12) / nrm
            move(lam, mu, ci, pos, step)
        self._warm[key] = (best_lam, best_mu)
        self.last_iters = it + 1
        self.last_reached = target is not None and best_v <= target  # (the certified bound may still miss it)
        self.last_float = best_v
        ci, s_sel, pos = best_pick
        self.last_frac = pos.reshape(-1, self.n).mean(axis=0)  # the copies' share at h_i (search's branching)
        idx, s2 = self._polish(af, *self._ends(af, self._vote(pos), ci))
        want_witness = True
        if witness_above is not None:
            # a witness takes 0.2 s on the 3 x 64 net, 6 times the certified bound: a search builds
            # it only where it may beat the best so far (or a check's threshold); the float value is
            # within about 1e-12 of the exact one
            floor = float(witness_above)
            want_witness = float(base) + self._corners_f(af, idx[None], s2[None])[0] >= floor - 1e-7 * (1.0 + abs(floor))
        upper = self._certified_dual(a, beta, base, best_lam, best_mu)
        return upper, (self._witness(c, a, idx, s2) if want_witness else None)

    def _pieces_np(self, A0: np.ndarray, lam: np.ndarray, mu: np.ndarray, UpV: np.ndarray, UmV: np.ndarray,
                   gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """numpy's form of the copies' values: (A, mu t, piece (K, 2, M, 2)); ``gain`` is scratch."""
        A = A0 + lam[:, None, :, None]
        mt = mu * self.t_f
        up = (A >= 0)[..., None]
        np.multiply(A[..., None], np.where(up, UpV[None, None, :, None, :], UmV[None, None, :, None, :]), out=gain)
        np.add(gain, mt[:, :, :, None, :], out=gain)
        np.maximum(gain, 0.0, out=gain)
        piece = A * self.Lw_f[:, None] + np.abs(A) * self.Le_f[:, None] + (mu @ self.l_f)[..., None] + gain.sum(-1)
        return A, mt, piece

    def _exact_s(self) -> float:
        """The time kept at the end of a call for the certified bound (35 ms) and the witness:
        twice the 0.2 s a witness takes on the 3 x 64 net."""
        return 0.1 + 0.4e-6 * self.k * self.m * self.n * 4

    def _vote(self, pos: np.ndarray) -> np.ndarray:
        """u1 as end indices (0: l, 1: h): the majority over the copies' maximizers."""
        return (pos.reshape(-1, self.n).mean(axis=0) > 0.5).astype(np.intp)

    def _ends(self, af: np.ndarray, idx: np.ndarray, ci: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return idx, self._ends_f(af, idx, ci)[0]

    def _corners_f(self, af: np.ndarray, idx: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """The float objective (minus K) at rows of u1 end indices ``idx`` (B, n) and u2 ends ``s2``
        (B, m; 0: c + r, 1: c - r), the last two layers at their best ends: (B,)."""
        u1 = self.pts_f[idx, np.arange(self.n)]
        u2 = u1 @ self.W2_f + self.B2_f + (1 - 2 * s2) * (np.abs(u1) @ self.E2_f + self.F2_f)
        c3 = u2 @ self.W3_f + self.B3_f
        r3 = np.abs(u2) @ self.E3_f + self.F3_f
        return np.maximum.reduce([af[:, j] * (c3 + s * r3) for j in range(2) for s in (1.0, -1.0)]).sum(-1)

    def _polish(self, af: np.ndarray, idx: np.ndarray, s2: np.ndarray, rounds: int = 200
                ) -> tuple[np.ndarray, np.ndarray]:
        """A corner (u1 ends, u2 ends) improved by single flips, the best flip each round, while
        one raises the float objective: a better witness for the same bound (the maximum lies at
        such a corner). On the 3 x 64 identity net, local 0 fixed:4, the copies' majority corner
        gave 27.005860 and its flips 27.005872 (session 15)."""
        n, m = self.n, self.m
        idx, s2 = np.asarray(idx, dtype=np.intp).copy(), np.asarray(s2, dtype=np.intp).copy()
        val = self._corners_f(af, idx[None], s2[None])[0]
        for _ in range(rounds):
            I = np.tile(idx, (n + m, 1))
            S = np.tile(s2, (n + m, 1))
            I[np.arange(n), np.arange(n)] ^= 1
            S[n + np.arange(m), np.arange(m)] ^= 1
            vals = self._corners_f(af, I, S)
            j = int(vals.argmax())
            if not vals[j] > val + 1e-12 * (1.0 + abs(val)):
                break
            val, idx, s2 = vals[j], I[j], S[j]
        return idx, s2

    def _ends_f(self, af: np.ndarray, idx: np.ndarray, ci: np.ndarray) -> tuple[np.ndarray, float]:
        """For u1 given as end indices: the end s2 of each u2_m that is best for the objective's
        choices ``ci`` (a convex function of u2_m), and the float objective (minus K) after the
        last two layers are maximized given those u2."""
        u1 = self.pts_f[idx, np.arange(self.n)]
        c2 = u1 @ self.W2_f + self.B2_f
        r2 = np.abs(u1) @ self.E2_f + self.F2_f
        ach = af[np.arange(self.k), ci]
        g = self.W3_f @ ach
        ga = self.E3_f @ np.abs(ach)
        ends = np.stack([c2 + r2, c2 - r2])
        s2 = (g * ends[1] + ga * np.abs(ends[1]) > g * ends[0] + ga * np.abs(ends[0])).astype(np.intp)
        u2 = ends[s2, np.arange(self.m)]
        c3 = u2 @ self.W3_f + self.B3_f
        r3 = np.abs(u2) @ self.E3_f + self.F3_f
        val = np.maximum.reduce([af[:, j] * (c3 + s * r3) for j in range(2) for s in (1.0, -1.0)]).sum()
        return s2, float(val)

    def _value_f(self, af: np.ndarray, idx: np.ndarray, ci: np.ndarray) -> float:
        return self._ends_f(af, idx, ci)[1]

    # -- the certified evaluation -------------------------------------------------------
    def _certified_dual(self, a: np.ndarray, beta: np.ndarray, base: Fraction,
                        lam_f: np.ndarray, mu_f: np.ndarray) -> Fraction:
        """An upper bound on the D(lam, mu) that _exact_dual computes (the same multipliers, their
        sums made exactly 0), from the float64 dual and a proven bound on its rounding error; the
        exact evaluation where a float is not finite. It takes about 35 ms where _exact_dual takes
        0.43-0.9 s on the 3 x 64 net, and lies above it by about 1e-14 times the sum of the terms'
        magnitudes.

        The error bound: the float value of each copy's tau_kj = sum_m max_s piece_kjms is a
        program of sums, products, |.| and max over inputs rounded once each (the data, a, and the
        multipliers). With u = 2^-53, a result with at most P roundings on any path from an input
        differs from its exact value by at most gamma_P = P u / (1 - P u) times its shadow: the same
        program on the inputs' magnitudes, with |.| and max(0, .) of a term given the term's shadow
        and max of terms the largest shadow (both are 1-Lipschitz; a sum adds one rounding to the
        longer path, a product adds its factors' paths and one). Here P <= N + M + 16 (the sums over
        N gains and M copies, any order, as numpy's pairwise sums or BLAS take them), and the
        shadow of piece_kjms is S(A) (sum_i |U_mi| + |V_mi| + |Lw_m| + |Le_m|) + sum_i |mu_kjmi|
        (|l_i| + |t_i|) with S(A) = |a| (|W3| + E3) + |lam|. The shadow computed in floats is within
        gamma_P of its exact value, so 2 (N + M + 32) 2^-53 times it bounds the error; 2^-900 per
        copy more covers underflow. The sum over k and the max over j are then taken exactly."""
        parts = self._tau_err(a, lam_f, mu_f)
        if parts is None:
            return self._exact_dual(a, beta, base, lam_f, mu_f)
        tau, err = parts
        total = base
        for k in range(self.k):
            total += max(beta[k, j] + Fraction(float(tau[k, j])) + Fraction(float(err[k, j])) for j in range(2))
        return total

    def _tau_err(self, a: np.ndarray, lam_f: np.ndarray, mu_f: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(the float tau (K, 2), a bound on its rounding error), or None where either is not finite."""
        K, M, N = self.k, self.m, self.n
        lami, dlam = _zero_sum(lam_f, 0)
        mui, dmu = _zero_sum(mu_f, 2)
        lam = np.ascontiguousarray(lami, dtype=float) * (1.0 / dlam)  # q / 2^e: one rounding (q may
        mu = np.ascontiguousarray(mui, dtype=float) * (1.0 / dmu)  # exceed 2^53)
        af = np.vectorize(float, otypes=[float])(a)
        sg = np.array([1.0, -1.0])
        A0 = (af[:, :, None, None] * self.W3_f.T[:, None, :, None]
              + sg * np.abs(af)[:, :, None, None] * self.E3_f.T[:, None, :, None])  # (K, 2, M, 2)
        UpV, UmV = self.U_f + self.V_f, self.U_f - self.V_f
        piece = self._pieces_np(A0, lam, mu, UpV, UmV, np.empty((K, 2, M, 2, N)))[2]  # (17 ms at 64^3)
        tau = np.maximum(piece[..., 0], piece[..., 1]).sum(-1)
        row = (np.abs(self.U_f) + np.abs(self.V_f)).sum(-1) + np.abs(self.Lw_f) + np.abs(self.Le_f)  # (M,)
        s_a = np.abs(af)[:, :, None, None] * (np.abs(self.W3_f.T) + self.E3_f.T)[:, None, :, None] \
            + np.abs(lam)[:, None, :, None]  # (K, 2, M, 1): the same for both s
        s_mu = np.abs(mu) @ (np.abs(self.l_f) + np.abs(self.t_f))  # (K, 2, M)
        shadow = (s_a * row[:, None] + s_mu[..., None]).max(-1).sum(-1)  # (K, 2)
        err = 2.0 * (N + M + 32) * 2.0**-53 * shadow + 2.0**-900 * (1.0 + row.sum() + M * N)
        return (tau, err) if np.isfinite(tau).all() and np.isfinite(err).all() else None

    # -- exact evaluation ----------------------------------------------------------------
    def _exact_dual(self, a: np.ndarray, beta: np.ndarray, base: Fraction,
                    lam_f: np.ndarray, mu_f: np.ndarray) -> Fraction:
        """D(lam, mu) in rational arithmetic (integers over common denominators), with the last
        copy's multipliers set so that every sum is exactly 0."""
        K, M = self.k, self.m
        lami, dlam = _zero_sum(lam_f, 0)  # (K, M)
        mui, dmu = _zero_sum(mu_f, 2)  # (K, 2, M, N)
        lami, mui = lami.astype(object), mui.astype(object)
        ai, da = _over(a)  # (K, 2)
        (w3i, dw3), (e3i, de3), (Ui, dU), (Vi, dV), (ti, dt), (li, dl), (Lwi, dLw), (Lei, dLe) = self._int_forms()
        dA = math.lcm(da * dw3, da * de3, dlam)
        Ai = np.empty((K, 2, M, 2), dtype=object)
        for j in range(2):
            aw = (ai[:, j, None] * w3i) * (dA // (da * dw3))
            ae = (abs(ai[:, j, None]) * e3i) * (dA // (da * de3))
            Ai[:, j, :, 0] = aw + ae + lami * (dA // dlam)
            Ai[:, j, :, 1] = aw - ae + lami * (dA // dlam)
        absA = abs(Ai)
        # the gains, over one denominator dG
        dG = math.lcm(dA * dU, dA * dV, dmu * dt)
        gain = (Ai[..., None] * (Ui * (dG // (dA * dU)))[None, None, :, None, :]
                + absA[..., None] * (Vi * (dG // (dA * dV)))[None, None, :, None, :])
        gain += (mui * (ti * (dG // (dmu * dt))))[:, :, :, None, :]
        gsum = np.where(gain > 0, gain, 0).sum(axis=-1)  # (K, 2, M, 2) over dG
        # the value of each copy at l, over dP
        dP = math.lcm(dA * dLw, dA * dLe, dmu * dl, dG)
        at_l = (Ai * (Lwi * (dP // (dA * dLw)))[None, None, :, None]
                + absA * (Lei * (dP // (dA * dLe)))[None, None, :, None])
        at_l += ((mui * li[None, None, None, :]).sum(axis=-1) * (dP // (dmu * dl)))[..., None]
        piece = at_l + gsum * (dP // dG)
        tau = np.maximum(piece[..., 0], piece[..., 1]).sum(axis=-1)  # (K, 2) over dP
        total = base
        for k in range(K):
            total += max(beta[k, j] + Fraction(int(tau[k, j]), dP) for j in range(2))
        return total

    # -- the branch and bound over the first layer's ends ----------------------------------
    # The maximum lies at a vertex of the first layer's box, so fixing u1_i at l_i and at h_i
    # splits the box into two that together hold it; each child's dual no longer relaxes u1_i
    # (its copies cannot disagree on it). On the suite's 3 x 64 identity net (local 0 fixed:4,
    # session 15) one such split took the bound from 27.127 to 27.050 in 8 s per child, where the
    # same 16 s resuming the root's search reached 27.075.
    # Where a split closes the box at once, the root's 2400 iterations are wasted: after PROBE_AT of
    # them its split is tried (each child NODE_ITERS from the root's multipliers) and kept if both
    # children come within PROBE_CLOSE of the root's gap to the threshold, else undone, the root's
    # search going on as if nothing had happened. On the suite's 3 x 64 identity net (30 local
    # checks at 10 points and 3 global ones, each global one at the input box's 4 vertices,
    # fixed:4/6/8, session 20) the checks took 62.6 s in all instead of 88.4 s: most easy ones
    # 0.8-1.2 s instead of 2.0-2.4 s, the three hardest 12.1, 3.9 and 5.2 s instead of 12.4, 4.1
    # and 4.3 s (one kept split was worse: local 0 fixed:6 4.2 s instead of 2.2 s). Splitting every
    # root at 400 or 800 iterations instead took 97.0 / 66.7 s (the hardest 32 / 16 s), requiring
    # both children closed 73.2 s, a second try at 1200 iterations 66.2 s.
    ROOT_ITERS = (2400, 2400)  # the root's iterations: a first call, then (resumed, margin reset) up to the total
    PROBE_AT = 400  # the root's iterations before its split is tried once (see search)
    PROBE_CLOSE = 0.1  # the split is kept where both children come this close to the threshold (share of the root's gap)
    NODE_ITERS = 200  # every other node's iterations before it is split (session 16: 200 beat 400, 800 and 1600)
    MAX_NODES = 256  # nodes per objective; then the search stops (each keeps 2 MB of multipliers)

    def search(self, c: dict[int, Fraction], const: Fraction, stop_at: Fraction | None = None,
               deadline: float | None = None, tol: Fraction = _ZERO, decide: bool = False
               ) -> tuple[Fraction, tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]] | None]:
        """(a certified upper bound on c.z' + const over the box, the best witness (x, theta') found;
        in a check, None if no witness came near stop_at), from a best-first branch and bound
        over the first layer's ends with ``bound`` at each node.
        A node closes once its bound is at most the threshold: ``stop_at`` if ``decide`` (a check:
        the search also stops at the first witness above it), else max(stop_at, the best witness's
        value) + ``tol`` (a maximization). A node is split once its multipliers' search has run
        its iterations (ROOT_ITERS, NODE_ITERS) or converged; until then the best-first order
        resumes it; a fresh root's split is tried once early (PROBE_AT, see above). Nothing depends
        on how the time is cut into calls: a later call with the same ``c`` resumes the tree (a node
        closed at a higher threshold reopens). It stops when no node is open, at ``deadline``, or at
        MAX_NODES nodes."""
        key = tuple(sorted(c.items()))
        fresh = key not in self._trees
        tree = self._trees.setdefault(key, _Tree())
        stop_rel = None if stop_at is None else stop_at - const

        def threshold() -> Fraction | None:  # relative to const
            if decide:
                return stop_rel
            best = None if tree.best is None else tree.best[0]
            known = [v for v in (stop_rel, best) if v is not None]
            return max(known) + tol if known else None

        def probe(best_v: float, lam: np.ndarray, mu: np.ndarray, frac: np.ndarray) -> bool:
            """The root's split after PROBE_AT iterations, kept (True) where its children's bounds
            come within PROBE_CLOSE of the root's gap to the threshold, else undone."""
            thr = threshold()
            unit = self._branch_unit_at({}, frac)
            if thr is None or unit is None or tree.count + 2 > self.MAX_NODES:
                return False
            gap = best_v - float(const) - float(thr)
            kids = [run(None, {unit: end}, self.NODE_ITERS, None, (lam, mu)) for end in (0, 1)]
            if max(k.key for k in kids) - float(thr) <= self.PROBE_CLOSE * gap:
                return True
            tree.drop(kids)  # (their witnesses stay: each is valid)
            return False

        def run(node: _Node | None, ends: dict[int, int], iters: int, parent: _Node | None,
                start: tuple[np.ndarray, np.ndarray] | None = None) -> _Node:
            """Bound a node (new if ``node`` is None) and enter it into the tree, its multipliers'
            search started from the node's, the parent's or ``start``."""
            dual = self if ends == self.ends else self._with_ends(ends)
            src = node or parent
            warm = start if start is not None else None if src is None else src.warm
            if warm is not None:
                dual._warm[key] = (warm[0].astype(float), warm[1].astype(float))
            thr = threshold()
            known = [n.upper for n in (node, parent) if n is not None]  # each holds over this box
            # the witness only where it may exceed a check's threshold, or the best one so far
            floor = stop_rel if decide else (None if tree.best is None else tree.best[0])
            root = node is None and parent is None and start is None and not ends
            upper, wit = dual._bound(c, const, None if thr is None else const + thr, iters, deadline, False,
                                     None if floor is None else const + floor, probe if root else None)
            bounds = known + [upper - const]
            if node is None:
                node = _Node(ends, min(bounds), dual.last_frac, dual._warm[key],
                             self.ROOT_ITERS[1] if not ends else self.NODE_ITERS)
                tree.count += 1
            else:
                node.upper, node.frac = min(bounds), dual.last_frac
                node.warm = _Node.compact(dual._warm[key])
            node.key = min(float(node.upper), dual.last_float - float(const))
            node.done += dual.last_iters
            node.stalled, node.reached = dual.last_converged, dual.last_reached
            tree.add(node, None if wit is None else self._value(c, wit), wit, split=dual.last_split)
            return node

        if fresh:
            run(None, {}, self.ROOT_ITERS[0], None)
        else:
            tree.reopen(threshold())
            if not decide and tree.best is None:  # a check's tree, which may keep no witness
                _, wit = self._bound(c, const, None, 1, None, False, None)
                assert wit is not None
                tree.best = (self._value(c, wit), wit)
        while True:
            tree.close(threshold())
            if decide and tree.best is not None and stop_rel is not None and tree.best[0] > stop_rel:
                break
            if not tree.open or (deadline is not None and time.monotonic() > deadline - self._exact_s()):
                break
            node = tree.pop()
            if not node.ripe():  # its multipliers' search goes on
                run(node, node.ends, node.budget - node.done, None)
                continue
            unit = self._branch_unit(node)
            if unit is None or tree.count + 2 > self.MAX_NODES:
                tree.stuck.append(node)  # nothing left to split, or no room
                continue
            for end in (0, 1):
                run(None, {**node.ends, unit: end}, self.NODE_ITERS, node)
        return const + tree.upper(), None if tree.best is None else tree.best[1]

    def _value(self, c: dict[int, Fraction], witness: tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]
               ) -> Fraction:
        zp = identity_outputs(witness[1], witness[0])
        return sum((co * zp[o] for o, co in c.items()), _ZERO)

    def _branch_unit(self, node: _Node) -> int | None:
        """The first-layer unit on whose end the node's copies disagree most (ties: the widest
        range); None if every unit is fixed."""
        return self._branch_unit_at(node.ends, node.frac)

    def _branch_unit_at(self, ends: dict[int, int], frac: np.ndarray) -> int | None:
        free = [i for i in range(self.n) if i not in ends and self.t_f[i] > 0]
        if not free:
            return None
        return max(free, key=lambda i: (min(frac[i], 1.0 - frac[i]), self.t_f[i]))

    # -- the witness ---------------------------------------------------------------------
    def _witness(self, c: dict[int, Fraction], a: np.ndarray, idx: np.ndarray,
                 s2: np.ndarray) -> tuple[tuple[Fraction, ...], tuple[ExactLayer, ...]]:
        """theta' that realizes u1 at the ends ``idx`` (0: l, 1: h) in layer 1, u2 at the ends ``s2``
        (0: centre + radius, 1: centre - radius), and then the best end of every u3_k and output
        weight, exactly."""
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = self.problem.layers
        e1, e2, e3, e4 = self.problem.box.weights
        f1, f2, f3, f4 = self.problem.box.biases
        x = self.x
        n, m, kn = self.n, self.m, self.k
        u = [self.hi[i] if idx[i] else self.lo[i] for i in range(n)]
        t = [(ui - cc) / r if r else _ZERO for ui, cc, r in zip(u, self.c1, self.r1)]
        w1p = [[w1[j][i] + t[i] * e1[j][i] * _sign(x[j]) for i in range(n)] for j in range(len(x))]
        b1p = [b1[i] + t[i] * f1[i] for i in range(n)]
        w2p = [list(row) for row in w2]
        b2p = list(b2)
        u2 = []
        for j in range(m):
            s = 1 - 2 * int(s2[j])
            for i in range(n):
                w2p[i][j] = w2[i][j] + s * e2[i][j] * _sign(u[i])
            b2p[j] = b2[j] + s * f2[j]
            u2.append(b2p[j] + sum((w2p[i][j] * u[i] for i in range(n)), _ZERO))
        w3p = [list(row) for row in w3]
        b3p = list(b3)
        u3 = []
        for k in range(kn):
            cen = b3[k] + sum((w3[j][k] * u2[j] for j in range(m)), _ZERO)
            rad = f3[k] + sum((e3[j][k] * abs(u2[j]) for j in range(m)), _ZERO)
            s = max((1, -1), key=lambda s: max(aa * (cen + s * rad) for aa in a[k]))
            for j in range(m):
                w3p[j][k] = w3[j][k] + s * e3[j][k] * _sign(u2[j])
            b3p[k] = b3[k] + s * f3[k]
            u3.append(cen + s * rad)
        w4p = [[w4[k][o] + _sign(c.get(o, _ZERO) * u3[k]) * e4[k][o] for o in range(len(b4))] for k in range(kn)]
        b4p = [b4[o] + _sign(c.get(o, _ZERO)) * f4[o] for o in range(len(b4))]
        return tuple(x), ((w1p, b1p), (w2p, b2p), (w3p, b3p), (w4p, b4p))



class _Node:
    """A node of ThreeLayerDual.search: the first-layer units fixed at an end, a certified bound on
    the objective minus its constant over the node's box, its copies' shares at h_i, its best
    multipliers (float32: they only start later searches), its iterations (budget, done), and
    how its last search ended (stalled; reached the threshold it was given)."""

    __slots__ = ("ends", "upper", "key", "frac", "warm", "budget", "done", "stalled", "reached")

    def __init__(self, ends: dict[int, int], upper: Fraction, frac: np.ndarray,
                 warm: tuple[np.ndarray, np.ndarray], budget: int) -> None:
        self.ends, self.upper, self.frac = ends, upper, frac
        self.key = float(upper)  # its best-first order: the lower of its float and certified bounds
        self.warm = self.compact(warm)
        self.budget, self.done, self.stalled, self.reached = budget, 0, False, False

    def ripe(self) -> bool:
        """Ready to split: its iterations done, its search stalled, or its float bound at the
        threshold while the certified one is not (more steps would not help)."""
        return self.done >= self.budget or self.stalled or self.reached

    @staticmethod
    def compact(warm: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return warm[0].astype(np.float32), warm[1].astype(np.float32)


class _Tree:
    """The nodes of one objective's search: open (a heap, highest bound first), closed (bound at
    most the threshold when closed), stuck (nothing to split), and the best witness."""

    def __init__(self) -> None:
        self.open: list[tuple[float, int, _Node]] = []
        self.closed: list[_Node] = []
        self.stuck: list[_Node] = []
        self.best: tuple[Fraction, tuple] | None = None
        self.count = 0  # nodes made
        self._seq = 0  # the heap's tie-break

    def add(self, node: _Node, value: Fraction | None, witness: tuple | None, split: bool = False) -> None:
        """(Re-)enter a node just bounded (not if it was ``split``: its children stand for it), and
        its witness (if one was built)."""
        if not split:
            self._push(node)
        if value is not None and witness is not None and (self.best is None or value > self.best[0]):
            self.best = (value, witness)

    def drop(self, nodes: Sequence[_Node]) -> None:
        """Take open nodes out again (a split undone)."""
        self.open = [item for item in self.open if item[2] not in nodes]
        heapq.heapify(self.open)
        self.count -= len(nodes)

    def pop(self) -> _Node:
        return heapq.heappop(self.open)[2]

    def close(self, thr: Fraction | None) -> None:
        if thr is None:
            return
        self.closed += [item[2] for item in self.open if item[2].upper <= thr]
        self.open = [item for item in self.open if item[2].upper > thr]
        heapq.heapify(self.open)

    def reopen(self, thr: Fraction | None) -> None:
        again = [n for n in self.closed if thr is None or n.upper > thr]
        self.closed = [n for n in self.closed if n not in again]
        for n in again:
            n.reached = False  # a lower threshold now: its search may go on
            self._push(n)

    def _push(self, node: _Node) -> None:
        self._seq += 1
        heapq.heappush(self.open, (-node.key, self._seq, node))

    def upper(self) -> Fraction:
        return max(n.upper for n in [item[2] for item in self.open] + self.closed + self.stuck)
