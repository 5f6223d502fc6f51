"""Chapter 5's recovery experiments: sparse recovery and low-rank matrix sensing.

Each experiment is described by a frozen settings dataclass (the random problem family and the
number of trials) and compares, on every instance, the minimum-norm interpolator (fixed
features), a convex baseline and one structured adaptive solution per penalty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .._threads import single_threaded
from .._validation import (
    check_bool,
    check_instance,
    check_mapping,
    check_matrix_shape,
    check_nonnegative_int,
    check_positive_int,
    check_real,
    describe,
)
from ..linalg import min_norm_interpolator, relative_error
from ..progress import progress_bar
from ..solvers.alternating import solve_structured
from ..solvers.convex import min_l1_interpolator, min_nuclear_norm_interpolator
from ..theory.penalties import PenaltyLike
from ..theory.structured import structured_penalty
from .problems import matrix_sensing_instance, sparse_recovery_instance

__all__ = [
    "SparseRecoverySettings",
    "MatrixSensingSettings",
    "RecoveryTrials",
    "sparse_recovery_trials",
    "matrix_sensing_trials",
]


def _check_scale(scale: float) -> float:
    try:
        return check_real(scale, "scale", low=0, low_open=True)
    except ValueError:
        # One message for every bad scale (a bool, a string, NaN, zero): what a scale must be.
        raise ValueError(f"scale must be a positive number, got {describe(scale)}") from None


@dataclass(frozen=True)
class SparseRecoverySettings:
    """Sparse recovery: ``k``-sparse ``θ*`` in ``R^p`` with non-zeros ``±scale``, ``m`` Gaussian
    measurements, ``trials`` instances (instance ``t`` drawn with seed ``seed + t``, see
    :func:`~atf_lite.experiments.problems.sparse_recovery_instance`)."""

    m: int
    scale: float
    trials: int
    p: int = 60
    k: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("m", "trials", "p", "k"):
            check_positive_int(getattr(self, name), name)
        check_nonnegative_int(self.seed, "seed")
        _check_scale(self.scale)
        if self.k > self.p:
            raise ValueError(f"k must be at most p = {self.p}, got {self.k}")


@dataclass(frozen=True)
class MatrixSensingSettings:
    """Low-rank matrix sensing: ``Θ*`` of ``shape`` and rank ``rank`` with singular values
    ``scale``, ``n`` Gaussian measurements, ``trials`` instances (instance ``t`` drawn with seed
    ``seed + t``, see :func:`~atf_lite.experiments.problems.matrix_sensing_instance`)."""

    n: int
    scale: float
    trials: int
    shape: tuple[int, int] = (20, 20)
    rank: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n", "trials", "rank"):
            check_positive_int(getattr(self, name), name)
        check_nonnegative_int(self.seed, "seed")
        _check_scale(self.scale)
        check_matrix_shape(self.shape, "shape")
        if self.rank > min(self.shape):
            raise ValueError(
                f"rank must be at most min(shape) = {min(self.shape)}, got {self.rank}"
            )


@dataclass(frozen=True)
class RecoveryTrials:
    """Results of a recovery experiment over random instances (one entry per trial).

    ``errors``: method → ``[trials]`` relative errors against the truth (methods: ``"min_l2"``,
    the convex baseline ``"l1"`` or ``"nuclear"`` when computed, and one entry per adaptive
    penalty label).  For each adaptive label: ``gaps`` (``‖θ − θ_l2‖/‖θ_l2‖``, the distance
    from the lazy solution), ``residuals`` (relative constraint residuals), ``below_truth``
    (``Ω̃(θ) ≤ Ω̃(θ*)``: True means the solver found a point the regulariser prefers to the
    truth, so the remaining error is the regulariser's, not the optimiser's) and
    ``converged``.  ``top_energy`` (matrix sensing only): method → fraction of ``‖Θ‖_F²`` in
    the top ``rank`` singular values.
    """

    errors: dict[str, np.ndarray]
    gaps: dict[str, np.ndarray]
    residuals: dict[str, np.ndarray]
    below_truth: dict[str, np.ndarray]
    converged: dict[str, np.ndarray]
    top_energy: dict[str, np.ndarray]

    def median(self, method: str) -> float:
        """Median relative error of ``method`` over the trials."""
        return float(np.median(self.errors[method]))


def _collect(rows: list[dict]) -> dict[str, np.ndarray]:
    """Per-trial dicts (the same keys in every trial, at least one trial) → key → array."""
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def _top_energy(X: np.ndarray, rank: int) -> float:
    """Fraction of ``‖X‖_F² = Σ σ_i²`` carried by the ``rank`` largest singular values."""
    s = np.linalg.svd(X, compute_uv=False)
    return float(np.sum(s[:rank] ** 2) / np.sum(s**2))


def _check_penalties(penalties: object, *, pairs: bool = False) -> dict:
    # Empty is valid, not a slip: it asks for the baselines alone, which are worth a run.
    penalties = check_mapping(penalties, "penalties")
    if pairs:
        for label, value in penalties.items():
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise ValueError(
                    f"penalties[{label!r}] must be a pair (omega_a, omega_b), got {describe(value)}"
                )
    return penalties


@single_threaded
def sparse_recovery_trials(
    settings: SparseRecoverySettings,
    penalties: Mapping[str, PenaltyLike],
    *,
    l1: bool = True,
) -> RecoveryTrials:
    """Sparse recovery over ``settings.trials`` random instances.

    ``penalties``: label → penalty ``ω`` of a diagonal transformation; each is solved by
    :func:`~atf_lite.solvers.alternating.solve_structured` from the lazy start; empty, only the
    baselines are computed.  Also computes the minimum-norm interpolator and, when ``l1``, the
    minimum-``ℓ1`` interpolator.
    """
    check_instance(settings, "settings", SparseRecoverySettings)
    penalties = _check_penalties(penalties)
    check_bool(l1, "l1")
    s = settings
    errors, gaps, residuals, below, converged = [], [], [], [], []
    for t in progress_bar(range(s.trials), desc=f"sparse m={s.m} scale={s.scale:g}"):
        Phi, y, theta_star = sparse_recovery_instance(s.p, s.k, s.m, s.scale, seed=s.seed + t)
        theta_l2 = min_norm_interpolator(Phi, y)
        err = {"min_l2": relative_error(theta_l2, theta_star)}
        if l1:
            err["l1"] = relative_error(min_l1_interpolator(Phi, y), theta_star)
        gap, res, bel, conv = {}, {}, {}, {}
        for label, omega in penalties.items():
            sol = solve_structured(Phi, y, omega, structure="diagonal")
            truth = structured_penalty(theta_star, omega, structure="diagonal").value
            err[label] = relative_error(sol.theta, theta_star)
            gap[label] = relative_error(sol.theta, theta_l2)
            res[label] = sol.constraint_residual
            bel[label] = sol.objective <= truth
            conv[label] = sol.converged
        for rows, row in ((errors, err), (gaps, gap), (residuals, res), (below, bel),
                          (converged, conv)):
            rows.append(row)
    return RecoveryTrials(_collect(errors), _collect(gaps), _collect(residuals), _collect(below),
                          _collect(converged), {})


@single_threaded
def matrix_sensing_trials(
    settings: MatrixSensingSettings,
    penalties: Mapping[str, tuple[PenaltyLike, PenaltyLike]],
    *,
    nuclear: bool = True,
) -> RecoveryTrials:
    """Low-rank matrix sensing over ``settings.trials`` random instances.

    ``penalties``: label → ``(omega_a, omega_b)``, the penalties of the left and right factors
    of a Kronecker transformation, each solved by
    :func:`~atf_lite.solvers.alternating.solve_structured` from the lazy start (empty: only the
    baselines).  Also computes the minimum-norm interpolator and, when ``nuclear``, the minimum
    nuclear norm interpolator; ``top_energy`` is filled for every method.
    """
    check_instance(settings, "settings", MatrixSensingSettings)
    penalties = _check_penalties(penalties, pairs=True)
    check_bool(nuclear, "nuclear")
    s = settings
    errors, gaps, residuals, below, converged, energy = [], [], [], [], [], []
    for t in progress_bar(range(s.trials), desc=f"sensing n={s.n} scale={s.scale:g}"):
        Phi, y, Theta_star = matrix_sensing_instance(s.shape, s.rank, s.n, s.scale,
                                                     seed=s.seed + t)
        Theta_l2 = min_norm_interpolator(Phi, y).reshape(Theta_star.shape)
        err = {"min_l2": relative_error(Theta_l2, Theta_star)}
        top = {"min_l2": _top_energy(Theta_l2, s.rank)}
        if nuclear:
            Theta_nuc = min_nuclear_norm_interpolator(Phi, y, shape=s.shape).matrix
            err["nuclear"] = relative_error(Theta_nuc, Theta_star)
            top["nuclear"] = _top_energy(Theta_nuc, s.rank)
        gap, res, bel, conv = {}, {}, {}, {}
        for label, (omega_a, omega_b) in penalties.items():
            sol = solve_structured(Phi, y, omega_a, structure="kronecker", shape=s.shape,
                                   omega_b=omega_b)
            truth = structured_penalty(Theta_star, omega_a, structure="kronecker",
                                       omega_b=omega_b).value
            err[label] = relative_error(sol.matrix, Theta_star)
            top[label] = _top_energy(sol.matrix, s.rank)
            gap[label] = relative_error(sol.matrix, Theta_l2)
            res[label] = sol.constraint_residual
            bel[label] = sol.objective <= truth
            conv[label] = sol.converged
        for rows, row in ((errors, err), (gaps, gap), (residuals, res), (below, bel),
                          (converged, conv), (energy, top)):
            rows.append(row)
    return RecoveryTrials(_collect(errors), _collect(gaps), _collect(residuals), _collect(below),
                          _collect(converged), _collect(energy))
