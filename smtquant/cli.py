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
from collections.abc import Sequence
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
                        "neuron; z3-direct: one variable per parameter, as in the reference study; dreal: not "
                        "available yet")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="wall-clock limit per property; when it runs out the answer is unknown "
                        "(a quantification keeps the interval it has)")
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

    def __init__(self, as_json: bool, out: IO[str] | None) -> None:
        self.as_json, self.out = as_json, out

    def emit(self, v: Verdict) -> None:
        row = json.dumps(v.to_json())
        print(row if self.as_json else _human(v), flush=True)
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
    if args.timeout is not None and not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise SmtquantError(f"--timeout must be a positive number of seconds. Got {args.timeout!r} instead.")
    delta = _number(args.delta, "--delta") if args.delta is not None else None
    if delta is not None and delta <= 0:
        raise SmtquantError(f"--delta must be > 0. Got {args.delta!r} instead.")
    tolerance = _number(args.tolerance, "--tolerance") if args.tolerance is not None else Fraction(1, 10**6)
    if tolerance <= 0:
        raise SmtquantError(f"--tolerance must be > 0. Got {args.tolerance!r} instead.")
    net = load_model(args.model, trust=args.trust)
    scheme = parse_scheme(args.quant)
    box = scheme.box(net)  # reports parameters outside a fixed-point range before any solving
    props: list[Property]
    if args.command == "local":
        inputs = [parse_input(args.input)] if args.input is not None else read_inputs_csv(args.inputs, net)
        props = [LocalRobustness(x, metric) for x in inputs]
    else:
        props = [GlobalRobustness(parse_region(args.region), metric)]
    for prop in props:
        prop.check_network(net)
    from .backends import get_backend  # noqa: PLC0415
    get_backend(args.solver)  # a missing or unknown solver is a usage error, before any output
    out = None
    if args.output:
        try:
            out = open(args.output, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise SmtquantError(f"{args.output}: cannot write ({exc.strerror or exc}).") from None
    sink = _Sink(args.json, out)
    statuses = []
    try:
        for i, prop in enumerate(props):
            t0 = time.monotonic()
            if args.quantify:
                v = quantify(net, box, prop, delta=delta, tolerance=tolerance, solver=args.solver,
                             timeout=args.timeout)
            else:
                v = check(net, box, prop, delta, solver=args.solver, timeout=args.timeout)
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


def _with(v: Verdict, **changes: Any) -> Verdict:
    from dataclasses import replace  # noqa: PLC0415
    return replace(v, **changes)


_VALUE_OPTIONS = ("--region", "--input", "--delta")


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
