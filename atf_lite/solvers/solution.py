"""The result type shared by the brute-force solvers of the joint problem (AKL), and the
convergence verdict they share."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._types import ArrayLike, ConvergenceWarning
from .._validation import check_feature_columns, check_int

__all__ = ["JointSolution", "warn_unconverged"]

# scipy.optimize.minimize (L-BFGS-B) status: 1 means the iteration or evaluation limit stopped
# it.  Status 2 (no decrease found by the line search) is the usual end at the rounding floor
# of the objective, where ftol = 1e-16 cannot be met; it is reported in ``converged`` and
# ``message`` but is not a stop short of the optimum, so it does not warn.
_LIMIT_REACHED = 1


def warn_unconverged(result: Any, solver: str, limit: str, *, stacklevel: int = 3) -> None:
    """Warn (``ConvergenceWarning``) when an L-BFGS-B ``result`` stopped at its
    iteration limit; ``limit`` names the option that raises it, ``stacklevel`` counts the
    frames from here up to the user's call."""
    if not hasattr(result, "status"):
        raise TypeError(f"result must be a scipy OptimizeResult, got {type(result).__name__}")
    for name, value in (("solver", solver), ("limit", limit)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r}")
    stacklevel = check_int(stacklevel, "stacklevel", minimum=1)
    if getattr(result, "status", 0) == _LIMIT_REACHED:
        warnings.warn(
            f"{solver}: L-BFGS-B stopped at its limit after {result.nit} iterations "
            f"({result.message}); the result is not converged, raise {limit}",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


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
        Phi, _ = check_feature_columns(Phi, None, self.gamma.shape[0], ("Phi", "Phi"))
        return Phi @ self.theta
