"""Assertions for users' own test suites (pytest or unittest).

::

    from smtquant.testing import assert_robust

    def test_deployed_model_is_robust():
        assert_robust("models/moons_relu.json", "fixed:10", inputs=[[0.5, 0.25], [0.0, 1.0]], delta=0.01)

The assertion passes only when every property is proved robust; a violation or an unknown fails
it, with the status, the certified interval and the witness input in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .boxes import InputRegion, ParameterBox
from .errors import PropertyError
from .network import Network
from .properties import GlobalRobustness, LocalRobustness, Property
from .result import Status, Verdict
from .schemes import Scheme
from .search import quantify
from .verify import check, resolve_box, resolve_model

__all__ = ["assert_robust"]


def _inputs(inputs: Any) -> list[list[Any]]:
    if isinstance(inputs, np.ndarray):
        arr = inputs
        if arr.ndim == 1:
            return [list(arr)]
        if arr.ndim == 2:
            return [list(r) for r in arr]
        raise PropertyError(f"inputs must be one input vector or a list of them. Got an array of shape {arr.shape}.")
    seq = list(inputs)
    if not seq:
        raise PropertyError("inputs is empty.")
    if all(isinstance(v, (int, float, Fraction, np.number)) for v in seq):
        return [seq]
    return [list(v) for v in seq]


def _where(v: Verdict) -> str:
    if v.input is not None:
        return "x = (" + ", ".join(f"{float(a):.6g}" for a in v.input) + ")"
    return "region [" + ", ".join(f"{float(a):.6g}:{float(b):.6g}" for a, b in v.region or ()) + "]"


def _describe(v: Verdict, interval: Verdict | None) -> str:
    lines = [f"  {v.property} {_where(v)} under {v.quant}, {v.metric}"
             + (f", delta = {float(v.delta):.6g}" if v.delta is not None else "") + f": {v.status.value.upper()}"]
    iv = interval.max_deviation if interval is not None else v.max_deviation
    if iv is not None:
        lines.append(f"    max deviation in [{float(iv.lower):.9g}, {float(iv.upper):.9g}]")
    wit = v.witness if v.status is Status.VIOLATED else (interval.witness if interval is not None else None)
    if wit is not None:
        lines.append(f"    witness input ({', '.join(f'{float(a):.9g}' for a in wit.input)}), "
                     f"deviation {float(wit.deviation[0]):.9g} (validated exactly)")
    lines.append(f"    reason: {v.reason}")
    return "\n".join(lines)


def assert_robust(model: Network | str | Path, scheme: Scheme | ParameterBox | str, *, inputs: Any = None,
                  region: InputRegion | Sequence[Sequence[float]] | None = None, delta: Any = None,
                  metric: str = "confidence", solver: str = "auto", timeout: float | None = None) -> list[Verdict]:
    """Assert that ``model`` is proved robust under ``scheme`` at every one of ``inputs`` (one
    vector or a list of them) or over the input box ``region`` (exactly one of the two).

    Returns the verdicts when all are robust; raises AssertionError otherwise, naming each
    failed property with its status, certified interval, witness input and reason.
    """
    if (inputs is None) == (region is None):
        raise PropertyError("give exactly one of inputs=... (local robustness) or region=... (global robustness).")
    net, _ = resolve_model(model)
    box, spec = resolve_box(net, scheme)
    props: list[Property]
    if inputs is not None:
        props = [LocalRobustness(x, metric) for x in _inputs(inputs)]
    else:
        props = [GlobalRobustness(region, metric)]  # type: ignore[arg-type]
    verdicts = [check(net, box, p, delta, solver=solver, timeout=timeout) for p in props]
    failed = [(p, v) for p, v in zip(props, verdicts) if v.status is not Status.ROBUST]
    if not failed:
        return verdicts
    parts = []
    for p, v in failed:
        interval = None
        if delta is not None and not v.interrupted:
            try:  # the certified interval, for the message (bounded by the same timeout)
                interval = quantify(net, box, p, delta=delta, solver=solver, timeout=timeout or 30.0)
            except Exception:  # noqa: BLE001 - the message must not hide the failure itself
                interval = None
        parts.append(_describe(v, interval))
    raise AssertionError(f"smtquant: {len(failed)} of {len(verdicts)} properties not proved robust under {spec}:\n"
                         + "\n".join(parts))
