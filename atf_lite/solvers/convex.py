"""Convex baselines of chapter 5: minimum-ℓ1 and minimum-nuclear-norm interpolation.

They are what sparse recovery and low-rank matrix sensing use without adaptive features, and
what the diagonal and Kronecker structures are compared with.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from .._threads import single_threaded
from .._types import ArrayLike, ConvergenceWarning
from .._validation import check_positive_int, check_real, check_shape, check_system
from ..linalg import min_norm_interpolator

__all__ = ["min_l1_interpolator", "NuclearNormSolution", "min_nuclear_norm_interpolator"]


def min_l1_interpolator(Phi: ArrayLike, y: ArrayLike) -> np.ndarray:
    """``argmin ‖θ‖₁ s.t. Φθ = y`` (``[p]``) by linear programming (HiGHS).

    ``θ = θ⁺ − θ⁻`` with ``θ± ≥ 0``.  The vertex returned by the LP is then polished by an
    exact least-squares solve on its support, so the constraint holds to rounding error.
    """
    Phi, y = check_system(Phi, y)
    n, p = Phi.shape
    result = scipy.optimize.linprog(
        np.ones(2 * p), A_eq=np.hstack([Phi, -Phi]), b_eq=y, bounds=(0, None), method="highs"
    )
    if result.status != 0:
        raise ValueError(f"the l1 interpolation problem could not be solved: {result.message}")
    theta = result.x[:p] - result.x[p:]
    support = np.flatnonzero(np.abs(theta) > 1e-9 * max(np.abs(theta).max(), 1e-300))
    if 0 < support.size <= n:
        polished = np.zeros(p)
        polished[support], *_ = scipy.linalg.lstsq(Phi[:, support], y)
        if np.linalg.norm(Phi @ polished - y) <= np.linalg.norm(Phi @ theta - y):
            theta = polished
    return theta


@dataclass(frozen=True)
class NuclearNormSolution:
    """Result of :func:`min_nuclear_norm_interpolator`.

    ``matrix``: ``Θ`` (``[m, d]``), the projected iterate, so it satisfies the constraint to
    rounding error; ``iterations``: Douglas–Rachford iterations run; ``converged``: whether the
    stopping rule was met before ``max_iter``.
    """

    matrix: np.ndarray
    iterations: int
    converged: bool


def _singular_value_threshold(X: np.ndarray, tau: float) -> np.ndarray:
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    return (U * np.maximum(s - tau, 0.0)) @ Vt


def _affine_projection(
    Phi: np.ndarray, y: np.ndarray, x0: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """The orthogonal projection onto ``{x : Φx = y}`` (which contains ``x0``).

    For a full-row-rank ``Φ`` (``n < p``) by the QR factors of ``Φᵀ``; otherwise (more
    measurements than unknowns, or dependent rows) through an orthonormal basis of the row space
    from the SVD, which also covers a feasible set that is a single point.
    """
    n, p = Phi.shape
    if n < p:
        Q, R = np.linalg.qr(Phi.T)  # projection onto the affine set through the row space of Φ
        diag = np.abs(np.diag(R))
        if diag.min() > 1e-13 * diag.max():
            return lambda z: z - Q @ scipy.linalg.solve_triangular(R, Phi @ z - y, trans="T")
    _, sigma, Vt = np.linalg.svd(Phi, full_matrices=False)
    rank = int(np.sum(sigma > sigma[0] * max(n, p) * np.finfo(np.float64).eps))
    basis = Vt[:rank].T  # [p, rank]
    return lambda z: z - basis @ (basis.T @ (z - x0))


@single_threaded
def min_nuclear_norm_interpolator(
    Phi: ArrayLike,
    y: ArrayLike,
    *,
    shape: tuple[int, int],
    max_iter: int = 5000,
    tol: float = 1e-9,
    step: float | None = None,
) -> NuclearNormSolution:
    """``argmin ‖Θ‖_* s.t. Φ vec(Θ) = y`` by Douglas–Rachford splitting.

    ``Phi``: ``[n, m·d]`` (row-major ``vec``), ``shape = (m, d)``.  The iteration alternates the
    projection onto ``{Θ : Φ vec(Θ) = y}`` with singular-value soft thresholding (the proximal
    map of ``step · ‖·‖_*``; default ``step`` = the minimum-norm interpolator's spectral norm
    divided by 10).  Stops when the two half-steps agree to ``tol`` relative, or after
    ``max_iter`` iterations (with a ``ConvergenceWarning``).  With as many
    independent measurements as unknowns the constraint admits one point, which is returned.
    Returns a :class:`NuclearNormSolution`.
    """
    Phi, y = check_system(Phi, y)
    m, d = check_shape(shape, Phi.shape[1])
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    step = check_real(step, "step", low=0.0, low_open=True, allow_none=True)
    x_min_norm = min_norm_interpolator(Phi, y)
    n, p = Phi.shape
    if n >= p and np.linalg.matrix_rank(Phi) == p:  # the constraint admits one point only
        return NuclearNormSolution(x_min_norm.reshape(m, d), 0, True)
    project = _affine_projection(Phi, y, x_min_norm)

    if step is None:
        step = 0.1 * max(np.linalg.norm(x_min_norm.reshape(m, d), 2), 1e-300)
    z = x_min_norm.copy()
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        x = project(z)
        w = _singular_value_threshold((2.0 * x - z).reshape(m, d), step).ravel()
        z = z + w - x
        if np.linalg.norm(w - x) <= tol * max(np.linalg.norm(x), 1e-300):
            converged = True
            break
    if not converged:
        warnings.warn(
            f"min_nuclear_norm_interpolator: the Douglas–Rachford half-steps still differ by "
            f"more than tol={tol:g} after max_iter={max_iter} iterations; raise max_iter",
            ConvergenceWarning,
            stacklevel=3,  # past the thread-limit wrapper, to the caller
        )
    return NuclearNormSolution(project(z).reshape(m, d), iterations, converged)
