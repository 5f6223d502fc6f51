"""Figures and tables of chapters 4 and 5: structured penalties, sparse recovery, matrix sensing.

* :func:`plot_singular_value_penalties`: the penalty one coordinate or singular value pays
  under fixed features, the ``ℓ1`` and nuclear norms, and the adaptive structures (chapter 4);
* :func:`format_recovery_table`: median relative errors of recovery experiments, one row per
  setting (chapter 5);
* :func:`plot_recovery_curves`: median relative error against the number of measurements and
  against the scale of the signal (chapter 5, sparse recovery and matrix sensing);
* :func:`plot_spectra`: singular values of the solutions of one matrix-sensing instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import (
    check_array,
    check_instance,
    check_int,
    check_positive_int,
    check_real,
    check_sequence,
)
from ..plotting import COLORS
from ..theory.effective import effective_penalty
from ..theory.penalties import omega_abs, omega_sq
from ..theory.structured import kronecker_penalty_and_scales
from ._report_inputs import check_labelled, check_labels, check_text
from .recovery import RecoveryTrials

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "format_recovery_table",
    "plot_singular_value_penalties",
    "plot_recovery_curves",
    "plot_spectra",
]

#: How the baselines of :class:`~atf_lite.experiments.recovery.RecoveryTrials` are drawn:
#: method → (legend label, colour, marker).  Adaptive methods (any other label) get
#: :data:`_ADAPTIVE_COLORS` and :data:`_ADAPTIVE_MARKERS` in the order they appear.
_BASELINES = {
    "truth": ("truth", COLORS["red"], "o"),
    "min_l2": ("min-ℓ2 (fixed features)", COLORS["black"], "o"),
    "l1": ("min-ℓ1", COLORS["green"], "s"),
    "nuclear": ("min nuclear norm", COLORS["green"], "D"),
}
_ADAPTIVE_COLORS = ("blue", "orange", "purple", "sky")
_ADAPTIVE_MARKERS = ("^", "v", "P", "X")
_CONVEX = ("l1", "nuclear")


def _styles(methods: Sequence[str], labels: Mapping[str, str] | None) -> dict[str, tuple]:
    """Legend label, colour and marker of every method (adaptive ones: ``adaptive, <label>``)."""
    labels = dict(labels or {})
    styles, adaptive = {}, 0
    for method in methods:
        if method in _BASELINES:
            label, color, marker = _BASELINES[method]
        else:
            label = f"adaptive, {method}"
            color = COLORS[_ADAPTIVE_COLORS[adaptive % len(_ADAPTIVE_COLORS)]]
            marker = _ADAPTIVE_MARKERS[adaptive % len(_ADAPTIVE_MARKERS)]
            adaptive += 1
        styles[method] = (labels.get(method, label), color, marker)
    return styles


def _check_trials(value: Any, name: str) -> dict[Any, RecoveryTrials]:
    """``{label: RecoveryTrials}``, non-empty."""
    return check_labelled(value, name, lambda r, n: check_instance(r, n, RecoveryTrials,
                                                                   "a RecoveryTrials"))


def _check_matrix(matrix: Any, name: str) -> np.ndarray:
    matrix = check_array(matrix, name)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a matrix, got shape {matrix.shape}")
    return matrix


def _methods(results: Sequence[RecoveryTrials]) -> list[str]:
    """Every method reported by any of ``results``, in order of first appearance."""
    seen: dict[str, None] = {}
    for result in results:
        seen.update(dict.fromkeys(result.errors))
    return list(seen)


def format_recovery_table(
    rows: Mapping[Any, RecoveryTrials],
    *,
    row_name: str = "scale",
    columns: Mapping[str, str] | None = None,
    digits: int = 3,
) -> str:
    """A plain-text table of median relative errors, one row per entry of ``rows``.

    ``rows``: row label (a scale, a number of measurements, …) → the experiment's result;
    ``columns``: method → column header, in the order to print (default: every method, headed
    by its name).  A method a row did not compute is left blank.  Medians are printed with
    ``digits`` decimals.
    """
    rows = _check_trials(rows, "rows")
    row_name = check_text(row_name, "row_name")
    columns = check_labels(columns, "columns")
    digits = check_int(digits, "digits", minimum=0)
    if columns is None:
        columns = {method: method for method in _methods(list(rows.values()))}
    if not columns:
        raise ValueError("columns must not be empty")
    names = {row: f"{row:g}" if isinstance(row, int | float) else str(row) for row in rows}
    width = max(digits + 4, *(len(header) for header in columns.values()))
    label_width = max(len(row_name), *(len(name) for name in names.values()))
    lines = [f"{row_name:>{label_width}}" + "".join(f"  {h:>{width}}" for h in columns.values())]
    for row, result in rows.items():
        cells = [
            f"  {result.median(method):>{width}.{digits}f}" if method in result.errors
            else "  " + " " * width
            for method in columns
        ]
        lines.append(f"{names[row]:>{label_width}}" + "".join(cells).rstrip())
    return "\n".join(lines)


def plot_singular_value_penalties(
    *, v_max: float = 6.0, v_log: tuple[float, float] = (1e-2, 1e4)
) -> Figure:
    """The penalty paid by one coordinate or singular value ``v`` (chapter 4).

    Reference curves: ``v²`` (fixed features), ``2v`` and ``v`` (``ℓ1`` and nuclear norms, up
    to their constants); adaptive penalties: the effective penalty ``ω̃1`` of one factor
    (diagonal or group structure) and the Kronecker penalty ``h`` for ``(ω1, ω1)`` and
    ``(ω1, ω2)``.  Left: linear axes on ``[0, v_max]``; right: log-log axes over ``v_log``.
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    v_max = check_real(v_max, "v_max", low=0.0, low_open=True)
    v_log = check_sequence(v_log, "v_log")
    if len(v_log) != 2:
        raise ValueError(f"v_log must be an interval (low, high), got {v_log!r}")
    low, high = (check_real(v, f"v_log[{i}]") for i, v in enumerate(v_log))
    if not 0 < low < high:
        raise ValueError(f"v_log must be an interval (low, high), 0 < low < high, got {v_log!r}")
    curves = {
        r"$v^2$ (fixed features)": (lambda v: v**2, "black", ":"),
        r"$2v$ ($\ell_1$-like)": (lambda v: 2 * v, "sky", "--"),
        r"$v$ (nuclear norm)": (lambda v: v, "green", "--"),
        r"$\tilde\omega_1$ (one factor)": (lambda v: effective_penalty(v, omega_sq), "blue", "-"),
        r"$h$ for $(\omega_1,\omega_1)$": (
            lambda v: kronecker_penalty_and_scales(v, omega_sq, omega_sq)[0], "orange", "-"),
        r"$h$ for $(\omega_1,\omega_2)$": (
            lambda v: kronecker_penalty_and_scales(v, omega_sq, omega_abs)[0], "purple", "-"),
    }
    v_lin = np.linspace(0.0, v_max, 601)
    v_geo = np.geomspace(low, high, 400)
    fig, (linear, loglog) = plt.subplots(1, 2, figsize=(10.0, 3.9), constrained_layout=True)
    for label, (func, color, style) in curves.items():
        linear.plot(v_lin, func(v_lin), color=COLORS[color], linestyle=style, label=label)
        loglog.loglog(v_geo, func(v_geo), color=COLORS[color], linestyle=style)
    linear.set_ylim(0.0, 2.0 * v_max)
    linear.set_xlabel("singular value or coordinate $v$")
    linear.set_ylabel("penalty")
    linear.legend(loc="upper left")
    loglog.set_xlabel("$v$ (log scale)")
    loglog.set_ylabel("penalty (log scale)")
    loglog.set_ylim(low**2 / 2, 10 * high)
    return fig


def _error_curve(ax: Axes, xs: Sequence[float], results: Mapping[Any, RecoveryTrials],
                 method: str, style: tuple, log_x: bool) -> None:
    label, color, marker = style
    plot = ax.semilogx if log_x else ax.plot
    plot(xs, [results[x].median(method) for x in xs], marker=marker, color=color, label=label)


def plot_recovery_curves(
    by_count: Mapping[int, RecoveryTrials],
    by_scale: Mapping[float, RecoveryTrials],
    *,
    count_name: str = "m",
    scale_label: str = "scale of the non-zero entries",
    fixed_scale: float,
    fixed_count: int,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Median relative error against the number of measurements and against the scale.

    ``by_count``: number of measurements → result at scale ``fixed_scale`` (left panel);
    ``by_scale``: scale → result with ``fixed_count`` measurements (right panel, log axis).
    Every method of the results is drawn (``labels``: method → legend label, to override the
    defaults).  A convex baseline (``"l1"``, ``"nuclear"``) is scale invariant, so on the right
    it is the horizontal line of its median in ``by_count[fixed_count]`` when ``by_scale`` does
    not report it.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    by_count, by_scale = _check_trials(by_count, "by_count"), _check_trials(by_scale, "by_scale")
    count_name = check_text(count_name, "count_name")
    scale_label = check_text(scale_label, "scale_label")
    fixed_scale = check_real(fixed_scale, "fixed_scale", low=0.0, low_open=True)
    fixed_count = check_positive_int(fixed_count, "fixed_count")
    labels = check_labels(labels)
    counts, scales = sorted(by_count), sorted(by_scale)
    count_methods = _methods([by_count[c] for c in counts])
    scale_methods = _methods([by_scale[s] for s in scales])
    styles = _styles(list(dict.fromkeys(count_methods + scale_methods)), labels)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.9), constrained_layout=True)
    for method in count_methods:
        _error_curve(left, counts, by_count, method, styles[method], log_x=False)
    for method in scale_methods:
        if all(method in by_scale[s].errors for s in scales):
            _error_curve(right, scales, by_scale, method, styles[method], log_x=True)
    right.set_xscale("log")
    reference = by_count.get(fixed_count)
    convex_lines = []
    for method in _CONVEX:
        drawn = all(method in by_scale[s].errors for s in scales)
        if not drawn and reference is not None and method in reference.errors:
            label, color, _ = styles[method]
            convex_lines.append(right.axhline(reference.median(method), color=color,
                                              linestyle="--", label=f"{label} (scale invariant)"))
    left.set_xlabel(f"number of measurements ${count_name}$")
    left.set_ylabel("median relative error")
    left.set_title(f"scale {fixed_scale:g}")
    left.legend()
    right.set_xlabel(scale_label)
    right.set_ylabel("median relative error")
    right.set_title(f"${count_name}$ = {fixed_count}")
    if convex_lines:
        right.legend(handles=convex_lines, loc="center left")
    return fig


def plot_spectra(
    matrices: Mapping[str, Any],
    *,
    floor: float = 1e-3,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Singular values of the matrices in ``matrices`` (method → ``[m, d]`` matrix), one curve
    each on a log axis, values below ``floor`` drawn at ``floor``.

    Keys ``"truth"``, ``"min_l2"``, ``"nuclear"`` get the baselines' styles, any other key is an
    adaptive method (``labels``: key → legend label, to override).  Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    matrices = check_labelled(matrices, "matrices", _check_matrix)
    floor = check_real(floor, "floor", low=0.0, low_open=True)
    labels = check_labels(labels)
    styles = _styles(list(matrices), labels)
    fig, ax = plt.subplots(figsize=(6.0, 3.9), constrained_layout=True)
    largest = floor
    for key, matrix in matrices.items():
        sigma = np.linalg.svd(matrix, compute_uv=False)
        largest = max(largest, float(sigma[0]))
        label, color, marker = styles[key]
        index = np.arange(1, sigma.size + 1)
        ax.semilogy(index, np.maximum(sigma, floor), marker=marker, color=color, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("index $i$")
    ax.set_ylabel(rf"singular value $\sigma_i$ (floored at {floor:g})")
    ax.set_ylim(floor / 2, largest * 100)
    ax.legend(loc="upper right")
    return fig
