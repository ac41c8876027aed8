"""Sweeps: scheme ranges and grids, one row per property, resume after kill -9 with nothing lost
or duplicated, the same rows from local processes and from a Dask cluster, bad usage."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

import smtquant as sq
from smtquant.cli import main
from smtquant.errors import SmtquantError
from smtquant.sweep import expand_schemes, grid_points, make_tasks, read_results, run_sweep

MODELS = Path(__file__).resolve().parent.parent / "models"
SMTQUANT = [sys.executable, "-m", "smtquant"]


def test_expand_schemes_ranges_and_lists() -> None:
    assert expand_schemes(["fixed:2..fixed:4"]) == ["fixed:2", "fixed:3", "fixed:4"]
    assert expand_schemes(["int:4..6, float16", "fixed:3"]) == ["int:4", "int:5", "int:6", "float16", "fixed:3"]
    assert expand_schemes(["int:4..int:5:channel"]) == ["int:4:channel", "int:5:channel"]
    assert expand_schemes(["fixed:3,fixed:3"]) == ["fixed:3"]


@pytest.mark.parametrize("bad", ["fixed:5..fixed:2", "fixed:2..int:4", "fixed:a..fixed:3", "eps:1..eps:2",
                                 "fixed:2..fixed:99999", "fixed:1..fixed:3:channel", "fixed:2,,fixed:3", "fixed:x"])
def test_expand_schemes_rejects(bad: str) -> None:
    with pytest.raises(SmtquantError):
        expand_schemes([bad])


def test_grid_points_exact_and_row_major() -> None:
    pts = grid_points("0:1:3,-1:-1:1")
    assert pts == [[Fraction(0), Fraction(-1)], [Fraction(1, 2), Fraction(-1)], [Fraction(1), Fraction(-1)]]
    assert len(grid_points("0:1:4,0:2:5")) == 20
    assert grid_points("0.1:0.1:1") == [[Fraction(1, 10)]]  # decimals taken exactly
    for bad in ("0:1", "1:0:3", "0:1:0", "a:1:2"):
        with pytest.raises(SmtquantError):
            grid_points(bad)


def _tasks() -> list:
    models = [(str(MODELS / n), sq.load_model(MODELS / n)) for n in ("moons_relu.json", "moons_linear.json")]
    regions = [sq.InputRegion.from_pairs([(0, 1), (0, 0.5)])]
    return make_tasks(models, grid_points("-1:2:2,0:1:2"), regions, ["fixed:3", "fixed:5"], metric="logit",
                      quantify=True, tolerance=Fraction(1, 10**4))


def test_run_sweep_writes_one_row_per_property_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    tasks = _tasks()
    s = run_sweep(tasks, out, progress=None)
    assert s.total == len(tasks) == 2 * 2 * (4 + 1) and s.ran == s.total and s.skipped == 0
    rows, warnings = read_results(out)
    assert warnings == [] and len(rows) == s.total
    assert sorted(r["task"] for r in rows) == sorted(t.key for t in tasks)
    for r in rows:  # each row is the library's answer to that property
        assert r["status"] == "robust" and r["max_deviation"]["upper"] - r["max_deviation"]["lower"] <= 1e-4
        assert {"property", "model", "quant", "metric", "delta", "status", "reason", "witness", "solver",
                "time_s"} <= set(r)
    before = out.read_bytes()
    s2 = run_sweep(tasks, out, progress=None)
    assert s2.ran == 0 and s2.skipped == s.total and out.read_bytes() == before


def test_rows_agree_with_direct_calls(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    tasks = [t for t in _tasks() if t.kind == "local"][:3]
    run_sweep(tasks, out, progress=None)
    rows = {r["task"]: r for r in read_results(out)[0]}
    for t in tasks:
        v = sq.quantify(t.net, t.quant, t.prop(), tolerance=t.tolerance)
        assert v.max_deviation is not None
        r = rows[t.key]["max_deviation"]
        assert abs(r["lower"] - float(v.max_deviation.lower)) <= 1e-4 and abs(r["upper"] - float(v.max_deviation.upper)) <= 1e-4


def test_kill_9_midway_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "k.jsonl"
    argv = [*SMTQUANT, "sweep", str(MODELS / "moons_linear_8x8.json"), "--grid", "-1:2:3,-1:1.5:2", "--quant", "fixed:6",
            "--metric", "logit", "--quantify", "--tolerance", "1e-3", "--solver", "z3", "-o", str(out), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed; make its properties slower"
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its solver children
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    kept = out.read_bytes()
    n_kept = kept.count(b"\n")
    assert 2 <= n_kept < 6
    with out.open("ab") as fh:  # a row cut short by the kill
        fh.write(b'{"property": "local", "model": "x", "sta')
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "cut short" in r.stderr and "line" in r.stderr
    data = out.read_bytes()
    assert data.startswith(kept)  # every row decided before the kill is still there, unchanged
    rows, warnings = read_results(out)
    assert warnings == []  # the partial line was removed before appending
    keys = [row["task"] for row in rows]
    assert len(keys) == 6 and len(set(keys)) == 6


def test_corrupt_middle_line_is_reported_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    out.write_text("not json\n")
    net = sq.load_model(MODELS / "hand_2x2.json")
    with pytest.raises(SmtquantError):  # check mode needs a delta: caught when the tasks are made
        make_tasks([("m", net)], [[0, 0]], [], ["fixed:3"], metric="logit")
    tasks = make_tasks([("m", net)], [[0, 0]], [], ["fixed:3"], metric="logit", delta=Fraction(1))
    err = io.StringIO()
    s = run_sweep(tasks, out, progress=None, warn=err)
    assert s.ran == 1 and "line 1" in err.getvalue()
    assert out.read_text().startswith("not json\n")
    rows, warnings = read_results(out)
    assert len(rows) == 1 and len(warnings) == 1


def test_jobs_and_dask_give_the_same_rows(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    tasks = _tasks()
    a, b = tmp_path / "jobs.jsonl", tmp_path / "dask.jsonl"
    run_sweep(tasks, a, jobs=2, progress=None)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        run_sweep(tasks, b, scheduler=cluster.scheduler_address, progress=None)
    ra = {r["task"]: r for r in read_results(a)[0]}
    rb = {r["task"]: r for r in read_results(b)[0]}
    assert set(ra) == set(rb) == {t.key for t in tasks}
    for k in ra:
        assert ra[k]["status"] == rb[k]["status"]
        assert ra[k]["max_deviation"] == rb[k]["max_deviation"]


def test_cli_sweep_local_and_global(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.jsonl"
    argv = ["sweep", str(MODELS / "hand_2x2.json"), "--grid", "0:1:2,0:1:2", "--region", "-1:1,-1:1",
            "--quant", "fixed:3..fixed:4", "--delta", "0.05", "--metric", "logit", "-o", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    rows, _ = read_results(out)
    assert len(rows) == 10 and {r["property"] for r in rows} == {"local", "global"}
    statuses = {r["status"] for r in rows}
    assert code == (1 if "violated" in statuses else 3 if "unknown" in statuses else 0)
    assert "10 of 10 properties" in err
    for r in rows:
        if r["status"] == "violated":
            assert r["witness"]["deviation"] > 0.05


@pytest.mark.parametrize("argv", [
    ["--grid", "0:1:2,0:1:2", "--quant", "fixed:3", "--delta", "0.1", "--jobs", "0"],
    ["--grid", "0:1:2,0:1:2", "--inputs", "x.csv", "--quant", "fixed:3", "--delta", "0.1"],
    ["--quant", "fixed:3", "--delta", "0.1"],
    ["--grid", "0:1:2,0:1:2", "--quant", "fixed:5..fixed:3", "--delta", "0.1"],
    ["--grid", "0:1:2,0:1:2", "--quant", "fixed:3", "--delta", "0.1", "--jobs", "2", "--scheduler", "tcp://x:1"],
    ["--grid", "0:1:2", "--quant", "fixed:3", "--delta", "0.1"],
    ["--grid", "0:1:2,0:1:2", "--quant", "fixed:3"],
    ["--grid", "0:1:2,0:1:2", "--quant", "fixed:1.3", "--delta", "0.1"],  # a parameter outside the range
])
def test_cli_sweep_bad_usage_is_one_line_exit_2(argv: list[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.jsonl"
    code = main(["sweep", str(MODELS / "moons_relu.json"), *argv, "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert not out.exists() or out.read_text() == ""


def test_cli_sweep_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, html, png = tmp_path / "s.jsonl", tmp_path / "r.html", tmp_path / "r.png"
    assert main(["sweep", str(MODELS / "moons_relu.json"), str(MODELS / "moons_linear.json"), "--grid", "-1:2:3,-1:1.5:3",
                 "--quant", "fixed:3..fixed:5", "--quantify", "--tolerance", "1e-4", "-o", str(out), "--quiet"]) == 0
    assert main(["report", str(out), "-o", str(html)]) == 0
    assert main(["report", str(out), "-o", str(png)]) == 0
    err = capsys.readouterr().err
    assert "54 rows (54 robust, 0 violated, 0 unknown)" in err
    assert html.read_text().count("data:image/png;base64,") >= 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", str(out), "-o", str(tmp_path / "r.pdf")]) == 2
    assert main(["report", str(tmp_path / "missing.jsonl"), "-o", str(html)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
