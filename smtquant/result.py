"""Answers as values: Status, Witness, CertifiedInterval, Verdict, and their JSON form."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any

from .exact import ExactLayer, Interval, float_down, float_up

__all__ = ["Status", "Witness", "CertifiedInterval", "Verdict", "aggregate"]


class Status(str, Enum):
    """Three-valued answer of a property check. Aggregation: violated > unknown > robust."""

    ROBUST = "robust"
    VIOLATED = "violated"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def aggregate(statuses: Sequence[Status]) -> Status:
    """violated if any is violated, else unknown if any is unknown, else robust."""
    if any(s is Status.VIOLATED for s in statuses):
        return Status.VIOLATED
    if any(s is Status.UNKNOWN for s in statuses):
        return Status.UNKNOWN
    return Status.ROBUST


@dataclass(frozen=True, eq=False)
class Witness:
    """A concrete (theta', x) and its deviation, re-checked by an exact forward pass.

    ``deviation`` is an enclosure [lo, hi] of D(x, theta') (lo == hi for exact metrics).
    """

    input: tuple[Fraction, ...]
    layers: tuple[ExactLayer, ...]
    deviation: Interval

    def to_json(self) -> dict[str, Any]:
        """Numbers as JSON floats. Witnesses are moved to doubles where that keeps them valid, so
        the floats are usually exact; when one is not, ``exact`` repeats the witness with every
        number as a string "numerator/denominator"."""
        d: dict[str, Any] = {
            "input": [float(v) for v in self.input],
            "deviation": float_down(self.deviation[0]),
            "validated": True,
            "parameters": {
                "layers": [
                    {"weights": [[float(v) for v in row] for row in w], "biases": [float(v) for v in b]}
                    for w, b in self.layers
                ]
            },
        }
        values = [*self.input, *(v for w, b in self.layers for row in w for v in row), *(v for _, b in self.layers for v in b)]
        if any(Fraction(float(v)) != v for v in values):
            d["exact"] = {
                "input": [str(v) for v in self.input],
                "layers": [{"weights": [[str(v) for v in row] for row in w], "biases": [str(v) for v in b]}
                           for w, b in self.layers],
            }
        return d


@dataclass(frozen=True)
class CertifiedInterval:
    """max D lies in [lower, upper]: upper proved (D > upper is unsatisfiable), lower witnessed."""

    lower: Fraction
    upper: Fraction

    def __post_init__(self) -> None:
        if self.lower > self.upper:
            raise ValueError(f"certified interval is empty: lower {self.lower} > upper {self.upper}")

    @property
    def width(self) -> Fraction:
        return self.upper - self.lower

    def to_json(self) -> dict[str, float]:
        return {"lower": float_down(self.lower), "upper": float_up(self.upper)}


@dataclass(frozen=True, eq=False)
class Verdict:
    """The answer to one property: status, a non-empty reason, and the evidence."""

    status: Status
    reason: str
    property: str = "local"
    metric: str = "confidence"
    quant: str = ""
    delta: Fraction | None = None
    input: tuple[Fraction, ...] | None = None
    region: tuple[tuple[Fraction, Fraction], ...] | None = None
    max_deviation: CertifiedInterval | None = None
    witness: Witness | None = None
    solver: str = ""
    time_s: float = 0.0
    model: str | None = None
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("a verdict needs a non-empty reason")
        if self.status is Status.VIOLATED and self.witness is None:
            raise ValueError("a violated verdict needs a validated witness")

    @builtins.property
    def robust(self) -> bool:
        return self.status is Status.ROBUST

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "property": self.property,
            "model": self.model,
            "quant": self.quant,
            "metric": self.metric,
        }
        if self.property == "local":
            d["input"] = [float(v) for v in self.input] if self.input is not None else None
        else:
            d["region"] = [[float(lo), float(hi)] for lo, hi in self.region] if self.region is not None else None
        d.update({
            "delta": float(self.delta) if self.delta is not None else None,
            "status": self.status.value,
            "reason": self.reason,
            "max_deviation": self.max_deviation.to_json() if self.max_deviation is not None else None,
            "witness": self.witness.to_json() if self.witness is not None else None,
            "solver": self.solver,
            "time_s": round(self.time_s, 6),
        })
        d.update(self.extra)
        return d
