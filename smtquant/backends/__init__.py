"""Solver backends, one module each; get_backend picks one by name."""

from __future__ import annotations

from ..errors import BackendUnavailable, PropertyError
from .base import Answer, Backend, CheckOutcome, Problem

__all__ = ["Answer", "Backend", "CheckOutcome", "Problem", "get_backend", "BACKEND_NAMES"]

BACKEND_NAMES = ("auto", "engine", "z3", "z3-direct", "dreal")


class AutoBackend:
    """The default: the exact engine (LP branch and bound with rational certificates) where it
    applies, else z3 on the weight-eliminated encoding."""

    name = "auto"

    def __init__(self, engine: Backend, fallback: Backend) -> None:
        self.engine, self.fallback = engine, fallback

    def pick(self, problem: Problem) -> Backend:
        return self.engine if self.engine.unsupported(problem) is None else self.fallback

    def unsupported(self, problem: Problem) -> str | None:
        return self.pick(problem).unsupported(problem)

    def solve(self, problem: Problem, condition: object, timeout: float | None) -> CheckOutcome:
        return self.pick(problem).solve(problem, condition, timeout)  # type: ignore[arg-type]


def get_backend(name: str) -> Backend:
    """The backend called ``name``; BackendUnavailable (with an install hint) if it is missing."""
    if name == "engine":
        from ..engine import EngineBackend  # noqa: PLC0415

        return EngineBackend()
    if name in ("auto", "z3", "z3-direct"):
        from .z3_backend import Z3DirectBackend, Z3EliminatedBackend, z3_available  # noqa: PLC0415

        if not z3_available():
            raise BackendUnavailable("solver z3 is not installed; pip install z3-solver")
        if name == "auto":
            from ..engine import EngineBackend  # noqa: PLC0415

            return AutoBackend(EngineBackend(), Z3EliminatedBackend())
        return Z3DirectBackend() if name == "z3-direct" else Z3EliminatedBackend()
    if name == "dreal":
        raise BackendUnavailable(
            "solver dreal is not available: the dReal backend is not part of this version yet "
            "(installed solvers: z3). See README, section dReal."
        )
    raise PropertyError(f"--solver must be one of {', '.join(BACKEND_NAMES)}. Got {name!r} instead.")
