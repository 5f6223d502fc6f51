"""One way to limit threads: :class:`limit_threads`, a context manager and decorator.

The float64 solvers work with many small matrices, and the torch trainers with small
minibatches; multithreading only adds synchronisation there (and is slowed down a hundredfold
on a busy machine), and a fixed thread count makes floating-point reductions, hence whole
training trajectories, reproducible.  Inside the block every BLAS / OpenMP pool
(``threadpoolctl``) and torch's intra-op pool run on ``count`` threads; both are restored on
exit, also after an exception.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["limit_threads", "single_threaded"]


class limit_threads(contextlib.ContextDecorator):  # noqa: N801 - used like a function
    """Limit BLAS / OpenMP and torch CPU threads to ``count`` inside a ``with`` block or a
    decorated function (``None``: change nothing).

    Torch is limited only if it has been imported (this module never imports it: a NumPy-only
    caller does not pay for torch).  Nested and recursive use is safe: each entry restores
    exactly what it changed.
    """

    def __init__(self, count: int | None = 1) -> None:
        if count is not None and (
            isinstance(count, (bool, np.bool_))
            or not isinstance(count, (int, np.integer))
            or count < 1
        ):
            raise ValueError(f"count must be a positive integer or None, got {count!r}")
        self.count = None if count is None else int(count)
        self._blas: Any = None
        self._torch_previous: int | None = None

    def _recreate_cm(self) -> limit_threads:
        # A decorated function gets a fresh context per call, so recursion and threads that
        # call it concurrently never share the saved state.
        return type(self)(self.count)

    def __enter__(self) -> limit_threads:
        if self.count is None:
            return self
        self._blas = threadpool_limits(limits=self.count)
        torch = sys.modules.get("torch")
        if torch is not None:
            self._torch_previous = torch.get_num_threads()
            torch.set_num_threads(self.count)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.count is None:
            return
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_previous is not None:
            torch.set_num_threads(self._torch_previous)
        self._blas.restore_original_limits()
        self._blas, self._torch_previous = None, None


#: Decorator / context manager: one thread for BLAS, OpenMP and torch.
single_threaded = limit_threads(1)
