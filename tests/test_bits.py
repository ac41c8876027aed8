"""The fewest bits: agreement with the closed form on one-hidden-layer nets, nested boxes (the
premise of the bisection), the answer proved while one bit less is not, per-layer mode, CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from _nets import closed_form  # noqa: E402 - tests/ is on sys.path

import smtquant as sq
from smtquant.bits import fewest_bits, layer_widths, model_size_bits
from smtquant.cli import main
from smtquant.exact import forward_enclosure
from smtquant.properties import GlobalRobustness, LocalRobustness
from smtquant.verify import exact_layers

MODELS = Path(__file__).resolve().parent.parent / "models"
ALL_MODELS = sorted(p for p in MODELS.glob("*.json"))


def closed_form_bits(net: sq.Network, family: str, x: list[float], metric: str, delta: Fraction, top: int) -> int | None:
    """The fewest bits by scanning every width with the closed form (no bisection, no solver)."""
    lowest = 0 if family == "fixed" else 2
    xf = [Fraction(v) for v in x]
    for b in range(lowest, top + 1):
        box = sq.parse_scheme(f"{family}:{b}").box(net)
        if closed_form(net, box, xf, metric) <= Decimal(delta.numerator) / Decimal(delta.denominator):
            return b
    return None


CASES = [
    ("moons_relu", "fixed", [0.5, 0.25], "confidence", "0.01"),
    ("moons_linear", "fixed", [0.5, 0.25], "confidence", "0.01"),
    ("moons_relu", "int", [1.0, -0.5], "logit", "0.05"),
    ("moons_linear", "int", [1.0, -0.5], "logit", "0.05"),
    ("linear_relu", "fixed", [-1.0, 0.75], "logit", "0.001"),
    ("hand_2x2", "fixed", [0.5, 0.5], "confidence", "0.02"),
    ("hand_linear", "int", [0.25, -0.75], "confidence", "0.003"),
]


@pytest.mark.parametrize(("name", "family", "x", "metric", "delta"), CASES)
def test_bits_agree_with_closed_form_and_one_bit_less_fails(name: str, family: str, x: list[float], metric: str,
                                                            delta: str) -> None:
    net = sq.load_model(MODELS / f"{name}.json")
    d = Fraction(delta)
    expected = closed_form_bits(net, family, x, metric, d, 20)
    assert expected is not None
    v = fewest_bits(net, LocalRobustness(x, metric), delta, family=family, max_bits=20)
    assert v.extra["bits"] == expected
    assert v.status is sq.Status.ROBUST and v.quant == f"{family}:{expected}"
    # the answer is proved: an independent check at that scheme says robust
    assert sq.check_local(net, v.quant, x, delta, metric=metric).status is sq.Status.ROBUST
    below = v.extra["below"]
    assert below is not None and below["quant"] == f"{family}:{expected - 1}"
    assert below["status"] == "violated"
    # the witness one bit below lies in that box and exceeds delta by an exact forward pass
    wit = below["witness"]
    box = sq.parse_scheme(below["quant"]).box(net)
    src = wit.get("exact", wit["parameters"])  # exact rationals are given when a float would round
    layers = [([[Fraction(w) for w in row] for row in l["weights"]], [Fraction(b) for b in l["biases"]])
              for l in src["layers"]]
    for (w, b), (w0, b0), rw, rb in zip(layers, exact_layers(net), box.weights, box.biases):
        assert all(abs(w[i][j] - w0[i][j]) <= rw[i][j] for i in range(len(w)) for j in range(len(b)))
        assert all(abs(b[j] - b0[j]) <= rb[j] for j in range(len(b)))
    xs = [Fraction(a) for a in wit.get("exact", wit)["input"]]
    zp = forward_enclosure(layers, xs, net.hidden_activation)
    z = forward_enclosure(exact_layers(net), xs, net.hidden_activation)
    dev = sq.properties.deviation_enclosure(net, sq.Metric(metric), zp, z)
    assert dev[0] > d


@pytest.mark.parametrize("path", ALL_MODELS, ids=lambda p: p.stem)
@pytest.mark.parametrize("family", ["fixed", "int"])
def test_boxes_are_nested_as_bits_grow(path: Path, family: str) -> None:
    """The premise of the bisection: every radius shrinks (or stays) with one more bit."""
    net = sq.load_model(path)
    lowest = 0 if family == "fixed" else 2
    prev = sq.parse_scheme(f"{family}:{lowest}").box(net)
    for b in range(lowest + 1, lowest + 12):
        box = sq.parse_scheme(f"{family}:{b}").box(net)
        for rw, pw in zip(box.weights, prev.weights):
            assert all(r <= p for row, prow in zip(rw, pw) for r, p in zip(row, prow))
        for rb, pb in zip(box.biases, prev.biases):
            assert all(r <= p for r, p in zip(rb, pb))
        prev = box


def test_bits_global_region() -> None:
    net = sq.load_model(MODELS / "hand_2x2.json")
    prop = GlobalRobustness([(-1, 1), (-1, 1)], "logit")
    v = fewest_bits(net, prop, "0.1", family="fixed", max_bits=12)
    b = v.extra["bits"]
    assert b is not None and v.status is sq.Status.ROBUST
    assert sq.check_global(net, f"fixed:{b}", [(-1, 1), (-1, 1)], "0.1", metric="logit").robust
    assert sq.check_global(net, f"fixed:{b - 1}", [(-1, 1), (-1, 1)], "0.1", metric="logit").status is \
        sq.Status.VIOLATED
    assert v.extra["below"]["status"] == "violated"


def test_no_width_proved_reports_null_bits_and_the_witness() -> None:
    net = sq.load_model(MODELS / "moons_relu.json")
    v = fewest_bits(net, LocalRobustness([0.5, 0.25]), "1e-9", family="fixed", max_bits=6)
    assert v.extra["bits"] is None
    assert v.status is sq.Status.VIOLATED and v.witness is not None and v.witness.deviation[0] > Fraction(1, 10**9)
    assert v.quant == "fixed:6"


def test_the_smallest_width_searched_has_no_below() -> None:
    net = sq.load_model(MODELS / "hand_2x2.json")
    v = fewest_bits(net, LocalRobustness([0.5, 0.5]), "100", family="int", max_bits=8)
    assert v.extra["bits"] == 2 and v.extra["below"] is None


def test_per_layer_is_proved_smaller_and_locally_minimal() -> None:
    net = sq.load_model(MODELS / "moons_relu_8x8.json")
    x = [0.5, 0.25]
    v = fewest_bits(net, LocalRobustness(x, "logit"), "0.5", family="fixed", max_bits=16, per_layer=True)
    pl = v.extra["per_layer"]
    assert pl["size_bits"] <= pl["uniform_size_bits"]
    assert pl["size_bits"] == model_size_bits(net, "fixed", pl["bits"])
    assert sq.check_local(net, pl["quant"], x, "0.5", metric="logit").robust
    if pl["locally_minimal"]:
        for li in range(len(pl["bits"])):
            if pl["bits"][li] == 0:
                continue
            lower = list(pl["bits"])
            lower[li] -= 1
            spec = "/".join(f"fixed:{b}" for b in lower)
            assert not sq.check_local(net, spec, x, "0.5", metric="logit").robust


def test_layer_widths_count_integer_bits() -> None:
    net = sq.load_model(MODELS / "hand_2x2.json")
    widths = layer_widths(net, "fixed", [3, 3])
    q = sq.parse_scheme("fixed:3").quantize(net)
    def fits(values: list[float], i: int) -> bool:  # I integer bits (sign included), 3 fractional
        return all(-(2 ** (i - 1)) <= v <= 2 ** (i - 1) - 1 / 8 for v in values)

    for layer, w in zip(q.layers, widths):
        values = [float(v) for v in list(layer.weights.ravel()) + list(layer.biases)]
        assert fits(values, w - 3) and (w - 3 == 1 or not fits(values, w - 4))
    assert widths == [5, 5]  # hand_2x2 rounds to values in [-2, 1]: 2 integer bits each
    assert layer_widths(net, "int", [5, 7]) == [5, 7]


def test_cli_bits_json_row(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bits", str(MODELS / "moons_relu.json"), "--input", "0.5,0.25", "--delta", "0.01", "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1
    row = json.loads(out[0])
    assert row["bits"] == 9 and row["quant"] == "fixed:9" and row["status"] == "robust"
    assert row["below"]["status"] == "violated" and row["below"]["witness"]["validated"] is True
    assert {"property", "model", "metric", "input", "delta", "reason", "solver", "time_s"} <= set(row)


def test_cli_bits_no_answer_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bits", str(MODELS / "moons_relu.json"), "--input", "0.5,0.25", "--delta", "1e-9", "--max-bits", "4",
                 "--json"])
    row = json.loads(capsys.readouterr().out.strip())
    assert code == 1 and row["bits"] is None and row["status"] == "violated"


@pytest.mark.parametrize("argv", [
    ["--input", "0.5,0.25"],  # no delta
    ["--input", "0.5,0.25", "--delta", "0.01", "--family", "float"],
    ["--input", "0.5,0.25", "--delta", "0.01", "--family", "int", "--max-bits", "1"],
    ["--input", "0.5,0.25", "--delta", "0.01", "--max-bits", "4", "--min-bits", "6"],
    ["--input", "0.5,0.25", "--delta", "0.01", "--quant", "fixed:4"],
    ["--input", "0.5,0.25", "--region", "0:1,0:1", "--delta", "0.01"],
    ["--input", "0.5", "--delta", "0.01"],
    ["--input", "0.5,0.25", "--metric", "class", "--delta", "0.01"],
])
def test_cli_bits_bad_usage_is_one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bits", str(MODELS / "moons_relu.json"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
