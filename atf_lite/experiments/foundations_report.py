"""Figures, tables and small drivers of the book's first three chapters.

* Chapter 1 (linear models in tangent feature space): :func:`feature_gradient_descent` (gradient
  descent on a linear model with explicit features), :func:`fit_power_law`,
  :func:`format_width_sweep`, :func:`plot_descent`, :func:`plot_width_sweep`;
* chapter 2 (effective penalties): :func:`plot_penalties`, :func:`plot_effective_penalties`
  (the paper's Figure 2) and :func:`plot_effective_loglog`;
* chapter 3 (Theorem 1): :func:`brute_force_rows`, :func:`format_brute_force_table` and
  :func:`plot_brute_force` (closed form against brute force); :func:`label_weight_curve`,
  :func:`format_difficulty_table` and :func:`plot_difficulty_kinds` (targets made harder by
  direction or by scale).

Every plotting function draws with the book's style (call
:func:`atf_lite.plotting.use_style` first) and returns the matplotlib figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from .._threads import single_threaded
from .._types import ArrayLike
from .._validation import as_float_array, check_real
from ..alignment import kernel_alignment, label_kernel
from ..plotting import COLORS
from ..solvers.joint import compare_with_theorem1, solve_joint
from ..solvers.solution import JointSolution
from ..theory.effective import effective_penalty, effective_penalty_and_scale
from ..theory.penalties import PenaltyLike, as_penalty
from ..theory.theorem1 import theorem1_solution
from ._report_inputs import (
    check_curves,
    check_descent,
    check_label_weight,
    check_labelled,
    check_penalties,
    check_problem_instances,
    check_records,
    check_width_sweep,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..networks.linear import LinearizationGap

__all__ = [
    "FeatureDescent",
    "feature_gradient_descent",
    "PowerLawFit",
    "fit_power_law",
    "format_width_sweep",
    "plot_descent",
    "plot_width_sweep",
    "plot_penalties",
    "plot_effective_penalties",
    "plot_effective_loglog",
    "BruteForceRow",
    "brute_force_rows",
    "format_brute_force_table",
    "plot_brute_force",
    "LabelWeightCurve",
    "label_weight_curve",
    "format_difficulty_table",
    "plot_difficulty_kinds",
]

_PALETTE = (COLORS["blue"], COLORS["orange"], COLORS["green"], COLORS["purple"])


def _tilde(label: str) -> str:
    r"""``$\omega_1$`` → ``$\tilde\omega_1$`` (the effective penalty's label)."""
    return label.replace(r"\omega", r"\tilde\omega")


@dataclass(frozen=True)
class FeatureDescent:
    """Result of :func:`feature_gradient_descent`.

    ``beta``: the final weights (``[p]``); ``losses``: ``½‖Φβ_t − r‖²`` before each step and
    after the last (``[steps + 1]``); ``distances``: ``‖β_t − reference‖ / ‖reference‖`` at the
    same times, or ``None`` without a reference.
    """

    beta: np.ndarray
    losses: np.ndarray
    distances: np.ndarray | None


@single_threaded
def feature_gradient_descent(
    Phi: ArrayLike,
    r: ArrayLike,
    *,
    steps: int,
    lr: float,
    momentum: float = 0.0,
    reference: ArrayLike | None = None,
) -> FeatureDescent:
    """Full-batch (heavy-ball) gradient descent on ``½‖Φβ − r‖²`` from ``β = 0``, in float64.

    ``Phi``: ``[n, p]`` features, ``r``: ``[n]`` targets.  The update is torch's SGD with
    momentum, ``v ← μ v + Φᵀ(Φβ − r)``, ``β ← β − lr·v`` (``v`` starts at the first gradient),
    which is Polyak's heavy ball; ``momentum = 0`` is plain gradient descent.  It is the
    iteration that :func:`atf_lite.networks.linear.train_linearized` runs on a linearised
    network, written with the features held in memory, which makes long runs cheap (and runs
    single-threaded: matrix-vector products gain nothing from more threads).  Raises
    ``FloatingPointError`` if the iterates overflow.
    """
    Phi, r, steps, lr, momentum, ref = check_descent(Phi, r, steps, lr, momentum, reference)
    beta, velocity = np.zeros(Phi.shape[1]), np.zeros(Phi.shape[1])
    losses, distances = [], []
    # A divergent run overflows: it is detected and reported below, without warnings on the way.
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps + 1):
            residual = Phi @ beta - r
            losses.append(0.5 * float(residual @ residual))
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(
                    f"gradient descent overflowed after {step} steps; lower lr"
                )
            if ref is not None:
                distances.append(float(np.linalg.norm(beta - ref) / np.linalg.norm(ref)))
            if step == steps:
                break
            velocity = momentum * velocity + Phi.T @ residual
            beta = beta - lr * velocity
    return FeatureDescent(
        beta=beta,
        losses=np.array(losses),
        distances=np.array(distances) if ref is not None else None,
    )


@dataclass(frozen=True)
class PowerLawFit:
    """A least-squares line through ``(log x, log y)``: ``y ≈ prefactor · x**exponent``.

    ``max_deviation``: the largest relative deviation ``|y / fit(x) − 1|`` over the fitted
    points.
    """

    exponent: float
    prefactor: float
    max_deviation: float

    def predict(self, x: float | np.ndarray) -> float | np.ndarray:
        """``prefactor · x**exponent``."""
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


def fit_power_law(x: ArrayLike, y: ArrayLike) -> PowerLawFit:
    """Fit ``y ≈ a · x**b`` by least squares on logarithmic axes (``x``, ``y``: positive ``[m]``,
    ``m ≥ 2``)."""
    x = as_float_array(x, "x", 1)
    y = as_float_array(y, "y", 1)
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"x and y must have the same length >= 2, got {len(x)} and {len(y)}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must be positive for a power-law fit")
    exponent, intercept = np.polyfit(np.log(x), np.log(y), 1)
    fit = PowerLawFit(float(exponent), float(np.exp(intercept)), 0.0)
    deviation = float(np.max(np.abs(y / fit.predict(x) - 1.0)))
    return PowerLawFit(fit.exponent, fit.prefactor, deviation)


def format_width_sweep(widths: Sequence[int], gaps: Sequence[LinearizationGap]) -> str:
    """A table of :class:`~atf_lite.networks.linear.LinearizationGap` results, one row per
    width (positive integers)."""
    widths, gaps = check_width_sweep(widths, gaps)
    lines = ["width   function gap   parameter change   kernel change"]
    for width, gap in zip(widths, gaps):
        lines.append(
            f"{width:5d}   {gap.function_gap:12.3f}   {gap.parameter_change:16.4f}"
            f"   {gap.kernel_change:13.2f}"
        )
    return "\n".join(lines)


def plot_descent(
    distances: Mapping[str, ArrayLike], *, tolerance: float | None = None
) -> Figure:
    """Relative distance to the minimum-norm solution against the step, one curve per run
    (``{label: [steps + 1]}``), on a log scale; ``tolerance`` draws a dotted line."""
    import matplotlib.pyplot as plt

    distances = check_labelled(distances, "distances", lambda v, n: as_float_array(v, n, 1))
    tolerance = check_real(tolerance, "tolerance", low=0.0, low_open=True, allow_none=True)
    fig, ax = plt.subplots(figsize=(5.6, 3.4), constrained_layout=True)
    for (label, values), color in zip(distances.items(), (COLORS["orange"], *_PALETTE)):
        ax.semilogy(values, color=color, label=label)
    if tolerance is not None:
        ax.axhline(tolerance, color="gray", lw=1, ls=":", label=f"tolerance {tolerance:g}")
    ax.set_xlabel("gradient step $t$")
    ax.set_ylabel(r"$\|\beta_t-\hat\beta\|\,/\,\|\hat\beta\|$")
    ax.legend()
    return fig


def plot_width_sweep(widths: Sequence[int], gaps: Sequence[LinearizationGap]) -> Figure:
    """The three measures of :class:`~atf_lite.networks.linear.LinearizationGap` against the
    width, on log–log axes, with fitted power laws (dashed) for the function gap and the
    parameter change."""
    import matplotlib.pyplot as plt

    widths, gaps = check_width_sweep(widths, gaps)
    widths_arr = np.asarray(widths, dtype=float)
    series = {
        "function gap": ([g.function_gap for g in gaps], "o", COLORS["blue"], True),
        r"parameter change $\|\theta_T-\theta_0\|/\|\theta_0\|$": (
            [g.parameter_change for g in gaps], "s", COLORS["orange"], True),
        r"kernel change $\|K_T-K_0\|_F/\|K_0\|_F$": (
            [g.kernel_change for g in gaps], "^", COLORS["green"], False),
    }
    fig, ax = plt.subplots(figsize=(5.6, 3.8), constrained_layout=True)
    for label, (values, marker, color, fitted) in series.items():
        if fitted:
            fit = fit_power_law(widths_arr, values)
            label += f" (slope {fit.exponent:.2f})"
            ax.loglog(widths_arr, fit.predict(widths_arr), ls="--", lw=1, color=color)
        ax.loglog(widths_arr, values, marker=marker, ls="-", color=color, label=label)
    ax.set_xticks(widths_arr, [str(int(w)) for w in widths_arr])
    ax.minorticks_off()
    ax.set_xlabel("hidden-layer width (units per layer)")
    ax.set_ylabel("relative change (dimensionless)")
    ax.legend(loc="lower left")
    return fig


def plot_penalties(
    z: ArrayLike, penalties: Mapping[str, PenaltyLike], *, mark: float | None = None
) -> Figure:
    """The penalties ``ω(z)`` (``{label: penalty}``) on the grid ``z``; ``mark`` draws a dotted
    vertical line."""
    import matplotlib.pyplot as plt

    z = as_float_array(z, "z", 1)
    penalties = check_penalties(penalties)
    mark = check_real(mark, "mark", allow_none=True)
    fig, ax = plt.subplots(figsize=(5.0, 3.4), constrained_layout=True)
    for (label, omega), color in zip(penalties.items(), _PALETTE):
        ax.plot(z, omega(z), color=color, label=label)
    if mark is not None:
        ax.axvline(mark, color=COLORS["black"], lw=0.8, ls=":")
    ax.set_xlabel("singular value $z$ of $\\Gamma$ (dimensionless)")
    ax.set_ylabel(r"penalty $\omega(z)$")
    ax.set_ylim(0, 4)
    ax.legend()
    return fig


def plot_effective_penalties(
    v: ArrayLike, penalties: Mapping[str, PenaltyLike], *, lazy_threshold: float | None = None
) -> Figure:
    """The paper's Figure 2 (left: ``ω̃(v)`` against ``v²``) with the adaptation scale ``s(v)``
    (right) for each penalty (``{label: penalty}``) on the grid ``v``; ``lazy_threshold`` draws a
    dotted vertical line on the right."""
    import matplotlib.pyplot as plt

    v = as_float_array(v, "v", 1)
    penalties = check_penalties(penalties)
    lazy_threshold = check_real(lazy_threshold, "lazy_threshold", allow_none=True)
    fig, (ax_pen, ax_scale) = plt.subplots(1, 2, figsize=(9.0, 3.6), constrained_layout=True)
    ax_pen.plot(v, v**2, color=COLORS["black"], ls="--", lw=1.2, label="$v^2$ (fixed features)")
    for (label, omega), color in zip(penalties.items(), _PALETTE):
        value, scale = effective_penalty_and_scale(v, omega)
        ax_pen.plot(v, value, color=color, label=_tilde(label))
        ax_scale.plot(v, scale, color=color, label=f"$s$ for {label}")
    if lazy_threshold is not None:
        ax_scale.axvline(lazy_threshold, color=COLORS["orange"], lw=0.8, ls=":")
    ax_pen.set_ylim(0, 8)
    ax_pen.set_ylabel(r"effective penalty $\tilde\omega(v)$")
    ax_scale.set_ylabel("adaptation scale $s(v)$")
    for ax in (ax_pen, ax_scale):
        ax.set_xlabel(r"weight norm $v=\|\theta\|_2$")
        ax.legend()
    return fig


def plot_effective_loglog(v: ArrayLike, penalties: Mapping[str, PenaltyLike]) -> Figure:
    """``ω̃(v)`` of each penalty (``{label: penalty}``) and ``v²`` on log–log axes."""
    import matplotlib.pyplot as plt

    v = as_float_array(v, "v", 1)
    penalties = check_penalties(penalties)
    fig, ax = plt.subplots(figsize=(5.0, 3.6), constrained_layout=True)
    ax.loglog(v, v**2, color=COLORS["black"], ls="--", lw=1.2, label="$v^2$")
    for (label, omega), color in zip(penalties.items(), _PALETTE):
        ax.loglog(v, effective_penalty(v, omega), color=color, label=_tilde(label))
    ax.set_xlabel(r"weight norm $v=\|\theta\|_2$")
    ax.set_ylabel(r"effective penalty $\tilde\omega(v)$")
    ax.legend()
    return fig


@dataclass(frozen=True)
class BruteForceRow:
    """One problem of the brute-force check of Theorem 1.

    ``n``, ``p``: the size of ``Φ``; ``norm``: ``‖β̂‖``; ``s``: the adaptation scale;
    ``closed_form`` / ``brute_force``: the optimal value ``ω̃(‖β̂‖)`` and the cost of the pair
    the solver returned; ``residual``: that pair's relative constraint residual; the gaps
    (see :class:`~atf_lite.solvers.joint.Theorem1Gaps`): ``objective`` (signed), ``theta``,
    ``beta_norm``, ``gram``, ``kernel``; ``gamma``: ``‖Γ − Γ*‖_F / ‖Γ*‖_F``, which is *not*
    small in general because ``Γ`` is not unique; ``joint``: the solver's solution.
    """

    n: int
    p: int
    norm: float
    s: float
    closed_form: float
    brute_force: float
    residual: float
    objective: float
    theta: float
    beta_norm: float
    gram: float
    kernel: float
    gamma: float
    joint: JointSolution


def brute_force_rows(
    instances: Sequence[tuple[np.ndarray, np.ndarray]], omega: PenaltyLike, *, restarts: int = 2
) -> list[BruteForceRow]:
    """Solve (AKL) for each ``(Phi, y)`` in ``instances`` by brute force
    (:func:`~atf_lite.solvers.joint.solve_joint`, seeded by the instance's index) and compare
    with Theorem 1's closed form."""
    omega = as_penalty(omega)
    pairs = check_problem_instances(instances)
    rows = []
    for seed, (Phi, y) in enumerate(pairs):
        exact = theorem1_solution(Phi, y, omega)
        joint = solve_joint(Phi, y, omega, restarts=restarts, seed=seed)
        gaps = compare_with_theorem1(Phi, y, omega, joint)
        G = exact.gamma()
        rows.append(BruteForceRow(
            n=Phi.shape[0], p=Phi.shape[1], norm=exact.norm, s=exact.s,
            closed_form=exact.objective, brute_force=joint.objective,
            residual=joint.constraint_residual, **gaps.as_dict(),
            gamma=float(np.linalg.norm(joint.gamma - G) / np.linalg.norm(G)), joint=joint,
        ))
    return rows


def format_brute_force_table(rows: Sequence[BruteForceRow]) -> str:
    """One line per problem: size, ``‖β̂‖``, ``s``, the optimal value and the relative gaps."""
    rows = check_records(rows, "rows", BruteForceRow, "a BruteForceRow")
    lines = [f"{'n':>2} {'p':>3} {'|b|':>6} {'s':>6} {'optimum':>8} | relative gaps: "
             f"{'objective':>9} {'theta':>8} {'kernel':>8} {'GG^T':>8} {'Gamma':>6}"]
    for r in rows:
        lines.append(
            f"{r.n:>2} {r.p:>3} {r.norm:6.3f} {r.s:6.3f} {r.closed_form:8.4f} | {'':15}"
            f"{r.objective:9.1e} {r.theta:8.1e} {r.kernel:8.1e} {r.gram:8.1e} {r.gamma:6.2f}"
        )
    return "\n".join(lines)


def plot_brute_force(
    rows: Mapping[str, Sequence[BruteForceRow]], *, tolerance: float = 1e-5, floor: float = 1e-17
) -> Figure:
    """Left: brute-force objective against the closed form, per penalty (``{label: rows}``);
    right: relative gaps of the objective and the training kernel per problem, exact zeros
    drawn at ``floor``, with ``tolerance`` as a dotted line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = check_labelled(rows, "rows", lambda v, n: check_records(v, n, BruteForceRow,
                                                                   "a BruteForceRow"))
    tolerance = check_real(tolerance, "tolerance", low=0.0, low_open=True)
    floor = check_real(floor, "floor", low=0.0, low_open=True)
    fig, (ax_value, ax_gap) = plt.subplots(1, 2, figsize=(9.0, 3.8), constrained_layout=True)
    values = []
    for (label, group), color in zip(rows.items(), _PALETTE):
        closed = np.array([r.closed_form for r in group])
        values.append(closed)
        ax_value.loglog(closed, [r.brute_force for r in group], "o", color=color, label=label,
                        ms=5, alpha=0.8)
        index = np.arange(1, len(group) + 1)
        ax_gap.semilogy(index, np.abs([r.kernel for r in group]) + floor, "o", color=color,
                        label=f"{label}: kernel", ms=5)
        ax_gap.semilogy(index, np.abs([r.objective for r in group]) + floor, "x", color=color,
                        label=f"{label}: objective", ms=6)
    span = np.concatenate(values)
    lims = np.array([span.min() / 2, span.max() * 2])
    ax_value.loglog(lims, lims, color=COLORS["black"], lw=0.8, ls="--", label="equality")
    ax_value.set_xlabel(r"closed form $\tilde\omega(\|\hat\beta\|)$")
    ax_value.set_ylabel("brute-force objective")
    ax_value.legend()
    ax_gap.axhline(tolerance, color=COLORS["red"], lw=0.8, ls=":")
    ax_gap.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_gap.set_xlabel("problem number")
    ax_gap.set_ylabel("relative gap (dimensionless)")
    ax_gap.legend(ncol=2, loc="upper left", bbox_to_anchor=(0.0, -0.22), borderaxespad=0)
    return fig


@dataclass(frozen=True)
class LabelWeightCurve:
    """Theorem 1's adapted training kernel ``K* = K0 + c·yyᵀ`` for the targets ``t·y`` over
    scales ``t``.

    Arrays of ``[len(scales)]``: ``norm`` (``‖β̂‖ = t·√(yᵀK0⁻¹y)``), ``s`` (adaptation scale),
    ``weight`` (the label kernel's weight ``c·‖t y‖² = (s² − 1)‖ty‖²/‖β̂‖²``, its trace and
    Frobenius norm), ``alignment`` and ``centred`` (cosine of ``K*`` with ``yyᵀ``, raw and
    centred).  ``initial_alignment`` and ``initial_centred``: the same for ``K0``.
    """

    scales: np.ndarray
    norm: np.ndarray
    s: np.ndarray
    weight: np.ndarray
    alignment: np.ndarray
    centred: np.ndarray
    initial_alignment: float
    initial_centred: float


@single_threaded
def label_weight_curve(
    K0: ArrayLike, y: ArrayLike, omega: PenaltyLike, scales: ArrayLike = (1.0,)
) -> LabelWeightCurve:
    """Theorem 1 on the training inputs for targets ``t·y``, ``t`` in ``scales`` (positive).

    ``K0``: the ``[n, n]`` positive definite initial kernel ``ΦΦᵀ``; ``y``: ``[n]``, non-zero.
    Uses ``‖β̂‖² = yᵀK0⁻¹y`` (one Cholesky factorisation), so no ``Φ`` is needed.
    """
    K0, y, scales = check_label_weight(K0, y, scales)
    norm0 = float(np.sqrt(y @ scipy.linalg.cho_solve(scipy.linalg.cho_factor(K0), y)))
    norm = scales * norm0
    _, s = effective_penalty_and_scale(norm, omega)
    # c‖ty‖² = (s² − 1)‖ty‖²/(t²‖β̂(y)‖²): the t² cancels.
    weight = (s**2 - 1.0) * float(y @ y) / norm0**2
    Ky = label_kernel(y)
    direction = Ky / float(y @ y)
    aligned = [kernel_alignment(K0 + w * direction, Ky) for w in weight]
    centred = [kernel_alignment(K0 + w * direction, Ky, centered=True) for w in weight]
    return LabelWeightCurve(
        scales=scales, norm=norm, s=np.asarray(s), weight=weight,
        alignment=np.array(aligned), centred=np.array(centred),
        initial_alignment=kernel_alignment(K0, Ky),
        initial_centred=kernel_alignment(K0, Ky, centered=True),
    )


def format_difficulty_table(
    curves: Mapping[str, Mapping[str, LabelWeightCurve]], *, index: int = 0
) -> str:
    """A table of ``{penalty label: {target: curve}}`` at ``curves[...].scales[index]``:
    ``‖y‖``-independent columns ``‖β̂‖``, then per penalty ``s``, the label weight and the
    centred alignment of ``K*`` (with that of ``K0`` first); every penalty holds the same
    targets."""
    curves, index = check_curves(curves, index, LabelWeightCurve, nested=True)
    penalties = list(curves)
    targets = list(curves[penalties[0]])
    head = f"{'target':>8} {'|b|':>7} {'K0 cent.':>8}"
    for label in penalties:
        head += f" | {label}: {'s':>6} {'weight':>7} {'K* cent.':>8}"
    lines = [head]
    for target in targets:
        first = curves[penalties[0]][target]
        line = f"{target:>8} {first.norm[index]:7.1f} {first.initial_centred:8.3f}"
        for label in penalties:
            c = curves[label][target]
            line += (f" | {'':>{len(label)}}  {c.s[index]:6.2f} {c.weight[index]:7.2f}"
                     f" {c.centred[index]:8.3f}")
        lines.append(line)
    return "\n".join(lines)


def plot_difficulty_kinds(curves: Mapping[str, LabelWeightCurve], *, index: int) -> Figure:
    """Label weight (left) and centred alignment of ``K*`` (right) against ``‖β̂‖`` for targets
    ``t·y`` of several directions (``{target: curve}``, one line each: harder by scale), with
    the points ``t = scales[index]`` joined by a dashed line (same norm, harder by
    direction)."""
    import matplotlib.pyplot as plt

    curves, index = check_curves(curves, index, LabelWeightCurve)
    fig, (ax_w, ax_a) = plt.subplots(1, 2, figsize=(9.0, 3.8), constrained_layout=True)
    scale = float(next(iter(curves.values())).scales[index])
    for (target, c), color in zip(curves.items(), _PALETTE):
        ax_w.loglog(c.norm, c.weight, color=color, label=f"$t\\,y$, {target}")
        ax_a.semilogx(c.norm, c.centred, color=color, label=f"$t\\,y$, {target}")
    for ax, key in ((ax_w, "weight"), (ax_a, "centred")):
        xs = [c.norm[index] for c in curves.values()]
        ys = [getattr(c, key)[index] for c in curves.values()]
        ax.plot(xs, ys, "o--", color=COLORS["black"], lw=1, ms=6,
                label=f"same norm, $t={scale:g}$")
        ax.set_xlabel(r"$\|\hat\beta\|_2$ (log scale)")
    ax_w.set_ylabel(r"label weight $(s^2-1)\|y\|^2/\|\hat\beta\|^2$")
    ax_a.set_ylabel(r"centred alignment of $K^\star$ with $yy^\top$")
    ax_w.legend()
    return fig

