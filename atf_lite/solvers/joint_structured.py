"""Brute force for structured transformations: the joint problem over factorised parameters.

With ``Phi = I`` and ``y = θ`` the joint problem is the definition of ``Ω̃(θ)``, so
:func:`solve_joint_structured` checks :func:`atf_lite.theory.structured.structured_penalty`
without using it; chapter 4 compares the two on random vectors and matrices.

**Reduced objective.**  For a fixed transformation ``Γ`` the weights are the minimum-norm
solution of ``ΦΓβ = y``, which leaves ``yᵀ(ΦΓΓᵀΦᵀ)⁻¹y + Ω(Γ)`` to minimise over ``Γ``.

**Factors.**  ``Γ`` is assembled from square factors: ``p`` scalars (diagonal), one block per
group (groups), or ``A`` (``[m, m]``) and ``B`` (``[d, d]``) with ``Γ = A ⊗ B`` (Kronecker).
Each factor is written ``F = R diag(c)`` with ``R = exp(S − Sᵀ)`` a rotation (``S`` strictly
lower triangular, its entries free parameters) and ``c ≥ 0``.  This loses no generality: the
cost depends on a factor only through ``FFᵀ`` and its singular values, so in
``F = R diag(c) Wᵀ`` the orthogonal ``W`` can be absorbed into the weights, and a reflection in
``R`` can be moved into ``W``.

**Scales.**  Each scale is written ``c = 1 + u − l`` with ``u ≥ 0`` and ``0 ≤ l ≤ 1`` and
charged ``ω(1 + u) + ω(1 − l)``.  Because ``ω`` is monotone on each side of 1, this is at least
``ω(c)``, with equality when ``u·l = 0``, so the minimum is unchanged; but the kink of a
penalty such as ``|z − 1|`` at ``z = 1`` becomes a bound constraint, which L-BFGS-B treats
exactly, instead of a point where the objective is not differentiable.

**Gradients and restarts.**  Gradients are exact: the derivative of ``yᵀ(ΦΓΓᵀΦᵀ)⁻¹y`` with
respect to ``Γ`` is ``−2Φᵀαβᵀ`` with ``α = (ΦΓΓᵀΦᵀ)⁻¹y``, carried through the Kronecker
product and through the matrix exponential (the adjoint of its Fréchet derivative at ``W`` is
the Fréchet derivative at ``Wᵀ``).  The problem is not convex in these parameters, so every
problem is solved from several random starts (random rotations and scales); the best is
returned, and the final objective of every start is reported (``restart_objectives``): a
spread above rounding level shows a start that stopped at a more expensive stationary point.

Nothing about the closed form (alignment of the factors with singular vectors, how a scale
splits between ``A`` and ``B``) is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize

from .._threads import single_threaded
from .._types import ArrayLike
from .._validation import check_positive_int, check_real, check_seed
from ..linalg import min_norm_interpolator, min_norm_weights
from ..theory.penalties import Penalty, PenaltyLike, spectral_penalty
from .alternating import check_structured_problem
from .solution import JointSolution, warn_unconverged

__all__ = ["solve_joint_structured"]


#
# Every structure is built from "factors" F = R diag(c) with R a rotation (exponential of a
# skew-symmetric matrix) and c ≥ 0.  No generality is lost: the cost depends on a factor only
# through F Fᵀ and its singular values (F = R diag(c) Wᵀ with orthogonal W gives the same cost
# after replacing β by W-rotated weights), and a reflection in R can be moved into W.  The
# scales are written c = 1 + u − l with u ≥ 0 and 0 ≤ l ≤ 1 and charged ω(1 + u) + ω(1 − l):
# this is ≥ ω(c) with equality when u·l = 0 (ω is monotone on each side of 1), so the minimum
# is unchanged, while the kink of a penalty such as |z − 1| at z = 1 becomes a bound constraint
# that L-BFGS-B handles exactly instead of a non-differentiable point.


@dataclass(frozen=True)
class _Factor:
    size: int
    omega: Penalty
    rotate: bool


def _factor_layout(structure, p, groups, shape, omega, omega_b):
    if structure == "diagonal":
        return [_Factor(1, omega, False) for _ in range(p)]
    if structure == "groups":
        return [_Factor(len(g), omega, len(g) > 1) for g in groups]
    m, d = shape
    return [_Factor(m, omega, m > 1), _Factor(d, omega_b, d > 1)]


def _unpack(x, layout):
    """Split the parameter vector into ``(L, u, l)`` per factor (``L``: strictly lower part of
    the skew generator, length ``k(k − 1)/2``)."""
    out, pos = [], 0
    for f in layout:
        n_rot = f.size * (f.size - 1) // 2 if f.rotate else 0
        L, pos = x[pos:pos + n_rot], pos + n_rot
        u, pos = x[pos:pos + f.size], pos + f.size
        lo, pos = x[pos:pos + f.size], pos + f.size
        out.append((L, u, lo))
    return out


def _rotation(L, k):
    """``R = exp(W)``, ``W = T − Tᵀ`` with ``T`` strictly lower triangular holding ``L``."""
    T = np.zeros((k, k))
    T[np.tril_indices(k, -1)] = L
    W = T - T.T
    return W, scipy.linalg.expm(W)


def _assemble(parts, layout, structure, groups, p):
    """Factors ``F = R diag(c)`` and the full ``Γ`` (``[p, p]``)."""
    factors = []
    for (L, u, lo), f in zip(parts, layout, strict=True):
        c = 1.0 + u - lo
        if f.rotate:
            W, R = _rotation(L, f.size)
        else:
            W, R = None, np.eye(f.size)
        factors.append((W, R, c))
    if structure == "kronecker":
        (_, Ra, ca), (_, Rb, cb) = factors
        return factors, np.kron(Ra * ca, Rb * cb)
    Gamma = np.zeros((p, p))
    index_sets = groups if structure == "groups" else [np.array([j]) for j in range(p)]
    for (_, R, c), g in zip(factors, index_sets, strict=True):
        Gamma[np.ix_(g, g)] = R * c
    return factors, Gamma


def _left_grad(omega: Penalty, z: np.ndarray) -> np.ndarray:
    """``ω'`` from the left at ``z ≤ 1`` (at ``z = 1`` itself, the slope just below 1)."""
    return omega.grad(np.minimum(z, np.nextafter(1.0, 0.0)))


def _joint_objective(x, Phi, y, layout, structure, groups, shape):
    """Reduced objective ``yᵀ(ΦΓΓᵀΦᵀ)⁻¹y + Σ ω(1 + u) + ω(1 − l)`` and its gradient."""
    p = Phi.shape[1]
    parts = _unpack(x, layout)
    factors, Gamma = _assemble(parts, layout, structure, groups, p)
    solved = min_norm_weights(Phi @ Gamma, y, check=False)
    if solved is None:  # singular ΦΓ: infinitely expensive, L-BFGS-B backtracks
        return np.inf, np.zeros_like(x)
    beta, alpha = solved
    G = -2.0 * np.outer(Phi.T @ alpha, beta)  # ∂(yᵀ(ΦΓΓᵀΦᵀ)⁻¹y)/∂Γ
    if structure == "kronecker":
        m, d = shape
        (_, Ra, ca), (_, Rb, cb) = factors
        G4 = G.reshape(m, d, m, d)
        dF = [np.einsum("ijkl,jl->ik", G4, Rb * cb), np.einsum("ijkl,ik->jl", G4, Ra * ca)]
    else:
        index_sets = groups if structure == "groups" else [np.array([j]) for j in range(p)]
        dF = [G[np.ix_(g, g)] for g in index_sets]
    value = float(beta @ beta)
    grads = []
    for (_, u, lo), f, (W, R, c), dFk in zip(parts, layout, factors, dF, strict=True):
        value += float(np.sum(f.omega.func(1.0 + u)) + np.sum(f.omega.func(1.0 - lo)))
        dc = np.sum(R * dFk, axis=0)  # F = R diag(c): ∂/∂c_j = (Rᵀ dF)_jj
        if f.rotate:
            dR = dFk * c
            # Adjoint of the Fréchet derivative of exp at W is the Fréchet derivative at Wᵀ.
            dW = scipy.linalg.expm_frechet(W.T, dR, compute_expm=False)
            grads.append((dW - dW.T)[np.tril_indices(f.size, -1)])
        grads.append(dc + f.omega.grad(1.0 + u))
        grads.append(-dc - _left_grad(f.omega, 1.0 - lo))
    return value, np.concatenate(grads)


def _joint_bounds(layout):
    bounds = []
    for f in layout:
        if f.rotate:
            bounds += [(None, None)] * (f.size * (f.size - 1) // 2)
        bounds += [(0.0, None)] * f.size + [(0.0, 1.0)] * f.size
    return bounds


def _joint_start(layout, rng, init_scale):
    chunks = []
    for f in layout:
        if f.rotate:
            chunks.append(rng.standard_normal(f.size * (f.size - 1) // 2))
        chunks.append(init_scale * rng.uniform(0.0, 1.0, f.size))
        chunks.append(np.zeros(f.size))
    return np.concatenate(chunks)


@single_threaded
def solve_joint_structured(
    Phi: ArrayLike,
    y: ArrayLike,
    omega: PenaltyLike,
    *,
    structure: str,
    groups: Any = None,
    shape: tuple[int, int] | None = None,
    omega_b: PenaltyLike | None = None,
    restarts: int = 4,
    seed: int = 0,
    init_scale: float = 1.0,
    max_iter: int = 5000,
    gtol: float = 1e-12,
) -> JointSolution:
    """Brute-force solution of the structured joint problem over the factorised parameters.

    ``min ‖β‖² + Ω(Γ) s.t. y = ΦΓβ`` with ``Γ`` diagonal, block diagonal over ``groups``, or
    ``Γ = A ⊗ B`` for ``structure="kronecker"`` (``shape = (m, d)``, cost
    ``‖β‖² + Ω_omega(A) + Ω_omega_b(B)``; ``omega_b`` defaults to ``omega``).  ``Phi``:
    ``[n, p]``, ``y``: ``[n]`` in its range.  With ``Phi = I`` and ``y = θ`` the problem is the
    definition of ``Ω̃(θ)``, so this checks
    :func:`~atf_lite.theory.structured.structured_penalty` without using it.

    ``β`` is eliminated (minimum-norm solution for fixed ``Γ``); each factor is written
    ``R diag(c)`` with ``R = exp(skew)`` a rotation and ``c ≥ 0``, and the reduced objective is
    minimised by L-BFGS-B with exact gradients from ``restarts`` random starts (Gaussian skew
    generators, ``c = 1 + init_scale · U[0, 1]``).  Nothing about the closed form (alignment
    with singular vectors, how a scale splits between ``A`` and ``B``) is assumed.  Returns
    :class:`~atf_lite.solvers.solution.JointSolution`; its ``gamma`` is the dense ``[p, p]`` matrix
    (``np.kron(A, B)`` for Kronecker, with ``β = vec(M)`` row-major) and its ``objective`` is
    the exact cost of the returned feasible point, recomputed from singular values.  The best
    restart stopping at ``max_iter`` issues a ``ConvergenceWarning``.
    """
    structure, Phi, y, omega, omega_b, shape, groups = check_structured_problem(
        structure, Phi, y, omega, omega_b, shape, groups
    )
    p = Phi.shape[1]
    if Phi.shape[0] > p:
        raise ValueError(f"Phi must have at most as many rows as columns (n ≤ p), got {Phi.shape}")
    restarts = check_positive_int(restarts, "restarts")
    seed = check_seed(seed)
    init_scale = check_real(init_scale, "init_scale", low=0.0)
    max_iter = check_positive_int(max_iter, "max_iter")
    gtol = check_real(gtol, "gtol", low=0.0, low_open=True)
    min_norm_interpolator(Phi, y)  # fail early, with a clear message, when y is out of range
    layout = _factor_layout(structure, p, groups, shape, omega, omega_b)
    bounds = _joint_bounds(layout)
    rng = np.random.default_rng(seed)
    best, finals = None, []
    for _ in range(restarts):
        result = scipy.optimize.minimize(
            _joint_objective,
            _joint_start(layout, rng, init_scale),
            args=(Phi, y, layout, structure, groups, shape),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "maxfun": 4 * max_iter, "maxcor": 30,
                     "ftol": 1e-16, "gtol": gtol},
        )
        finals.append(float(result.fun))
        if best is None or result.fun < best.fun:
            best = result
    # Frames: here, solve_joint_structured, the thread-limit wrapper, the caller.
    warn_unconverged(best, "solve_joint_structured", "max_iter", stacklevel=4)
    factors, Gamma = _assemble(_unpack(best.x, layout), layout, structure, groups, p)
    beta, _ = min_norm_weights(Phi @ Gamma, y, check=False)
    if structure == "kronecker":
        (_, Ra, ca), (_, Rb, cb) = factors
        transform_cost = spectral_penalty(Ra * ca, omega) + spectral_penalty(Rb * cb, omega_b)
    else:
        transform_cost = spectral_penalty(Gamma, omega)
    norm_y = np.linalg.norm(y)
    residual = np.linalg.norm(Phi @ (Gamma @ beta) - y) / (norm_y if norm_y > 0 else 1.0)
    return JointSolution(
        beta=beta,
        gamma=Gamma,
        objective=float(beta @ beta) + transform_cost,
        constraint_residual=float(residual),
        iterations=int(best.nit),
        structure=structure,
        restart_objectives=tuple(finals),
        converged=bool(best.success),
        message=str(best.message),
    )
