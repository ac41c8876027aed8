"""smtquant.report: HTML and PNG reports of JSON Lines results, bad lines reported, fewest bits derived."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smtquant.errors import BackendUnavailable, SmtquantError
from smtquant.properties import GlobalRobustness, LocalRobustness
from smtquant.report import ReportError, build_report, fewest_bits, load_results, scheme_bits
from smtquant.search import quantify

ROOT = Path(__file__).resolve().parent.parent
RELU = str(ROOT / "models" / "moons_relu.json")
LINEAR = str(ROOT / "models" / "moons_linear.json")
IMG = '<img src="data:image/png;base64,'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row(status: str = "robust", quant: str = "fixed:4", *, model: str = "m_relu.json", x: Any = (0.5, 0.25),
        lower: float | None = 0.001, upper: float | None = 0.002, delta: float | None = 0.01, reason: str = "proved",
        **extra: Any) -> dict[str, Any]:
    """A synthetic local row in the SPEC section 5 format."""
    d: dict[str, Any] = {
        "property": "local", "model": model, "quant": quant, "metric": "confidence", "input": list(x),
        "delta": delta, "status": status, "reason": reason,
        "max_deviation": None if lower is None else {"lower": lower, "upper": upper},
        "witness": None, "solver": "engine", "time_s": 0.01,
    }
    d.update(extra)
    return d


def write_jsonl(path: Path, rows: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")
    return path


def text_of(html_doc: str) -> str:
    """The visible text (tags and embedded images removed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html_doc)))


def images(html_doc: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_doc)]


def assert_real_png(path_or_bytes: Path | bytes) -> None:
    import matplotlib.image as mpimg

    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    assert data[:8] == PNG_MAGIC
    import io
    arr = mpimg.imread(io.BytesIO(data), format="png")
    assert arr.ndim == 3 and arr.shape[0] > 100 and arr.shape[1] > 100
    assert float(np.var(arr[..., :3])) > 1e-3  # not a blank image


@pytest.fixture(scope="module")
def real_rows() -> list[dict[str, Any]]:
    """Rows from the real tool: two inputs x fixed:4..8 on the ReLU/linear twins, a 4x4 grid at fixed:6,
    and one global row stopped by a short timeout (a wide interval). About a second."""
    rows = []
    for m in (RELU, LINEAR):
        for f in range(4, 9):
            for x in ((0.5, 0.25), (-0.5, 0.8)):
                rows.append(quantify(m, f"fixed:{f}", LocalRobustness(x), delta=0.02).to_json())
        for a in np.linspace(-1.0, 2.0, 4):
            for b in np.linspace(-0.5, 1.0, 4):
                rows.append(quantify(m, "fixed:6", LocalRobustness((float(a), float(b))), delta=0.02).to_json())
    rows.append(quantify(RELU, "fixed:8", GlobalRobustness([[-1, 2], [-0.5, 1]]), tolerance=1e-3,
                         timeout=0.3).to_json())
    assert all(r["model"] in (RELU, LINEAR) for r in rows)  # quantify fills "model" with the path it was given
    return rows


# -- reading results ---------------------------------------------------------------------------------------


def test_import_does_not_need_matplotlib() -> None:
    code = "import sys, smtquant.report; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_corrupt_trailing_line_and_blank_line_are_reported_and_skipped(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    good = [row(quant=f"fixed:{4 + i}") for i in range(3)]
    p = tmp_path / "res.jsonl"
    p.write_text(json.dumps(good[0]) + "\n\n" + json.dumps(good[1]) + "\n" + json.dumps(good[2]) + "\n"
                 + '{"property": "local", "model": "m_relu.json", "qua', encoding="utf-8")
    rows, warnings = load_results(p)
    assert len(rows) == 3
    assert len(warnings) == 2
    assert "line 2" in warnings[0] and "blank" in warnings[0]
    assert "line 5" in warnings[1] and "not valid JSON" in warnings[1]
    summary = build_report(p, tmp_path / "r.html")
    assert summary.rows == 3 and summary.n_warnings == 2
    err = capsys.readouterr().err
    assert "line 5" in err and "line 2" in err
    text = text_of((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "2 warnings" in text and "res.jsonl line 5: not valid JSON" in text


def test_invalid_rows_are_warned_not_dropped_silently(tmp_path: Path) -> None:
    bad_status = row(status="maybe")
    no_prop = {k: v for k, v in row().items() if k != "property"}
    bad_interval = row(lower=0.5, upper=0.1)
    p = write_jsonl(tmp_path / "res.jsonl", [row(), bad_status, no_prop, bad_interval, [1, 2]])  # type: ignore[list-item]
    rows, warnings = load_results(p)
    assert len(rows) == 1
    assert [w.split(":")[0] for w in warnings] == [f"res.jsonl line {i}" for i in (2, 3, 4, 5)]
    assert "status" in warnings[0] and "'property'" in warnings[1] and "interval" in warnings[2]
    assert "not a JSON object" in warnings[3]


def test_unknown_keys_are_ignored_and_missing_file_is_an_error(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "res.jsonl", [row(bits=None, solver_calls=3, anything={"x": 1})])
    rows, warnings = load_results(p)
    assert len(rows) == 1 and warnings == []
    with pytest.raises(ReportError, match="cannot read"):
        load_results(tmp_path / "missing.jsonl")


def test_duplicates_keep_the_last(tmp_path: Path) -> None:
    first = row(status="unknown", reason="timeout after 60 s", lower=0.0, upper=1.0)
    last = row(status="robust", reason="proved at last", lower=0.001, upper=0.002)
    other = row(quant="fixed:5")
    p = write_jsonl(tmp_path / "res.jsonl", [first, other, last])
    out = tmp_path / "r.html"
    s = build_report(p, out)
    assert s.rows == 2 and s.duplicates == 1
    assert s.counts == {"robust": 2, "violated": 0, "unknown": 0}
    text = text_of(out.read_text(encoding="utf-8"))
    assert "proved at last" in text and "timeout after 60 s" not in text
    assert "1 duplicate row" in text


# -- the HTML report -----------------------------------------------------------------------------------------


def test_html_report_of_real_rows(real_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "sweep.jsonl", real_rows)
    out = tmp_path / "report.html"
    s = build_report(p, out, title="twins <test>")
    doc = out.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>") and "http://" not in doc and "https://" not in doc  # self-contained
    # 34 local inputs -> one aggregated deviation chart (local) + one for the global region + 2 heat maps
    assert s.figures == 4 and doc.count(IMG) == 4
    for png in images(doc):
        assert_real_png(png)
    text = text_of(doc)
    assert "twins &lt;test&gt;" in doc and "<test>" not in doc  # the title is escaped
    n = len(real_rows)
    assert s.rows == n and sum(s.counts.values()) == n
    assert f"{n} rows" in text
    for status, count in s.counts.items():
        assert f"{count} {status}" in text
    assert s.counts["violated"] > 0 and s.counts["robust"] > 0
    assert 'alt="local · confidence · max over 2 inputs"' in doc
    assert "Aggregated over the 2 inputs present at every width" in text and "16 inputs present at only some" in text
    assert "a 4×4 grid drawn as cells, and 2 inputs off the grid" in text
    assert "moons_relu" in text and "moons_linear" in text
    assert "decision boundary" in text and "no decision boundary" not in text
    assert "Fewest bits per model" in text
    assert s.files == (out,)


def test_fewest_bits_of_real_rows(real_rows: list[dict[str, Any]]) -> None:
    got = {(Path(f.model).stem, f.location): f.bits for f in fewest_bits(real_rows) if f.property == "local"}
    # at x = (0.5, 0.25) with delta 0.02 the certified deviation halves with each bit: 0.0293 (relu, 7 bits),
    # 0.0143 (relu, 8 bits); 0.0293 (linear, 6 bits), 0.0147 (linear, 7 bits)
    assert got[("moons_relu", "x = (0.5, 0.25)")] == 8
    assert got[("moons_linear", "x = (0.5, 0.25)")] == 7


def test_displayed_intervals_round_outward() -> None:
    from smtquant.report import _directed

    assert (_directed(0.0676221637, up=False), _directed(0.0676221637, up=True)) == ("0.06762", "0.06763")
    assert (_directed(0.99996, up=False), _directed(0.99996, up=True)) == ("0.9999", "1")
    assert _directed(0.5, up=True) == "0.5"


def test_unknowns_counted_with_reasons_grouped(tmp_path: Path) -> None:
    rows = [row(status="unknown", quant="fixed:3", reason="timeout after 60 s", lower=0.0, upper=1.0),
            row(status="unknown", quant="fixed:4", reason="timeout after 60 s", lower=0.0, upper=0.5),
            row(status="unknown", quant="fixed:5", reason="solver returned unknown (incomplete)", lower=None),
            row(status="violated", quant="fixed:6", reason="witness", lower=0.1, upper=0.2),
            row(status="robust", quant="fixed:7")]
    out = tmp_path / "r.html"
    s = build_report(rows, out)
    assert s.counts == {"robust": 1, "violated": 1, "unknown": 3}
    text = text_of(out.read_text(encoding="utf-8"))
    assert "3 unknown" in text
    assert "timeout after 60 s (2)" in text and "solver returned unknown (incomplete) (1)" in text
    # one location: one chart; the two unknown rows with an interval are drawn hollow and counted
    assert s.figures == 1
    assert "Hollow markers: 2 unknown rows" in text
    assert "unknown at 5 bits" not in text  # violated at 6 is above it: 7 is the answer, nothing open below


def test_per_input_charts_with_delta_line(tmp_path: Path) -> None:
    rows = [row(quant=f"fixed:{f}", model=m, x=x, lower=2.0 ** -f, upper=2.0 ** -f * 1.5)
            for m in ("a_relu.json", "a_linear.json") for f in range(3, 8) for x in ((0.0, 0.0), (1.0, 1.0))]
    out = tmp_path / "r.html"
    s = build_report(rows, out)
    doc = out.read_text(encoding="utf-8")
    assert s.figures == 2 and doc.count(IMG) == 2  # 2 inputs <= 6: one chart each, no heat map (2 points)
    text = text_of(doc)
    assert "x = (0, 0)" in text and "x = (1, 1)" in text and "δ = 0.01" in text
    assert "No heat map" in text


def test_heat_map_without_loadable_model_warns(tmp_path: Path) -> None:
    rows = [row(quant="eps:0.01", model=str(tmp_path / "gone_relu.json"), x=(a, b), lower=0.0, upper=0.01 * (1 + a + b))
            for a in range(3) for b in range(3)]
    out = tmp_path / "r.html"
    s = build_report(rows, out)
    assert s.figures == 1  # the heat map (eps has no bit width: no deviation-vs-bits chart)
    assert any("cannot load" in w and "gone_relu.json" in w for w in s.warnings)
    text = text_of(out.read_text(encoding="utf-8"))
    assert "model could not be loaded" in text and "schemes without a bit width" in text


def test_html_escapes_row_contents(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    build_report([row(model="<script>alert(1)</script>.json", reason="a < b & c")], out)
    doc = out.read_text(encoding="utf-8")
    assert "<script>" not in doc and "&lt;script&gt;" in doc and "a &lt; b &amp; c" in doc


# -- PNG output ------------------------------------------------------------------------------------------------


def test_png_deviation_chart(real_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    s = build_report(real_rows, out)
    assert s.files == (out,) and s.figures == 1
    assert_real_png(out)


def test_png_falls_back_to_heat_map_then_status_bars(tmp_path: Path) -> None:
    grid = [row(quant="eps:0.01", model=RELU, x=(a, b), lower=0.0, upper=0.001 * (1 + a * a + b))
            for a in np.linspace(-1, 2, 4).tolist() for b in np.linspace(-0.5, 1, 3).tolist()]
    out = tmp_path / "heat.png"
    build_report(grid, out)
    assert_real_png(out)
    plain = [row(status=s, quant="float16", x=(i, 0), lower=None) for i, s in enumerate(["robust", "violated", "unknown"])]
    out2 = tmp_path / "bars.png"
    build_report(plain, out2)
    assert_real_png(out2)


def test_bad_suffix_and_empty_png_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"\.html .*\.png") as exc:
        build_report([row()], tmp_path / "r.pdf")
    assert isinstance(exc.value, SmtquantError) and "\n" not in str(exc.value)
    with pytest.raises(ReportError, match="no valid rows"):
        build_report([], tmp_path / "r.png")


def test_missing_matplotlib_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(BackendUnavailable, match=re.escape("pip install smtquant[plots]")) as exc:
        build_report([row()], tmp_path / "r.html")
    assert isinstance(exc.value, SmtquantError)


# -- bits ---------------------------------------------------------------------------------------------------------


def test_scheme_bits() -> None:
    assert scheme_bits("fixed:4") == ("fixed", 4)
    assert scheme_bits("fixed:1.7") == ("fixed", 7)
    assert scheme_bits("int:8") == ("int", 8)
    assert scheme_bits("int:8:channel") == ("int:channel", 8)
    assert scheme_bits("fixed:6/fixed:2.6") == ("fixed", 6)
    assert scheme_bits("fixed:4/fixed:6") is None
    assert scheme_bits("int:8@weights") == ("int@weights", 8)
    for s in ("float16", "bfloat16", "eps:0.01", "rel:0.1", "fixed:4/eps:0.1"):
        assert scheme_bits(s) is None


def sweep(statuses: dict[int, str], **kw: Any) -> list[dict[str, Any]]:
    return [row(status=s, quant=f"fixed:{w}", **kw) for w, s in statuses.items()]


def test_fewest_bits_derivation() -> None:
    (f,) = fewest_bits(sweep({4: "violated", 5: "violated", 6: "robust", 7: "robust"}))
    assert f.bits == 6 and f.scheme == "fixed:6" and f.unknown_below == ()
    (f,) = fewest_bits(sweep({4: "violated", 5: "unknown", 6: "robust", 7: "robust"}))
    assert f.bits == 6 and f.unknown_below == (5,)
    assert any("unknown at 5" in n and "may be as low as 5" in n for n in f.notes)
    (f,) = fewest_bits(sweep({4: "robust", 5: "unknown", 6: "robust", 7: "robust"}))
    assert f.bits == 6 and any("also robust at 4" in n for n in f.notes)
    (f,) = fewest_bits(sweep({4: "robust", 5: "robust", 6: "robust", 7: "unknown"}))
    assert f.bits is None and any("unknown at the largest width" in n for n in f.notes)
    (f,) = fewest_bits([row(status="violated", quant="fixed:2.4"), row(quant="fixed:2.5"), row(quant="fixed:2.6")])
    assert f.bits == 5 and f.scheme == "fixed:2.5"
    (f,) = fewest_bits(sweep({4: "violated", 6: "robust", 8: "robust"}))
    assert f.bits == 6 and any("5 bits not tested" in n for n in f.notes)
    # other families, deltas, inputs and "bits" rows are kept apart
    rows = (sweep({4: "violated", 5: "robust"}) + sweep({4: "robust"}, delta=0.1)
            + [row(quant="int:8"), row(quant="fixed:3", bits=3)])
    got = {(f.family, f.delta): f.bits for f in fewest_bits(rows)}
    assert got == {("fixed", 0.01): 5, ("fixed", 0.1): 4, ("int", 0.01): 8}
    with pytest.raises(ReportError, match="status"):
        fewest_bits([row(status="fine")])


def test_fewest_bits_in_the_report(tmp_path: Path) -> None:
    rows = (sweep({4: "violated", 5: "unknown", 6: "robust", 7: "robust"})
            + [row(quant="fixed:9", bits=9, model="b_relu.json", reason="proved at 9; witness at 8"),
               row(quant="fixed:12", bits=None, max_bits=12, model="c_relu.json", status="unknown", reason="none proved")])
    out = tmp_path / "r.html"
    build_report(rows, out)
    text = text_of(out.read_text(encoding="utf-8"))
    assert "unknown at 5 bits" in text
    assert "proved at 9; witness at 8" in text and "none ≤ 12" in text
