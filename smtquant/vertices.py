"""The vertices of an input region cut by half-spaces, in exact rational arithmetic.

With identity hidden units a network's outputs are affine in its input x for every parameter
vector theta', so a linear objective of the outputs, maximized over the parameter box, is a
maximum of affine functions of x: convex. Its maximum over a polytope is attained at one of the
polytope's vertices. A query over an input box, restricted by linear guards on the outputs of
the unperturbed network (themselves affine in x), is therefore decided by the same query at
finitely many fixed inputs: the vertices computed here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction

__all__ = ["HalfSpace", "region_vertices"]

HalfSpace = tuple[tuple[Fraction, ...], Fraction]  # (a, b): the points x with a . x <= b
Point = tuple[Fraction, ...]


def _dot(a: Sequence[Fraction], x: Sequence[Fraction]) -> Fraction:
    return sum((ai * xi for ai, xi in zip(a, x)), Fraction(0))


def _unique(points: Sequence[Point]) -> list[Point]:
    seen: dict[Point, None] = {}
    for p in points:
        seen.setdefault(p, None)
    return list(seen)


def _clip(polygon: list[Point], a: Sequence[Fraction], b: Fraction) -> list[Point]:
    """The convex polygon (vertices in order around it) cut by a . x <= b, in order
    (Sutherland-Hodgman for one edge: keep the inside points, add each crossing)."""
    out: list[Point] = []
    n = len(polygon)
    for i in range(n):
        p, q = polygon[i], polygon[(i + 1) % n]
        fp, fq = _dot(a, p) - b, _dot(a, q) - b
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append(tuple(pi + t * (qi - pi) for pi, qi in zip(p, q)))
    return out


def region_vertices(inputs: Sequence[tuple[Fraction, Fraction]], cuts: Sequence[HalfSpace],
                    limit: int = 16) -> list[Point] | None:
    """Points whose convex hull is the box ``inputs`` cut by the half-spaces ``cuts`` (every vertex
    of that polytope is among them; an empty list when it is empty). None where they are not
    computed: more than ``limit`` box corners, or cuts in more than two dimensions."""
    d = len(inputs)
    free = [i for i, (lo, hi) in enumerate(inputs) if lo != hi]
    if 2 ** len(free) > limit or (cuts and len(free) > 2):
        return None
    base = [lo for lo, _ in inputs]

    def point(values: Sequence[Fraction]) -> Point:
        x = list(base)
        for i, v in zip(free, values):
            x[i] = v
        return tuple(x)

    if not cuts:
        return _unique([point(c) for c in itertools.product(*((inputs[i][0], inputs[i][1]) for i in free))])
    # the cuts restricted to the free coordinates: a . x <= b with the fixed ones moved to b
    local = []
    for a, b in cuts:
        if len(a) != d:
            raise ValueError(f"a cut has {len(a)} coefficients; expected {d}")
        rest = b - sum((a[i] * base[i] for i in range(d) if i not in free), Fraction(0))
        local.append((tuple(a[i] for i in free), rest))
    if not free:  # one point: in the region or not
        return [point(())] if all(rest >= 0 for _, rest in local) else []
    if len(free) == 1:
        (lo, hi), = (inputs[i] for i in free)
        for (a1,), rest in local:
            if a1 > 0:
                hi = min(hi, rest / a1)
            elif a1 < 0:
                lo = max(lo, rest / a1)
            elif rest < 0:
                return []
        return [] if lo > hi else _unique([point((lo,)), point((hi,))])
    (l0, h0), (l1, h1) = (inputs[i] for i in free)
    polygon: list[Point] = [(l0, l1), (h0, l1), (h0, h1), (l0, h1)]
    for a2, rest in local:
        polygon = _clip(polygon, a2, rest)
        if not polygon:
            return []
    return _unique([point(p) for p in polygon])
