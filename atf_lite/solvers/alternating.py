"""The linearly constrained structured problem, ``Ω̃(θ)`` minimised subject to ``Φθ = y``, by
alternating minimisation.

**Variational form.**  For every admissible invertible transformation ``Γ`` (diagonal, block
diagonal or ``A ⊗ B``),

    ``F(θ, Γ) = θᵀ(ΓΓᵀ)⁻¹θ + Ω(Γ) ≥ Ω̃(θ)``,

with equality at the closed-form transformation of
:func:`atf_lite.theory.structured.structured_penalty` (all of whose singular values are at
least 1).  :func:`solve_structured` minimises ``F`` over the feasible ``θ`` and over ``Γ`` in
turn:

1. for fixed ``Γ`` the best feasible ``θ`` is ``Γβ`` with ``β`` the minimum-norm solution of
   ``(ΦΓ)β = y``: kernel regression with the adapted features;
2. for fixed ``θ`` the best ``Γ`` is the closed form, after which ``F = Ω̃(θ)``.

Neither step can increase ``F``, so ``Ω̃(θ_k)`` is non-increasing (the solution's
``history``), and every iterate satisfies the constraint up to the accuracy of a QR
factorisation.  For the diagonal structure this is an iteratively reweighted least-squares
scheme of the kind used for sparse recovery :cite:p:`daubechies2010iteratively`.

**Starts.**  The first start is ``Γ = I``: its first iterate is the minimum-norm interpolator,
the solution of the lazy regime, and the features then adapt to the current fit, much as
training starts from the tangent features at initialisation.  Further starts (``restarts``)
use the transformations that are optimal for random vectors of sizes spread over three orders
of magnitude; if every start ends at the same objective, none found anything better than the
lazy start.

**Stopping.**  When ``θ`` changes by less than ``tol`` (default ``1e-11``) relative, or after
``max_iter`` iterations, in which case ``converged`` is False.

**What it finds.**  ``Ω̃`` is not convex, so the solver returns a stationary point that may
depend on the start; no algorithm with a guarantee is known for this problem.  Chapter 5 collects
evidence that the stationary point is a good one: restarts end at the same objective; when the
feasible set is a line (``n = p − 1``) a dense grid finds the global minimum, which the solver
matches; and the recovery experiments report whether the solver's objective is below that of
the true signal, in which case any remaining error is the regulariser's, not the optimiser's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from .._threads import single_threaded
from .._types import ArrayLike, ConvergenceWarning
from .._validation import (
    check_groups,
    check_nonnegative_int,
    check_positive_int,
    check_real,
    check_seed,
    check_shape,
    check_structure,
    check_structure_options,
    check_system,
)
from ..linalg import min_norm_interpolator, min_norm_weights
from ..theory.penalties import Penalty, PenaltyLike, as_penalty
from ..theory.structured import StructuredPenalty, structured_penalty

__all__ = ["StructuredSolution", "solve_structured", "check_structured_problem"]


@dataclass(frozen=True)
class StructuredSolution:
    """A solution of ``min Ω̃(θ) s.t. Φθ = y`` from :func:`solve_structured`.

    Attributes: ``theta`` (``[p]``, row-major ``vec(Θ)`` for Kronecker), ``objective``
    (``Ω̃(θ)``), ``constraint_residual`` (``‖Φθ − y‖/‖y‖``), ``iterations`` (of the best start),
    ``converged``, ``penalty`` (the
    :class:`~atf_lite.theory.structured.StructuredPenalty` at ``theta``: optimal
    transformation and per-term penalties), ``history`` (objective after every iteration of the
    best start, non-increasing), ``start_objectives`` (final objective of every start, the
    lazy start first), ``shape`` (Kronecker: ``(m, d)``).
    """

    theta: np.ndarray
    objective: float
    constraint_residual: float
    iterations: int
    converged: bool
    penalty: StructuredPenalty
    history: np.ndarray
    start_objectives: tuple[float, ...]
    shape: tuple[int, int] | None = None

    @property
    def matrix(self) -> np.ndarray:
        """``θ`` reshaped to the ``[m, d]`` weight matrix (Kronecker only)."""
        if self.shape is None:
            raise ValueError("matrix is defined for structure='kronecker' only")
        return self.theta.reshape(self.shape)


def _alternate(
    Phi: np.ndarray,
    y: np.ndarray,
    penalty_of: Callable[[np.ndarray], StructuredPenalty],
    start: StructuredPenalty,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, StructuredPenalty, np.ndarray, int, bool]:
    """Alternating minimisation of ``F(θ, Γ) = θᵀ(ΓΓᵀ)⁻¹θ + Ω(Γ)`` subject to ``Φθ = y``.

    For fixed ``Γ`` the best feasible ``θ`` is ``Γβ`` with ``β`` the minimum-norm solution of
    ``(ΦΓ)β = y`` (kernel regression with the adapted features); for fixed ``θ`` the best ``Γ``
    is the closed form of :func:`structured_penalty`, where ``F = Ω̃(θ)``.  Each half-step can
    only lower ``F``, so ``Ω̃(θ_k)`` is non-increasing.  Stops when ``θ`` changes by less than
    ``tol`` relative.
    """
    pen = start
    theta_prev = None
    history = []
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        features = pen.apply_gamma(Phi)
        # QR; SVD-based least squares if rank deficient.
        solved = min_norm_weights(features, y, check=False)
        if solved is None:
            beta, *_ = scipy.linalg.lstsq(features, y, lapack_driver="gelsd")
        else:
            beta = solved[0]
        theta = _gamma_times(pen, beta)
        pen = penalty_of(theta)
        history.append(pen.value)
        if theta_prev is not None:
            change = np.linalg.norm(theta - theta_prev) / max(np.linalg.norm(theta), 1e-300)
            if change <= tol:
                converged = True
                break
        theta_prev = theta
    return theta, pen, np.array(history), iterations, converged


def _gamma_times(pen: StructuredPenalty, beta: np.ndarray) -> np.ndarray:
    """``Γβ`` for a ``[p]`` vector ``β`` (``Γ`` symmetric for all three closed forms)."""
    return pen.apply_gamma(beta[None, :])[0]


def check_structured_problem(
    structure: Any,
    Phi: ArrayLike,
    y: ArrayLike,
    omega: PenaltyLike,
    omega_b: PenaltyLike | None,
    shape: Any,
    groups: Any,
) -> tuple[str, np.ndarray, np.ndarray, Penalty, Penalty | None, Any, Any]:
    """Validate a structured problem's arguments; returns them normalised (same order).

    Shared by :func:`solve_structured` and the brute-force
    :func:`~atf_lite.solvers.joint_structured.solve_joint_structured`.
    """
    structure = check_structure(structure)
    check_structure_options(structure, groups, omega_b, shape)
    Phi, y = check_system(Phi, y)
    omega = as_penalty(omega)
    if structure == "kronecker":
        shape = check_shape(shape, Phi.shape[1])
        omega_b = omega if omega_b is None else as_penalty(omega_b, "omega_b")
    if structure == "groups":
        groups = check_groups(groups, Phi.shape[1])
    return structure, Phi, y, omega, omega_b, shape, groups


@single_threaded
def solve_structured(
    Phi: ArrayLike,
    y: ArrayLike,
    omega: PenaltyLike,
    *,
    structure: str,
    groups: Any = None,
    shape: tuple[int, int] | None = None,
    omega_b: PenaltyLike | None = None,
    max_iter: int = 5000,
    tol: float = 1e-11,
    restarts: int = 0,
    seed: int = 0,
) -> StructuredSolution:
    """Solve ``min Ω̃(θ) s.t. Φθ = y`` for a structured regulariser (float64).

    ``Phi``: ``[n, p]`` feature (or measurement) matrix, ``y``: ``[n]`` in its range.
    ``structure``, ``omega``, ``groups``, ``omega_b`` as in
    :func:`~atf_lite.theory.structured.structured_penalty`;
    ``shape = (m, d)`` with ``m·d = p`` for Kronecker (``θ`` is the row-major ``vec(Θ)``).

    Method: alternating minimisation over ``θ`` and the transformation ``Γ`` (an iteratively
    reweighted least-squares scheme).  ``Ω̃`` is not convex, so this finds a stationary point
    that depends on the start.  The first start is ``Γ = I``, whose first iterate is the
    minimum-norm interpolator: the lazy solution, from which the features adapt.  ``restarts``
    further starts use the transformation that is optimal for a random Gaussian ``θ`` of the
    minimum-norm interpolator's norm times ``10^U[-1, 2]`` (from ``seed``); the best objective
    is returned and every start's objective is reported.  Stops when ``θ`` changes by less
    than ``tol`` relative, or after ``max_iter`` iterations (then ``converged`` is False and a
    ``ConvergenceWarning`` is issued).
    """
    structure, Phi, y, omega, omega_b, shape, groups = check_structured_problem(
        structure, Phi, y, omega, omega_b, shape, groups
    )
    p = Phi.shape[1]
    restarts = check_nonnegative_int(restarts, "restarts")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    seed = check_seed(seed)
    theta_min_norm = min_norm_interpolator(Phi, y)  # raises when no interpolator exists

    def penalty_of(theta: np.ndarray) -> StructuredPenalty:
        arg = theta.reshape(shape) if structure == "kronecker" else theta
        return structured_penalty(arg, omega, structure=structure, groups=groups, omega_b=omega_b)

    starts = [StructuredPenalty.identity(structure, p, groups=groups, shape=shape)]
    rng = np.random.default_rng(seed)
    norm = np.linalg.norm(theta_min_norm)
    for _ in range(restarts):
        direction = rng.standard_normal(p)
        magnitude = norm * 10.0 ** rng.uniform(-1.0, 2.0)
        starts.append(penalty_of(magnitude * direction / np.linalg.norm(direction)))
    best = None
    finals = []
    for start in starts:
        run = _alternate(Phi, y, penalty_of, start, max_iter, tol)
        finals.append(run[1].value)
        if best is None or run[1].value < best[1].value:
            best = run
    theta, pen, history, iterations, converged = best
    if not converged:
        warnings.warn(
            f"solve_structured: the best start stopped after max_iter={max_iter} iterations "
            f"with θ still changing by more than tol={tol:g}; raise max_iter",
            ConvergenceWarning,
            stacklevel=3,  # past the thread-limit wrapper, to the caller
        )
    norm_y = np.linalg.norm(y)
    residual = np.linalg.norm(Phi @ theta - y) / (norm_y if norm_y > 0 else 1.0)
    return StructuredSolution(theta, pen.value, float(residual), int(iterations),
                              bool(converged), pen, history, tuple(finals),
                              shape if structure == "kronecker" else None)
