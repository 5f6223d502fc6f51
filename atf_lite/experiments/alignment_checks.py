"""Checks of the alignment experiment that are not results: do its two tasks differ, and how is
progress reported.

* :func:`task_overlap` and :class:`TasksCoincideWarning`: the regression and sign tasks nearly
  coincide when few targets lie near the decision boundary, or when the random network behind
  ``y`` is so wide that it fits the ``±1`` labels almost exactly; the experiment then warns, and
  its JSON summary records the warning;
* :class:`StageProgress`: progress bars on a terminal or in a notebook, one line per finished
  stage when standard error goes to a file or a pipe.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validation import check_array, check_positive_int
from ..progress import progress_enabled

__all__ = ["TasksCoincideWarning", "task_overlap", "StageProgress"]

# |y| below this counts as near the decision boundary, where sign(y) and y differ most.
NEAR_BOUNDARY = 0.5
MIN_FRACTION_NEAR_BOUNDARY = 0.05
MAX_TARGET_WIDTH_FRACTION = 0.8


class TasksCoincideWarning(UserWarning):
    """The regression and sign tasks of an alignment experiment nearly coincide."""


def task_overlap(y: Any, labels: Any, target_width: int) -> dict[str, Any]:
    """How far apart the tasks ``y`` and ``sign(y)`` are (``y``, ``labels``: ``[n]``).

    Returns the fraction of targets near the decision boundary (``|y| < 0.5``), the fraction
    with ``sign(y)`` equal to the label, and ``warning``: a message saying which option to
    change when the tasks nearly coincide (fewer than 5 % of the points near the boundary, or
    ``target_width``, the width of the random network behind ``y``, at least ``0.8 n``), else
    ``None``.
    """
    y = check_array(y, "y", ndim=1)
    labels = check_array(labels, "labels", ndim=1)
    if labels.shape != y.shape:
        raise ValueError(f"labels must match y's shape {y.shape}, got {labels.shape}")
    target_width = check_positive_int(target_width, "target_width")
    n = len(y)
    near = float(np.mean(np.abs(y) < NEAR_BOUNDARY))
    reasons = []
    if near < MIN_FRACTION_NEAR_BOUNDARY:
        reasons.append(
            f"only {near:.1%} of the targets have |y| < {NEAR_BOUNDARY} (fewer than "
            f"{MIN_FRACTION_NEAR_BOUNDARY:.0%})"
        )
    if target_width >= MAX_TARGET_WIDTH_FRACTION * n:
        reasons.append(
            f"the random network behind y has {target_width} units for n = {n} points (at "
            f"least {MAX_TARGET_WIDTH_FRACTION:g} n), so it nearly interpolates the labels"
        )
    warning = None
    if reasons:
        warning = (
            "the regression and sign tasks nearly coincide: " + "; ".join(reasons) + ". Lower "
            "the target width (target_width=..., --target-width; e.g. 32 on the 8x8 digits) "
            "or use more points (n=..., --n) to separate them"
        )
    return {
        "fraction_abs_y_below_half": near,
        "fraction_sign_y_equals_label": float(np.mean(np.sign(y) == labels)),
        "warning": warning,
    }


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where tqdm draws its bars as widgets)."""
    ipython = sys.modules.get("IPython")
    shell = None if ipython is None else ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class StageProgress:
    """How a long computation reports progress (``enabled=None`` follows
    ``$ATF_LITE_PROGRESS``): ``bars`` tells the inner loops to draw tqdm bars (on a terminal or
    in a notebook); otherwise, with standard error going to a file or a pipe, :meth:`stage`
    prints one line per finished stage, ``"{label}: {what} ({seconds} s)"``, so that a log gets
    a readable record instead of carriage-return updates."""

    def __init__(self, enabled: bool | None, label: str) -> None:
        show = progress_enabled() if enabled is None else bool(enabled)
        interactive = sys.stderr.isatty() or _in_notebook()
        self.bars = show and interactive
        self.lines = show and not interactive
        self.label = label

    @contextlib.contextmanager
    def stage(self, what: str) -> Iterator[None]:
        """Time the block and, in line mode, report it when it ends."""
        start = time.perf_counter()
        yield
        if self.lines:
            seconds = time.perf_counter() - start
            print(f"{self.label}: {what} ({seconds:.1f} s)", file=sys.stderr, flush=True)
