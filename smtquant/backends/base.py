"""The backend protocol: a Problem (network, parameter box, inputs) and a Condition go in;
SAT with a candidate (x, theta'), UNSAT, or UNKNOWN with a reason comes out."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any, Protocol

from ..bounds import LayerBounds
from ..boxes import ParameterBox
from ..exact import ExactLayer, Interval
from ..properties import Condition

__all__ = ["Answer", "Problem", "CheckOutcome", "Backend", "run_with_deadline"]


class Answer(str, Enum):
    SAT = "sat"
    UNSAT = "unsat"
    UNKNOWN = "unknown"


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything a backend needs: exact parameters, radii, the input point or box, and sound
    interval bounds (used to drop stable ReLU splits; they never change the answer)."""

    layers: tuple[ExactLayer, ...]
    hidden_activation: str
    box: ParameterBox
    inputs: tuple[Interval, ...]
    perturbed_bounds: LayerBounds
    original_bounds: LayerBounds
    diff_bounds: LayerBounds | None = None  # bounds on perturbed - original pre-activations, if known

    @property
    def fixed_input(self) -> bool:
        return all(lo == hi for lo, hi in self.inputs)


@dataclass(frozen=True, eq=False)
class CheckOutcome:
    """A solver-level answer. For SAT, ``input`` and ``layers`` hold the candidate (x, theta')
    as exact Fractions; ``approximate`` is True if the solver's values were rounded (algebraic
    numbers) and may therefore fail validation."""

    answer: Answer
    reason: str = ""
    input: tuple[Fraction, ...] | None = None
    layers: tuple[ExactLayer, ...] | None = None
    approximate: bool = False
    time_s: float = 0.0


class Backend(Protocol):
    name: str

    def unsupported(self, problem: Problem) -> str | None:
        """A reason this backend cannot express the problem, or None."""

    def solve(self, problem: Problem, condition: Condition, timeout: float | None) -> CheckOutcome:
        """Decide: exists x in inputs, theta' in box with ``condition``; within ``timeout`` seconds
        (None: no limit)."""


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this process when its parent dies (no orphaned solver)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_main(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    _die_with_parent()
    try:
        result = fn(*args)
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as an unknown
        conn.send(("error", f"{exc.__class__.__name__}: {exc}"))
    finally:
        conn.close()


def run_with_deadline(fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> tuple[str, Any]:
    """Run ``fn(*args)`` in a child process and wait at most ``timeout`` seconds (wall clock).

    ``timeout=None`` waits for as long as it takes. Returns ("ok", result), ("error", message),
    ("timeout", None) or ("crashed", message).
    The child is killed on timeout, so a solver that ignores its own limit cannot hold us.
    KeyboardInterrupt kills the child and propagates.
    """
    method = "fork" if sys.platform != "win32" and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx: Any = multiprocessing.get_context(method)  # a fork or spawn context (typeshed: BaseContext)
    recv_end, send_end = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(send_end, fn, args), daemon=True)
    start = time.monotonic()
    proc.start()
    send_end.close()
    try:
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        if not recv_end.poll(remaining):
            return "timeout", None
        try:
            return recv_end.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            proc.join(1.0)
            return "crashed", f"solver process ended with exit code {proc.exitcode}"
    finally:
        if proc.is_alive():
            try:
                os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
            except (ProcessLookupError, TypeError):
                pass
        proc.join(2.0)
        recv_end.close()
