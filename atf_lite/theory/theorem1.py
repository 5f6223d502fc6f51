"""Theorem 1: the closed-form solution of the joint problem (AKL).

The joint problem learns weights ``β ∈ R^p`` together with a linear transformation
``Γ ∈ R^{p×p}`` of the tangent features,

    ``min_{β, Γ} ‖β‖² + Ω(Γ)   subject to   y = Φ Γ β``,

with a spectral penalty ``Ω(Γ) = Σ_i ω(σ_i(Γ))`` (see :mod:`atf_lite.theory.penalties`).
Theorem 1 solves it from the minimum-norm interpolator ``β̂`` of the fixed features:
``β = β̂ / s``, ``Γ = I + (s − 1) β̂ β̂ᵀ / ‖β̂‖²`` with ``s`` the adaptation scale of
``‖β̂‖`` (:func:`theorem1_solution`).  The brute-force check lives in
:mod:`atf_lite.solvers.joint`.

All computations are float64; arrays may be given as numpy arrays or torch tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._types import ArrayLike
from .._validation import check_feature_columns
from ..linalg import min_norm_interpolator
from .effective import effective_penalty_and_scale
from .penalties import Penalty, PenaltyLike, as_penalty

__all__ = ["Theorem1Solution", "theorem1_solution"]


@dataclass(frozen=True)
class Theorem1Solution:
    """The closed-form solution of the joint problem (AKL) from Theorem 1.

    Attributes: ``beta_hat`` (``[p]``, the minimum-norm interpolator, equal to ``θ = Γβ``), ``s``
    (the adaptation scale of ``‖β̂‖``), ``objective`` (``‖β‖² + Ω(Γ) = ω̃(‖β̂‖)``), ``omega``.
    The transformation ``Γ = I + (s − 1) β̂β̂ᵀ/‖β̂‖²`` is kept in this rank-one form;
    :meth:`gamma` materialises it.
    """

    beta_hat: np.ndarray
    s: float
    objective: float
    omega: Penalty

    @property
    def norm(self) -> float:
        """``‖β̂‖₂``."""
        return float(np.linalg.norm(self.beta_hat))

    @property
    def beta(self) -> np.ndarray:
        """The optimal weights ``β = β̂ / s`` (``[p]``)."""
        return self.beta_hat / self.s

    @property
    def theta(self) -> np.ndarray:
        """The effective weight vector ``θ = Γβ``, which equals ``β̂`` (``[p]``)."""
        return self.beta_hat

    @property
    def label_coefficient(self) -> float:
        """``(s² − 1)/‖β̂‖²``: the weight of the label kernel ``y yᵀ`` added to ``K0`` (0 if
        ``β̂ = 0``)."""
        norm2 = float(self.beta_hat @ self.beta_hat)
        return 0.0 if norm2 == 0 else (self.s**2 - 1.0) / norm2

    def gamma(self) -> np.ndarray:
        """``Γ = I + (s − 1) β̂β̂ᵀ/‖β̂‖²`` as a dense ``[p, p]`` matrix."""
        p = self.beta_hat.size
        norm = self.norm
        if norm == 0:
            return np.eye(p)
        u = self.beta_hat / norm
        return np.eye(p) + (self.s - 1.0) * np.outer(u, u)

    def kernel(self, Phi1: ArrayLike, Phi2: ArrayLike | None = None) -> np.ndarray:
        """Adapted kernel ``φ₁ᵀΓΓᵀφ₂ = K0 + (s² − 1)/‖β̂‖² (φ₁ᵀβ̂)(φ₂ᵀβ̂)`` (``[n1, n2]``).

        ``Phi1``: ``[n1, p]``, ``Phi2``: ``[n2, p]`` (default ``Phi1``).  On the training
        features the second term is the label kernel ``(s² − 1)/‖β̂‖² y yᵀ``.
        """
        Phi1, Phi2 = check_feature_columns(Phi1, Phi2, self.beta_hat.size)
        return Phi1 @ Phi2.T + self.label_coefficient * np.outer(
            Phi1 @ self.beta_hat, Phi2 @ self.beta_hat
        )

    def predict(self, Phi: ArrayLike) -> np.ndarray:
        """Predictions ``φ(x)ᵀΓβ = φ(x)ᵀβ̂`` on features ``Phi`` (``[m, p]`` → ``[m]``)."""
        Phi, _ = check_feature_columns(Phi, None, self.beta_hat.size, ("Phi", "Phi"))
        return Phi @ self.beta_hat


def theorem1_solution(
    Phi: ArrayLike, y: ArrayLike, omega: PenaltyLike, *, rtol: float = 1e-8
) -> Theorem1Solution:
    """Theorem 1's solution of (AKL) for the spectral penalty ``omega``.

    ``Phi``: ``[n, p]``, ``y``: ``[n]`` in the range of ``Phi`` (see
    :func:`~atf_lite.linalg.min_norm_interpolator` for ``rtol``).
    ``s = argmin_{z ≥ 1} ω(z) + ‖β̂‖²/z²``.
    """
    omega = as_penalty(omega)
    beta_hat = min_norm_interpolator(Phi, y, rtol=rtol)
    objective, s = effective_penalty_and_scale(float(np.linalg.norm(beta_hat)), omega)
    return Theorem1Solution(beta_hat=beta_hat, s=s, objective=objective, omega=omega)
