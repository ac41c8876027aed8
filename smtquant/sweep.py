"""Sweeps: many properties (models × inputs or regions × schemes), one JSON Lines row each,
written and flushed as soon as it is decided, resumable, run in local processes or on a Dask
cluster.

Every row carries a ``task`` key that names its property exactly (model, kind, input or
region as exact fractions, scheme, metric, delta, mode). A rerun reads the results file, skips
every task that already has a row, and appends the rest, so a sweep killed at any moment loses
only the properties that were being solved. A trailing line cut short by a kill is reported and
removed before appending; a corrupt line elsewhere is reported and left in place.

>>> expand_schemes(["fixed:2..fixed:4,int:8"])
['fixed:2', 'fixed:3', 'fixed:4', 'int:8']
>>> [[float(v) for v in p] for p in grid_points("0:1:2,5:5:1")]
[[0.0, 5.0], [1.0, 5.0]]
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from .boxes import InputRegion
from .errors import SmtquantError
from .network import Network
from .properties import GlobalRobustness, LocalRobustness, Metric, Property
from .result import Status
from .schemes import MAX_BITS, parse_scheme

__all__ = ["Task", "SweepSummary", "expand_schemes", "grid_points", "make_tasks", "read_results", "run_task",
           "run_sweep"]

_RANGE_RE = re.compile(r"^\s*(fixed|int):(\d+)\s*\.\.\s*(?:(fixed|int):)?(\d+)(:channel)?\s*$", re.IGNORECASE)


def expand_schemes(texts: Sequence[str]) -> list[str]:
    """Scheme specs, comma-separated, with ranges FAMILY:A..FAMILY:B (inclusive, A <= B, one
    family) for the fixed and int families; each one validated. Duplicates are dropped."""
    out: list[str] = []
    for text in texts:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                raise SmtquantError(f"--quant has an empty entry in {text!r}; separate schemes with single commas.")
            if ".." in part:
                m = _RANGE_RE.match(part)
                if m is None:
                    raise SmtquantError(f"--quant range {part!r} must look like fixed:2..fixed:12 or int:4..int:8 "
                                        "(one family, integer bit counts).")
                fam, a, fam2, b, channel = m.group(1).lower(), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
                if fam2 is not None and fam2.lower() != fam:
                    raise SmtquantError(f"--quant range {part!r} mixes the families {fam} and {fam2.lower()}.")
                if a > b:
                    raise SmtquantError(f"--quant range {part!r} runs backwards: {a} > {b}.")
                if b > MAX_BITS:
                    raise SmtquantError(f"--quant range {part!r} goes past {MAX_BITS} bits.")
                if channel and fam != "int":
                    raise SmtquantError(f"--quant range {part!r}: only int schemes take :channel.")
                specs = [f"{fam}:{k}{channel.lower() if channel else ''}" for k in range(a, b + 1)]
            else:
                specs = [part]
            for s in specs:
                spec = parse_scheme(s).spec
                if spec not in out:
                    out.append(spec)
    if not out:
        raise SmtquantError("--quant names no scheme.")
    return out


def grid_points(spec: str) -> list[list[Fraction]]:
    """A grid over the input space: "lo:hi:n,..." gives n evenly spaced values per dimension
    (exact fractions, both ends included; n = 1 gives lo), all combinations in row-major order."""
    axes: list[list[Fraction]] = []
    for i, part in enumerate(spec.split(",")):
        bits = part.strip().split(":")
        if len(bits) != 3:
            raise SmtquantError(f"--grid dimension {i} must be lo:hi:n. Got {part.strip()!r} instead.")
        try:
            lo, hi = Fraction(bits[0].strip()), Fraction(bits[1].strip())
            n = int(bits[2])
        except (ValueError, ZeroDivisionError):
            raise SmtquantError(f"--grid dimension {i} must be lo:hi:n with numbers and a count. "
                                f"Got {part.strip()!r} instead.") from None
        if n < 1 or n > 10_000:
            raise SmtquantError(f"--grid dimension {i}: n must be between 1 and 10000. Got {n}.")
        if lo > hi:
            raise SmtquantError(f"--grid dimension {i} is inverted: {bits[0].strip()} > {bits[1].strip()}.")
        axes.append([lo] if n == 1 else [lo + (hi - lo) * k / (n - 1) for k in range(n)])
    points: list[list[Fraction]] = [[]]
    for axis in axes:
        points = [p + [v] for p in points for v in axis]
    if len(points) > 1_000_000:
        raise SmtquantError(f"--grid gives {len(points)} points; at most 1000000.")
    return points


def _q(v: Fraction) -> str:
    return str(v)


@dataclass(frozen=True)
class Task:
    """One property of a sweep. The network travels with the task, so workers (local processes
    or the machines of a Dask cluster) need neither the model file nor a shared disk."""

    net: Network
    model: str
    kind: str  # "local" | "global"
    point: tuple[Fraction, ...] | tuple[tuple[Fraction, Fraction], ...]
    quant: str
    metric: str
    delta: Fraction | None
    quantify: bool
    tolerance: Fraction
    solver: str = "auto"
    timeout: float | None = None

    @property
    def key(self) -> str:
        """The property's identity, exact (fractions as n/d): equal keys, same question."""
        if self.kind == "local":
            where = ",".join(_q(v) for v in self.point)  # type: ignore[arg-type]
        else:
            where = ",".join(f"{_q(a)}:{_q(b)}" for a, b in self.point)  # type: ignore[misc]
        mode = f"quantify@{_q(self.tolerance)}" if self.quantify else "check"
        delta = _q(self.delta) if self.delta is not None else "-"
        return f"{self.model}|{self.kind}|{where}|{self.quant}|{self.metric}|{delta}|{mode}"

    def prop(self) -> Property:
        if self.kind == "local":
            return LocalRobustness(self.point, self.metric)  # type: ignore[arg-type]
        return GlobalRobustness(InputRegion(self.point), self.metric)  # type: ignore[arg-type]


def make_tasks(models: Sequence[tuple[str, Network]], inputs: Sequence[Sequence[Fraction]],
               regions: Sequence[InputRegion], schemes: Sequence[str], *, metric: str = "confidence",
               delta: Fraction | None = None, quantify: bool = False, tolerance: Fraction = Fraction(1, 10**6),
               solver: str = "auto", timeout: float | None = None) -> list[Task]:
    """Every combination, checked up front (shapes, schemes that cannot represent a parameter),
    so that bad input stops the sweep before any solving."""
    m = Metric(metric)
    if m is Metric.CLASS and (delta is not None or quantify):
        raise SmtquantError("--metric class takes neither --delta nor --quantify.")
    if m is not Metric.CLASS and delta is None and not quantify:
        raise SmtquantError("give --delta D or --quantify.")
    tasks: list[Task] = []
    for path, net in models:
        for spec in schemes:
            parse_scheme(spec).box(net)  # a parameter outside a fixed-point range is an error here
        for x in inputs:
            LocalRobustness(x, m).check_network(net)
        for r in regions:
            GlobalRobustness(r, m).check_network(net)
        for spec in schemes:
            for x in inputs:
                tasks.append(Task(net, path, "local", tuple(x), spec, m.value, delta, quantify, tolerance, solver,
                                  timeout))
            for r in regions:
                tasks.append(Task(net, path, "global", r.bounds, spec, m.value, delta, quantify, tolerance, solver,
                                  timeout))
    return tasks


def run_task(task: Task) -> dict[str, Any]:
    """Decide one task and return its JSON row (runs in a worker). A failure inside the solver
    becomes an unknown row with the reason, so one bad property does not stop a sweep."""
    from .search import quantify  # noqa: PLC0415 - keeps worker start-up light
    from .verify import check  # noqa: PLC0415

    start = time.monotonic()
    prop = task.prop()
    try:
        if task.quantify:
            v = quantify(task.net, task.quant, prop, delta=task.delta, tolerance=task.tolerance, solver=task.solver,
                         timeout=task.timeout)
        else:
            v = check(task.net, task.quant, prop, task.delta, solver=task.solver, timeout=task.timeout)
        row = v.to_json()
        if v.interrupted:
            row["interrupted"] = True
    except Exception as exc:  # noqa: BLE001 - reported in the row, never a silent loss
        row = {"property": task.kind, "metric": task.metric,
               **({"input": [float(v) for v in task.point]} if task.kind == "local"  # type: ignore[arg-type]
                  else {"region": [[float(a), float(b)] for a, b in task.point]}),  # type: ignore[misc]
               "delta": float(task.delta) if task.delta is not None else None, "status": "unknown",
               "reason": f"error: {exc.__class__.__name__}: {exc}", "max_deviation": None, "witness": None,
               "solver": task.solver, "time_s": round(time.monotonic() - start, 6)}
    row["model"] = task.model
    row["quant"] = task.quant
    row["task"] = task.key
    return row


# --------------------------------------------------------------------------- results file

def read_results(path: str | Path, *, repair: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a JSON Lines results file and a warning per line that is not a JSON object.
    With ``repair``, a trailing line cut short (no final newline, not valid JSON) is removed
    from the file so that appending can resume; it is still reported."""
    p = Path(path)
    if not p.exists():
        return [], []
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SmtquantError(f"{p}: cannot read ({exc.strerror or exc}).") from None
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    lines = data.split(b"\n")
    offset = 0
    tail_ok = False
    for n, raw in enumerate(lines, start=1):
        last = n == len(lines)
        start = offset
        offset += len(raw) + 1
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            what = "cut short (no newline at the end)" if last else f"not a JSON object ({exc.__class__.__name__})"
            if last and repair:
                with p.open("r+b") as fh:
                    fh.truncate(start)
                warnings.append(f"{p}: line {n} was {what}; removed, its property will be run again")
            else:
                warnings.append(f"{p}: line {n} is {what}; skipped")
            continue
        rows.append(row)
        tail_ok = last
    if repair and tail_ok and not data.endswith(b"\n"):
        with p.open("ab") as fh:  # a complete last row without its newline: add it before appending
            fh.write(b"\n")
    return rows, warnings


@dataclass
class SweepSummary:
    total: int
    skipped: int
    ran: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        if self.counts.get("violated"):
            return Status.VIOLATED
        if self.counts.get("unknown") or self.interrupted or self.ran + self.skipped < self.total:
            return Status.UNKNOWN
        return Status.ROBUST


class _Progress:
    """A progress line on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int, done: int, stream: IO[str] | None) -> None:
        self.total, self.done, self.stream = total, done, stream
        self.counts: Counter[str] = Counter()
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def update(self, status: str) -> None:
        self.done += 1
        self.counts[status] += 1
        if self.stream is None:
            return
        now = time.monotonic()
        if not self.tty and now - self.last < 5 and self.done < self.total:
            return
        self.last = now
        elapsed = now - self.start
        ran = sum(self.counts.values())
        eta = (self.total - self.done) * elapsed / ran if ran else 0.0
        counts = " ".join(f"{k} {self.counts[k]}" for k in ("robust", "violated", "unknown") if self.counts[k])
        line = f"sweep [{self.done}/{self.total}] {counts}  {elapsed:.0f} s elapsed, ~{eta:.0f} s left"
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if self.done >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


def _local_results(tasks: Sequence[Task], jobs: int) -> Iterator[dict[str, Any]]:
    if jobs <= 1:
        for t in tasks:
            yield run_task(t)
        return
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: PLC0415

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method))
    futures = [pool.submit(run_task, t) for t in tasks]
    try:
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        for fut in futures:
            fut.cancel()
        procs = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # an interrupted sweep must not leave solvers running
            if proc.is_alive():
                proc.kill()


def _dask_results(tasks: Sequence[Task], address: str) -> Iterator[dict[str, Any]]:
    try:
        from dask.distributed import Client, as_completed  # noqa: PLC0415
    except ImportError:
        raise SmtquantError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SmtquantError(f"--scheduler {address}: cannot connect ({exc}).") from None
    try:
        futures = client.map(run_task, list(tasks), pure=False)
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel(futures)
    finally:
        client.close()


def run_sweep(tasks: Sequence[Task], out: str | Path, *, jobs: int = 1, scheduler: str | None = None,
              retry_unknown: bool = False, progress: IO[str] | None = sys.stderr, warn: IO[str] | None = sys.stderr,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> SweepSummary:
    """Run every task that has no row in ``out`` yet (with ``retry_unknown``, also those whose
    row is unknown) and append one row per task, flushed to disk as it is decided. ``progress``
    gets the progress line, ``warn`` the lines of the results file that were skipped."""
    if jobs < 1:
        raise SmtquantError(f"--jobs must be at least 1. Got {jobs}.")
    out = Path(out)
    rows, warnings = read_results(out, repair=True)
    for w in warnings:  # said even when quiet: a skipped line is never silent
        if warn is not None:
            print(f"sweep: {w}", file=warn)
    have: dict[str, str] = {}
    for row in rows:
        if isinstance(row.get("task"), str) and not row.get("interrupted"):
            have[row["task"]] = str(row.get("status"))
    todo: list[Task] = []
    seen: set[str] = set()
    summary = SweepSummary(total=0, skipped=0, warnings=warnings)
    for t in tasks:
        if t.key in seen:
            continue
        seen.add(t.key)
        summary.total += 1
        status = have.get(t.key)
        if status is not None and not (retry_unknown and status == "unknown"):
            summary.skipped += 1
            summary.counts[status] += 1
        else:
            todo.append(t)
    if progress is not None and summary.skipped:
        print(f"sweep: {summary.skipped} of {summary.total} properties already in {out}; running the other "
              f"{len(todo)}", file=progress)
    try:
        fh = out.open("a", encoding="utf-8")
    except OSError as exc:
        raise SmtquantError(f"{out}: cannot write ({exc.strerror or exc}).") from None
    bar = _Progress(summary.total, summary.skipped, progress)
    results: Iterable[dict[str, Any]] = (_dask_results(todo, scheduler) if scheduler else
                                         _local_results(todo, jobs)) if todo else ()
    try:
        for row in results:
            if row.get("interrupted"):
                summary.interrupted = True
                break
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            summary.ran += 1
            summary.counts[row["status"]] += 1
            bar.update(row["status"])
            if on_row is not None:
                on_row(row)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        fh.close()
        bar.close()
        close = getattr(results, "close", None)
        if close is not None:
            close()
    return summary
