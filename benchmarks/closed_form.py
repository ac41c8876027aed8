#!/usr/bin/env python
"""One-hidden-layer local queries: the engine's quantify against the closed form, in one run.

    python benchmarks/closed_form.py [--points 10] [--schemes fixed:4,fixed:6,fixed:8] [--repeat 3]

At a fixed input every parameter of a one-hidden-layer network occurs once, so exact interval
propagation is the closed form of the output range [lo, hi] over the parameter box, and the
largest logit deviation is max(hi - z, z - lo). For every one-hidden-layer network of the suite
(the shipped ones and the generated 2-16-1 twins), every local point and scheme, this script
times

- closed form: exact interval propagation of both networks (what ``smtquant.bounds`` does), and
- engine: ``quantify(net, scheme, LocalRobustness(x), solver="engine", tolerance=1e-6)``,

checks that the closed-form value lies inside the engine's certified interval, and prints the
ratio engine / closed form (each time the best of --repeat runs in this process, so both see the
same machine state). Target (issue 4): within 10x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402 - the suite's networks and points


def closed_form(net, box, x) -> Fraction:  # type: ignore[no-untyped-def]
    """max |z' - z| over the box at input x, by exact interval propagation (exact here)."""
    from smtquant.bounds import propagate_intervals
    from smtquant.exact import to_fraction

    xs = [(to_fraction(v), to_fraction(v)) for v in x]
    layers = tuple((tuple(tuple(to_fraction(v) for v in row) for row in layer.weights),
                    tuple(to_fraction(v) for v in layer.biases)) for layer in net.layers)
    lo, hi = propagate_intervals(layers, net.hidden_activation, xs, box).output[0]
    z = propagate_intervals(layers, net.hidden_activation, xs, None).output[0][0]
    return max(hi - z, z - lo)


def best_of(repeat: int, fn, *args, **kw):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=bench.N_POINTS, help="local points per network (default 10)")
    ap.add_argument("--schemes", default=",".join(bench.SCHEMES), help="comma-separated (default fixed:4,fixed:6,fixed:8)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts (default 3)")
    args = ap.parse_args(argv)
    import smtquant as sq
    from smtquant.verify import resolve_box

    nets = [n for n in bench.load_networks(bench.SHIPPED, [(16,)]) if len(n.network.layers) == 2]
    points = bench.local_points(bench.moons_data(), args.points)
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    ratios_all: list[float] = []
    # warm up once (imports, first-use caches) so the first query does not pay for them
    sq.quantify(nets[0].network, schemes[0], sq.LocalRobustness(points[0], "logit"), solver="engine", tolerance=1e-6)
    closed_form(nets[0].network, resolve_box(nets[0].network, schemes[0])[0], points[0])
    print(f"{'network':<20} {'scheme':<8} {'engine ms':>10} {'closed ms':>10} {'ratio med':>10} {'ratio max':>10}")
    for bn in nets:
        for scheme in schemes:
            box, _ = resolve_box(bn.network, scheme)
            te, tc, ratios = [], [], []
            for x in points:
                prop = sq.LocalRobustness(x, "logit")
                t_eng, v = best_of(args.repeat, sq.quantify, bn.network, scheme, prop, solver="engine", tolerance=1e-6)
                t_cf, cf = best_of(args.repeat, closed_form, bn.network, box, x)
                if not (v.max_deviation.lower <= cf <= v.max_deviation.upper):
                    print(f"MISMATCH {bn.name} {scheme} x={x}: closed form {float(cf)} not in "
                          f"[{float(v.max_deviation.lower)}, {float(v.max_deviation.upper)}]")
                    return 1
                te.append(t_eng)
                tc.append(t_cf)
                ratios.append(t_eng / t_cf)
            ratios_all += ratios
            print(f"{bn.name:<20} {scheme:<8} {statistics.median(te) * 1e3:>10.2f} {statistics.median(tc) * 1e3:>10.2f} "
                  f"{statistics.median(ratios):>10.1f} {max(ratios):>10.1f}")
    print(f"all {len(ratios_all)} queries: engine / closed form median {statistics.median(ratios_all):.1f}, "
          f"worst {max(ratios_all):.1f} (target: within 10x); every closed form inside the engine's interval")
    return 0


if __name__ == "__main__":
    sys.exit(main())
