"""``smtquant report``: tables and plots of JSON Lines results (SPEC section 5) as one
self-contained HTML file or a single PNG figure.

* :func:`load_results` reads a results file row by row; a line that is blank, not JSON, or not a
  result row (a sweep killed mid-write leaves a corrupt trailing line) becomes a warning that names
  its line number, and the other rows are kept.
* :func:`build_report` writes ``OUT.html`` (header with status counts and unknown reasons,
  certified maximum deviation vs bits, fewest bits per model, heat maps over the input plane of
  2-D models with their decision boundary, a table of every row) or ``OUT.png`` (one figure).
* :func:`fewest_bits` derives the fewest bits per property from sweep rows; :func:`scheme_bits`
  reads the bit width of a scheme string.

matplotlib is imported only when a figure is drawn (``pip install smtquant[plots]``); figures are
drawn on ``matplotlib.figure.Figure`` objects rendered by Agg, so no display is needed and pyplot's
global state (a notebook's backend, its open figures) is left alone.

>>> scheme_bits("fixed:1.7"), scheme_bits("int:8:channel"), scheme_bits("fixed:4/fixed:6"), scheme_bits("float16")
(('fixed', 7), ('int:channel', 8), None, None)
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendUnavailable, SmtquantError

__all__ = [
    "ReportError",
    "ReportSummary",
    "FewestBits",
    "load_results",
    "build_report",
    "fewest_bits",
    "scheme_bits",
]

MAX_DEVIATION_CHARTS = 6
MAX_HEAT_MAPS = 8
HEAT_DECADES = 8  # a log color scale spans at most this many decades below the largest value
MIN_HEAT_POINTS = 6  # distinct inputs of one (model, scheme) before a heat map is drawn
MAX_STDERR_WARNINGS = 50
STATUSES = ("robust", "violated", "unknown")
_STATUS_RANK = {"robust": 0, "unknown": 1, "violated": 2}  # aggregation: violated > unknown > robust
_STATUS_COLORS = {"robust": "#2e7d32", "violated": "#c62828", "unknown": "#e08a00"}
_STATUS_MARK = {"robust": "\u2713", "violated": "\u2717", "unknown": "?"}
_FAMILY_MARKERS = {"fixed": "o", "int": "s", "int:channel": "D"}
_PART_RE = re.compile(r"(fixed):(\d+)(?:\.(\d+))?|(int):(\d+)(:channel)?")


class ReportError(SmtquantError, ValueError):
    """A results file cannot be read, or a report cannot be written (bad suffix, no rows to plot)."""


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`build_report` did: rows shown, counts by status, warnings, files written."""

    rows: int
    counts: dict[str, int]
    warnings: tuple[str, ...]
    files: tuple[Path, ...]
    figures: int = 0
    duplicates: int = 0

    @property
    def n_warnings(self) -> int:
        return len(self.warnings)


@dataclass(frozen=True)
class FewestBits:
    """The fewest bits of one property (model, property, location, metric, delta) in one family.

    ``bits`` is the smallest width whose status is robust such that every larger width in the
    data is robust too (None if the largest width is not robust); ``tested`` lists every width in
    the data with its status; ``notes`` say what the data leaves open.
    """

    model: str | None
    property: str
    location: str
    metric: str
    delta: float | None
    family: str
    bits: int | None
    tested: tuple[tuple[int, str], ...]
    notes: tuple[str, ...] = ()
    unknown_below: tuple[int, ...] = ()  # unknown widths between the last violated one and the answer
    scheme: str | None = None  # the scheme string of the rows at the answer (e.g. "fixed:7" or "fixed:1.7")


# -- rows ----------------------------------------------------------------------------------------------


@dataclass
class _Row:
    raw: dict[str, Any]
    where: str  # "line 7" / "row 3"
    prop: str
    model: str | None
    quant: str | None
    metric: str
    loc: tuple[Any, ...] | None  # input tuple (local) or tuple of (lo, hi) pairs (global)
    delta: float | None
    status: str
    reason: str
    lower: float | None
    upper: float | None
    solver: str
    time_s: float | None
    is_bits_row: bool
    bits_answer: int | None
    family: str | None = None
    width: int | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.model, self.prop, self.loc, self.quant, self.metric, self.delta, self.is_bits_row)

    @property
    def has_interval(self) -> bool:
        return self.lower is not None and self.upper is not None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _short(v: Any, n: int = 40) -> str:
    s = json.dumps(v) if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def _parse_row(d: Any, where: str) -> _Row:
    """A validated row, or ValueError with a short reason."""
    if not isinstance(d, dict):
        raise ValueError(f"not a JSON object (got {type(d).__name__})")
    for k in ("property", "status", "quant", "model"):
        if k not in d:
            raise ValueError(f"no {k!r} key")
    prop, status = d["property"], d["status"]
    if prop not in ("local", "global"):
        raise ValueError(f"property must be 'local' or 'global', got {_short(prop)}")
    if status not in STATUSES:
        raise ValueError(f"status must be robust, violated or unknown, got {_short(status)}")
    is_bits_row = "bits" in d
    quant = d["quant"]
    if not (isinstance(quant, str) or (quant is None and is_bits_row)):
        raise ValueError(f"quant must be a scheme string, got {_short(quant)}")
    model = d["model"]
    if model is not None and not isinstance(model, str):
        raise ValueError(f"model must be a path string, got {_short(model)}")
    metric = d.get("metric", "confidence")
    if not isinstance(metric, str):
        raise ValueError(f"metric must be a string, got {_short(metric)}")
    loc: tuple[Any, ...] | None
    if prop == "local":
        if "input" not in d:
            raise ValueError("a local row needs an 'input' key")
        x = d["input"]
        if x is None:
            loc = None
        elif isinstance(x, list) and x and all(_number(v) is not None for v in x):
            loc = tuple(float(v) for v in x)
        else:
            raise ValueError(f"input must be a list of finite numbers, got {_short(x)}")
    else:
        if "region" not in d:
            raise ValueError("a global row needs a 'region' key")
        r = d["region"]
        if r is None:
            loc = None
        elif (isinstance(r, list) and r and all(isinstance(p, list) and len(p) == 2 and all(_number(v) is not None for v in p)
                                                   for p in r)):
            loc = tuple((float(lo), float(hi)) for lo, hi in r)
        else:
            raise ValueError(f"region must be a list of [lo, hi] pairs, got {_short(r)}")
    delta = d.get("delta")
    if delta is not None and _number(delta) is None:
        raise ValueError(f"delta must be a number or null, got {_short(delta)}")
    md = d.get("max_deviation")
    lower = upper = None
    if md is not None:
        if not isinstance(md, dict) or _number(md.get("lower")) is None or _number(md.get("upper")) is None:
            raise ValueError(f"max_deviation must be {{'lower': L, 'upper': U}} with finite numbers or null, got {_short(md)}")
        lower, upper = float(md["lower"]), float(md["upper"])
        if lower > upper or lower < 0:
            raise ValueError(f"max_deviation is not an interval 0 <= lower <= upper: [{lower:g}, {upper:g}]")
    bits_answer = d.get("bits")
    if is_bits_row and bits_answer is not None and (isinstance(bits_answer, bool) or not isinstance(bits_answer, int)):
        raise ValueError(f"bits must be an integer or null, got {_short(bits_answer)}")
    reason = d.get("reason")
    t = d.get("time_s")
    solver = d.get("solver")
    row = _Row(raw=d, where=where, prop=prop, model=model, quant=quant, metric=metric, loc=loc,
               delta=None if delta is None else float(delta), status=status,
               reason=reason if isinstance(reason, str) else ("" if reason is None else str(reason)),
               lower=lower, upper=upper, solver=solver if isinstance(solver, str) else "",
               time_s=_number(t), is_bits_row=is_bits_row, bits_answer=bits_answer)
    fb = scheme_bits(quant) if isinstance(quant, str) else None
    if fb is not None:
        row.family, row.width = fb
    return row


def _reject_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not a number a result row may hold")


def load_results(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read a JSON Lines results file: (rows, warnings).

    Every line that is blank, not UTF-8, not JSON, or not a result row (SPEC section 5) is skipped
    with a warning naming its line number and why (e.g. the corrupt trailing line of a sweep
    killed mid-write); the other rows are kept in file order. Duplicates are kept here;
    :func:`build_report` keeps the last of each. Unknown keys are ignored. A file that cannot be
    read at all is a :class:`ReportError`.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ReportError(f"{p}: cannot read the results file ({exc.strerror or exc}).") from None
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for i, raw in enumerate(lines, start=1):
        where = f"{p.name} line {i}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            warnings.append(f"{where}: not UTF-8 text; skipped")
            continue
        if not text.strip():
            warnings.append(f"{where}: blank line; skipped")
            continue
        try:
            d = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            trunc = " (truncated? a write cut short)" if i == len(lines) else ""
            warnings.append(f"{where}: not valid JSON ({exc.msg}: column {exc.colno}){trunc}; skipped")
            continue
        except (ValueError, RecursionError) as exc:
            warnings.append(f"{where}: cannot parse ({exc}); skipped")
            continue
        try:
            _parse_row(d, where)
        except ValueError as exc:
            warnings.append(f"{where}: {exc}; skipped")
            continue
        rows.append(d)
    return rows, warnings


def _normalize(rows: Iterable[dict[str, Any]], warnings: list[str], source: str | None) -> tuple[list[_Row], int]:
    """Validated rows, the last of each duplicate kept (in the position of that last one)."""
    kept: dict[tuple[Any, ...], _Row] = {}
    dups = 0
    for i, d in enumerate(rows, start=1):
        where = f"{source} row {i}" if source else f"row {i}"
        try:
            r = _parse_row(d, where)
        except ValueError as exc:
            warnings.append(f"{where}: {exc}; skipped")
            continue
        if r.key in kept:
            dups += 1
            del kept[r.key]
        kept[r.key] = r
    return list(kept.values()), dups


# -- schemes and bits ------------------------------------------------------------------------------------


def scheme_bits(spec: str) -> tuple[str, int] | None:
    """(family, bit width) of a scheme string, or None when it has no bit width.

    fixed:F and fixed:I.F -> ("fixed", F) (fractional bits: the parameter box depends on F only);
    int:B -> ("int", B); int:B:channel -> ("int:channel", B); a trailing @weights adds
    "@weights" to the family; a per-layer scheme S1/S2/... only if every layer has the same
    family and width. float16, bfloat16, eps:E and rel:R have none.
    """
    if not isinstance(spec, str):
        return None
    parts = [p.strip().lower() for p in " ".join(spec.split()).split("/")]
    found: set[tuple[str, int]] = set()
    for part in parts:
        base, _, mod = part.partition("@")
        base = "".join(base.split())
        mod = mod.strip()
        if mod not in ("", "weights"):
            return None
        m = _PART_RE.fullmatch(base)
        if m is None:
            return None
        if m.group(1):
            fam, bits = "fixed", int(m.group(3) if m.group(3) is not None else m.group(2))
        else:
            fam, bits = ("int:channel" if m.group(6) else "int"), int(m.group(5))
        found.add((fam + ("@weights" if mod else ""), bits))
    return found.pop() if len(found) == 1 else None


def _worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=lambda s: _STATUS_RANK[s])


def _derive(by_width: dict[int, str]) -> tuple[int | None, list[str], list[int]]:
    """The fewest bits from {width: status}: the smallest robust width with only robust widths
    above it in the data; notes on what the data leaves open."""
    widths = sorted(by_width)
    answer: int | None = None
    for w in reversed(widths):
        if by_width[w] != "robust":
            break
        answer = w
    notes: list[str] = []
    if answer is None:
        top = widths[-1]
        notes.append(f"{by_width[top]} at the largest width in the data ({top} bits)")
        return None, notes, []
    below = [w for w in widths if w < answer]
    if not below:
        notes.append("smallest width tested")
        return answer, notes, []
    violated = [w for w in below if by_width[w] == "violated"]
    last_v = max(violated) if violated else None
    unk = [w for w in below if by_width[w] == "unknown" and (last_v is None or w > last_v)]
    if unk:
        where = f"between violated at {last_v} and robust at {answer}" if last_v is not None else f"below {answer}"
        notes.append(f"unknown at {_widths(unk)} bits ({where}): the fewest bits may be as low as {min(unk)}")
    rob = [w for w in below if by_width[w] == "robust"]
    if rob:
        gaps = [w for w in widths if min(rob) < w < answer and by_width[w] != "robust"]
        notes.append(f"also robust at {_widths(rob)} bits but not at {_widths(gaps)}; the parameter boxes shrink as "
                     f"bits grow, so {min(rob)} bits suffice if those answers are right")
    if any(by_width[w] == "violated" and w > min(rob, default=answer) for w in widths):
        notes.append("inconsistent data: violated above a robust width (same delta); check these rows")
    if answer - 1 not in by_width:
        notes.append(f"{answer - 1} bits not tested")
    return answer, notes, unk


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _widths(ws: Sequence[int]) -> str:
    return ", ".join(str(w) for w in ws) or "-"


def _fewest(rows: Sequence[_Row]) -> list[FewestBits]:
    groups: dict[tuple[Any, ...], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    first: dict[tuple[Any, ...], _Row] = {}
    specs: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for r in rows:
        if r.is_bits_row or r.width is None or r.family is None:
            continue
        k = (r.model, r.prop, r.loc, r.metric, r.delta, r.family)
        groups[k][r.width].append(r.status)
        first.setdefault(k, r)
        if r.quant not in specs[(*k, r.width)]:
            specs[(*k, r.width)].append(r.quant)  # type: ignore[arg-type]
    out = []
    for k, by in groups.items():
        r = first[k]
        statuses = {w: _worst(s) for w, s in by.items()}
        answer, notes, unk = _derive(statuses)
        scheme = None if answer is None else " or ".join(specs[(*k, answer)])
        out.append(FewestBits(r.model, r.prop, _loc_text(r), r.metric, r.delta, r.family or "", answer,
                              tuple(sorted(statuses.items())), tuple(notes), tuple(unk), scheme))
    return out


def fewest_bits(rows: Iterable[dict[str, Any]]) -> list[FewestBits]:
    """The fewest bits per (model, property, input/region, metric, delta, family) derived from
    sweep rows (rows with a "bits" key, from ``smtquant bits``, are not sweep rows and are left
    out); an invalid row is a :class:`ReportError`. Duplicates keep the last."""
    warnings: list[str] = []
    norm, _ = _normalize(rows, warnings, None)
    if warnings:
        raise ReportError(warnings[0])
    return _fewest(norm)


# -- text helpers --------------------------------------------------------------------------------------------


def _g(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _loc_text(r: _Row) -> str:
    if r.loc is None:
        return "-"
    if r.prop == "local":
        return "x = (" + ", ".join(_g(v, 6) for v in r.loc) + ")"
    return " \u00d7 ".join(f"[{_g(lo, 6)}, {_g(hi, 6)}]" for lo, hi in r.loc)


def _directed(v: float, up: bool, digits: int = 4) -> str:
    """v to ``digits`` significant digits, rounded outward (an upper end up, a lower end down), so
    that a displayed certified interval still encloses the certified one."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    d = Decimal(repr(v))
    r = d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return f"{float(r):.{digits}g}" if abs(v) > 1e-290 else f"{r:.{digits}g}"


def _interval_text(r: _Row) -> str:
    if not r.has_interval:
        return "-"
    return f"[{_directed(r.lower, up=False)}, {_directed(r.upper, up=True)}]"  # type: ignore[arg-type]


_NUM_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _reason_groups(reasons: Sequence[str]) -> list[tuple[str, int]]:
    """Reasons with counts, most frequent first; with many distinct reasons, the ones that differ
    only in their numbers are merged (numbers shown as #, one example kept in the text)."""
    exact = Counter(r or "(no reason given)" for r in reasons)
    if len(exact) <= 10:
        return exact.most_common()
    pattern: Counter[str] = Counter()
    example: dict[str, str] = {}
    for r, n in exact.items():
        k = _NUM_RE.sub("#", r)
        pattern[k] += n
        example.setdefault(k, r)
    return [(k if k == example[k] else f"{k} (e.g. \u201c{example[k]}\u201d)", n) for k, n in pattern.most_common()]


def _display_names(models: Iterable[str | None]) -> dict[str | None, str]:
    models = list(dict.fromkeys(models))
    stems = Counter(Path(m).stem for m in models if m)
    return {m: ("(no model path)" if not m else Path(m).stem if stems[Path(m).stem] == 1 else m) for m in models}


_ACT_TOKENS = {"relu": "relu", "linear": "linear", "identity": "linear", "tanh": "tanh",
               "logistic": "logistic", "sigmoid": "logistic"}
_ACT_STYLE = {"relu": "-", "linear": "--", "tanh": "-.", "logistic": ":"}


def _twin(name: str) -> tuple[str, str | None]:
    """(twin base, activation token): moons_relu -> (moons_*, relu), moons_linear_8x8 -> (moons_*_8x8, linear)."""
    tokens = re.split(r"([_\-.])", name)
    for i, t in enumerate(tokens):
        act = _ACT_TOKENS.get(t.lower())
        if act is not None:
            return "".join(tokens[:i] + ["*"] + tokens[i + 1:]), act
    return name, None


def _series_order(name: str) -> tuple[str, int, str]:
    """Twins next to each other, ReLU first."""
    base, act = _twin(name)
    return base, ["relu", "linear", "tanh", "logistic", None].index(act), name


@dataclass(frozen=True)
class _Style:
    color: tuple[float, float, float]
    linestyle: str
    activation: str | None


def _styles(names: dict[str | None, str]) -> dict[str | None, _Style]:
    """One hue per twin family (ReLU: the hue, solid; linear: a lighter shade, dashed)."""
    from matplotlib import colormaps  # noqa: PLC0415
    tab10 = colormaps["tab10"]
    palette = [tab10(i)[:3] for i in range(10)]
    bases: dict[str, int] = {}
    out: dict[str | None, _Style] = {}
    for m, name in names.items():
        base, act = _twin(name)
        idx = bases.setdefault(base, len(bases))
        rgb = tuple(float(c) for c in palette[idx % len(palette)])
        if act == "linear":
            rgb = tuple(c + (1 - c) * 0.4 for c in rgb)
        elif act in ("tanh", "logistic"):
            rgb = tuple(c * 0.65 for c in rgb)
        out[m] = _Style(rgb, _ACT_STYLE.get(act or "", "-"), act)  # type: ignore[arg-type]
    return out


# -- figure data -------------------------------------------------------------------------------------------


@dataclass
class _Point:
    bits: int
    lower: float
    upper: float
    status: str
    n: int
    unknown: int


@dataclass
class _Series:
    label: str
    model: str | None
    family: str
    style: _Style
    marker: str
    points: list[_Point]

    @property
    def unknown(self) -> int:
        return sum(p.unknown for p in self.points)


@dataclass
class _DevChart:
    title: str
    caption: str
    series: list[_Series]
    delta: float | None
    metric: str


@dataclass
class _HeatMap:
    model: str | None
    name: str
    quant: str
    metric: str
    width: int | None
    xs: np.ndarray
    ys: np.ndarray
    upper: np.ndarray
    status: list[str]
    delta: float | None
    boundary: tuple[np.ndarray, np.ndarray, np.ndarray, str] | None = None  # X, Y, Z, label
    note: str = ""


def _dev_charts(rows: Sequence[_Row], names: dict[str | None, str],
                styles: dict[str | None, _Style]) -> tuple[list[_DevChart], str]:
    usable = [r for r in rows if r.has_interval and r.width is not None and not r.is_bits_row]
    if not usable:
        return [], ""
    by_loc: dict[tuple[Any, ...], list[_Row]] = defaultdict(list)
    for r in usable:
        by_loc[(r.prop, r.metric, r.loc)].append(r)
    note = ""
    if len(by_loc) <= MAX_DEVIATION_CHARTS:
        groups = list(by_loc.items())
    else:
        by_kind: dict[tuple[Any, ...], list[_Row]] = defaultdict(list)
        for r in usable:
            by_kind[(r.prop, r.metric)].append(r)
        groups = list(by_kind.items())
        if len(groups) > MAX_DEVIATION_CHARTS:
            note = (f"{len(groups) - MAX_DEVIATION_CHARTS} more (property, metric) groups are not drawn; "
                    "their rows are in the table below.")
            groups = groups[:MAX_DEVIATION_CHARTS]
    charts = []
    for key, rs in groups:
        prop, metric = key[0], key[1]
        locs = {r.loc for r in rs}
        if len(locs) == 1:
            title = f"{prop} \u00b7 {metric} \u00b7 {_loc_text(rs[0])}"
            how = ""
        else:
            what = "inputs" if prop == "local" else "regions"
            # the max over a set that changes with the width would jump where the set grows: keep the
            # locations present at every (model, family, width) of the chart when there are any
            cells: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
            for r in rs:
                cells[(r.model, r.family, r.width)].add(r.loc)
            common = set.intersection(*cells.values())
            if common and common != locs:
                left = len(locs) - len(common)
                rs = [r for r in rs if r.loc in common]
                scope = (f"the {len(common)} {what} present at every width and model of this chart "
                         f"({left} {what} present at only some widths are left out, so that the maximum is "
                         "taken over the same set everywhere)")
            elif common:
                scope = f"all {len(common)} {what}"
            else:
                scope = (f"the {what} present at each width (no {what[:-1]} is present at every width, so the set "
                         "changes from width to width)")
            n = len(common) if common else len(locs)
            title = f"{prop} \u00b7 {metric} \u00b7 max over {n} {what}"
            how = (f"Aggregated over {scope}: at each bit width the interval is [max of the lower ends, "
                   f"max of the upper ends], which encloses the largest deviation over those {what}; "
                   "the status is the worst one (violated > unknown > robust).")
        families = {r.family for r in rs}
        series_rows: dict[tuple[Any, ...], list[_Row]] = defaultdict(list)
        for r in rs:
            series_rows[(r.model, r.family)].append(r)
        series = []
        for (model, fam), srs in sorted(series_rows.items(), key=lambda kv: (_series_order(names[kv[0][0]]), kv[0][1] or "")):
            by_w: dict[int, list[_Row]] = defaultdict(list)
            for r in srs:
                by_w[r.width].append(r)  # type: ignore[index]
            pts = [_Point(w, max(r.lower or 0.0 for r in g), max(r.upper or 0.0 for r in g),
                          _worst(r.status for r in g), len(g), sum(r.status == "unknown" for r in g))
                   for w, g in sorted(by_w.items())]
            label = names[model] + (f" [{fam}]" if len(families) > 1 else "")
            marker = _FAMILY_MARKERS.get((fam or "").split("@")[0], "^")
            series.append(_Series(label, model, fam or "", styles[model], marker, pts))
        deltas = {r.delta for r in rs}
        delta = deltas.pop() if len(deltas) == 1 else None
        n_unknown = sum(s.unknown for s in series)
        caption = (f"{_n(len(rs), 'row')}. Vertical bars: certified intervals [lower, upper] of the maximum deviation "
                   "(upper proved, lower witnessed); marker at the upper end; log scale. "
                   "Twins that differ only by activation share a hue (ReLU solid, linear dashed, lighter). "
                   + (f"Hollow markers: {_n(n_unknown, 'unknown row')} (interval still certified). " if n_unknown else "")
                   + (f"Dotted line: \u03b4 = {delta:g}. " if delta is not None else
                      ("No \u03b4 line: the rows have different deltas. " if len({r.delta for r in rs}) > 1 else ""))
                   + how)
        charts.append(_DevChart(title, caption.strip(), series, delta, metric))
    return charts, note


def _heat_maps(rows: Sequence[_Row], names: dict[str | None, str]) -> tuple[list[_HeatMap], str]:
    groups: dict[tuple[Any, ...], dict[tuple[float, ...], _Row]] = defaultdict(dict)
    for r in rows:
        if r.prop == "local" and r.loc is not None and len(r.loc) == 2 and r.has_interval and not r.is_bits_row:
            g = groups[(r.model, r.quant, r.metric)]
            old = g.get(r.loc)
            if old is None or (old.upper or 0) < (r.upper or 0):  # several deltas: the larger upper end
                g[r.loc] = r
    groups = {k: v for k, v in groups.items() if len(v) >= MIN_HEAT_POINTS}
    if not groups:
        return [], ""
    by_model: dict[str | None, list[tuple[Any, ...]]] = defaultdict(list)
    for k in groups:
        by_model[k[0]].append(k)
    for m in by_model:  # widest first; schemes without a width last
        by_model[m].sort(key=lambda k: (-(groups[k][next(iter(groups[k]))].width or -1), k[1] or "", k[2]))
    quota = dict.fromkeys(by_model, 0)
    total = 0
    while total < MAX_HEAT_MAPS and any(quota[m] < len(by_model[m]) for m in by_model):
        for m in by_model:
            if total < MAX_HEAT_MAPS and quota[m] < len(by_model[m]):
                quota[m] += 1
                total += 1
    chosen = []
    for m, keys in by_model.items():
        n_pick = quota[m]
        idx = sorted({int(round(i)) for i in np.linspace(0, len(keys) - 1, n_pick)}) if n_pick else []
        chosen += [keys[i] for i in idx]
    omitted = len(groups) - len(chosen)
    note = (f"{omitted} more (model, scheme) heat maps not drawn (at most {MAX_HEAT_MAPS}; the widest and narrowest "
            "widths of each model and evenly spaced ones between were chosen)." if omitted else "")
    maps = []
    for k in chosen:
        pts = list(groups[k].values())
        deltas = {r.delta for r in pts}
        maps.append(_HeatMap(
            model=k[0], name=names[k[0]], quant=k[1] or "-", metric=k[2], width=pts[0].width,
            xs=np.array([r.loc[0] for r in pts]), ys=np.array([r.loc[1] for r in pts]),  # type: ignore[index]
            upper=np.array([r.upper for r in pts], dtype=float), status=[r.status for r in pts],
            delta=deltas.pop() if len(deltas) == 1 else None))
    return maps, note


def _resolve_model_path(model: str, base: Path | None) -> Path:
    p = Path(model)
    if p.exists() or p.is_absolute() or base is None:
        return p
    alt = base / p
    return alt if alt.exists() else p


def _add_boundaries(maps: Sequence[_HeatMap], base: Path | None, warnings: list[str]) -> None:
    """The decision boundary of each model (float64 forward pass; for drawing only)."""
    from .loading import load_model  # noqa: PLC0415
    nets: dict[str | None, Any] = {}
    failed: set[str | None] = set()
    for hm in maps:
        if hm.model is None:
            hm.note = "no model path in the rows: no decision boundary"
            continue
        if hm.model in failed:
            hm.note = "model could not be loaded: no decision boundary"
            continue
        if hm.model not in nets:
            try:
                nets[hm.model] = load_model(_resolve_model_path(hm.model, base))
            except (SmtquantError, OSError) as exc:
                failed.add(hm.model)
                warnings.append(f"model {hm.model}: cannot load it for the decision boundary ({exc}); "
                                "heat maps drawn without it")
                hm.note = "model could not be loaded: no decision boundary"
                continue
        net = nets[hm.model]
        if net.n_inputs != 2:
            hm.note = f"the model has {net.n_inputs} inputs, not 2: no decision boundary"
            continue
        x0, x1, y0, y1 = _extent(hm)
        gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        flat = np.column_stack([gx.ravel(), gy.ravel()])
        if net.output_activation == "logistic":
            z = net.probabilities(flat)[:, 1].reshape(gx.shape)
            hm.boundary = (gx, gy, z, "decision boundary (p = 0.5)")
        elif net.output_activation == "softmax":
            z = net.predict_class(flat).astype(float).reshape(gx.shape)
            hm.boundary = (gx, gy, z, "decision boundary (predicted class changes)")
        else:
            hm.note = "a regressor (identity output) has no decision boundary"


def _extent(hm: _HeatMap) -> tuple[float, float, float, float]:
    def pad(v: np.ndarray) -> tuple[float, float]:
        lo, hi = float(v.min()), float(v.max())
        u = np.unique(v)
        step = float(np.min(np.diff(u))) / 2 if len(u) > 1 else 0.5
        d = max(step, 0.03 * (hi - lo), 1e-9)
        return lo - d, hi + d
    return (*pad(hm.xs), *pad(hm.ys))


# -- drawing (matplotlib, imported lazily) ---------------------------------------------------------------------


def _mpl() -> Any:
    try:
        import matplotlib  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415, F401
    except ImportError:
        raise BackendUnavailable("smtquant report draws its figures with matplotlib, which is not installed; "
                                 "install it with: pip install smtquant[plots]") from None
    return matplotlib


def _png(fig: Any, dpi: int = 100) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _draw_deviation(fig: Any, ax: Any, chart: _DevChart) -> None:
    from matplotlib.lines import Line2D  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
    vals = [v for s in chart.series for p in s.points for v in (p.lower, p.upper) if v > 0]
    if chart.delta is not None and chart.delta > 0:
        vals.append(chart.delta)
    floor = min(vals) / 2 if vals else 1e-12
    n = len(chart.series)
    spread = min(0.16, 0.7 / max(n, 1))
    handles = []
    for i, s in enumerate(chart.series):
        off = (i - (n - 1) / 2) * spread
        xs = np.array([p.bits + off for p in s.points])
        lo = np.array([max(p.lower, floor) for p in s.points])
        up = np.array([max(p.upper, floor) for p in s.points])
        c = s.style.color
        ax.plot(xs, up, linestyle=s.style.linestyle, color=c, lw=1.3, alpha=0.9, zorder=2)
        ax.errorbar(xs, up, yerr=[up - lo, np.zeros_like(up)], fmt="none", ecolor=c, elinewidth=2.2, capsize=4,
                    capthick=1.6, zorder=3)
        known = np.array([p.status != "unknown" for p in s.points])
        if known.any():
            ax.plot(xs[known], up[known], ls="none", marker=s.marker, ms=6.5, mfc=c, mec=c, zorder=4)
        if (~known).any():
            ax.plot(xs[~known], up[~known], ls="none", marker=s.marker, ms=7.5, mfc="white", mec=c, mew=1.8, zorder=5)
        label = s.label + (f" \u2014 {s.unknown} unknown" if s.unknown else "")
        handles.append(Line2D([], [], color=c, ls=s.style.linestyle, marker=s.marker, mfc=c, mec=c, lw=1.3, label=label))
    if any(s.unknown for s in chart.series):
        handles.append(Line2D([], [], color="0.35", ls="none", marker="o", mfc="white", mec="0.35", mew=1.8,
                              label="hollow: unknown"))
    if chart.delta is not None and chart.delta > 0:
        ax.axhline(chart.delta, color="0.25", ls=":", lw=1.4, zorder=1)
        handles.append(Line2D([], [], color="0.25", ls=":", lw=1.4, label=f"\u03b4 = {chart.delta:g}"))
    ax.set_yscale("log")
    top = max(vals) if vals else 1.0
    ax.set_ylim(floor / 1.3, top * 2.5)
    widths = [p.bits for s in chart.series for p in s.points]
    lo_w, hi_w = min(widths), max(widths)
    ax.set_xlim(lo_w - 0.7, hi_w + 0.7)
    if hi_w - lo_w <= 16:
        ax.set_xticks(range(lo_w, hi_w + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("bits (fixed: fractional bits; int: total bits)")
    ax.set_ylabel(f"certified max deviation ({chart.metric})")
    ax.set_title(chart.title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)


def _heat_norm(maps: Sequence[_HeatMap]) -> dict[str, Any]:
    """One color scale per metric shared by all heat maps (log when the values span > 2 decades)."""
    from matplotlib.colors import LogNorm, Normalize  # noqa: PLC0415
    norms: dict[str, Any] = {}
    for metric in {hm.metric for hm in maps}:
        v = np.concatenate([hm.upper for hm in maps if hm.metric == metric])
        pos = v[v > 0]
        if len(pos) and pos.max() / pos.min() > 100:
            top = float(pos.max())
            norms[metric] = LogNorm(vmin=max(float(pos.min()), top * 10.0 ** -HEAT_DECADES), vmax=top)
        else:
            hi = float(v.max()) if len(v) else 1.0
            norms[metric] = Normalize(vmin=0.0, vmax=hi if hi > 0 else 1.0)
    return norms


def _is_grid(hm: _HeatMap) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(grid x values, grid y values, mask of the points on the grid) when at least 80% of the
    inputs form a full grid (e.g. a sweep's grid plus a few hand-picked inputs), else None."""
    xs_count, ys_count = Counter(hm.xs.tolist()), Counter(hm.ys.tolist())
    ux = np.array(sorted(v for v, n in xs_count.items() if n >= 2))
    uy = np.array(sorted(v for v, n in ys_count.items() if n >= 2))
    if len(ux) < 2 or len(uy) < 2:
        return None
    on = np.isin(hm.xs, ux) & np.isin(hm.ys, uy)
    cells = {(x, y) for x, y, o in zip(hm.xs.tolist(), hm.ys.tolist(), on) if o}
    if len(cells) == len(ux) * len(uy) and on.sum() >= 0.8 * len(hm.xs):
        return ux, uy, on
    return None


def _draw_heat(fig: Any, ax: Any, hm: _HeatMap, norm: Any) -> None:
    import matplotlib.patheffects as pe  # noqa: PLC0415
    from matplotlib.colors import LogNorm  # noqa: PLC0415
    from matplotlib.lines import Line2D  # noqa: PLC0415
    vals = hm.upper.copy()
    if isinstance(norm, LogNorm):
        vals = np.maximum(vals, float(norm.vmin or 0.0))
    grid = _is_grid(hm)
    if grid is not None:
        ux, uy, on = grid
        c = np.full((len(uy), len(ux)), np.nan)
        c[np.searchsorted(uy, hm.ys[on]), np.searchsorted(ux, hm.xs[on])] = vals[on]
        mappable = ax.pcolormesh(ux, uy, c, shading="nearest", norm=norm, cmap="viridis")
        if (~on).any():  # inputs off the grid: circles with a black edge on top
            ax.scatter(hm.xs[~on], hm.ys[~on], c=vals[~on], norm=norm, cmap="viridis", s=60, edgecolors="black",
                       linewidths=1.0, zorder=4)
    else:
        size = float(np.clip(9000.0 / len(vals), 10.0, 150.0))
        mappable = ax.scatter(hm.xs, hm.ys, c=vals, norm=norm, cmap="viridis", s=size, edgecolors="none")
    below = bool(np.any(hm.upper < norm.vmin)) if isinstance(norm, LogNorm) else False
    cb = fig.colorbar(mappable, ax=ax, fraction=0.05, pad=0.03, extend="min" if below else "neither")
    cb.set_label(f"certified upper deviation ({hm.metric})")
    if hm.delta is not None and norm.vmin <= hm.delta <= norm.vmax:
        cb.ax.axhline(hm.delta, color="red", lw=1.5)
    handles = []
    if hm.boundary is not None:
        gx, gy, z, label = hm.boundary
        zmin, zmax = float(np.nanmin(z)), float(np.nanmax(z))
        levels = [0.5] if label.endswith("(p = 0.5)") else [k + 0.5 for k in range(int(zmin), int(zmax))]
        levels = [v for v in levels if zmin < v < zmax]
        if levels:
            cs = ax.contour(gx, gy, z, levels=levels, colors="white", linewidths=2.0)
            cs.set(path_effects=[pe.Stroke(linewidth=3.6, foreground="black"), pe.Normal()])
            handles.append(Line2D([], [], color="white", lw=2.0, label=label,
                                  path_effects=[pe.Stroke(linewidth=3.6, foreground="black"), pe.Normal()]))
        else:
            hm.note = (hm.note + "; " if hm.note else "") + "the decision boundary does not cross the plotted area"
    st = np.array(hm.status)
    if (st == "violated").any():
        ax.scatter(hm.xs[st == "violated"], hm.ys[st == "violated"], marker="x", c="red", s=30, linewidths=1.5, zorder=5)
        handles.append(Line2D([], [], color="red", ls="none", marker="x", mew=1.5,
                              label=f"violated ({int((st == 'violated').sum())})"))
    if (st == "unknown").any():
        ax.scatter(hm.xs[st == "unknown"], hm.ys[st == "unknown"], marker="o", facecolors="none", edgecolors="orange",
                   s=40, linewidths=1.5, zorder=5)
        handles.append(Line2D([], [], color="orange", ls="none", marker="o", mfc="none", mew=1.5,
                              label=f"unknown ({int((st == 'unknown').sum())})"))
    x0, x1, y0, y1 = _extent(hm)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(f"{hm.name} \u00b7 {hm.quant} \u00b7 {hm.metric}", fontsize=10)
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)


def _draw_status_bars(fig: Any, ax: Any, rows: Sequence[_Row], names: dict[str | None, str]) -> None:
    models = list(dict.fromkeys(r.model for r in rows))
    counts = {m: Counter(r.status for r in rows if r.model == m) for m in models}
    y = np.arange(len(models))
    left = np.zeros(len(models))
    for s in STATUSES:
        v = np.array([counts[m][s] for m in models], dtype=float)
        ax.barh(y, v, left=left, color=_STATUS_COLORS[s], label=s)
        left += v
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
    ax.set_yticks(y, [names[m] for m in models])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rows")
    ax.set_title("status by model (no row has a certified interval to plot)", fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def _figure(draws: Sequence[Callable[[Any, Any], None]], cols: int, size: tuple[float, float],
            margins: dict[str, float] | None = None) -> Any:
    """A figure of panels; ``margins`` (subplots_adjust) for a single panel of known shape is much
    faster to render than constrained layout, which is used for grids of panels."""
    from matplotlib.figure import Figure  # noqa: PLC0415
    n = len(draws)
    cols = max(1, min(cols, n))
    nrows = math.ceil(n / cols)
    single = n == 1 and margins is not None
    fig = Figure(figsize=(size[0] * cols, size[1] * nrows), layout=None if single else "constrained")
    if single:
        fig.subplots_adjust(**margins)  # type: ignore[arg-type]
    for i, draw in enumerate(draws):
        draw(fig, fig.add_subplot(nrows, cols, i + 1))
    return fig


_DEV_MARGINS = {"left": 0.12, "right": 0.97, "bottom": 0.12, "top": 0.92}
_HEAT_MARGINS = {"left": 0.135, "right": 0.84, "bottom": 0.2, "top": 0.93}


# -- HTML ----------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1150px;padding:0 1em;color:#222;
line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666;font-size:.9em}.badge{display:inline-block;padding:.15em .6em;border-radius:1em;color:#fff;margin-right:.4em;
font-weight:600}.robust{background:#2e7d32}.violated{background:#c62828}.unknown{background:#e08a00}
.warn{background:#fff8e1;border:1px solid #f0c36d;padding:.6em 1em;border-radius:4px}
.note{color:#555;font-size:.92em}figure{margin:1em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555;max-width:640px}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}td.num{text-align:right;
font-variant-numeric:tabular-nums}td.s-robust{color:#2e7d32;font-weight:600}td.s-violated{color:#c62828;font-weight:600}
td.s-unknown{color:#b86e00;font-weight:600}code{font-size:.95em}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _img(png: bytes, alt: str, caption: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>\n")


def _table(header: Sequence[str], body: Sequence[Sequence[tuple[str, str]]]) -> str:
    """body cells are (html, class)."""
    h = "".join(f"<th>{_e(c)}</th>" for c in header)
    rows = "".join("<tr>" + "".join(f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>" for cell, cls in r)
                   + "</tr>\n" for r in body)
    return f"<table><thead><tr>{h}</tr></thead><tbody>\n{rows}</tbody></table>\n"


def _header_html(title: str, source: str, rows: Sequence[_Row], warnings: Sequence[str], dups: int) -> str:
    counts = Counter(r.status for r in rows)
    parts = [f"<h1>{_e(title)}</h1>",
             f'<p class="meta">source: {_e(source)} \u00b7 written {_e(datetime.now().strftime("%Y-%m-%d %H:%M"))} '
             f"by smtquant report</p>",
             f"<p><b>{len(rows)} rows</b>: " + "".join(
                 f'<span class="badge {s}">{counts[s]} {s}</span>' for s in STATUSES) + "</p>"]
    unknown = [r.reason for r in rows if r.status == "unknown"]
    if unknown:
        groups = _reason_groups(unknown)
        parts.append(f"<p><b>{len(unknown)} unknown</b> (not proved either way), by reason:</p><ul>"
                     + "".join(f"<li>{_e(g)} ({n})</li>" for g, n in groups) + "</ul>")
    if dups:
        parts.append(f'<p class="note">{dups} duplicate row{"s" if dups != 1 else ""} (same model, property, '
                     "input/region, scheme, metric and delta) replaced by the later row of each.</p>")
    if warnings:
        parts.append(f'<div class="warn"><b>{len(warnings)} warning{"s" if len(warnings) != 1 else ""}</b> '
                     "(skipped lines are not in this report):<ul>"
                     + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")
    return "\n".join(parts) + "\n"


def _bits_tables_html(rows: Sequence[_Row], names: dict[str | None, str]) -> str:
    out = []
    bits_rows = [r for r in rows if r.is_bits_row]
    if bits_rows:
        body = []
        for r in bits_rows:
            if r.bits_answer is not None:
                ans = str(r.bits_answer)
            else:
                mx = r.raw.get("max_bits")
                ans = f"none \u2264 {mx}" if isinstance(mx, int) and not isinstance(mx, bool) else "none proved"
            body.append([(_e(names[r.model]), ""), (_e(r.prop), ""), (_e(_loc_text(r)), ""), (_e(r.metric), ""),
                         (_e(_g(r.delta)), "num"), (f"<b>{_e(ans)}</b>", "num"), (_e(r.quant or "-"), ""),
                         (_e(r.status), f"s-{r.status}"), (_e(r.reason), "")])
        out.append("<p>From <code>smtquant bits</code> rows (proved robust at the answer; the row's reason says what "
                   "happened one bit below):</p>")
        out.append(_table(["model", "property", "input / region", "metric", "delta", "bits", "scheme at answer",
                           "status", "reason"], body))
    derived = _fewest(rows)
    if derived:
        out.append("<p>Derived from the sweep rows: for each property, the smallest bit width proved robust such that "
                   "every larger width in the data is robust too. Marks: "
                   + ", ".join(f"{_STATUS_MARK[s]} {s}" for s in STATUSES) + ".</p>")
        summary: dict[tuple[Any, ...], list[FewestBits]] = defaultdict(list)
        for f in derived:
            summary[(f.model, f.property, f.metric, f.delta, f.family)].append(f)
        if any(len(v) > 1 for v in summary.values()):
            body = []
            for (model, prop, metric, delta, fam), fs in summary.items():
                answers = [f.bits for f in fs]
                nones = sum(a is None for a in answers)
                known = [a for a in answers if a is not None]
                every = str(max(known)) if not nones else f"none ({nones} of {len(fs)} not robust at their widest width)"
                spread = f"{min(known)}\u2013{max(known)}" if known else "-"
                body.append([(_e(names[model]), ""), (_e(prop), ""), (_e(metric), ""), (_e(_g(delta)), "num"),
                             (_e(fam), ""), (str(len(fs)), "num"), (f"<b>{_e(every)}</b>", "num"),
                             (_e(spread) + (f" ({nones} none)" if nones else ""), "num"),
                             (str(sum(bool(f.unknown_below) for f in fs)), "num")])
            out.append("<p>Per model (the width that makes <i>every</i> input/region of the group robust is the largest "
                       "of the per-property answers):</p>")
            out.append(_table(["model", "property", "metric", "delta", "family", "inputs / regions",
                               "fewest bits for all", "range of answers", "with an unknown just below"], body))
        body = []
        for f in derived:
            ans = str(f.bits) if f.bits is not None else f"none \u2264 {max(w for w, _ in f.tested)}"
            tested = " ".join(f"{w}{_STATUS_MARK[s]}" for w, s in f.tested)
            body.append([(_e(names[f.model]), ""), (_e(f.property), ""), (_e(f.location), ""), (_e(f.metric), ""),
                         (_e(_g(f.delta)), "num"), (_e(f.family), ""), (f"<b>{_e(ans)}</b>", "num"),
                         (_e(f.scheme or "-"), ""), (_e(tested), ""), (_e("; ".join(f.notes)), "")])
        table = _table(["model", "property", "input / region", "metric", "delta", "family", "fewest bits",
                        "scheme at answer", "tested widths", "notes"], body)
        if len(derived) > 20:
            out.append(f"<details><summary>per property ({len(derived)} rows)</summary>{table}</details>")
        else:
            out.append(table)
    if not out:
        out.append('<p class="note">No row has a bit width (fixed:F, fixed:I.F, int:B, int:B:channel) and no row comes '
                   "from <code>smtquant bits</code>: nothing to derive.</p>")
    return "".join(out)


def _rows_table_html(rows: Sequence[_Row], names: dict[str | None, str]) -> str:
    body = []
    for i, r in enumerate(rows, start=1):
        model = f'<span title="{_e(r.model)}">{_e(names[r.model])}</span>' if r.model else _e(names[r.model])
        body.append([(str(i), "num"), (model, ""), (_e(r.prop), ""), (_e(_loc_text(r)), ""),
                     (_e(r.quant or "-"), ""), (_e(r.metric), ""), (_e(_g(r.delta)), "num"),
                     (_e(r.status), f"s-{r.status}"), (_e(_interval_text(r)), "num"), (_e(r.solver or "-"), ""),
                     (_e("-" if r.time_s is None else f"{r.time_s:.3g} s"), "num"), (_e(r.reason), "")])
    return _table(["#", "model", "property", "input / region", "quant", "metric", "delta", "status",
                   "max deviation [lower, upper]", "solver", "time", "reason"], body)


# -- entry point -------------------------------------------------------------------------------------------------


def build_report(rows_or_path: str | Path | Iterable[dict[str, Any]], out_path: str | Path, *,
                 title: str | None = None) -> ReportSummary:
    """Write a report of result rows (a JSON Lines file, or row dicts as ``Verdict.to_json`` gives).

    ``out_path`` ending in ``.html``: one self-contained HTML file (figures embedded as PNG).
    ``.png``: one figure, the deviation-vs-bits chart(s) if some rows have a certified interval
    and a bit width, else the heat map(s), else a status bar chart. Any other suffix, an empty
    set of rows for a PNG, or an unwritable path is a :class:`ReportError`; a missing matplotlib
    is a :class:`BackendUnavailable`. Skipped lines are listed in the report and on stderr.
    """
    out = Path(out_path)
    kind = out.suffix.lower()
    if kind not in (".html", ".png"):
        raise ReportError(f"{out}: the report must end in .html (a self-contained page) or .png (one figure). "
                          f"Got {out.suffix or 'no suffix'!r} instead.")
    _mpl()
    warnings: list[str] = []
    base: Path | None = None
    if isinstance(rows_or_path, (str, Path)):
        src = Path(rows_or_path)
        raw, warnings = load_results(src)
        source, base = str(src), src.resolve().parent
        label = src.name
    else:
        raw, source, label = list(rows_or_path), "rows passed in", None
    rows, dups = _normalize(raw, warnings, label)
    names = _display_names(r.model for r in rows)
    styles = _styles(names)
    charts, chart_note = _dev_charts(rows, names, styles)
    maps, map_note = _heat_maps(rows, names)
    if maps:
        _add_boundaries(maps, base, warnings)
    norms = _heat_norm(maps) if maps else {}
    for w in warnings[:MAX_STDERR_WARNINGS]:
        print(f"smtquant report: warning: {w}", file=sys.stderr)
    if len(warnings) > MAX_STDERR_WARNINGS:
        print(f"smtquant report: warning: ... and {len(warnings) - MAX_STDERR_WARNINGS} more (listed in the report)",
              file=sys.stderr)
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    n_fig = 0
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if kind == ".png":
            if not rows:
                raise ReportError(f"{out}: no valid rows to plot ({len(warnings)} lines skipped).")
            if charts:
                fig = _figure([partial(_draw_deviation, chart=c) for c in charts], 3, (6.4, 4.4))
            elif maps:
                fig = _figure([partial(_draw_heat, hm=h, norm=norms[h.metric]) for h in maps], 3, (6.0, 4.8))
            else:
                fig = _figure([partial(_draw_status_bars, rows=rows, names=names)], 1, (7.0, 1.4 + 0.45 * len(names)))
            out.write_bytes(_png(fig, dpi=120))
            n_fig = 1
        else:
            doc, n_fig = _html(title or f"smtquant report \u2014 {label or 'results'}", source, rows, warnings, dups,
                               names, charts, chart_note, maps, map_note, norms)
            out.write_text(doc, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{out}: cannot write the report ({exc.strerror or exc}).") from None
    return ReportSummary(rows=len(rows), counts=counts, warnings=tuple(warnings), files=(out,), figures=n_fig,
                         duplicates=dups)


def _html(title: str, source: str, rows: Sequence[_Row], warnings: Sequence[str], dups: int,
          names: dict[str | None, str], charts: Sequence[_DevChart], chart_note: str, maps: Sequence[_HeatMap],
          map_note: str, norms: dict[str, Any]) -> tuple[str, int]:
    n_fig = 0
    body = [_header_html(title, source, rows, warnings, dups)]
    body.append("<h2>Certified maximum deviation vs bits</h2>")
    if charts:
        for c in charts:
            fig = _figure([partial(_draw_deviation, chart=c)], 1, (6.4, 4.4), _DEV_MARGINS)
            body.append(_img(_png(fig), c.title, c.caption))
            n_fig += 1
        if chart_note:
            body.append(f'<p class="note">{_e(chart_note)}</p>')
    else:
        body.append('<p class="note">No chart: no row has both a certified interval (max_deviation, from '
                    "<code>--quantify</code>) and a scheme with a bit width (fixed:F, fixed:I.F, int:B, int:B:channel, "
                    "or per-layer schemes that share one width).</p>")
    other = sum(r.has_interval and r.width is None for r in rows)
    if other:
        body.append(f'<p class="note">{other} rows with a certified interval use schemes without a bit width '
                    "(float16, bfloat16, eps, rel, or mixed per-layer widths); they are in the table of all rows.</p>")
    body.append("<h2>Fewest bits per model</h2>")
    body.append(_bits_tables_html(rows, names))
    body.append("<h2>Certified deviation over the input plane</h2>")
    if maps:
        body.append('<p class="note">Local rows of 2-D models, one map per (model, scheme): color = certified upper end '
                    "of the deviation at each input (one color scale per metric, shared by all maps); red \u00d7 = "
                    "violated, orange ring = unknown; white line = the float model's decision boundary; red tick on the "
                    "color bar = \u03b4.</p>")
        for hm in maps:
            fig = _figure([partial(_draw_heat, hm=hm, norm=norms[hm.metric])], 1, (6.0, 5.0), _HEAT_MARGINS)
            png = _png(fig)
            grid = _is_grid(hm)
            if grid is None:
                shape = "scattered inputs"
            else:
                off = int((~grid[2]).sum())
                shape = (f"a {len(grid[0])}\u00d7{len(grid[1])} grid"
                         + (f" drawn as cells, and {off} inputs off the grid drawn as circles" if off else ""))
            cap = (f"{hm.name}, {hm.quant}, {hm.metric}: {len(hm.xs)} inputs ({shape}); upper ends from "
                   f"{_directed(float(hm.upper.min()), up=True)} to {_directed(float(hm.upper.max()), up=True)}"
                   + f"; {hm.status.count('violated')} violated, {hm.status.count('unknown')} unknown"
                   + (f"; {hm.note}" if hm.note else "")
                   + (f"; values below {_g(norms[hm.metric].vmin, 2)} share the bottom color (the color scale spans "
                      f"{HEAT_DECADES} decades)" if float(hm.upper.min()) < norms[hm.metric].vmin else "") + ".")
            body.append(_img(png, f"heat map {hm.name} {hm.quant}", cap))
            n_fig += 1
        if map_note:
            body.append(f'<p class="note">{_e(map_note)}</p>')
    else:
        body.append(f'<p class="note">No heat map: it needs local rows of a 2-D model with a certified interval at '
                    f"{MIN_HEAT_POINTS} or more inputs for one scheme.</p>")
    body.append(f"<h2>All rows ({len(rows)})</h2>")
    body.append(_rows_table_html(rows, names) if rows else '<p class="note">No valid rows.</p>')
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n" + "".join(body) + "</body></html>\n")
    return doc, n_fig
