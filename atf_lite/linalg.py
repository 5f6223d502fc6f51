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

import numpy as np
import scipy.linalg

from ._types import ArrayLike
from ._validation import check_system, to_numpy

__all__ = ["min_norm_interpolator", "min_norm_weights", "kernel_regression", "relative_error"]


def min_norm_interpolator(Phi: ArrayLike, y: ArrayLike, *, rtol: float = 1e-8) -> np.ndarray:
    """The minimum-norm solution ``β̂ = argmin ‖β‖₂ s.t. Φ β = y`` (float64 ``[p]``).

    ``Phi``: ``[n, p]`` features, ``y``: ``[n]`` targets.  Solved by an SVD-based least-squares
    routine (LAPACK ``gelsd``), which never forms ``Φ Φᵀ`` or an inverse.  Raises ``ValueError``
    when ``y`` is not in the range of ``Φ``: relative residual ``‖Φβ̂ − y‖ / ‖y‖ > rtol``.
    """
    Phi, y = check_system(Phi, y)
    if not rtol > 0:
        raise ValueError(f"rtol must be positive, got {rtol!r}")
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


def min_norm_weights(Phi: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Min-norm ``β`` with ``Φ β = y`` for a full-row-rank float64 ``Phi`` (``[n, p]``) via QR
    of ``Φᵀ``.

    Returns ``(β, α)`` with ``β = Φᵀα`` and ``α = (ΦΦᵀ)⁻¹y`` (``[p]`` and ``[n]``), or ``None``
    when ``Phi`` is numerically rank deficient.  No input checks: this runs in solvers' inner
    loops on arrays they have validated.
    """
    Q, R = np.linalg.qr(Phi.T)  # Φᵀ = QR, Q: [p, n], R: [n, n]
    diag = np.abs(np.diag(R))
    if diag.min() <= 1e-13 * diag.max():
        return None
    z = scipy.linalg.solve_triangular(R, y, trans="T")  # Rᵀ z = y
    return Q @ z, scipy.linalg.solve_triangular(R, z)


def kernel_regression(
    K_train: ArrayLike, y: ArrayLike, K_test: ArrayLike | None = None
) -> np.ndarray:
    """Kernel interpolation ``K_test K_train⁻¹ y`` (Cholesky solve, float64).

    ``K_train``: ``[n, n]`` symmetric positive definite; ``y``: ``[n]``; ``K_test``: ``[m, n]``
    kernel between test and training points (default ``K_train``: fitted values).  Returns the
    ``[m]`` predictions.  Raises ``ValueError`` when ``K_train`` is not positive definite.
    """
    K = to_numpy(K_train)
    targets = to_numpy(y)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K_train must be a square matrix, got shape {K.shape}")
    if targets.shape != (K.shape[0],):
        raise ValueError(f"y must have shape [{K.shape[0]}], got {targets.shape}")
    cross = K if K_test is None else to_numpy(K_test)
    if cross.ndim != 2 or cross.shape[1] != K.shape[0]:
        raise ValueError(f"K_test must have shape [m, {K.shape[0]}], got {cross.shape}")
    try:
        factor = scipy.linalg.cho_factor(K, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ValueError("K_train is not positive definite: the interpolant is not unique") from exc
    return cross @ scipy.linalg.cho_solve(factor, targets)


def relative_error(estimate: ArrayLike, truth: ArrayLike) -> float:
    """``‖estimate − truth‖ / ‖truth‖`` (Frobenius for matrices)."""
    estimate = to_numpy(estimate)
    truth = to_numpy(truth)
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate has shape {estimate.shape}, truth has {truth.shape}")
    scale = np.linalg.norm(truth)
    if scale == 0:
        raise ValueError("truth must be non-zero for a relative error")
    return float(np.linalg.norm(estimate - truth) / scale)
