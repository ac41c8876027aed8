"""Smoke test of benchmarks/run.py: one tiny shipped model with --quick-like settings, the JSONL rows,
the watchdog, and the table's arithmetic (PAR-2, ratio, disagreements) on hand-made rows."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    name = "smtquant_benchmark_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RUN_PY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def _tiny_tasks(bench):
    x = bench.moons_data()
    nets = bench.load_networks(["linear_relu"], ())
    return bench.build_tasks(nets, bench.local_points(x, 1), bench.data_box(x), ["fixed:4"], "logit")


@pytest.mark.timeout(60)
def test_quick_like_run_writes_complete_rows(bench, tmp_path):
    tasks = _tiny_tasks(bench)
    assert [t.prop_kind for t in tasks] == ["local", "global"]
    out = tmp_path / "results.jsonl"
    lines: list[str] = []
    start = time.monotonic()
    with open(out, "w", encoding="utf-8") as fh:
        def sink(row):
            fh.write(json.dumps(row) + "\n")
            fh.flush()

        bench.Runner(("engine", "z3-direct"), 10.0, sink=sink, progress=lines.append).run(tasks)
    assert time.monotonic() - start < 30

    rows = bench.read_rows(out)
    # per triple: the delta calibration, one check per solver, the quantify query
    assert [(r["kind"], r["solver"]) for r in rows] == [
        ("delta", "engine"), ("check", "engine"), ("check", "z3-direct"), ("quantify", "engine")] * 2
    assert len(lines) == len(rows)  # one progress line per query
    for r in rows:
        assert set(bench.ROW_KEYS) <= set(r), set(bench.ROW_KEYS) - set(r)
        assert r["network"] == "linear_relu" and r["architecture"] == "2-4-1" and r["activation"] == "relu"
        assert r["scheme"] == "fixed:4" and r["metric"] == "logit" and r["limit_s"] == 10.0
        assert r["status"] in bench.STATUSES
        assert r["reason"]
        assert r["time_s"] >= 0 and r["wall_s"] >= 0
    for triple in (rows[:4], rows[4:]):
        cal, checks, quant = triple[0], triple[1:3], triple[3]
        assert cal["lower"] is not None and cal["lower"] <= cal["upper"]
        assert cal["delta"] is not None and cal["delta"] > 0
        assert all(c["delta"] == cal["delta"] and c["delta_rule"] == cal["delta_rule"] for c in checks)
        assert all(c["decided_by"] in ("bound", "attack", "solver", "-") for c in checks)
        assert quant["width"] is not None and quant["width"] >= 0
    assert rows[0]["property"] == "local" and rows[0]["point"] == 0
    assert rows[4]["property"] == "global" and rows[4]["point"] is None

    table = bench.format_table(rows)
    assert "PAR-2 ratio z3-direct / engine" in table
    assert "same status wherever both decide" in table


@pytest.mark.timeout(60)
def test_no_quantify_leaves_out_the_quantify_query(bench):
    lines: list[str] = []
    runner = bench.Runner(("engine",), 10.0, quantify=False, progress=lines.append)
    rows = runner.run(_tiny_tasks(bench)[:1])
    assert [(r["kind"], r["solver"]) for r in rows] == [("delta", "engine"), ("check", "engine")]
    assert runner.expected == 2 and lines[-1].startswith("[2/2] ")
    assert bench.parse_args(["--no-quantify"]).quantify is False and bench.parse_args([]).quantify is True


def test_par2_on_hand_made_rows(bench):
    def row(solver, status, t, point=0, limit=10.0):
        return {"network": "n", "architecture": "2-4-1", "n_params": 17, "property": "local", "point": point,
                "scheme": "fixed:4", "metric": "logit", "kind": "check", "solver": solver, "delta": 0.5,
                "delta_rule": "midpoint", "status": status, "decided_by": "solver", "time_s": t, "limit_s": limit}

    engine = [row("engine", "robust", 1.5, 0), row("engine", "violated", 0.5, 1)]
    z3 = [row("z3-direct", "robust", 3.0, 0), row("z3-direct", "unknown", 10.02, 1)]  # the second timed out
    assert bench.par2(engine) == pytest.approx(2.0)
    assert bench.par2(z3) == pytest.approx(3.0 + 2 * 10.0)
    # decided, but after the limit: not solved, so it counts 2 x limit too
    assert bench.par2([row("engine", "robust", 10.5)]) == pytest.approx(20.0)

    m = bench.summarize(z3)
    assert (m["queries"], m["decided"], m["share"]) == (2, 1, 0.5)
    assert m["median"] == pytest.approx((3.0 + 10.02) / 2) and m["worst"] == pytest.approx(10.02)

    ratio, n = bench.par2_ratio(engine + z3, "z3-direct", "engine")
    assert n == 2 and ratio == pytest.approx(23.0 / 2.0)
    assert bench.disagreements(engine + z3, "engine", "z3-direct")[:2] == (1, 0)  # only point 0 decided by both
    flipped = engine + [row("z3-direct", "violated", 3.0, 0)]
    assert bench.disagreements(flipped, "engine", "z3-direct")[:2] == (1, 1)

    table = bench.format_table(engine + z3)
    assert "PAR-2 ratio z3-direct / engine: 11.50" in table
    assert "yes (0 disagreements in 1 pairs)" in table
    assert "no (1 disagreements in 1 pairs)" in bench.format_table(flipped)


def test_choose_delta(bench):
    assert bench.choose_delta(Fraction(1), Fraction(2)) == ("1.5", "midpoint")
    assert bench.choose_delta(Fraction(1, 3), Fraction(2, 3)) == ("0.5", "midpoint")
    assert bench.choose_delta(Fraction(1, 7), Fraction(2, 7)) == ("0.214286", "midpoint")  # 6 significant digits
    assert bench.choose_delta(Fraction(1, 3), Fraction(1, 3)) == ("0.336667", "upper*1.01")  # degenerate
    assert bench.choose_delta(None, None) == (None, "none")


def test_parse_sizes(bench):
    assert bench.parse_sizes("16,32x32,64x64x64") == ((16,), (32, 32), (64, 64, 64))
    assert bench.parse_sizes("none") == ()


def _sleepy(task, call):
    time.sleep(60)


def _raising(task, call):
    raise RuntimeError("boom")


@pytest.mark.timeout(60)
def test_watchdog_kills_an_overrunning_query(bench, monkeypatch):
    task = _tiny_tasks(bench)[0]
    monkeypatch.setattr(bench, "execute", _sleepy)  # the forked child inherits the patch
    start = time.monotonic()
    rows = bench.Runner(("engine",), 0.5, grace=0.5).run([task])
    assert time.monotonic() - start < 15
    cal = rows[0]
    assert cal["kind"] == "delta" and cal["status"] == "unknown" and "watchdog" in cal["reason"]
    assert cal["delta"] is None
    # no interval, no delta: the check is skipped, the quantify query still runs (and is killed)
    assert [r["kind"] for r in rows] == ["delta", "quantify"]
    assert not bench.is_solved(rows[1])


@pytest.mark.timeout(60)
def test_a_raising_query_becomes_unknown(bench, monkeypatch):
    task = _tiny_tasks(bench)[0]
    monkeypatch.setattr(bench, "execute", _raising)
    rows = bench.Runner(("engine",), 5.0).run([task])
    assert all(r["status"] == "unknown" and "RuntimeError: boom" in r["reason"] for r in rows)
