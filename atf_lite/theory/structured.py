"""Closed forms of structured feature transformations: diagonal, groups and Kronecker.

Restricting the transformation ``Γ`` of the joint problem (AKL) to a structure changes the
equivalent regulariser of ``θ = Γβ`` (chapter 4):

* ``"diagonal"``, ``Γ = diag(γ)``: ``Ω̃(θ) = Σ_j ω̃(|θ_j|)``, attained by ``γ_j = s(|θ_j|)``.
* ``"groups"``, ``Γ = diag(Γ_1, …, Γ_G)`` over a partition of the coordinates:
  ``Ω̃(θ) = Σ_g ω̃(‖θ_g‖₂)``, attained by Theorem 1's rank-one update in every block.
* ``"kronecker"``, a dense layer: ``θ = vec(Θ)`` with ``Θ = A M Bᵀ`` (``Γ = A ⊗ B``) and cost
  ``‖M‖_F² + Ω_ωa(A) + Ω_ωb(B)``: ``Ω̃(Θ) = Σ_i h(σ_i(Θ))`` with
  ``h(v) = inf_{a, b ≥ 1} ωa(a) + ωb(b) + v²/(ab)²``, the effective penalty of ``ωa ⊕ ωb``,
  attained by ``A = I + U diag(a − 1) Uᵀ``, ``B = I + V diag(b − 1) Vᵀ`` on the singular
  vectors of ``Θ``.

Vectors ``θ`` of the Kronecker structure are matrices ``Θ`` (``[m, d]``) flattened in row-major
(C) order, so that ``vec(A M Bᵀ) = (A ⊗ B) vec(M)`` with ``numpy.kron``.

This module holds the closed forms (:func:`structured_penalty`,
:func:`kronecker_penalty_and_scales`); the solvers that use and check them are in
``atf_lite.solvers``.  Everything is float64.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._types import ArrayLike, ConvergenceWarning, UnpackableResult
from .._validation import (
    STRUCTURES,
    as_float_array,
    check_array,
    check_groups,
    check_positive_int,
    check_real,
    check_shape,
    check_structure,
    check_structure_options,
)
from .effective import effective_penalty_and_scale
from .penalties import Penalty, PenaltyLike, as_penalty

__all__ = [
    "STRUCTURES",
    "KroneckerScales",
    "StructuredPenalty",
    "kronecker_penalty_and_scales",
    "structured_penalty",
]


def _scale_function(omega: Penalty) -> Callable[[np.ndarray], np.ndarray]:
    """``v ↦ s(v)`` for a 1-D array ``v ≥ 0``: the penalty's closed form when it has one
    (called directly, skipping the value and the input checks, since this runs in inner
    loops), else :func:`~atf_lite.theory.effective.effective_penalty_and_scale`."""
    if omega.scale is None:
        return lambda v: effective_penalty_and_scale(v, omega).scale

    def scale(v: np.ndarray) -> np.ndarray:
        out = np.ones_like(v)
        positive = v > 0
        out[positive] = omega.scale(v[positive])
        return out

    return scale


@dataclass(frozen=True)
class KroneckerScales(UnpackableResult):
    """Result of :func:`kronecker_penalty_and_scales`, float64 arrays of ``v``'s shape:
    ``value`` (``h(v)``), ``a`` and ``b`` (the optimal factor scales); unpacks as
    ``h, a, b = ...`` and ``result[0]`` is ``h``."""

    value: np.ndarray
    a: np.ndarray
    b: np.ndarray


def kronecker_penalty_and_scales(
    v: float | np.ndarray,
    omega_a: PenaltyLike,
    omega_b: PenaltyLike,
    *,
    tol: float = 1e-15,
    max_iter: int = 2000,
) -> KroneckerScales:
    """Per-singular-value penalty ``h(v)`` of the Kronecker structure and its optimal factors.

    ``h(v) = inf_{a, b ≥ 1} ωa(a) + ωb(b) + v²/(ab)²``, which equals the effective penalty of
    ``ωa ⊕ ωb`` at ``v``.  Returns :class:`KroneckerScales` ``(h, a, b)``, float64 arrays of
    ``v``'s shape (``v ≥ 0``).

    Solved by exact alternating minimisation: for fixed ``b`` the best ``a`` is the adaptation
    scale of ``ωa`` at ``v/b``, and vice versa.  In log coordinates the objective is convex
    when ``x ↦ ω(eˣ)`` is convex on ``x ≥ 0`` (true of ``omega_sq``, ``omega_abs`` and their
    ``⊕``), and its non-smooth part is separable, so the alternation converges to the global
    minimiser; it stops when ``a`` and ``b`` change by less than ``tol`` relative, and warns
    (``ConvergenceWarning``) when ``max_iter ≥ 1`` sweeps did not get there.
    """
    omega_a = as_penalty(omega_a, "omega_a")
    omega_b = as_penalty(omega_b, "omega_b")
    v_arr = check_array(v, "v", finite=False, allow_empty=True)
    if np.any(~np.isfinite(v_arr)) or np.any(v_arr < 0):
        raise ValueError("v must be finite and non-negative")
    tol = check_real(tol, "tol", low=0.0)
    max_iter = check_positive_int(max_iter, "max_iter")
    converged = False
    flat = v_arr.reshape(-1)
    a = np.ones_like(flat)
    b = np.ones_like(flat)
    scale_a, scale_b = _scale_function(omega_a), _scale_function(omega_b)
    history = []  # log a after each sweep, for Aitken's extrapolation
    for _ in range(max_iter):
        a_new = scale_a(flat / b)
        b_new = scale_b(flat / a_new)
        change = max(np.max(np.abs(a_new - a) / a_new, initial=0.0),
                     np.max(np.abs(b_new - b) / b_new, initial=0.0))
        a, b = a_new, b_new
        if change <= tol:
            converged = True
            break
        # The sweep map is a contraction in log a; every third sweep, Aitken's Δ² extrapolation
        # jumps towards its fixed point.  The jump is kept only where it is finite and ≥ 0;
        # further exact sweeps follow, so the result is still a fixed point of the sweep.
        history.append(np.log(a))
        if len(history) == 3:
            x0, x1, x2 = history
            denominator = x2 - 2.0 * x1 + x0
            with np.errstate(divide="ignore", invalid="ignore"):
                jump = x2 - (x2 - x1) ** 2 / denominator
            ok = np.isfinite(jump) & (jump >= 0.0) & (denominator != 0.0)
            a = np.where(ok, np.exp(np.where(ok, jump, 0.0)), a)
            b = scale_b(flat / a)
            history = []
    if not converged:
        warnings.warn(
            f"kronecker_penalty_and_scales: the factor scales changed by {change:.3g} (relative) "
            f"in the last of max_iter={max_iter} sweeps, more than tol={tol:g}; raise max_iter",
            ConvergenceWarning,
            stacklevel=2,
        )
    h = omega_a.func(a) + omega_b.func(b) + (flat / (a * b)) ** 2
    shape = v_arr.shape
    return KroneckerScales(h.reshape(shape), a.reshape(shape), b.reshape(shape))


@dataclass(frozen=True)
class StructuredPenalty:
    """The structured regulariser ``Ω̃(θ)`` and the transformation attaining it.

    Attributes
    ----------
    structure:
        ``"diagonal"``, ``"groups"`` or ``"kronecker"``.
    value:
        ``Ω̃(θ)`` (float).
    terms:
        ``[k]`` penalty of each coordinate, group or singular value.
    magnitudes:
        ``[k]`` magnitude each term is charged on: ``|θ_j|``, ``‖θ_g‖₂`` or ``σ_i(Θ)``.
    scales:
        ``[k]`` optimal scales ``z ≥ 1`` (for Kronecker ``z = a·b``).
    beta:
        The optimal weights in the transformed features, same shape as ``θ`` (``M`` for
        Kronecker), so that ``Γβ = θ`` and ``‖β‖² + Ω(Γ) = value``.
    directions:
        Diagonal: ``None``; groups: ``[p]`` array holding ``θ_g/‖θ_g‖`` on each group (0 on
        zero groups); Kronecker: ``(U, V)``, the singular vectors of ``Θ`` (``[m, r]``,
        ``[d, r]``).
    factor_scales:
        Kronecker only: ``(a, b)``, the singular values of ``A`` and ``B`` along ``U`` and ``V``.
    groups:
        The partition (groups only).
    """

    structure: str
    value: float
    terms: np.ndarray
    magnitudes: np.ndarray
    scales: np.ndarray
    beta: np.ndarray
    directions: Any = None
    factor_scales: tuple | None = None
    groups: tuple | None = None

    @property
    def p(self) -> int:
        """Number of parameters."""
        return int(self.beta.size)

    @classmethod
    def identity(
        cls,
        structure: str,
        p: int,
        *,
        groups: tuple[np.ndarray, ...] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> StructuredPenalty:
        """The transformation ``Γ = I`` (all scales 1, value 0) of ``structure`` on ``p``
        parameters (``groups``: the partition, for ``"groups"``; ``shape = (m, d)``, for
        ``"kronecker"``)."""
        structure = check_structure(structure)
        p = check_positive_int(p, "p")
        check_structure_options(structure, groups, None, shape)
        if structure == "groups":
            groups = check_groups(groups, p)
        if structure == "kronecker":
            shape = check_shape(shape, p)
        if structure == "diagonal":
            zeros = np.zeros(p)
            return cls(structure, 0.0, zeros, zeros, np.ones(p), zeros)
        if structure == "groups":
            k = len(groups)
            return cls(structure, 0.0, np.zeros(k), np.zeros(k), np.ones(k), np.zeros(p),
                       np.zeros(p), None, groups)
        m, d = shape
        r = min(m, d)
        return cls(structure, 0.0, np.zeros(r), np.zeros(r), np.ones(r), np.zeros((m, d)),
                   (np.zeros((m, r)), np.zeros((d, r))), (np.ones(r), np.ones(r)))

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """Kronecker only: ``(A, B)``, ``A = I + U diag(a − 1) Uᵀ`` (``[m, m]``) and
        ``B = I + V diag(b − 1) Vᵀ`` (``[d, d]``), with ``A M Bᵀ = Θ``."""
        if self.structure != "kronecker":
            raise ValueError(f"factors() is defined for structure='kronecker', not "
                             f"{self.structure!r}")
        (U, V), (a, b) = self.directions, self.factor_scales
        m, d = self.beta.shape
        return np.eye(m) + (U * (a - 1.0)) @ U.T, np.eye(d) + (V * (b - 1.0)) @ V.T

    def gamma(self) -> np.ndarray:
        """The optimal transformation ``Γ`` as a dense ``[p, p]`` matrix (``Γ β = θ``)."""
        if self.structure == "diagonal":
            return np.diag(self.scales)
        if self.structure == "groups":
            u = self.directions
            G = np.eye(self.p)
            for g, s in zip(self.groups, self.scales, strict=True):
                G[np.ix_(g, g)] += (s - 1.0) * np.outer(u[g], u[g])
            return G
        A, B = self.factors()
        return np.kron(A, B)

    def apply_gamma(self, rows: np.ndarray) -> np.ndarray:
        """``rows @ Γ`` for ``rows`` of shape ``[n, p]``, without forming ``Γ``.

        Row ``k`` is a feature vector ``φ``; the result holds the transformed features
        ``Γᵀφ`` (for Kronecker, ``Aᵀ X B`` with ``X`` the row reshaped to ``[m, d]``).
        """
        rows = check_array(rows, "rows", ndim=2)
        if rows.shape[1] != self.p:
            raise ValueError(f"rows must have {self.p} columns, got shape {rows.shape}")
        if self.structure == "diagonal":
            return rows * self.scales
        if self.structure == "groups":
            u = self.directions
            out = rows.copy()
            for g, s in zip(self.groups, self.scales, strict=True):
                if s != 1.0:
                    out[:, g] += (s - 1.0) * np.outer(rows[:, g] @ u[g], u[g])
            return out
        A, B = self.factors()
        m, d = self.beta.shape
        X = rows.reshape(-1, m, d)
        return (A.T @ X @ B).reshape(rows.shape)


def structured_penalty(
    theta: ArrayLike,
    omega: PenaltyLike,
    *,
    structure: str,
    groups: Any = None,
    omega_b: PenaltyLike | None = None,
) -> StructuredPenalty:
    """The equivalent regulariser ``Ω̃(θ)`` of a structured transformation, in closed form.

    ``theta``: ``[p]`` for ``"diagonal"`` and ``"groups"``, a matrix ``Θ`` (``[m, d]``) for
    ``"kronecker"``.  ``omega``: the penalty of ``Γ`` (of the left factor ``A`` for
    Kronecker); ``omega_b``: the penalty of the right factor ``B`` (Kronecker only; default
    ``omega``).  ``groups``: a list of integer index arrays partitioning ``range(p)`` (groups
    only).  Returns a :class:`StructuredPenalty` with the value, the per-term penalties and the
    optimal transformation.
    """
    structure = check_structure(structure)
    check_structure_options(structure, groups, omega_b, None)
    omega = as_penalty(omega)
    if structure == "kronecker":
        Theta = as_float_array(theta, "theta", 2)
        omega_b = omega if omega_b is None else as_penalty(omega_b, "omega_b")
        U, sigma, Vt = np.linalg.svd(Theta, full_matrices=False)
        h, a, b = kronecker_penalty_and_scales(sigma, omega, omega_b)
        M = (U * (sigma / (a * b))) @ Vt
        return StructuredPenalty(structure, float(h.sum()), h, sigma, a * b, M, (U, Vt.T),
                                 (a, b))
    theta = as_float_array(theta, "theta", 1)
    if structure == "diagonal":
        magnitude = np.abs(theta)
        terms, scales = effective_penalty_and_scale(magnitude, omega)
        return StructuredPenalty(structure, float(terms.sum()), terms, magnitude, scales,
                                 theta / scales)
    groups = check_groups(groups, theta.size)
    norms = np.array([np.linalg.norm(theta[g]) for g in groups])
    terms, scales = effective_penalty_and_scale(norms, omega)
    directions = np.zeros_like(theta)
    beta = np.zeros_like(theta)
    for g, norm, s in zip(groups, norms, scales, strict=True):
        if norm > 0:
            directions[g] = theta[g] / norm
            beta[g] = theta[g] / s
    return StructuredPenalty(structure, float(terms.sum()), terms, norms, scales, beta,
                             directions, None, groups)
