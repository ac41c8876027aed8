"""One BLAS thread during a verification call.

The engine, the dual bounds and the attack multiply many small matrices (64 x 64 and the like).
With OpenBLAS's default of one thread per core, each product waits for the other threads, and
when the cores are busy (a second query, a solver subprocess, a parallel sweep) it waits for the
scheduler too: on the 2-core benchmark machine, with another query running, one 3 x 64 identity
check took 16 to 22 s with two BLAS threads and 6 to 7 s with one. check() and quantify() run
with one BLAS thread and restore the caller's setting when they return."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["one_blas_thread"]


def one_blas_thread(fn: F) -> F:
    """Run ``fn`` with BLAS limited to one thread (a no-op without threadpoolctl)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - installed with scikit-learn
            return fn(*args, **kwargs)
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
