"""smtquant: prove, or refute with a counterexample, that an MLP stays robust when its
parameters are quantized.

Quick start::

    import smtquant as sq
    net = sq.load_model("models/moons_relu.json")
    v = sq.check_local(net, "fixed:4", [0.5, 0.25], delta=0.05)
    print(v.status, v.reason)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .boxes import InputRegion, ParameterBox
from .errors import (
    BackendUnavailable,
    ModelFormatError,
    PropertyError,
    SchemeError,
    SmtquantError,
    UnsupportedQuery,
)
from .loading import from_sklearn, load_model, save_model
from .network import Layer, Network
from .properties import GlobalRobustness, LocalRobustness, Metric
from .result import CertifiedInterval, Status, Verdict, Witness
from .schemes import Scheme, parse_scheme
from .search import quantify
from .verify import check, check_global, check_local

__all__ = [
    "__version__",
    "BackendUnavailable",
    "CertifiedInterval",
    "GlobalRobustness",
    "InputRegion",
    "Layer",
    "LocalRobustness",
    "Metric",
    "ModelFormatError",
    "Network",
    "ParameterBox",
    "PropertyError",
    "Scheme",
    "SchemeError",
    "SmtquantError",
    "Status",
    "UnsupportedQuery",
    "Verdict",
    "Witness",
    "check",
    "check_global",
    "check_local",
    "from_sklearn",
    "load_model",
    "parse_scheme",
    "quantify",
    "save_model",
]
