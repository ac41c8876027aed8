"""smtquant.testing.assert_robust, as users call it from their own test suites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import smtquant as sq
from smtquant.testing import assert_robust

MODELS = Path(__file__).resolve().parent.parent / "models"
MOONS = MODELS / "moons_relu.json"


def test_passes_when_proved_and_returns_the_verdicts() -> None:
    vs = assert_robust(MOONS, "fixed:10", inputs=[[0.5, 0.25], [0.0, 1.0]], delta=0.01)
    assert [v.status for v in vs] == [sq.Status.ROBUST, sq.Status.ROBUST]
    assert len(assert_robust(MOONS, "fixed:10", inputs=[0.5, 0.25], delta=0.01)) == 1  # one vector
    assert len(assert_robust(MOONS, "fixed:10", inputs=np.array([[0.5, 0.25], [1.0, 0.0]]), delta=0.01)) == 2


def test_global_region() -> None:
    (v,) = assert_robust(MODELS / "hand_2x2.json", "fixed:8", region=[(-1, 1), (-1, 1)], delta=0.1, metric="logit")
    assert v.property == "global" and v.robust


def test_failure_message_has_status_interval_and_witness_input() -> None:
    with pytest.raises(AssertionError) as info:
        assert_robust(MOONS, "fixed:8", inputs=[[0.5, 0.25], [0.0, 1.0]], delta=0.01)
    msg = str(info.value)
    assert "not proved robust under fixed:8" in msg
    assert "VIOLATED" in msg and "x = (0.5, 0.25)" in msg
    assert "max deviation in [" in msg and "witness input (0.5, 0.25)" in msg
    # the interval in the message is the certified one: its lower end is above delta
    lower = float(msg.split("max deviation in [")[1].split(",")[0])
    assert lower > 0.01


def test_an_unknown_fails_too() -> None:
    net = sq.load_model(MODELS / "blobs_softmax.json")  # softmax confidence: only the bound and the attack decide
    region = [(-1, 1), (-1, 1)]
    q = sq.quantify(net, "fixed:4", sq.GlobalRobustness(region), timeout=10)
    assert q.max_deviation is not None
    lo, hi = q.max_deviation.lower, q.max_deviation.upper
    if q.status is not sq.Status.UNKNOWN or hi - lo < 1e-3:
        pytest.skip(f"softmax confidence is decided here ({q.status.value}); no gap to fall into")
    with pytest.raises(AssertionError, match="UNKNOWN") as info:
        assert_robust(net, "fixed:4", region=region, delta=(lo + hi) / 2, timeout=5)
    assert "region [-1:1, -1:1]" in str(info.value) and "reason:" in str(info.value)


def test_usage_errors() -> None:
    with pytest.raises(sq.PropertyError):
        assert_robust(MOONS, "fixed:8", delta=0.01)
    with pytest.raises(sq.PropertyError):
        assert_robust(MOONS, "fixed:8", inputs=[0.5, 0.25], region=[(0, 1), (0, 1)], delta=0.01)
    with pytest.raises(sq.PropertyError):
        assert_robust(MOONS, "fixed:8", inputs=[0.5], delta=0.01)  # wrong length
