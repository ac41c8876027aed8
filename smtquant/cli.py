"""The command line: argparse adapter over the library. main(argv) -> exit status; the only
place that knows exit codes (0 robust, 1 violated, 2 usage/input error, 3 unknown)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, NoReturn

from . import __version__
from .boxes import InputRegion
from .errors import SmtquantError
from .loading import load_model, save_model
from .network import Network
from .properties import GlobalRobustness, LocalRobustness, Metric, Property
from .result import Status, Verdict, aggregate
from .schemes import parse_scheme
from .search import quantify
from .verify import check

EXIT = {Status.ROBUST: 0, Status.VIOLATED: 1, Status.UNKNOWN: 3}
USAGE_ERROR = 2

DESCRIPTION = """\
Prove, or refute with a concrete counterexample, that a trained MLP stays trustworthy when its
parameters are quantized. Every parameter may move within its rounding error (the parameter
box of a scheme); smtquant asks whether the network's confidence can move by more than DELTA
at one input (local) or anywhere in an input box (global), or certifies the largest deviation
as an interval [lower, upper] (--quantify).

Answers: robust (proved), violated (with a witness re-checked exactly), unknown (with the
reason). Exit status: 0 all robust, 1 any violated, 2 usage or input error, 3 any unknown.
"""

SCHEME_HELP = (
    "quantization scheme: fixed:F, fixed:I.F, int:B, int:B:channel, float16, bfloat16, eps:E, rel:R; "
    "add @weights to leave biases exact, or give one scheme per layer as S1/S2/..."
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(p: argparse.ArgumentParser, quantifiable: bool = True) -> None:
    p.add_argument("model", help="model file: smtquant .json, .skops, or .joblib/.pkl with --trust")
    p.add_argument("--quant", required=True, metavar="SCHEME", help=SCHEME_HELP)
    p.add_argument("--delta", metavar="D",
                   help="bound on the deviation: robust means max deviation <= D (not used by --metric class)")
    p.add_argument("--quantify", action="store_true",
                   help="certify the largest deviation as an interval [lower, upper] (judged against --delta if given)")
    p.add_argument("--tolerance", metavar="T", help="with --quantify: stop when upper - lower <= T (default 1e-6)")
    p.add_argument("--metric", default="confidence", choices=[m.value for m in Metric],
                   help="confidence: max |p' - p| of the class probabilities (default); logit: max |z' - z| of the "
                        "output pre-activations; class: the predicted class never changes")
    p.add_argument("--solver", default="auto", metavar="NAME",
                   help="auto (default: the engine where it applies, else z3); engine: exact branch and bound "
                        "with LP relaxations and rational certificates; z3: weights eliminated, one variable per "
                        "neuron; z3-direct: one variable per parameter, as in the reference study; envelope: "
                        "piecewise-linear envelopes of tanh/logistic units with refinement (z3); dreal: dReal "
                        "(tanh, logistic, softmax natively; needs pip install dreal and libibex, see README)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="wall-clock limit per property; when it runs out the answer is unknown "
                        "(a quantification keeps the interval it has)")
    p.add_argument("--precision", type=float, metavar="DELTA",
                   help="with --solver dreal: dReal's precision delta (default 1e-3); its delta-sat answers are "
                        "re-checked exactly, so this trades speed for fewer unknowns, never soundness")
    p.add_argument("--json", action="store_true", help="print one JSON object per property (JSON Lines) on stdout")
    p.add_argument("-o", "--output", metavar="FILE.jsonl",
                   help="also append each result as a JSON line to this file, flushed as it is decided")
    p.add_argument("--trust", action="store_true", help="allow loading pickle/joblib files (unpickling runs code)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="smtquant", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"smtquant {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("info", help="describe a model file", description="Describe a model: architecture, "
                       "activations, parameter ranges, and (with --quant) the parameter box of a scheme.")
    p.add_argument("model")
    p.add_argument("--quant", metavar="SCHEME", help=SCHEME_HELP)
    p.add_argument("--json", action="store_true")
    p.add_argument("--trust", action="store_true", help="allow loading pickle/joblib files (unpickling runs code)")

    p = sub.add_parser("local", help="robustness at given inputs",
                       description="Local robustness: for every parameter vector in the box of --quant, does the "
                                   "deviation at the input stay <= --delta? One result per input, written as it is "
                                   "decided.",
                       epilog="examples:\n  smtquant local models/moons_relu.json --input 0.5,0.25 --quant fixed:4 "
                              "--delta 0.05\n  smtquant local models/moons_relu.json --inputs points.csv --quant int:8 "
                              "--quantify --json -o results.jsonl",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--input", metavar="X1,X2,...", help="one input, comma-separated")
    g.add_argument("--inputs", metavar="FILE.csv",
                   help="many inputs, one per CSV row (a header row is skipped; with input names it selects columns)")

    p = sub.add_parser("global", help="robustness over an input box",
                       description="Global robustness: for every input in the box --region and every parameter "
                                   "vector in the box of --quant, does the deviation stay <= --delta?",
                       epilog="example:\n  smtquant global models/hand_2x2.json --region -1:1,-1:1 --quant fixed:4 "
                              "--metric logit --quantify --timeout 60",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(p)
    p.add_argument("--region", required=True, metavar="LO1:HI1,LO2:HI2,...", help="the input box, one lo:hi per input")

    p = sub.add_parser("bits", help="the fewest bits that are proved robust",
                       description="The fewest bits of a scheme family for which the property is proved robust, "
                                   "with the answer one bit below (violated with a witness, or unknown). The "
                                   "parameter boxes are nested as bits grow (the radius shrinks around the same "
                                   "parameters), so a bisection over the widths is sound.",
                       epilog="examples:\n  smtquant bits models/moons_relu.json --input 0.5,0.25 --delta 0.01\n"
                              "  smtquant bits models/moons_relu_8x8.json --region -1:2,-1:1.5 --delta 0.05 "
                              "--family int --per-layer --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model file: smtquant .json, .skops, or .joblib/.pkl with --trust")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--input", metavar="X1,X2,...", help="local robustness at this input")
    g.add_argument("--inputs", metavar="FILE.csv", help="local robustness at each input of a CSV file (one answer each)")
    g.add_argument("--region", metavar="LO1:HI1,...", help="global robustness over this input box")
    p.add_argument("--delta", metavar="D", help="bound on the deviation (required except with --metric class)")
    p.add_argument("--family", default="fixed", choices=["fixed", "int"],
                   help="fixed: fixed:F, F fractional bits (default); int: int:B, B-bit symmetric per tensor")
    p.add_argument("--max-bits", type=int, default=16, metavar="N", help="the largest width tried (default 16)")
    p.add_argument("--min-bits", type=int, metavar="N", help="the smallest width tried (default: 0 fixed, 2 int)")
    p.add_argument("--per-layer", action="store_true",
                   help="also search one width per layer that minimizes the model size (parameters x stored bits) "
                        "while staying proved robust; reported beside the uniform answer")
    p.add_argument("--metric", default="confidence", choices=[m.value for m in Metric], help="as for local/global")
    p.add_argument("--solver", default="auto", metavar="NAME", help="as for local/global")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="wall-clock limit per check (an unknown counts as not proved)")
    p.add_argument("--json", action="store_true", help="one JSON object per property, with bits and quant")
    p.add_argument("-o", "--output", metavar="FILE.jsonl", help="also append each result to this file")
    p.add_argument("--trust", action="store_true", help="allow loading pickle/joblib files (unpickling runs code)")

    p = sub.add_parser("sweep", help="many properties, resumable and parallel",
                       description="Every combination of models x inputs (or regions) x schemes, one JSON Lines row "
                                   "per property appended to -o as soon as it is decided. A rerun with the same "
                                   "arguments skips the properties already in the file, so an interrupted or killed "
                                   "sweep resumes where it stopped.",
                       epilog="examples:\n  smtquant sweep models/moons_relu.json models/moons_linear.json "
                              "--grid -1:2:9,-1:1.5:7 --quant fixed:2..fixed:10 --quantify -o moons.jsonl --jobs 2\n"
                              "  smtquant sweep models/*.json --region -1:2,-1:1.5 --quant int:4..int:8 --delta 0.05 "
                              "-o global.jsonl --scheduler tcp://10.0.0.5:8786\n"
                              "  smtquant report moons.jsonl -o moons.html",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model files")
    p.add_argument("--inputs", metavar="FILE.csv", help="local robustness at each input of a CSV file")
    p.add_argument("--grid", metavar="LO:HI:N,...", help="local robustness on a grid: N evenly spaced values per input")
    p.add_argument("--region", action="append", default=[], metavar="LO1:HI1,...",
                   help="global robustness over this input box (repeatable)")
    p.add_argument("--quant", action="append", required=True, metavar="SCHEMES",
                   help="schemes, comma-separated, with ranges such as fixed:2..fixed:12 or int:4..int:8 (repeatable)")
    p.add_argument("--delta", metavar="D", help="bound on the deviation")
    p.add_argument("--quantify", action="store_true", help="certify the largest deviation as an interval for each property")
    p.add_argument("--tolerance", metavar="T", help="with --quantify: interval width to reach (default 1e-6)")
    p.add_argument("--metric", default="confidence", choices=[m.value for m in Metric], help="as for local/global")
    p.add_argument("--solver", default="auto", metavar="NAME", help="as for local/global")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-clock limit per property")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--jobs", type=int, default=1, metavar="N", help="run N properties at once in local processes")
    w.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (e.g. tcp://host:8786); needs pip install 'dask[distributed]'")
    p.add_argument("-o", "--output", required=True, metavar="RESULTS.jsonl", help="the results file (appended to)")
    p.add_argument("--retry-unknown", action="store_true", help="run again the properties whose row is unknown")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--trust", action="store_true", help="allow loading pickle/joblib files (unpickling runs code)")

    p = sub.add_parser("report", help="tables and plots of a results file",
                       description="A self-contained HTML report (plots embedded) or one PNG figure from a JSON "
                                   "Lines results file of local/global/bits/sweep: certified deviation vs bits, "
                                   "fewest bits per model, heat maps over the input plane, every status counted.")
    p.add_argument("results", metavar="RESULTS.jsonl")
    p.add_argument("-o", "--output", required=True, metavar="OUT.html|OUT.png")
    p.add_argument("--title", help="title of the report")

    p = sub.add_parser("quantize", help="write the quantized model",
                       description="Round every parameter with the scheme and write the quantized network as JSON.")
    p.add_argument("model")
    p.add_argument("--quant", required=True, metavar="SCHEME", help=SCHEME_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT.json")
    p.add_argument("--trust", action="store_true", help="allow loading pickle/joblib files (unpickling runs code)")
    return parser


# --------------------------------------------------------------------------- parsing helpers

def _number(text: str, what: str) -> Fraction:
    """A decimal number taken exactly ("0.1" is 1/10); one-line error otherwise."""
    t = text.strip()
    try:
        f = float(t)
    except ValueError:
        raise SmtquantError(f"{what} must be a number. Got {text!r} instead.") from None
    if not math.isfinite(f):
        raise SmtquantError(f"{what} must be finite. Got {text!r} instead.")
    return Fraction(t)


def parse_input(text: str) -> list[Fraction]:
    parts = [s for s in text.split(",")]
    if not text.strip() or any(not s.strip() for s in parts):
        raise SmtquantError(f"--input must be comma-separated numbers like 0.5,-1.25. Got {text!r} instead.")
    return [_number(s, f"--input value {i}") for i, s in enumerate(parts)]


def parse_region(text: str) -> InputRegion:
    pairs = []
    for i, part in enumerate(text.split(",")):
        bits = part.split(":")
        if len(bits) != 2:
            raise SmtquantError(f"--region dimension {i} must be lo:hi. Got {part!r} instead.")
        lo, hi = (_number(b, f"--region dimension {i}") for b in bits)
        if lo > hi:
            raise SmtquantError(f"--region dimension {i} is inverted: {bits[0].strip()} > {bits[1].strip()}.")
        pairs.append((lo, hi))
    return InputRegion(tuple(pairs))


def read_inputs_csv(path: str, net: Network) -> list[list[Fraction]]:
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except OSError as exc:
        raise SmtquantError(f"{p}: cannot read ({exc.strerror or exc}).") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SmtquantError(f"{p}: not a readable CSV file ({exc}).") from None
    if not rows:
        raise SmtquantError(f"{p}: holds no rows; expected one input per row.")
    columns: list[int] | None = None
    first_row = 1
    first = rows[0]
    try:
        [float(c) for c in first]
    except ValueError:  # a header
        header = [c.strip() for c in first]
        rows = rows[1:]
        first_row = 2
        if net.input_names and all(n in header for n in net.input_names):
            columns = [header.index(n) for n in net.input_names]
        if not rows:
            raise SmtquantError(f"{p}: holds a header but no rows.") from None
    out = []
    for r, row in enumerate(rows, start=first_row):
        cells = [row[c] for c in columns] if columns is not None else row
        if len(cells) != net.n_inputs:
            raise SmtquantError(f"{p}: row {r} has {len(cells)} values; the model expects {net.n_inputs}.")
        out.append([_number(c, f"{p}: row {r} value {k}") for k, c in enumerate(cells)])
    return out


# --------------------------------------------------------------------------- output

def _fmt_point(vals: Sequence[Fraction]) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in vals) + ")"


def _human(v: Verdict) -> str:
    where = _fmt_point(v.input) if v.input is not None else (
        "[" + ", ".join(f"{float(a):.6g}:{float(b):.6g}" for a, b in (v.region or ())) + "]")
    parts = [f"{v.property:<6}", where, v.quant, v.status.value.upper()]
    if v.max_deviation is not None:
        j = v.max_deviation.to_json()
        parts.append(f"max {v.metric} deviation in [{j['lower']:.9g}, {j['upper']:.9g}]")
    if v.witness is not None and v.status is Status.VIOLATED:
        parts.append(f"witness deviation {v.witness.to_json()['deviation']:.9g} at {_fmt_point(v.witness.input)}")
    parts.append(f"({v.time_s:.2f} s) {v.reason}")
    return "  ".join(parts)


class _Sink:
    """Writes each verdict as it is decided: stdout (JSON Lines or a line of text) and -o FILE."""

    def __init__(self, as_json: bool, out: IO[str] | None, human: Callable[[Verdict], str] | None = None) -> None:
        self.as_json, self.out, self.human = as_json, out, human or _human

    def emit(self, v: Verdict) -> None:
        row = json.dumps(v.to_json())
        print(row if self.as_json else self.human(v), flush=True)
        if self.out is not None:
            self.out.write(row + "\n")
            self.out.flush()


# --------------------------------------------------------------------------- commands

def _cmd_info(args: argparse.Namespace) -> int:
    net = load_model(args.model, trust=args.trust)
    info: dict[str, Any] = {
        "model": args.model,
        "architecture": "-".join(str(s) for s in net.sizes),
        "hidden_activation": net.hidden_activation,
        "output_activation": net.output_activation,
        "parameters": net.n_parameters,
        "input_names": list(net.input_names) if net.input_names else None,
        "classes": list(net.classes) if net.classes else None,
        "max_abs_parameter": max(float(abs(a).max()) for _, a in net.parameters()),
    }
    if args.quant:
        sch = parse_scheme(args.quant)
        box = sch.box(net)
        info["quant"] = sch.spec
        info["max_radius"] = float(box.max_radius)
    if args.json:
        print(json.dumps(info))
    else:
        print(f"{args.model}: {net.describe()}")
        for k, v in info.items():
            if k != "model" and v is not None:
                print(f"  {k}: {v}")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    net = load_model(args.model, trust=args.trust)
    sch = parse_scheme(args.quant)
    qnet = sch.quantize(net)
    save_model(qnet, args.output)
    moved = max(float(abs(a.weights - b.weights).max()) for a, b in zip(qnet.layers, net.layers))
    print(f"wrote {args.output}: {net.describe()} quantized with {sch.spec} "
          f"(largest weight change {moved:.6g})", file=sys.stderr)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    metric = Metric(args.metric)
    if metric is Metric.CLASS and (args.delta is not None or args.quantify):
        raise SmtquantError("--metric class decides whether the predicted class can change; "
                            "it takes neither --delta nor --quantify.")
    if metric is not Metric.CLASS and args.delta is None and not args.quantify:
        raise SmtquantError("give --delta D (is the deviation at most D?) or --quantify (how large can it be?).")
    if args.tolerance is not None and not args.quantify:
        raise SmtquantError("--tolerance only applies with --quantify.")
    _timeout(args)
    if args.precision is not None:
        if args.solver != "dreal":
            raise SmtquantError("--precision sets dReal's delta; it needs --solver dreal.")
        if not (args.precision > 0 and math.isfinite(args.precision)):
            raise SmtquantError(f"--precision must be a positive number. Got {args.precision!r} instead.")
    delta = _delta(args)
    tolerance = _number(args.tolerance, "--tolerance") if args.tolerance is not None else Fraction(1, 10**6)
    if tolerance <= 0:
        raise SmtquantError(f"--tolerance must be > 0. Got {args.tolerance!r} instead.")
    net = load_model(args.model, trust=args.trust)
    scheme = parse_scheme(args.quant)
    box = scheme.box(net)  # reports parameters outside a fixed-point range before any solving
    props = _props(args, net, metric)
    from .backends import get_backend  # noqa: PLC0415
    get_backend(args.solver)  # a missing or unknown solver is a usage error, before any output
    out = _open_output(args.output)
    sink = _Sink(args.json, out)
    statuses = []
    try:
        for i, prop in enumerate(props):
            t0 = time.monotonic()
            if args.quantify:
                v = quantify(net, box, prop, delta=delta, tolerance=tolerance, solver=args.solver,
                             timeout=args.timeout, precision=args.precision)
            else:
                v = check(net, box, prop, delta, solver=args.solver, timeout=args.timeout, precision=args.precision)
            v = _with(v, model=args.model, quant=scheme.spec)
            sink.emit(v)
            statuses.append(v.status)
            if len(props) > 1:
                print(f"[{i + 1}/{len(props)}] {v.status.value} ({time.monotonic() - t0:.2f} s)", file=sys.stderr)
            if v.interrupted:
                print("interrupted: the remaining properties were not checked", file=sys.stderr)
                break
    finally:
        if out is not None:
            out.close()
    return EXIT[aggregate(statuses)]


def _timeout(args: argparse.Namespace) -> None:
    if args.timeout is not None and not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise SmtquantError(f"--timeout must be a positive number of seconds. Got {args.timeout!r} instead.")


def _delta(args: argparse.Namespace) -> Fraction | None:
    delta = _number(args.delta, "--delta") if args.delta is not None else None
    if delta is not None and delta <= 0:
        raise SmtquantError(f"--delta must be > 0. Got {args.delta!r} instead.")
    return delta


def _open_output(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise SmtquantError(f"{path}: cannot write ({exc.strerror or exc}).") from None


def _human_bits(v: Verdict) -> str:
    x = v.extra
    where = _fmt_point(v.input) if v.input is not None else (
        "[" + ", ".join(f"{float(a):.6g}:{float(b):.6g}" for a, b in (v.region or ())) + "]")
    if x.get("bits") is None:
        head = f"{v.property:<6}  {where}  no {x.get('family')} width up to {v.quant} proved robust: {v.status.value.upper()}"
        if v.witness is not None and v.status is Status.VIOLATED:
            head += f"  witness deviation {v.witness.to_json()['deviation']:.9g} at {_fmt_point(v.witness.input)}"
        return head + f"  ({v.time_s:.2f} s)"
    unit = "fractional bits" if x.get("family") == "fixed" else "bits"
    lines = [f"{v.property:<6}  {where}  fewest bits: {x['bits']} {unit} ({v.quant}), ROBUST (proved)  ({v.time_s:.2f} s)"]
    below = x.get("below")
    if below is not None:
        extra = ""
        if below.get("witness"):
            w = below["witness"]
            extra = f", witness deviation {w['deviation']:.9g} at ({', '.join(f'{a:.6g}' for a in w['input'])})"
        lines.append(f"        one bit below, {below['quant']}: {below['status'].upper()}{extra}")
    else:
        lines.append("        this is the smallest width searched")
    pl = x.get("per_layer")
    if pl is not None:
        lines.append(f"        per layer: {pl['quant']} proved robust, {pl['size_bits']} bits in all "
                     f"(uniform {pl['uniform_quant']}: {pl['uniform_size_bits']} bits)"
                     + ("" if pl.get("locally_minimal") else "; search stopped early"))
    return "\n".join(lines)


def _props(args: argparse.Namespace, net: Network, metric: Metric) -> list[Property]:
    props: list[Property]
    if getattr(args, "region", None) is not None:
        props = [GlobalRobustness(parse_region(args.region), metric)]
    else:
        inputs = [parse_input(args.input)] if args.input is not None else read_inputs_csv(args.inputs, net)
        props = [LocalRobustness(x, metric) for x in inputs]
    for prop in props:
        prop.check_network(net)
    return props


def _cmd_bits(args: argparse.Namespace) -> int:
    from .bits import fewest_bits  # noqa: PLC0415

    metric = Metric(args.metric)
    if metric is Metric.CLASS and args.delta is not None:
        raise SmtquantError("--metric class decides whether the predicted class can change; it takes no --delta.")
    if metric is not Metric.CLASS and args.delta is None:
        raise SmtquantError("give --delta D: the fewest bits for which the deviation stays <= D.")
    _timeout(args)
    delta = _delta(args)
    net = load_model(args.model, trust=args.trust)
    props = _props(args, net, metric)
    from .backends import get_backend  # noqa: PLC0415
    get_backend(args.solver)
    out = _open_output(args.output)
    sink = _Sink(args.json, out, _human_bits)

    def progress(spec: str, v: Verdict) -> None:
        print(f"  {spec:<12} {v.status.value:<9} ({v.time_s:.2f} s)", file=sys.stderr, flush=True)

    statuses = []
    try:
        for prop in props:
            v = fewest_bits(net, prop, delta, family=args.family, max_bits=args.max_bits, min_bits=args.min_bits,
                            per_layer=args.per_layer, solver=args.solver, timeout=args.timeout, on_check=progress)
            sink.emit(_with(v, model=args.model))
            statuses.append(v.status)
            if v.interrupted:
                print("interrupted: the remaining properties were not searched", file=sys.stderr)
                break
    finally:
        if out is not None:
            out.close()
    return EXIT[aggregate(statuses)]


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import expand_schemes, grid_points, make_tasks, run_sweep  # noqa: PLC0415

    metric = Metric(args.metric)
    _timeout(args)
    delta = _delta(args)
    if args.inputs and args.grid:
        raise SmtquantError("give --inputs or --grid, not both.")
    if not (args.inputs or args.grid or args.region):
        raise SmtquantError("give the properties: --inputs FILE.csv or --grid LO:HI:N,... (local), "
                            "and/or --region LO:HI,... (global).")
    if args.tolerance is not None and not args.quantify:
        raise SmtquantError("--tolerance only applies with --quantify.")
    tolerance = _number(args.tolerance, "--tolerance") if args.tolerance is not None else Fraction(1, 10**6)
    if tolerance <= 0:
        raise SmtquantError(f"--tolerance must be > 0. Got {args.tolerance!r} instead.")
    if args.jobs < 1:
        raise SmtquantError(f"--jobs must be at least 1. Got {args.jobs}.")
    schemes = expand_schemes(args.quant)
    models = [(m, load_model(m, trust=args.trust)) for m in args.models]
    if args.grid:
        inputs: list[list[Fraction]] = grid_points(args.grid)
    elif args.inputs:
        inputs = read_inputs_csv(args.inputs, models[0][1])
    else:
        inputs = []
    regions = [parse_region(r) for r in args.region]
    tasks = make_tasks(models, inputs, regions, schemes, metric=metric.value, delta=delta, quantify=args.quantify,
                       tolerance=tolerance, solver=args.solver, timeout=args.timeout)
    from .backends import get_backend  # noqa: PLC0415
    get_backend(args.solver)
    summary = run_sweep(tasks, args.output, jobs=args.jobs, scheduler=args.scheduler,
                        retry_unknown=args.retry_unknown, progress=None if args.quiet else sys.stderr)
    counts = ", ".join(f"{summary.counts[k]} {k}" for k in ("robust", "violated", "unknown") if summary.counts[k])
    print(f"sweep: {summary.ran + summary.skipped} of {summary.total} properties in {args.output} "
          f"({summary.ran} run now, {summary.skipped} from before){': ' + counts if counts else ''}"
          + ("; interrupted, rerun the same command to resume" if summary.interrupted else ""), file=sys.stderr)
    return EXIT[summary.status]


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report  # noqa: PLC0415

    if not Path(args.results).exists():
        raise SmtquantError(f"{args.results}: no such file.")
    summary = build_report(args.results, args.output, title=args.title)
    counts = ", ".join(f"{summary.counts.get(k, 0)} {k}" for k in ("robust", "violated", "unknown"))
    print(f"wrote {args.output}: {summary.rows} rows ({counts}), {summary.figures} figure(s), "
          f"{summary.n_warnings} line(s) skipped", file=sys.stderr)
    return 0


def _with(v: Verdict, **changes: Any) -> Verdict:
    from dataclasses import replace  # noqa: PLC0415
    return replace(v, **changes)


_VALUE_OPTIONS = ("--region", "--input", "--delta", "--grid")


def _glue_negative_values(argv: Sequence[str]) -> list[str]:
    """Let "--region -1:1,-2:2" and "--input -0.5,1" work: argparse would take a value that
    starts with '-' for an option, so glue it on as "--region=-1:1,-2:2"."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1][1:2] in \
                tuple("0123456789.i"):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 robust, 1 violated, 2 error, 3 unknown)."""
    parser = build_parser()
    try:
        args = parser.parse_args(_glue_negative_values(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exc:  # --help, --version, or a usage error (already printed on one line)
        return int(exc.code or 0) if not isinstance(exc.code, str) else USAGE_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    try:
        if args.command == "info":
            return _cmd_info(args)
        if args.command == "quantize":
            return _cmd_quantize(args)
        if args.command == "bits":
            return _cmd_bits(args)
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "report":
            return _cmd_report(args)
        return _cmd_check(args)
    except SmtquantError as exc:
        print(f"smtquant {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT[Status.UNKNOWN]
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line (set SMTQUANT_DEBUG=1 for the traceback)
        if os.environ.get("SMTQUANT_DEBUG"):
            raise
        print(f"smtquant {args.command}: internal error: {exc.__class__.__name__}: {exc} "
              "(please report it; SMTQUANT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
