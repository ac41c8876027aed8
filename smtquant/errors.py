"""One error tree for everything smtquant rejects: bad input, bad models, missing solvers."""

from __future__ import annotations

__all__ = [
    "SmtquantError",
    "ModelFormatError",
    "SchemeError",
    "PropertyError",
    "BackendUnavailable",
    "UnsupportedQuery",
]


class SmtquantError(Exception):
    """Base class: every message is one line that names the place and what was expected."""


class ModelFormatError(SmtquantError, ValueError):
    """A model file or object is malformed (shape, value, activation, format, version)."""


class SchemeError(SmtquantError, ValueError):
    """A quantization scheme string is malformed or cannot quantize a parameter."""


class PropertyError(SmtquantError, ValueError):
    """A property is malformed: input length, region, delta, metric, conflicting options."""


class BackendUnavailable(SmtquantError, ImportError):
    """A solver backend was asked for but is not installed; the message says what to install."""


class UnsupportedQuery(SmtquantError, ValueError):
    """A backend cannot express this query (e.g. tanh hidden units in linear arithmetic)."""
