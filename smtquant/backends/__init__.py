"""Solver backends, one module each; get_backend picks one by name."""

from __future__ import annotations

from ..errors import BackendUnavailable, PropertyError
from .base import Answer, Backend, CheckOutcome, Problem

__all__ = ["Answer", "Backend", "CheckOutcome", "Problem", "get_backend", "BACKEND_NAMES"]

BACKEND_NAMES = ("auto", "engine", "z3", "z3-direct", "envelope", "dreal")


class AutoBackend:
    """The default: the exact engine (LP branch and bound with rational certificates) where it
    applies (ReLU and identity hidden units), else z3 on the weight-eliminated encoding; for
    smooth hidden units (tanh, logistic) dReal when it is installed, else the piecewise-linear
    envelopes with refinement; for softmax confidence (exp) dReal when it is installed."""

    name = "auto"

    def __init__(self, engine: Backend, fallback: Backend, smooth: Backend | None = None) -> None:
        self.engine, self.fallback, self.smooth = engine, fallback, smooth
        # softmax confidence needs exp: the smooth backend takes it when it has exp (dReal)
        self.softmax = smooth if getattr(smooth, "supports_softmax", False) else None

    def pick(self, problem: Problem) -> Backend:
        if self.engine.unsupported(problem) is None:
            return self.engine
        if self.smooth is not None and problem.hidden_activation in ("tanh", "logistic"):
            return self.smooth
        return self.fallback

    def unsupported(self, problem: Problem) -> str | None:
        return self.pick(problem).unsupported(problem)

    def solve(self, problem: Problem, condition: object, timeout: float | None) -> CheckOutcome:
        return self.pick(problem).solve(problem, condition, timeout)  # type: ignore[arg-type]


def _smooth_backend() -> Backend:
    from .dreal_backend import DrealBackend, dreal_available  # noqa: PLC0415

    if dreal_available():
        return DrealBackend()  # type: ignore[return-value]
    from .envelope import EnvelopeBackend  # noqa: PLC0415

    return EnvelopeBackend()  # type: ignore[return-value]


def get_backend(name: str, *, precision: float | None = None) -> Backend:
    """The backend called ``name``; BackendUnavailable (with an install hint) if it is missing.
    ``precision``: dReal's delta (used by the dreal backend only; None is its default)."""
    if name == "engine":
        from ..engine import EngineBackend  # noqa: PLC0415

        return EngineBackend()
    if name in ("auto", "z3", "z3-direct"):
        from .z3_backend import Z3DirectBackend, Z3EliminatedBackend, z3_available  # noqa: PLC0415

        if not z3_available():
            raise BackendUnavailable("solver z3 is not installed; pip install z3-solver")
        if name == "auto":
            from ..engine import EngineBackend  # noqa: PLC0415

            return AutoBackend(EngineBackend(), Z3EliminatedBackend(), _smooth_backend())
        return Z3DirectBackend() if name == "z3-direct" else Z3EliminatedBackend()
    if name == "envelope":
        from .envelope import EnvelopeBackend  # noqa: PLC0415
        from .z3_backend import z3_available  # noqa: PLC0415

        if not z3_available():
            raise BackendUnavailable("solver z3 is not installed; pip install z3-solver")
        return EnvelopeBackend()  # type: ignore[return-value]
    if name == "dreal":
        from .dreal_backend import DrealBackend, dreal_available, install_hint  # noqa: PLC0415

        if not dreal_available():
            raise BackendUnavailable(install_hint())
        return DrealBackend(precision)
    raise PropertyError(f"--solver must be one of {', '.join(BACKEND_NAMES)}. Got {name!r} instead.")
