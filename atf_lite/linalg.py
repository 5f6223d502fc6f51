"""Float64 linear algebra shared by the theory, the solvers and the chapters.

* :func:`min_norm_interpolator`: ``β̂ = argmin ‖β‖₂ s.t. Φβ = y``, the fixed-feature solution;
* :func:`min_norm_weights`: the same for a full-row-rank matrix by QR, with the dual variable
  ``α = (ΦΦᵀ)⁻¹y`` (the inner step of the joint and alternating solvers);
* :func:`kernel_regression`: kernel interpolation ``K_test K_train⁻¹ y``;
* :func:`relative_error`: ``‖estimate − truth‖ / ‖truth‖``.

Inputs may be NumPy arrays or torch tensors (``ArrayLike``); results are float64 NumPy
arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ._types import ArrayLike, UnpackableResult
from ._validation import check_array, check_real, check_square_matrix, check_system

__all__ = [
    "min_norm_interpolator",
    "MinNormWeights",
    "min_norm_weights",
    "kernel_regression",
    "relative_error",
]

# Relative asymmetry ‖K − Kᵀ‖_max / ‖K‖_max above which a kernel matrix is refused: far above
# the rounding of a float32 Gram matrix, far below any asymmetry that changes a solve.
_SYMMETRY_RTOL = 1e-5


def min_norm_interpolator(Phi: ArrayLike, y: ArrayLike, *, rtol: float = 1e-8) -> np.ndarray:
    """The minimum-norm solution ``β̂ = argmin ‖β‖₂ s.t. Φ β = y`` (float64 ``[p]``).

    ``Phi``: ``[n, p]`` features, ``y``: ``[n]`` targets.  Solved by an SVD-based least-squares
    routine (LAPACK ``gelsd``), which never forms ``Φ Φᵀ`` or an inverse.  Raises ``ValueError``
    when ``y`` is not in the range of ``Φ``: relative residual ``‖Φβ̂ − y‖ / ‖y‖ > rtol``.
    """
    Phi, y = check_system(Phi, y)
    check_real(rtol, "rtol", low=0.0, low_open=True)
    beta, *_ = scipy.linalg.lstsq(Phi, y, lapack_driver="gelsd")
    norm_y = np.linalg.norm(y)
    if norm_y == 0:
        return np.zeros(Phi.shape[1])
    residual = np.linalg.norm(Phi @ beta - y) / norm_y
    if residual > rtol:
        raise ValueError(
            f"y is not in the range of Phi: the best fit leaves a relative residual of "
            f"{residual:.3g} > rtol = {rtol:g}, so no interpolator exists"
        )
    return beta


@dataclass(frozen=True)
class MinNormWeights(UnpackableResult):
    """Result of :func:`min_norm_weights`: ``beta`` (``[p]``) and the dual variable ``alpha``
    (``[n]``) with ``β = Φᵀα``; unpacks as ``beta, alpha = ...``."""

    beta: np.ndarray
    alpha: np.ndarray


def min_norm_weights(
    Phi: ArrayLike, y: ArrayLike, *, check: bool = True
) -> MinNormWeights | None:
    """Min-norm ``β`` with ``Φ β = y`` for a full-row-rank float64 ``Phi`` (``[n, p]``) via QR
    of ``Φᵀ``.

    Returns :class:`MinNormWeights` ``(β, α)`` with ``β = Φᵀα`` and ``α = (ΦΦᵀ)⁻¹y`` (``[p]``
    and ``[n]``), or ``None`` when ``Phi`` does not have full row rank (numerically, or because
    it has more rows than columns).  ``check=False``
    skips the input checks: the solvers' inner loops call it on arrays they have built
    themselves (where a non-finite trial point must not raise).
    """
    if check:
        Phi, y = check_system(Phi, y)
        if Phi.shape[0] > Phi.shape[1]:
            raise ValueError(
                f"Phi must have at most as many rows as columns (n ≤ p), got shape {Phi.shape}"
            )
    if Phi.shape[0] > Phi.shape[1]:  # only reachable with check=False
        return None
    Q, R = np.linalg.qr(Phi.T)  # Φᵀ = QR, Q: [p, n], R: [n, n]
    diag = np.abs(np.diag(R))
    if diag.min() <= 1e-13 * diag.max():
        return None
    z = scipy.linalg.solve_triangular(R, y, trans="T")  # Rᵀ z = y
    return MinNormWeights(Q @ z, scipy.linalg.solve_triangular(R, z))


def kernel_regression(
    K_train: ArrayLike, y: ArrayLike, K_test: ArrayLike | None = None
) -> np.ndarray:
    """Kernel interpolation ``K_test K_train⁻¹ y`` (Cholesky solve, float64).

    ``K_train``: ``[n, n]`` symmetric positive definite; ``y``: ``[n]``; ``K_test``: ``[m, n]``
    kernel between test and training points (default ``K_train``: fitted values).  Returns the
    ``[m]`` predictions.  Raises ``ValueError`` when ``K_train`` is not positive definite.
    """
    K = check_square_matrix(K_train, "K_train")
    n = K.shape[0]
    asymmetry = np.max(np.abs(K - K.T))
    if asymmetry > _SYMMETRY_RTOL * np.max(np.abs(K)):
        raise ValueError(
            f"K_train must be symmetric, but max |K_train - K_trainᵀ| = {asymmetry:.3g} (the "
            "Cholesky solve would read only its lower triangle)"
        )
    targets = check_array(y, "y", ndim=1)
    if targets.shape != (n,):
        raise ValueError(f"y must have shape [{n}], got {targets.shape}")
    cross = K if K_test is None else check_array(K_test, "K_test", ndim=2)
    if cross.shape[1] != n:
        raise ValueError(f"K_test must have shape [m, {n}], got {cross.shape}")
    try:
        factor = scipy.linalg.cho_factor(K, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ValueError("K_train is not positive definite: the interpolant is not unique") from exc
    return cross @ scipy.linalg.cho_solve(factor, targets)


def relative_error(estimate: ArrayLike, truth: ArrayLike) -> float:
    """``‖estimate − truth‖ / ‖truth‖`` (Frobenius for matrices)."""
    estimate = check_array(estimate, "estimate")
    truth = check_array(truth, "truth")
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate has shape {estimate.shape}, truth has {truth.shape}")
    scale = np.linalg.norm(truth)
    if scale == 0:
        raise ValueError("truth must be non-zero for a relative error")
    return float(np.linalg.norm(estimate - truth) / scale)
