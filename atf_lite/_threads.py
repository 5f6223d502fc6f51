"""Thread limits for code that gains nothing from multithreaded BLAS.

The float64 solvers work with many small matrices; multithreaded BLAS only adds
synchronisation overhead there (and is slowed down a hundredfold on a busy machine), so they
run single-threaded.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["single_threaded"]

#: Decorator: run the function with every BLAS / OpenMP pool limited to one thread.
single_threaded = threadpool_limits.wrap(limits=1)
