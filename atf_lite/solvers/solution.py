"""The result type shared by the brute-force solvers of the joint problem (AKL)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._types import ArrayLike
from .._validation import check_feature_columns

__all__ = ["JointSolution"]


@dataclass(frozen=True)
class JointSolution:
    """A numerical solution ``(β, Γ)`` of the joint problem (AKL).

    Fields:

    * ``beta``: ``[p]`` weights; ``gamma``: ``[p, p]`` transformation (dense, also for the
      structured solvers).
    * ``objective``: ``‖β‖² + Ω(Γ)`` evaluated with the exact penalty at the returned point.
    * ``constraint_residual``: ``‖ΦΓβ − y‖ / ‖y‖``.
    * ``iterations``: optimiser iterations of the best restart, summed over its stages.
    * ``structure``: ``"full"`` or the name of the structured variant.
    * ``restart_objectives``: the final objective of every restart.
    * ``converged``, ``message``: the optimiser's verdict on the best restart's last stage.
    """

    beta: np.ndarray
    gamma: np.ndarray
    objective: float
    constraint_residual: float
    iterations: int
    structure: str = "full"
    restart_objectives: tuple[float, ...] = ()
    converged: bool = True
    message: str = field(default="", compare=False)

    @property
    def theta(self) -> np.ndarray:
        """The effective weights ``θ = Γβ`` (``[p]``): unique even where ``(β, Γ)`` is not."""
        return self.gamma @ self.beta

    def kernel(self, Phi1: ArrayLike, Phi2: ArrayLike | None = None) -> np.ndarray:
        """Adapted kernel ``Φ₁ΓΓᵀΦ₂ᵀ`` (``[n1, n2]``; ``Phi2`` defaults to ``Phi1``)."""
        Phi1, Phi2 = check_feature_columns(Phi1, Phi2, self.gamma.shape[0])
        return (Phi1 @ self.gamma) @ (Phi2 @ self.gamma).T

    def predict(self, Phi: ArrayLike) -> np.ndarray:
        """Predictions ``φ(x)ᵀΓβ`` on features ``Phi`` (``[m, p]`` → ``[m]``)."""
        Phi, _ = check_feature_columns(Phi, None, self.gamma.shape[0])
        return Phi @ self.theta
