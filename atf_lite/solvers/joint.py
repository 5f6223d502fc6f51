"""Brute-force numerical solution of the joint problem (AKL), the check of Theorem 1.

``min_{β, Γ} ‖β‖² + Ω(Γ) s.t. y = ΦΓβ``: for fixed ``Γ`` the optimal ``β`` is the minimum-norm
solution of ``ΦΓ β = y``, and the reduced objective (:func:`reduced_objective`) is minimised over
all of ``Γ`` by L-BFGS from random starts (:func:`solve_joint`).  Nothing about the closed form
is assumed, so :func:`compare_with_theorem1` is an independent test of
:func:`atf_lite.theory.theorem1.theorem1_solution`.  Structured ``Γ`` are delegated to
:func:`atf_lite.solvers.joint_structured.solve_joint_structured`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.optimize

from .._types import ArrayLike, UnpackableResult
from .._validation import (
    STRUCTURES,
    as_float_array,
    check_option,
    check_positive_int,
    check_real,
    check_seed,
    check_system,
)
from ..linalg import min_norm_interpolator, min_norm_weights
from ..theory.penalties import Penalty, PenaltyLike, as_penalty, spectral_penalty
from ..theory.theorem1 import theorem1_solution
from .joint_structured import solve_joint_structured
from .solution import JointSolution, warn_unconverged

__all__ = [
    "ReducedObjective",
    "reduced_objective",
    "solve_joint",
    "Theorem1Gaps",
    "compare_with_theorem1",
]


@dataclass(frozen=True)
class ReducedObjective(UnpackableResult):
    """``value``: ``min_β ‖β‖² + Ω(Γ) s.t. y = ΦΓβ`` for a fixed ``Γ``; ``beta``: the minimiser
    (``[p]``).  Unpacks as ``value, beta = reduced_objective(...)``."""

    value: float
    beta: np.ndarray


def reduced_objective(
    Phi: ArrayLike, y: ArrayLike, omega: PenaltyLike, Gamma: ArrayLike
) -> ReducedObjective:
    """``min_β ‖β‖² + Ω(Γ) s.t. y = ΦΓβ`` for a fixed ``Gamma`` (``[p, p]``).

    The value is ``yᵀ(ΦΓΓᵀΦᵀ)⁻¹y + Ω(Γ)``; it is ``inf`` (with ``β`` all NaN) when ``ΦΓ`` has
    numerically deficient row rank.  Returns a :class:`ReducedObjective`.
    """
    Phi, y = check_system(Phi, y)
    Gamma = as_float_array(Gamma, "Gamma", 2)
    omega = as_penalty(omega)
    p = Phi.shape[1]
    if Gamma.shape != (p, p):
        raise ValueError(f"Gamma must have shape ({p}, {p}), got {Gamma.shape}")
    solved = min_norm_weights(Phi @ Gamma, y, check=False)
    if solved is None:
        return ReducedObjective(np.inf, np.full(p, np.nan))
    beta = solved.beta
    return ReducedObjective(float(beta @ beta) + spectral_penalty(Gamma, omega), beta)


# Gauss–Hermite rule for the fallback smoothing E ω(|z + μξ|), ξ ~ N(0, 1), of non-smooth
# penalties without a smoothing hook; and the widths μ of the successive solver stages (the
# last, μ = 0, uses ω itself).
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()
_SMOOTHING_SCHEDULE = (1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 0.0)


def _penalty_and_grad(omega: Penalty, sigma: np.ndarray, mu: float) -> tuple[float, np.ndarray]:
    """``Σ_i ω_μ(σ_i)`` and ``ω_μ'(σ)`` for the smoothing of width ``mu`` (0: ``ω`` itself)."""
    if mu == 0.0:
        return float(np.sum(omega.func(sigma))), omega.grad(sigma)
    if omega.smoothing is not None:
        values, grads = omega.smoothing(sigma, mu)
        return float(np.sum(values)), grads
    shifted = sigma[:, None] + mu * _HERMITE_NODES[None, :]
    magnitude = np.abs(shifted)
    values = omega.func(magnitude) @ _HERMITE_WEIGHTS
    grads = (omega.grad(magnitude) * np.sign(shifted)) @ _HERMITE_WEIGHTS
    return float(np.sum(values)), grads


def _full_objective(
    x: np.ndarray, Phi: np.ndarray, y: np.ndarray, omega: Penalty, mu: float
) -> tuple[float, np.ndarray]:
    """Reduced objective over a dense ``Γ`` (flattened ``x``) and its gradient.

    With ``M = ΦΓ``, ``α = (MMᵀ)⁻¹y`` and ``β = Mᵀα``, the data term ``yᵀ(MMᵀ)⁻¹y = ‖β‖²`` has
    gradient ``−2 (Φᵀα) βᵀ`` in ``Γ``; the spectral term has gradient ``U diag(ω'(σ)) Vᵀ``.
    """
    p = Phi.shape[1]
    Gamma = x.reshape(p, p)
    solved = min_norm_weights(Phi @ Gamma, y, check=False)
    if solved is None:  # singular ΦΓ: infinitely expensive; L-BFGS backtracks
        return np.inf, np.zeros_like(x)
    beta, alpha = solved
    U, sigma, Vt = np.linalg.svd(Gamma)
    pen, dpen = _penalty_and_grad(omega, sigma, mu)
    grad = -2.0 * np.outer(Phi.T @ alpha, beta) + (U * dpen) @ Vt
    return float(beta @ beta) + pen, grad.ravel()


def _solve_full(
    Phi: np.ndarray,
    y: np.ndarray,
    omega: Penalty,
    restarts: int,
    seed: int,
    init_scale: float,
    max_iter: int,
    gtol: float,
) -> JointSolution:
    p = Phi.shape[1]
    rng = np.random.default_rng(seed)
    schedule = (0.0,) if omega.smooth else _SMOOTHING_SCHEDULE
    best = None
    finals = []
    for _ in range(restarts):
        x = (np.eye(p) + init_scale * rng.standard_normal((p, p)) / np.sqrt(p)).ravel()
        iterations, result = 0, None
        for mu in schedule:
            result = scipy.optimize.minimize(
                _full_objective,
                x,
                args=(Phi, y, omega, mu),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": max_iter, "maxcor": 30, "ftol": 1e-16, "gtol": gtol},
            )
            x, iterations = result.x, iterations + result.nit
        Gamma = x.reshape(p, p)
        value, beta = reduced_objective(Phi, y, omega, Gamma)
        finals.append(value)
        if best is None or value < best[0]:
            best = (value, beta, Gamma, iterations, result)
    value, beta, Gamma, iterations, result = best
    warn_unconverged(result, "solve_joint", "max_iter", stacklevel=4)
    residual = np.linalg.norm(Phi @ (Gamma @ beta) - y) / max(np.linalg.norm(y), 1e-300)
    return JointSolution(
        beta=beta,
        gamma=Gamma,
        objective=value,
        constraint_residual=float(residual),
        iterations=int(iterations),
        structure="full",
        restart_objectives=tuple(finals),
        converged=bool(result.success),
        message=str(result.message),
    )


def solve_joint(
    Phi: ArrayLike,
    y: ArrayLike,
    omega: PenaltyLike,
    *,
    structure: str = "full",
    restarts: int = 3,
    seed: int = 0,
    **options: Any,
) -> JointSolution:
    """Brute-force numerical solution of (AKL): ``min ‖β‖² + Ω(Γ) s.t. y = ΦΓβ`` (float64).

    ``Phi``: ``[n, p]`` with full row rank (``n ≤ p``), ``y``: ``[n]``, ``omega``: a penalty.
    ``β`` is eliminated (minimum-norm solution of ``ΦΓβ = y``) and the reduced objective is
    minimised over all ``p²`` entries of ``Γ`` by L-BFGS from ``restarts`` random starts
    ``Γ₀ = I + init_scale · G/√p`` (``G`` standard Gaussian, drawn from ``seed``).  For a
    non-smooth ``omega`` the penalty is first replaced by Gaussian smoothings of decreasing
    width, then by ``omega`` itself; the returned objective always uses the exact penalty, so
    it is the true cost of a feasible point and can only lie above the optimum.

    Keyword options for ``structure="full"``: ``init_scale`` (0.5), ``max_iter`` per stage
    (5000), ``gtol`` (1e-11); a restart of the returned solution that stops at ``max_iter``
    issues a ``ConvergenceWarning``.  Any other ``structure`` is delegated to
    :func:`~atf_lite.solvers.joint_structured.solve_joint_structured` with the remaining
    keywords (``groups``, ``shape``, ``omega_b``, ``init_scale``, ``max_iter``, ``gtol``).
    """
    check_option(structure, "structure", ("full", *STRUCTURES))
    if structure != "full":
        return solve_joint_structured(
            Phi, y, omega, structure=structure, restarts=restarts, seed=seed, **options
        )
    Phi, y = check_system(Phi, y)
    omega = as_penalty(omega)
    if Phi.shape[0] > Phi.shape[1]:
        raise ValueError(f"Phi must have at most as many rows as columns (n ≤ p), got {Phi.shape}")
    restarts = check_positive_int(restarts, "restarts")
    seed = check_seed(seed)
    settings = {"init_scale": 0.5, "max_iter": 5000, "gtol": 1e-11}
    unknown = sorted(set(options) - set(settings))
    if unknown:
        raise TypeError(f"solve_joint got unexpected keyword arguments {unknown}")
    settings.update(options)
    settings["init_scale"] = check_real(settings["init_scale"], "init_scale", low=0.0)
    settings["max_iter"] = check_positive_int(settings["max_iter"], "max_iter")
    settings["gtol"] = check_real(settings["gtol"], "gtol", low=0.0, low_open=True)
    # Fail early, with the usual message, when no interpolator exists at all.
    min_norm_interpolator(Phi, y)
    return _solve_full(Phi, y, omega, restarts, seed, **settings)



# --------------------------------------------------------------------------------------------
# Comparison with Theorem 1
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Theorem1Gaps:
    """Relative gaps between a numerical solution of (AKL) and Theorem 1's closed form.

    ``objective`` is signed (positive: the numerical solution costs more); the others are
    non-negative relative distances: ``theta`` (``θ = Γβ`` against ``β̂``), ``beta_norm``
    (``‖β‖`` against ``‖β̂‖/s``), ``gram`` (``ΓΓᵀ``, Frobenius) and ``kernel`` (the adapted
    kernel on the training features, Frobenius).
    """

    objective: float
    theta: float
    beta_norm: float
    gram: float
    kernel: float

    def as_dict(self) -> dict[str, float]:
        """The gaps as a ``{name: value}`` dict, in field order."""
        return asdict(self)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (scale if scale > 0 else 1.0))


def compare_with_theorem1(
    Phi: ArrayLike, y: ArrayLike, omega: PenaltyLike, joint: JointSolution
) -> Theorem1Gaps:
    """Relative gaps between a numerical solution and Theorem 1, on the quantities that are
    unique at the optimum.

    ``(β, Γ)`` itself is not unique: ``(Rᵀβ, ΓR)`` is as good for any orthogonal ``R``.  What
    is unique is the objective, ``θ = Γβ`` (``= β̂``), ``‖β‖`` (``= ‖β̂‖/s``), ``ΓΓᵀ`` and with
    it the adapted kernel: the fields of the returned :class:`Theorem1Gaps`, each relative to
    Theorem 1's value.
    """
    Phi, y = check_system(Phi, y)
    if not isinstance(joint, JointSolution):
        raise TypeError(f"joint must be a JointSolution, got {type(joint).__name__}")
    if joint.gamma.shape[0] != Phi.shape[1]:
        raise ValueError(
            f"joint solves a problem with {joint.gamma.shape[0]} features, Phi has {Phi.shape[1]}"
        )
    exact = theorem1_solution(Phi, y, omega)
    G_exact = exact.gamma()
    denominator = exact.objective if exact.objective > 0 else 1.0
    return Theorem1Gaps(
        objective=float((joint.objective - exact.objective) / denominator),
        theta=_relative(joint.theta, exact.theta),
        beta_norm=abs(float(np.linalg.norm(joint.beta)) - exact.norm / exact.s)
        / max(exact.norm / exact.s, 1e-300),
        gram=_relative(joint.gamma @ joint.gamma.T, G_exact @ G_exact.T),
        kernel=_relative(joint.kernel(Phi), exact.kernel(Phi)),
    )
