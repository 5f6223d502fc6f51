"""End-to-end experiments of the book, cached on disk (see :mod:`atf_lite.cache`).

* ``kernel_alignment``: the paper's Figures 1 and 3
  (:func:`atf_lite.experiments.alignment_run.kernel_alignment`);
* ``sample_complexity``: fixed vs adaptive vs full models
  (:func:`atf_lite.experiments.sample_complexity_run.sample_complexity`).

Each module also provides a ``python -m atf_lite`` sub-command.
"""

from __future__ import annotations

__all__ = ["kernel_alignment", "sample_complexity"]


def __getattr__(name: str):
    # Imported lazily so that one experiment's dependencies never slow down the other.
    if name == "kernel_alignment":
        from .alignment_run import kernel_alignment

        return kernel_alignment
    if name == "sample_complexity":
        from .sample_complexity_run import sample_complexity

        return sample_complexity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
