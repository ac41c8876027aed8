"""The command line: exit codes, JSON keys, one-line errors, files written as results are decided."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smtquant.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
RELU = str(MODELS / "moons_relu.json")
KEYS = {"property", "model", "quant", "metric", "delta", "status", "reason", "max_deviation", "witness", "solver",
        "time_s"}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_local_quantify_json_keys_and_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["local", RELU, "--input", "0.5,0.25", "--quant", "fixed:4", "--quantify", "--json"], capsys)
    assert code == 0
    row = json.loads(out)
    assert KEYS | {"input"} <= set(row)
    assert row["status"] == "robust" and row["property"] == "local" and row["input"] == [0.5, 0.25]
    md = row["max_deviation"]
    assert 0 <= md["lower"] <= md["upper"] and md["upper"] - md["lower"] <= 1e-6
    assert row["witness"]["validated"] is True


def test_local_violated_exit_1_with_witness(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["local", RELU, "--input", "0.5,0.25", "--quant", "fixed:2", "--delta", "0.01", "--json"], capsys)
    assert code == 1
    row = json.loads(out)
    assert row["status"] == "violated" and row["witness"]["deviation"] > 0.01
    assert len(row["witness"]["parameters"]["layers"]) == 2


def test_local_robust_exit_0_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["local", RELU, "--input", "0.5,0.25", "--quant", "fixed:12", "--delta", "0.01"], capsys)
    assert code == 0
    assert "ROBUST" in out


def test_global_json_region(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["global", str(MODELS / "hand_2x2.json"), "--region", "-1:1,-1:1", "--quant", "fixed:4",
                        "--metric", "logit", "--delta", "10", "--json"], capsys)
    assert code == 0
    row = json.loads(out)
    assert row["property"] == "global" and row["region"] == [[-1.0, 1.0], [-1.0, 1.0]]


def test_timeout_gives_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["global", str(MODELS / "moons_relu_8x8.json"), "--region", "-1:2,-1:1.5", "--quant",
                        "fixed:6", "--metric", "logit", "--delta", "0.5", "--solver", "z3-direct", "--timeout", "1",
                        "--json"], capsys)
    row = json.loads(out)
    assert (code, row["status"]) in ((3, "unknown"), (1, "violated"))


def test_inputs_csv_one_row_each_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("x1,x2\n0.5,0.25\n-1,0.5\n2,0\n")
    out_file = tmp_path / "res.jsonl"
    code, out, err = run(["local", RELU, "--inputs", str(csv), "--quant", "fixed:4", "--delta", "0.5", "--json",
                          "-o", str(out_file)], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["input"] for r in rows] == [[0.5, 0.25], [-1.0, 0.5], [2.0, 0.0]]
    assert out_file.read_text().splitlines() == out.splitlines()
    assert "[3/3]" in err
    statuses = {r["status"] for r in rows}
    assert code == (1 if "violated" in statuses else 3 if "unknown" in statuses else 0)


def test_quantize_writes_a_model_in_the_box(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import smtquant as sq

    out = tmp_path / "q.json"
    code, _, err = run(["quantize", RELU, "--quant", "fixed:4", "-o", str(out)], capsys)
    assert code == 0 and "wrote" in err
    q = sq.load_model(out)
    net = sq.load_model(RELU)
    assert sq.parse_scheme("fixed:4").box(net).contains(q)
    assert all(((l.weights * 16) % 1 == 0).all() for l in q.layers)


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info", RELU, "--quant", "fixed:4", "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["architecture"] == "2-8-1" and info["max_radius"] == 1 / 32


BAD = [
    (["local", "nope.json", "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1"], "no such file"),
    (["local", RELU, "--input", "1", "--quant", "fixed:4", "--delta", "0.1"], "expects 2"),
    (["local", RELU, "--input", "1,nan", "--quant", "fixed:4", "--delta", "0.1"], "finite"),
    (["local", RELU, "--input", "1,x", "--quant", "fixed:4", "--delta", "0.1"], "must be a number"),
    (["local", RELU, "--input", "1,2", "--quant", "fixd:4", "--delta", "0.1"], "not known"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4"], "--delta"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "0"], "> 0"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "-1"], "> 0"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--metric", "class", "--delta", "0.1"], "class"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1", "--tolerance", "1e-3"], "--tolerance"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1", "--timeout", "0"], "--timeout"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1", "--solver", "cvc9"], "--solver"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1", "--precision", "1e-3"], "--precision"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1", "--solver", "dreal", "--precision", "0"],
     "--precision"),
    (["local", RELU, "--input", "1,2", "--inputs", "a.csv", "--quant", "fixed:4", "--delta", "0.1"], "not allowed"),
    (["local", RELU, "--input", "1,2", "--quant", "fixed:1.2", "--delta", "0.1"], "outside"),
    (["global", RELU, "--region", "1:0,0:1", "--quant", "fixed:4", "--delta", "0.1"], "inverted"),
    (["global", RELU, "--region", "0:1", "--quant", "fixed:4", "--delta", "0.1"], "expects 2"),
    (["global", RELU, "--region", "0:1,2", "--quant", "fixed:4", "--delta", "0.1"], "lo:hi"),
    (["local", str(MODELS / "broken" / "model.pkl"), "--input", "1,2", "--quant", "fixed:4", "--delta", "0.1"],
     "--trust"),
    (["local", RELU, "--bogus"], "error"),
]


@pytest.mark.parametrize(("argv", "phrase"), BAD)
def test_bad_input_one_line_exit_2(argv: list[str], phrase: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_catching(argv, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert phrase in lines[0]
    assert "Traceback" not in err


def run_catching(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits itself
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_csv_row_names_row_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("0.5,0.25\n1,2,3\n")
    out_file = tmp_path / "res.jsonl"
    out_file.write_text('{"kept": true}\n')
    code, out, err = run_catching(["local", RELU, "--inputs", str(csv), "--quant", "fixed:4", "--delta", "0.1",
                                   "-o", str(out_file)], capsys)
    assert code == 2 and "row 2 has 3 values" in err
    assert out_file.read_text() == '{"kept": true}\n'  # never truncated by a later error


def test_console_entry_point_help_runs() -> None:
    r = subprocess.run([sys.executable, "-m", "smtquant", "local", "--help"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    for word in ("--quant", "--delta", "--quantify", "--metric", "--timeout", "--json"):
        assert word in r.stdout


def test_ctrl_c_gives_unknown_interrupted_exit_3(tmp_path: Path) -> None:
    """SIGINT during a long solver call: the row says unknown / interrupted, exit 3, never robust."""
    import signal
    import time

    out_file = tmp_path / "res.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smtquant", "global", str(MODELS / "moons_relu_8x8.json"), "--region", "-1:2,-1:1.5",
         "--quant", "fixed:8", "--metric", "logit", "--quantify", "--tolerance", "1e-12", "--solver", "z3-direct",
         "--json", "-o", str(out_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell runs background jobs with SIGINT ignored, and Python keeps it ignored: restore it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(4.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, err
    row = json.loads(out.strip().splitlines()[-1])
    assert row["status"] == "unknown" and "interrupted" in row["reason"]
    assert json.loads(out_file.read_text().splitlines()[-1])["status"] == "unknown"
    assert "Traceback" not in err
