"""Tables, figures and the JSON summary of the kernel-alignment experiment.

* :func:`format_seed_table`: metrics per task and seed, mean ± sd;
* :func:`diagonal_quarters`, :func:`binned_diagonal`: where the kernel's diagonal grows (hard
  versus easy points);
* :func:`theorem1_alignment`: the alignment Theorem 1's optimal unstructured adaptation would
  reach for the same task;
* :func:`plot_kernels` (Figure 1) and :func:`plot_difficulty` (Figure 3);
* :func:`plot_quadrature_convergence`: quadrature against exact integration of ``Φ̄``;
* :func:`summary` and :func:`write_outputs`: what ``python -m atf_lite alignment`` writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_instance, check_option, describe
from ..alignment import kernel_alignment, label_kernel
from ..plotting import COLORS, heatmap, use_style
from ..theory.effective import adaptation_scale
from ..theory.penalties import PenaltyLike, omega_sq
from .alignment_checks import task_overlap
from .alignment_quadrature import QuadratureConvergence
from .alignment_run import TASKS, AlignmentResult, TaskResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "format_seed_table",
    "diagonal_quarters",
    "binned_diagonal",
    "theorem1_alignment",
    "plot_kernels",
    "plot_difficulty",
    "plot_quadrature_convergence",
    "summary",
    "write_outputs",
]


# Print formats of the metrics in seed tables: small positive quantities in scientific notation.
_METRIC_FORMATS = {"identity_residual": ".1e", "train_loss": ".1e", "tangent_norm": ".2f"}


def format_seed_table(
    results: Sequence[AlignmentResult],
    *,
    metrics: Iterable[str] = ("alignment", "alignment_change", "identity_residual"),
) -> str:
    """A plain-text table: one row per metric and task, the value for each seed, mean ± sd.

    Metrics are :class:`~atf_lite.experiments.alignment_run.TaskResult` attributes; ``sd`` is
    the sample standard deviation.  Alignments are printed with three decimals, losses and
    residuals with two significant digits.
    """
    if isinstance(results, AlignmentResult) or not isinstance(results, Sequence) or isinstance(
        results, str | bytes
    ):
        raise TypeError(f"results must be a sequence of AlignmentResult, got {describe(results)}")
    if not results:
        raise ValueError("results must not be empty")
    for result in results:
        if not isinstance(result, AlignmentResult):
            raise TypeError(
                f"results must hold AlignmentResult objects, got {type(result).__name__}"
            )
    metrics = _check_metrics(metrics)
    seeds = [result.settings.seed for result in results]
    header = f"{'metric':<20}{'task':<12}" + "".join(f"{'seed ' + str(s):>10}" for s in seeds)
    lines = [header + f"{'mean ± sd':>22}"]
    for metric in metrics:
        fmt = _METRIC_FORMATS.get(metric, ".3f")
        for task in TASKS:
            values = np.array([getattr(result.tasks[task], metric) for result in results])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells = "".join(f"{value:>10{fmt}}" for value in values)
            summary_cell = f"{values.mean():{fmt}} ± {spread:{fmt}}"
            lines.append(f"{metric:<20}{task:<12}{cells}{summary_cell:>22}")
    return "\n".join(lines)


def _check_metrics(metrics: Any) -> tuple[str, ...]:
    if metrics is None or isinstance(metrics, str | bytes) or not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a sequence of metric names, got {describe(metrics)}")
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics must not be empty")
    # Any number a TaskResult holds: its fields and its computed properties (train_loss, ...).
    names = tuple(field.name for field in dataclasses.fields(TaskResult)) + tuple(
        name for name, value in vars(TaskResult).items() if isinstance(value, property))
    for metric in metrics:
        check_option(metric, "metrics", names)
    return metrics


def _kernel(result: AlignmentResult, kernel: str, task: str) -> np.ndarray:
    if task not in result.tasks:
        raise ValueError(f"task must be one of {tuple(result.tasks)}, got {task!r}")
    if kernel == "K0":
        return result.K0
    if kernel in ("K_bar", "K_final"):
        return getattr(result.tasks[task], kernel)
    raise ValueError(f"kernel must be 'K_bar', 'K_final' or 'K0', got {kernel!r}")


def diagonal_quarters(
    result: AlignmentResult, *, kernel: str = "K_bar", task: str = "sign"
) -> tuple[float, float]:
    """Mean of a kernel's diagonal over the quarter of points with the smallest ``|y|`` and over
    the quarter with the largest ``|y|``: ``(mean_small, mean_large)``.

    ``kernel``: ``"K_bar"``, ``"K_final"`` (of ``task``) or ``"K0"``.
    """
    _check_result(result)
    diagonal = np.diag(_kernel(result, kernel, task))
    order = np.argsort(np.abs(result.y), kind="stable")
    quarter = max(1, len(order) // 4)
    return float(diagonal[order[:quarter]].mean()), float(diagonal[order[-quarter:]].mean())


def _check_out_dir(out_dir: Any, command: Any) -> None:
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(f"out_dir must be a path, got {describe(out_dir)}")
    if command is not None and not isinstance(command, str):
        raise TypeError(f"command must be a string or None, got {describe(command)}")


def _check_result(result: Any) -> None:
    if not isinstance(result, AlignmentResult):
        raise TypeError(f"result must be an AlignmentResult, got {type(result).__name__}")


def binned_diagonal(
    result: AlignmentResult, *, kernel: str = "K_bar", task: str = "sign", bins: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """The diagonal of a kernel averaged over ``bins`` groups of points of equal size, sorted by
    ``y``: ``(mean y, mean diagonal)`` per group (float64 ``[bins]``); the trend of Figure 3."""
    _check_result(result)
    if (isinstance(bins, bool) or not isinstance(bins, (int, np.integer))
            or not 1 <= bins <= len(result.y)):
        raise ValueError(f"bins must be an integer in [1, {len(result.y)}], got {bins!r}")
    diagonal = np.diag(_kernel(result, kernel, task))
    groups = np.array_split(np.argsort(result.y, kind="stable"), int(bins))
    return (
        np.array([result.y[g].mean() for g in groups]),
        np.array([diagonal[g].mean() for g in groups]),
    )


def theorem1_alignment(
    result: AlignmentResult, *, task: str = "sign", omega: PenaltyLike = omega_sq
) -> float:
    """The alignment predicted by Theorem 1 for ``task``: the cosine similarity of
    ``K* = K0 + (s² − 1) / ‖β̂‖² · r rᵀ`` with ``r rᵀ``, where ``r = target − ŷ0`` is what the
    network must learn, ``‖β̂‖ = (rᵀ K0⁻¹ r)^½`` (``tangent_norm``) and ``s`` the adaptation
    scale of the penalty ``omega`` at ``‖β̂‖`` (:func:`~atf_lite.theory.effective.adaptation_scale`):
    the optimal *unstructured* adaptation of the initial tangent features to this task."""
    _check_result(result)
    if task not in result.tasks:
        raise ValueError(f"task must be one of {tuple(result.tasks)}, got {task!r}")
    run = result.tasks[task]
    r = run.target - run.output0
    norm = run.tangent_norm
    scale = float(adaptation_scale(norm, omega))
    adapted = result.K0 + (scale**2 - 1) / norm**2 * label_kernel(r)
    return kernel_alignment(adapted, label_kernel(r))


_TASK_TITLES = {"regression": "trained on $y$", "sign": r"trained on sign$(y)$"}


def plot_kernels(result: AlignmentResult) -> Figure:
    """Figure 1: heat maps of ``K0``, ``K̄`` and ``K_ŷ`` per task, points ordered by ``y``, each
    with its colour bar.  Titles give the cosine similarity of each kernel with ``K_ŷ``.
    Returns the figure."""
    _check_result(result)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(TASKS), 3, figsize=(9.0, 5.6), constrained_layout=True)
    order = result.order
    for row, task in zip(axes, TASKS):
        res = result.tasks[task]
        panels = (
            (result.K0, f"$K_0$: cos = {res.alignment_initial:.3f}", False),
            (res.K_bar, rf"$\bar K$: cos = {res.alignment:.3f}", False),
            (res.K_output, r"$K_{\hat y} = (\hat y - \hat y_0)(\hat y - \hat y_0)^\top$", True),
        )
        for ax, (K, title, symmetric) in zip(row, panels):
            image = heatmap(ax, K, order=order, title=title, symmetric=symmetric)
            fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
        row[0].set_ylabel(_TASK_TITLES[task] + "\n(points sorted by $y$)")
    return fig


def plot_difficulty(result: AlignmentResult, *, task: str = "sign", bins: int = 12) -> Figure:
    """Figure 3 for ``task``: left, ``ŷ`` against ``y`` with the curves ``sign(y)`` and ``y``;
    right, the diagonal ``K̄(x_i, x_i)`` against ``y`` with its mean over ``bins`` equal groups
    of points (:func:`binned_diagonal`), and the residual ``sign(y) − y`` on a second axis.

    Returns the figure.
    """
    import matplotlib.pyplot as plt

    centers, means = binned_diagonal(result, task=task, bins=bins)
    res = result.tasks[task]
    y = result.y
    grid = np.sort(y)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.6), constrained_layout=True)
    left.plot(y, res.output1, "o", ms=3, alpha=0.6, color=COLORS["blue"], label=r"$\hat y_i$")
    left.plot(grid, np.sign(grid), "-", color=COLORS["green"], label=r"sign$(y)$")
    left.plot(grid, grid, ":", color=COLORS["black"], label="$y$")
    left.set_xlabel("target of the random features, $y_i$")
    left.set_ylabel("network output")
    left.set_title(f"network {_TASK_TITLES[task]}")
    left.legend(loc="upper left")
    right.plot(y, np.diag(res.K_bar), "x", ms=3.5, alpha=0.5, color=COLORS["orange"],
               label=r"$\bar K(x_i, x_i)$")
    right.plot(centers, means, "o-", ms=4, color=COLORS["black"],
               label=f"mean over {bins} groups")
    right.set_xlabel("target of the random features, $y_i$")
    right.set_ylabel(r"$\bar K(x_i, x_i)$")
    twin = right.twinx()
    twin.plot(grid, np.sign(grid) - grid, "--", color=COLORS["red"], label=r"sign$(y) - y$")
    twin.set_ylabel(r"residual sign$(y) - y$")
    twin.grid(False)
    handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    right.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=9)
    right.set_title("where the kernel grows, and what is left to learn")
    return fig


def plot_quadrature_convergence(convergence: QuadratureConvergence) -> Figure:
    """Left: the residual of the path identity against the number of nodes per rule, with the
    exact rule's residual as a reference line; right: the relative distance of each quadrature
    ``Φ̄`` from the exact one, with a ``1/N`` guide.  Returns the figure."""
    import matplotlib.pyplot as plt

    check_instance(convergence, "convergence", QuadratureConvergence, "a QuadratureConvergence")
    nodes = np.asarray(convergence.nodes, dtype=float)
    colors = {"riemann": COLORS["red"], "trapezoid": COLORS["green"],
              "gauss-legendre": COLORS["blue"]}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.6), constrained_layout=True)
    for ax, values in ((left, convergence.residuals), (right, convergence.feature_errors)):
        for rule, series in values.items():
            ax.loglog(nodes, series, "o-", ms=4, color=colors.get(rule), label=rule)
        ax.set_xlabel("quadrature nodes $N$")
    left.axhline(convergence.exact_residual, color=COLORS["black"], ls="--",
                 label=f"exact: {convergence.exact_residual:.0e}")
    left.set_ylabel("relative residual of the identity")
    left.set_title(r"$\hat y - \hat y_0 = \bar\Phi\,(\theta_1 - \theta_0)$")
    first = min(series[0] for series in convergence.feature_errors.values())
    guide = first * nodes[0] / nodes
    right.loglog(nodes, guide, ":", color=COLORS["black"], label=r"$\propto 1/N$")
    right.set_ylabel(r"$\|\bar\Phi_N - \bar\Phi\|_F \,/\, \|\bar\Phi\|_F$")
    right.set_title("distance from the exact features")
    for ax in (left, right):
        ax.legend(fontsize=9)
    return fig


def summary(result: AlignmentResult) -> dict[str, Any]:
    """JSON-serialisable summary: config, targets, warnings (the tasks nearly coincide:
    :func:`~atf_lite.experiments.alignment_checks.task_overlap`), per-task alignments,
    residuals, losses, pieces per input (exact rule) and times."""
    _check_result(result)
    tasks = {}
    for task, res in result.tasks.items():
        a, b, relative = res.decomposition
        small, large = diagonal_quarters(result, kernel="K_bar", task=task)
        pieces = None
        if res.pieces is not None:
            pieces = {"median": float(np.median(res.pieces)), "max": int(np.max(res.pieces))}
        tasks[task] = {
            "alignment": res.alignment,
            "alignment_change": res.alignment_change,
            "alignment_initial": res.alignment_initial,
            "alignment_final": res.alignment_final,
            "alignment_centered": res.alignment_centered,
            "identity_residual": res.identity_residual,
            "train_loss": res.train_loss,
            "tangent_norm": res.tangent_norm,
            "decomposition": {"a": a, "b": b, "relative_residual": relative},
            "diagonal_smallest_abs_y_quarter": small,
            "diagonal_largest_abs_y_quarter": large,
            "pieces_per_input": pieces,
            "seconds": res.seconds,
        }
    k0_small, k0_large = diagonal_quarters(result, kernel="K0")
    overlap = task_overlap(result.y, result.labels, result.settings.target_width)
    return {
        "config": result.settings.as_dict(),
        "n": int(result.X.shape[0]),
        "d": int(result.X.shape[1]),
        "targets": {
            "fraction_abs_y_below_half": overlap["fraction_abs_y_below_half"],
            "fraction_sign_y_equals_label": overlap["fraction_sign_y_equals_label"],
        },
        "warnings": [] if overlap["warning"] is None else [overlap["warning"]],
        "sign_aligns_more": bool(
            result.tasks["sign"].alignment > result.tasks["regression"].alignment
        ),
        "K0_diagonal_quarters": {"smallest_abs_y": k0_small, "largest_abs_y": k0_large},
        "tasks": tasks,
    }


def write_outputs(
    result: AlignmentResult, out_dir: str | os.PathLike, *, command: str | None = None
) -> list[pathlib.Path]:
    """Write ``kernels.{png,pdf}`` (Figure 1), ``difficulty.{png,pdf}`` (Figure 3, sign task)
    and ``summary.json`` into ``out_dir`` (created if needed); return the paths written."""
    _check_result(result)
    _check_out_dir(out_dir, command)
    import matplotlib.pyplot as plt

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    use_style()
    written = []
    figures = {"kernels": plot_kernels(result), "difficulty": plot_difficulty(result)}
    for stem, figure in figures.items():
        for suffix in ("png", "pdf"):
            path = out / f"{stem}.{suffix}"
            figure.savefig(path)
            written.append(path)
        plt.close(figure)
    payload = summary(result)
    if command is not None:
        payload = {"command": command, **payload}
    path = out / "summary.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    written.append(path)
    return written
