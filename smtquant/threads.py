"""One BLAS thread during a verification call.

The engine, the dual bounds and the attack multiply small matrices (64 x 64 and the like; the
attack's end search, batches of 128 x 64 by 64 x 64). With OpenBLAS's default of one thread per
core, such a product can wait for the other threads, and when the cores are busy (a second
query, a solver subprocess, a parallel sweep) for the scheduler too. On the 2-core benchmark
machine, beside another query, a 3 x 64 identity check with the end search took 14 to 18 s with
two BLAS threads and 5 to 7 s with one (the code before the end search, about 6 s either way).
check() and quantify() run with one BLAS thread and restore the caller's setting when they
return. (In a freshly forked process the first limit costs a few milliseconds more.)"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["blas_controller", "one_blas_thread"]


_controller: Any = None


def blas_controller() -> Any:
    """A threadpoolctl controller over the BLAS libraries, found once per process (finding them
    takes 4 to 30 ms, longer than a small query; a limit through the controller takes 0.03 ms).
    A program that forks workers can call it first, so that the workers inherit it."""
    global _controller
    if _controller is None:
        try:
            import scipy.optimize  # noqa: F401, PLC0415 - loads scipy's BLAS, so the controller sees it
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415
        except ImportError:  # pragma: no cover - installed with scikit-learn
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


def one_blas_thread(fn: F) -> F:
    """Run ``fn`` with BLAS limited to one thread (a no-op without threadpoolctl)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        controller = blas_controller()
        if not controller:  # pragma: no cover
            return fn(*args, **kwargs)
        with controller.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
