#!/usr/bin/env python
"""The smtquant benchmark: the exact engine against the direct z3 encoding, side by side.

    python benchmarks/run.py [--quick] [--limit S] [--solvers engine,z3-direct] [--sizes 16,32x32]
                             [--metric logit|confidence] [--jobs N] [--out FILE]
    python benchmarks/run.py --table-only FILE

A fixed suite of (network, property, scheme) triples. For each triple:

1. "delta" query: quantify(..., solver="engine", tolerance=1e-3, timeout=limit) gives a cheap
   certified interval [lower, upper]; delta = its midpoint rounded to 6 significant digits, or
   upper * 1.01 (same rounding) when the interval is degenerate (lower == upper).
2. "check" queries: check(net, scheme, prop, delta, solver=S, timeout=limit) for every solver S,
   all with the same delta.
3. "quantify" query: quantify(..., solver="engine", tolerance=1e-6, timeout=limit), timed, with the
   width of the interval it reaches.

Every library call runs in its own forked process (its own process group), so calls never share
caches, and a call that overruns limit + grace is killed with its solver subprocesses and recorded
as unknown. One JSON object per query is written to --out as soon as the query is decided, and a
table (per solver: decided share, median/worst time, PAR-2, and the PAR-2 ratio) is printed at the
end. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import signal
import statistics
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS_DIR = ROOT / "models"
CACHE_DIR = HERE / "cache"
DEFAULT_OUT = HERE / "results.jsonl"

SHIPPED = ("moons_relu", "moons_linear", "moons_relu_8x8", "moons_linear_8x8", "linear_relu", "linear_linear")
SIZES: tuple[tuple[int, ...], ...] = ((16,), (32, 32), (64, 64), (64, 64, 64))
ACTIVATIONS = ("relu", "identity")
SCHEMES = ("fixed:4", "fixed:6", "fixed:8")
SOLVERS = ("engine", "z3-direct")
N_POINTS = 10
QUICK_POINTS = 3
QUICK_SCHEMES = ("fixed:4",)
CALIBRATION_TOLERANCE = "1e-3"
QUANTIFY_TOLERANCE = "1e-6"
DECIDED = ("robust", "violated")
STATUSES = ("robust", "violated", "unknown")
# the generated models: sklearn MLPClassifier on make_moons(200, noise=0.1, random_state=0)
TRAIN = dict(solver="lbfgs", random_state=0, alpha=1e-3, max_iter=500)
RECIPE_TAG = "v1"  # bump when TRAIN or the data change, so the cache is not reused

ROW_KEYS = (
    "network", "architecture", "activation", "n_params", "property", "point", "scheme", "metric",
    "kind", "solver", "verdict_solver", "delta", "delta_rule", "status", "decided_by", "time_s",
    "wall_s", "limit_s", "within_limit", "reason", "lower", "upper", "width", "rss_mb",
)


# --------------------------------------------------------------------------- the suite

def moons_xy() -> tuple[Any, Any]:
    """make_moons(n_samples=200, noise=0.1, random_state=0): inputs (200 x 2) and labels."""
    from sklearn.datasets import make_moons

    return make_moons(n_samples=200, noise=0.1, random_state=0)


def moons_data() -> Any:
    """The moons inputs (200 x 2)."""
    return moons_xy()[0]


def local_points(x: Any, n: int) -> list[list[float]]:
    """The first n rows of the data, as plain floats."""
    return [[float(v) for v in row] for row in x[:n]]


def data_box(x: Any) -> list[list[float]]:
    """[min, max] of the data per feature."""
    return [[float(x[:, j].min()), float(x[:, j].max())] for j in range(x.shape[1])]


def size_label(sizes: Sequence[int]) -> str:
    return "x".join(str(s) for s in sizes)


def parse_sizes(text: str) -> tuple[tuple[int, ...], ...]:
    """'16,32x32' -> ((16,), (32, 32)); '' or 'none' -> ()."""
    text = text.strip()
    if text in ("", "none"):
        return ()
    out = []
    for part in text.split(","):
        try:
            sizes = tuple(int(s) for s in part.strip().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--sizes: {part!r} is not like 16 or 32x32") from None
        if not sizes or min(sizes) < 1:
            raise argparse.ArgumentTypeError(f"--sizes: {part!r} needs positive layer sizes")
        out.append(sizes)
    return tuple(out)


def generated_name(sizes: Sequence[int], activation: str) -> str:
    return f"gen_{activation}_{size_label(sizes)}"


def generated_model(sizes: Sequence[int], activation: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The JSON file of a generated MLP, trained (deterministically) only if not cached."""
    import smtquant as sq

    path = cache_dir / f"{generated_name(sizes, activation)}_{RECIPE_TAG}.json"
    if path.exists():
        return path
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = moons_xy()
    clf = MLPClassifier(hidden_layer_sizes=tuple(sizes), activation=activation, **TRAIN)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sq.save_model(sq.from_sklearn(clf), path)
    return path


@dataclass(frozen=True)
class BenchNet:
    name: str
    path: Path
    network: Any  # smtquant.Network

    @property
    def architecture(self) -> str:
        return "-".join(str(s) for s in self.network.sizes)

    @property
    def activation(self) -> str:
        return str(self.network.hidden_activation)

    @property
    def n_params(self) -> int:
        return int(self.network.n_parameters)


def load_networks(shipped: Iterable[str], sizes: Iterable[Sequence[int]], *, models_dir: Path = MODELS_DIR,
                  cache_dir: Path = CACHE_DIR, only: set[str] | None = None) -> list[BenchNet]:
    import smtquant as sq

    nets: list[BenchNet] = []
    for name in shipped:
        if only is None or name in only:
            path = models_dir / f"{name}.json"
            nets.append(BenchNet(name, path, sq.load_model(path)))
    for s in sizes:
        for act in ACTIVATIONS:
            name = generated_name(s, act)
            if only is None or name in only:
                path = generated_model(s, act, cache_dir)
                nets.append(BenchNet(name, path, sq.load_model(path)))
    return nets


@dataclass(frozen=True)
class Task:
    """One (network, property, scheme) triple; point is None for the global property."""

    net: BenchNet
    prop_kind: str  # "local" | "global"
    point: int | None
    prop: Any  # smtquant.LocalRobustness | smtquant.GlobalRobustness
    scheme: str
    metric: str

    def label(self) -> str:
        where = f"local[{self.point}]" if self.point is not None else "global"
        return f"{self.net.name} {where} {self.scheme}"


def build_tasks(nets: Sequence[BenchNet], points: Sequence[Sequence[float]], region: Sequence[Sequence[float]],
                schemes: Sequence[str], metric: str) -> list[Task]:
    import smtquant as sq

    tasks = []
    for net in nets:
        for scheme in schemes:
            for i, p in enumerate(points):
                tasks.append(Task(net, "local", i, sq.LocalRobustness(p, metric), scheme, metric))
            tasks.append(Task(net, "global", None, sq.GlobalRobustness(region, metric), scheme, metric))
    return tasks


# --------------------------------------------------------------------------- delta

def round_sig(q: Fraction | float, digits: int = 6) -> str:
    """q rounded to ``digits`` significant digits, as a decimal string (taken exactly as delta)."""
    return f"{float(q):.{digits}g}"


def choose_delta(lower: Fraction | None, upper: Fraction | None) -> tuple[str | None, str]:
    """(delta as a decimal string, rule). Midpoint of [lower, upper] to 6 significant digits; when the
    interval is degenerate (lower == upper), upper * 1.01 to 6 significant digits; None when there is
    no interval at all (the calibration query crashed or was killed)."""
    if lower is None or upper is None:
        return None, "none"
    if upper > lower:
        d = round_sig((lower + upper) / 2)
        if float(d) > 0:
            return d, "midpoint"
    if upper > 0:
        return round_sig(upper * Fraction(101, 100)), "upper*1.01"
    return "1e-06", "fallback 1e-6 (upper = 0)"


# --------------------------------------------------------------------------- one query in a child

@dataclass(frozen=True)
class Call:
    kind: str  # "delta" | "check" | "quantify"
    solver: str
    limit: float
    delta: str | None = None
    tolerance: str | None = None


def execute(task: Task, call: Call) -> dict[str, Any]:
    """Run one library call (in the current process) and summarize its verdict."""
    import smtquant as sq

    t0 = time.monotonic()
    if call.kind == "check":
        v = sq.check(task.net.network, task.scheme, task.prop, call.delta, solver=call.solver, timeout=call.limit)
    else:
        v = sq.quantify(task.net.network, task.scheme, task.prop, solver=call.solver, tolerance=call.tolerance,
                        timeout=call.limit)
    elapsed = time.monotonic() - t0
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0
    md = v.max_deviation
    return {
        "status": v.status.value, "reason": v.reason, "verdict_solver": v.solver, "time_s": elapsed,
        "lower": md.lower if md is not None else None, "upper": md.upper if md is not None else None,
        "rss_mb": rss,
    }


def _child_main(conn: Any, task: Task, call: Call) -> None:
    try:
        os.setsid()  # own process group: the parent can kill us with every solver subprocess
    except OSError:
        pass
    try:
        conn.send(("ok", execute(task, call)))
    except BaseException as exc:  # noqa: BLE001 - reported as a crash row
        conn.send(("error", f"{exc.__class__.__name__}: {exc}"))
    finally:
        conn.close()


def _kill_group(proc: Any) -> None:
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), lambda: os.kill(proc.pid, signal.SIGKILL)):
        try:
            kill()
            return
        except (ProcessLookupError, PermissionError, TypeError):
            continue


# --------------------------------------------------------------------------- rows

def decided_by(kind: str, status: str, reason: str) -> str | None:
    """Which stage of check() settled it (derived from the reason text): bound, attack, solver."""
    if kind != "check":
        return None
    if status not in DECIDED:
        return "-"
    if reason.startswith(("interval bound", "a witness at the ends of the exact interval bound")):
        return "bound"  # the bound proves robust, or (one hidden layer, fixed input) its ends are a witness
    if reason.startswith("a witness found by search over the box vertices"):
        return "attack"
    return "solver"


def _num(q: Fraction | None) -> float | None:
    return None if q is None else float(q)


def make_row(task: Task, call: Call, outcome: dict[str, Any], wall: float, delta_rule: str | None) -> dict[str, Any]:
    status = outcome["status"]
    lower, upper = outcome.get("lower"), outcome.get("upper")
    time_s = float(outcome["time_s"])
    row = {
        "network": task.net.name,
        "architecture": task.net.architecture,
        "activation": task.net.activation,
        "n_params": task.net.n_params,
        "property": task.prop_kind,
        "point": task.point,
        "scheme": task.scheme,
        "metric": task.metric,
        "kind": call.kind,
        "solver": call.solver,
        "verdict_solver": outcome.get("verdict_solver"),
        "delta": float(call.delta) if call.delta is not None else None,
        "delta_rule": delta_rule,
        "status": status,
        "decided_by": decided_by(call.kind, status, outcome["reason"]),
        "time_s": round(time_s, 6),
        "wall_s": round(wall, 6),
        "limit_s": call.limit,
        "within_limit": time_s <= call.limit,
        "reason": outcome["reason"],
        "lower": _num(lower),
        "upper": _num(upper),
        "width": _num(upper - lower) if lower is not None and upper is not None else None,
        "rss_mb": round(outcome["rss_mb"], 1) if outcome.get("rss_mb") is not None else None,
    }
    if call.tolerance is not None:
        row["tolerance"] = float(call.tolerance)
    return row


Outcome = tuple[dict[str, Any], float]  # (summary, wall seconds measured by the parent)
Steps = Generator[tuple[Call, str | None], Outcome, None]


def task_steps(task: Task, solvers: Sequence[str], limit: float, emit: Callable[[dict[str, Any]], None],
               quantify: bool = True) -> Steps:
    """The queries of one triple, in order; each yields (call, delta_rule) and receives its outcome.
    Without ``quantify`` the last query (the quantify to 1e-6) is left out."""
    cal = Call("delta", "engine", limit, tolerance=CALIBRATION_TOLERANCE)
    out, wall = yield cal, None
    delta, rule = choose_delta(out.get("lower"), out.get("upper"))
    row = make_row(task, cal, out, wall, rule)
    row["delta"] = float(delta) if delta is not None else None  # the delta this query chose
    emit(row)
    if delta is not None:
        for s in solvers:
            call = Call("check", s, limit, delta=delta)
            out, wall = yield call, rule
            emit(make_row(task, call, out, wall, rule))
    if not quantify:
        return
    q = Call("quantify", "engine", limit, tolerance=QUANTIFY_TOLERANCE)
    out, wall = yield q, None
    emit(make_row(task, q, out, wall, None))


@dataclass
class _Running:
    task: Task
    steps: Steps
    call: Call
    proc: Any
    conn: Any
    start: float
    kill_at: float


@dataclass
class Runner:
    """Runs the tasks' queries, ``jobs`` at a time, each in a forked child with a watchdog."""

    solvers: Sequence[str]
    limit: float
    jobs: int = 1
    grace: float | None = None  # seconds past the limit before the watchdog kills a query
    quantify: bool = True  # False: no quantify query per triple (--no-quantify)
    sink: Callable[[dict[str, Any]], None] | None = None
    progress: Callable[[str], None] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def _grace(self) -> float:
        return self.grace if self.grace is not None else 5.0 + 0.25 * self.limit

    def _emit(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if row["kind"] == "delta" and row["delta"] is None:
            self.expected -= len(self.solvers)  # no interval, no delta: its check queries are skipped
        if self.sink is not None:
            self.sink(row)
        if self.progress is not None:
            n = len(self.rows)
            where = f"local[{row['point']}]" if row["point"] is not None else "global"
            what = row["kind"] if row["kind"] != "check" else f"check {row['solver']}"
            extra = f" delta={row['delta']:.6g}" if row["delta"] is not None else ""
            if row["width"] is not None:
                extra += f" width={row['width']:.3g}"
            by = f" ({row['decided_by']})" if row["decided_by"] not in (None, "-") else ""
            note = "" if row["status"] != "unknown" else f" [{row['reason'][:80]}]"
            self.progress(f"[{n}/{self.expected}] {row['network']} {where} {row['scheme']} {what}{extra}: "
                          f"{row['status']}{by} {row['time_s']:.3f}s{note}")

    def _launch(self, task: Task, steps: Steps, item: tuple[Call, str | None]) -> _Running:
        call, _ = item
        ctx = multiprocessing.get_context("fork")
        recv_end, send_end = ctx.Pipe(duplex=False)
        sys.stdout.flush()
        sys.stderr.flush()
        proc = ctx.Process(target=_child_main, args=(send_end, task, call), daemon=False)
        start = time.monotonic()
        proc.start()
        send_end.close()
        return _Running(task, steps, call, proc, recv_end, start, start + call.limit + self._grace())

    def _finish(self, r: _Running, timed_out: bool) -> Outcome:
        wall = time.monotonic() - r.start
        out: dict[str, Any] | None = None
        if not timed_out:
            try:
                tag, payload = r.conn.recv()
                if tag == "ok":
                    out = payload
                else:
                    out = {"status": "unknown", "reason": f"benchmark: the call raised {payload}", "time_s": wall}
            except (EOFError, OSError):
                r.proc.join(1.0)
                out = {"status": "unknown", "time_s": wall,
                       "reason": f"benchmark: the query process died (exit code {r.proc.exitcode})"}
        else:
            out = {"status": "unknown", "time_s": wall,
                   "reason": f"benchmark watchdog: no answer after {wall:.1f} s (limit {self.limit:g} s); "
                             "process group killed"}
        r.proc.join(2.0)
        _kill_group(r.proc)  # stray solver subprocesses, if any
        r.proc.join(5.0)
        r.conn.close()
        return out, wall

    def run(self, tasks: Sequence[Task]) -> list[dict[str, Any]]:
        self.expected = len(tasks) * (1 + self.quantify + len(self.solvers))
        pending = deque(tasks)
        running: list[_Running] = []
        try:
            while pending or running:
                while pending and len(running) < max(1, self.jobs):
                    task = pending.popleft()
                    steps = task_steps(task, self.solvers, self.limit, self._emit, self.quantify)
                    running.append(self._launch(task, steps, next(steps)))
                timeout = max(0.0, min(r.kill_at for r in running) - time.monotonic())
                ready = wait([r.conn for r in running], timeout=timeout)
                now = time.monotonic()
                for r in list(running):
                    if r.conn in ready:
                        outcome = self._finish(r, timed_out=False)
                    elif now >= r.kill_at:
                        _kill_group(r.proc)
                        outcome = self._finish(r, timed_out=True)
                    else:
                        continue
                    running.remove(r)
                    try:
                        item = r.steps.send(outcome)
                    except StopIteration:
                        continue
                    running.append(self._launch(r.task, r.steps, item))
        finally:
            for r in running:  # interrupted: leave no query process behind
                _kill_group(r.proc)
                r.proc.join(5.0)
        return self.rows


# --------------------------------------------------------------------------- the table

def is_solved(row: dict[str, Any]) -> bool:
    """Decided (robust or violated) within the per-query limit."""
    return row["status"] in DECIDED and float(row["time_s"]) <= float(row["limit_s"])


def par2(rows: Iterable[dict[str, Any]]) -> float:
    """PAR-2: the time of every solved query plus 2 x limit for every other query."""
    return sum(float(r["time_s"]) if is_solved(r) else 2.0 * float(r["limit_s"]) for r in rows)


def query_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["network"], row["property"], row["point"], row["scheme"], row["metric"], row["delta"])


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    times = [float(r["time_s"]) for r in rows]
    solved = [r for r in rows if is_solved(r)]
    return {
        "queries": len(rows),
        "decided": len(solved),
        "share": len(solved) / len(rows) if rows else float("nan"),
        "by_solver": sum(1 for r in solved if r.get("decided_by") == "solver"),
        "median": statistics.median(times) if times else float("nan"),
        "worst": max(times) if times else float("nan"),
        "par2": par2(rows),
    }


def disagreements(rows: Sequence[dict[str, Any]], a: str, b: str) -> tuple[int, int, list[tuple[Any, ...]]]:
    """(pairs where both a and b decided, how many of them differ, the differing keys)."""
    by: dict[str, dict[tuple[Any, ...], str]] = {a: {}, b: {}}
    for r in rows:
        if r["kind"] == "check" and r["solver"] in by:
            by[r["solver"]][query_key(r)] = r["status"]
    pairs = diff = 0
    keys = []
    for k, sa in by[a].items():
        sb = by[b].get(k)
        if sa in DECIDED and sb in DECIDED:
            pairs += 1
            if sa != sb:
                diff += 1
                keys.append(k)
    return pairs, diff, keys


def par2_ratio(rows: Sequence[dict[str, Any]], num: str, den: str) -> tuple[float | None, int]:
    """PAR-2(num) / PAR-2(den) over the check queries both solvers answered (same keys)."""
    a = {query_key(r): r for r in rows if r["kind"] == "check" and r["solver"] == num}
    b = {query_key(r): r for r in rows if r["kind"] == "check" and r["solver"] == den}
    common = [k for k in a if k in b]
    if not common:
        return None, 0
    pa, pb = par2(a[k] for k in common), par2(b[k] for k in common)
    return (pa / pb if pb > 0 else math.inf), len(common)


def _fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else ("inf" if math.isinf(x) else f"{x:.2f}")


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    checks = [r for r in rows if r["kind"] == "check"]
    quants = [r for r in rows if r["kind"] == "quantify"]
    cals = [r for r in rows if r["kind"] == "delta"]
    solvers = list(dict.fromkeys(r["solver"] for r in checks))
    limits = sorted({float(r["limit_s"]) for r in rows})
    metrics = sorted({r["metric"] for r in rows})
    lines = [f"smtquant benchmark: {len(cals)} (network, property, scheme) triples; metric {', '.join(metrics) or '-'}; "
             f"limit {', '.join(f'{x:g}' for x in limits) or '-'} s per query"]
    head = f"{'solver':<24}{'queries':>8}{'decided':>16}{'by solver':>11}{'median s':>10}{'worst s':>10}{'PAR-2 s':>11}"
    lines += [head, "-" * len(head)]
    for s in solvers:
        m = summarize([r for r in checks if r["solver"] == s])
        lines.append(f"{s:<24}{m['queries']:>8}{m['decided']:>8} ({100 * m['share']:5.1f}%){m['by_solver']:>11}"
                     f"{m['median']:>10.3f}{m['worst']:>10.3f}{m['par2']:>11.1f}")
    if quants:
        m = summarize(quants)
        widths = [float(r["width"]) for r in quants if r["width"] is not None]
        lines.append(f"{'quantify (engine, 1e-6)':<24}{m['queries']:>8}{m['decided']:>8} ({100 * m['share']:5.1f}%)"
                     f"{'-':>11}{m['median']:>10.3f}{m['worst']:>10.3f}{m['par2']:>11.1f}")
        if widths:
            lines.append(f"  quantify interval width: median {statistics.median(widths):.3g}, max {max(widths):.3g} "
                         f"(decided = certified to 1e-6 within the limit)")
    base = "engine" if "engine" in solvers else (solvers[0] if solvers else None)
    for s in solvers:
        if base is not None and s != base:
            ratio, n = par2_ratio(rows, s, base)
            lines.append(f"PAR-2 ratio {s} / {base}: {_fmt_ratio(ratio)} (over the {n} queries both ran)")
            pairs, diff, keys = disagreements(rows, base, s)
            lines.append(f"same status wherever both decide: {'yes' if diff == 0 else 'no'} "
                         f"({diff} disagreements in {pairs} pairs)")
            for k in keys:
                lines.append(f"  DISAGREEMENT: {k}")
    if checks:
        by_stage: dict[str, dict[str, int]] = {}
        for r in checks:
            if r["status"] in DECIDED:
                by_stage.setdefault(r["solver"], {}).setdefault(r["decided_by"], 0)
                by_stage[r["solver"]][r["decided_by"]] += 1
        for s in solvers:
            st = by_stage.get(s, {})
            lines.append(f"decided by stage, {s}: bound {st.get('bound', 0)}, attack {st.get('attack', 0)}, "
                         f"solver {st.get('solver', 0)}")
    if cals:
        rules: dict[str, int] = {}
        for r in cals:
            rules[str(r["delta_rule"])] = rules.get(str(r["delta_rule"]), 0) + 1
        lines.append("delta rule per triple: " + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())))
    skipped = len(cals) - len({query_key(r)[:5] for r in checks})
    if skipped > 0:
        lines.append(f"triples without check queries (no calibration interval): {skipped}")
    lines.append("per network size (check queries; decided/queries, PAR-2 s):")
    archs = sorted({(r["n_params"], r["architecture"]) for r in checks})
    for n_params, arch in archs:
        sub = [r for r in checks if r["architecture"] == arch]
        parts = []
        for s in solvers:
            m = summarize([r for r in sub if r["solver"] == s])
            parts.append(f"{s} {m['decided']}/{m['queries']} {m['par2']:.1f}")
        ratio = ""
        if base is not None and len(solvers) > 1:
            ratios = [f"{s}/{base} {_fmt_ratio(par2_ratio(sub, s, base)[0])}" for s in solvers if s != base]
            ratio = " | ratio " + ", ".join(ratios)
        nets = sorted({r["network"] for r in sub})
        lines.append(f"  {arch:<14} ({n_params} params; {', '.join(nets)}): {' | '.join(parts)}{ratio}")
    rss = [float(r["rss_mb"]) for r in rows if r.get("rss_mb") is not None]
    if rss:
        lines.append(f"largest peak RSS of one query process (incl. its solver subprocesses): {max(rss):.0f} MiB")
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def peak_rss_mb() -> tuple[float, float]:
    """(max RSS of this process, max RSS of any waited-for descendant), MiB (Linux: ru_maxrss in KiB)."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)


# --------------------------------------------------------------------------- command line

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=float, default=60.0, help="per-query wall-clock limit in seconds (default 60)")
    ap.add_argument("--quick", action="store_true",
                    help=f"only the shipped models, {QUICK_POINTS} local points (+ global), fixed:4")
    ap.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated (default engine,z3-direct)")
    ap.add_argument("--sizes", type=parse_sizes, default=SIZES,
                    help="hidden sizes of the generated MLPs, e.g. 16,32x32,64x64,64x64x64 (default); 'none' for none")
    ap.add_argument("--metric", choices=("logit", "confidence"), default="logit")
    ap.add_argument("--jobs", type=int, default=1, help="queries run at the same time (default 1)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON Lines output (default benchmarks/results.jsonl)")
    ap.add_argument("--table-only", type=Path, metavar="FILE", help="print the table of an existing JSONL and exit")
    ap.add_argument("--schemes", default=None, help="comma-separated schemes (default fixed:4,fixed:6,fixed:8)")
    ap.add_argument("--points", type=int, default=None, help=f"local points per network (default {N_POINTS})")
    ap.add_argument("--models", default=None, help="comma-separated network names to keep (e.g. moons_relu,gen_relu_16)")
    ap.add_argument("--no-quantify", dest="quantify", action="store_false",
                    help="leave out the quantify query of each triple (only the calibration and the checks)")
    args = ap.parse_args(argv)
    if args.limit <= 0:
        ap.error("--limit must be > 0")
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    args.solvers = tuple(s.strip() for s in args.solvers.split(",") if s.strip())
    if not args.solvers:
        ap.error("--solvers needs at least one solver")
    return args


def code_version() -> str:
    """The git commit of the checkout, and whether smtquant/ has uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "smtquant"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"commit {head}" + (" + uncommitted changes in smtquant/" if dirty else "")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_only is not None:
        print(format_table(read_rows(args.table_only)))
        return 0

    import smtquant as sq
    from smtquant.backends import get_backend

    for s in args.solvers:
        try:
            get_backend(s)
        except sq.SmtquantError as exc:
            print(f"benchmarks/run.py: {exc}", file=sys.stderr)
            return 2
    from smtquant.threads import blas_controller

    blas_controller()  # the BLAS libraries found once, before the queries fork (like the imports above)
    from smtquant.dual3 import load_kernels

    load_kernels()  # and the nested dual's compiled loops (numba): each query loaded them again (0.5 s)
    schemes = tuple(args.schemes.split(",")) if args.schemes else (QUICK_SCHEMES if args.quick else SCHEMES)
    n_points = args.points if args.points is not None else (QUICK_POINTS if args.quick else N_POINTS)
    sizes = () if args.quick else args.sizes
    only = set(args.models.split(",")) if args.models else None

    version = code_version()
    x = moons_data()
    nets = load_networks(SHIPPED, sizes, only=only)
    tasks = build_tasks(nets, local_points(x, n_points), data_box(x), schemes, args.metric)
    print(f"{len(nets)} networks, {len(tasks)} triples, solvers {', '.join(args.solvers)}, limit {args.limit:g} s, "
          f"jobs {args.jobs}, metric {args.metric} -> {args.out}", file=sys.stderr)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(args.out, "w", encoding="utf-8") as fh:
        def sink(row: dict[str, Any]) -> None:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

        runner = Runner(args.solvers, args.limit, args.jobs, quantify=args.quantify, sink=sink,
                        progress=lambda line: print(line, file=sys.stderr, flush=True))
        interrupted = False
        previous = signal.signal(signal.SIGTERM, _terminate)  # clean up query processes on SIGTERM too
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            runner.run(tasks)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: the table covers the queries finished so far", file=sys.stderr)
        finally:
            signal.signal(signal.SIGTERM, previous)
    total = time.monotonic() - t0
    print(format_table(runner.rows))
    own, child = peak_rss_mb()
    print(f"peak RSS: benchmark process {own:.0f} MiB; largest query process {child:.0f} MiB (resource.getrusage)")
    print(f"total wall-clock {total:.1f} s; code {version}; rows in {args.out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
