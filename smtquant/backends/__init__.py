"""Solver backends, one module each; get_backend picks one by name."""

from __future__ import annotations

from ..errors import BackendUnavailable, PropertyError
from .base import Answer, Backend, CheckOutcome, Problem

__all__ = ["Answer", "Backend", "CheckOutcome", "Problem", "get_backend", "BACKEND_NAMES"]

BACKEND_NAMES = ("auto", "z3", "z3-direct", "dreal")


class AutoBackend:
    """Chooses per problem: the weight-eliminated encoding (linear) at a fixed input, where it is
    much faster; the direct encoding over an input box, where |x| case splits cost the
    eliminated one more than the bilinear terms cost the direct one (measured on the shipped
    2-8-1 models; see README)."""

    name = "auto"

    def __init__(self, local: Backend, region: Backend) -> None:
        self.local, self.region = local, region

    def pick(self, problem: Problem) -> Backend:
        return self.local if problem.fixed_input else self.region

    def unsupported(self, problem: Problem) -> str | None:
        return self.pick(problem).unsupported(problem)

    def solve(self, problem: Problem, condition: object, timeout: float | None) -> CheckOutcome:
        return self.pick(problem).solve(problem, condition, timeout)  # type: ignore[arg-type]


def get_backend(name: str) -> Backend:
    """The backend called ``name``; BackendUnavailable (with an install hint) if it is missing."""
    if name in ("auto", "z3", "z3-direct"):
        from .z3_backend import Z3DirectBackend, Z3EliminatedBackend, z3_available  # noqa: PLC0415

        if not z3_available():
            raise BackendUnavailable("solver z3 is not installed; pip install z3-solver")
        if name == "auto":
            return AutoBackend(Z3EliminatedBackend(), Z3DirectBackend())
        return Z3DirectBackend() if name == "z3-direct" else Z3EliminatedBackend()
    if name == "dreal":
        raise BackendUnavailable(
            "solver dreal is not available: the dReal backend is not part of this version yet "
            "(installed solvers: z3). See README, section dReal."
        )
    raise PropertyError(f"--solver must be one of {', '.join(BACKEND_NAMES)}. Got {name!r} instead.")
