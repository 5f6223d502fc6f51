"""Adaptive tangent features: minimum-norm interpolation, Theorem 1 and a brute-force solver.

The joint problem (AKL) learns weights ``β ∈ R^p`` together with a linear transformation
``Γ ∈ R^{p×p}`` of the tangent features,

    ``min_{β, Γ} ‖β‖² + Ω(Γ)   subject to   y = Φ Γ β``,

with a spectral penalty ``Ω(Γ) = Σ_i ω(σ_i(Γ))`` (see :mod:`atf_lite.penalties`).  Theorem 1
solves it in closed form from the minimum-norm interpolator ``β̂`` of the fixed features:
``β = β̂ / s``, ``Γ = I + (s − 1) β̂ β̂ᵀ / ‖β̂‖²`` with ``s`` the adaptation scale of
``‖β̂‖`` (:func:`theorem1_solution`).  :func:`solve_joint` is an independent numerical check:
for fixed ``Γ`` the optimal ``β`` is the minimum-norm solution of ``ΦΓ β = y``, and the reduced
objective is minimised over all of ``Γ`` by L-BFGS from random starts.

All computations are float64; arrays may be given as numpy arrays or torch tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize

from .penalties import Penalty, _as_penalty, effective_penalty_and_scale

__all__ = [
    "min_norm_interpolator",
    "Theorem1Solution",
    "theorem1_solution",
    "spectral_penalty",
    "reduced_objective",
    "JointSolution",
    "solve_joint",
    "compare_with_theorem1",
    "random_instance",
    "difficulty_targets",
]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_array(x, name: str, ndim: int) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2 and ndim == 1 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_system(Phi, y) -> tuple[np.ndarray, np.ndarray]:
    Phi = _as_array(Phi, "Phi", 2)
    y = _as_array(y, "y", 1)
    if y.shape[0] != Phi.shape[0]:
        raise ValueError(f"y must have length Phi.shape[0] = {Phi.shape[0]}, got {y.shape[0]}")
    return Phi, y


def _features(Phi1, Phi2, p: int) -> tuple[np.ndarray, np.ndarray]:
    Phi1 = _as_array(Phi1, "Phi1", 2)
    Phi2 = Phi1 if Phi2 is None else _as_array(Phi2, "Phi2", 2)
    for name, F in (("Phi1", Phi1), ("Phi2", Phi2)):
        if F.shape[1] != p:
            raise ValueError(f"{name} must have {p} columns (features), got {F.shape[1]}")
    return Phi1, Phi2


# --------------------------------------------------------------------------------------------
# Fixed features and Theorem 1
# --------------------------------------------------------------------------------------------


def min_norm_interpolator(Phi, y, rtol: float = 1e-8) -> np.ndarray:
    """The minimum-norm solution ``β̂ = argmin ‖β‖₂ s.t. Φ β = y`` (float64 ``[p]``).

    ``Phi``: ``[n, p]`` features, ``y``: ``[n]`` targets.  Solved by an SVD-based least-squares
    routine (LAPACK ``gelsd``), which never forms ``Φ Φᵀ`` or an inverse.  Raises ``ValueError``
    when ``y`` is not in the range of ``Φ``: relative residual ``‖Φβ̂ − y‖ / ‖y‖ > rtol``.
    """
    Phi, y = _check_system(Phi, y)
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

    def kernel(self, Phi1, Phi2=None) -> np.ndarray:
        """Adapted kernel ``φ₁ᵀΓΓᵀφ₂ = K0 + (s² − 1)/‖β̂‖² (φ₁ᵀβ̂)(φ₂ᵀβ̂)`` (``[n1, n2]``).

        ``Phi1``: ``[n1, p]``, ``Phi2``: ``[n2, p]`` (default ``Phi1``).  On the training
        features the second term is the label kernel ``(s² − 1)/‖β̂‖² y yᵀ``.
        """
        Phi1, Phi2 = _features(Phi1, Phi2, self.beta_hat.size)
        return Phi1 @ Phi2.T + self.label_coefficient * np.outer(
            Phi1 @ self.beta_hat, Phi2 @ self.beta_hat
        )

    def predict(self, Phi) -> np.ndarray:
        """Predictions ``φ(x)ᵀΓβ = φ(x)ᵀβ̂`` on features ``Phi`` (``[m, p]`` → ``[m]``)."""
        Phi, _ = _features(Phi, None, self.beta_hat.size)
        return Phi @ self.beta_hat


def theorem1_solution(Phi, y, omega, rtol: float = 1e-8) -> Theorem1Solution:
    """Theorem 1's solution of (AKL) for the spectral penalty ``omega``.

    ``Phi``: ``[n, p]``, ``y``: ``[n]`` in the range of ``Phi`` (see
    :func:`min_norm_interpolator` for ``rtol``).  ``s = argmin_{z ≥ 1} ω(z) + ‖β̂‖²/z²``.
    """
    omega = _as_penalty(omega)
    beta_hat = min_norm_interpolator(Phi, y, rtol=rtol)
    objective, s = effective_penalty_and_scale(omega, float(np.linalg.norm(beta_hat)))
    return Theorem1Solution(beta_hat=beta_hat, s=s, objective=objective, omega=omega)


# --------------------------------------------------------------------------------------------
# The joint problem, numerically
# --------------------------------------------------------------------------------------------


def spectral_penalty(omega, Gamma) -> float:
    """``Ω(Γ) = Σ_i ω(σ_i(Γ))`` over the singular values of a square matrix ``Gamma``."""
    omega = _as_penalty(omega)
    Gamma = _as_array(Gamma, "Gamma", 2)
    return float(np.sum(omega.func(np.linalg.svd(Gamma, compute_uv=False))))


def _min_norm_weights(M: np.ndarray, y: np.ndarray):
    """Min-norm ``β`` with ``M β = y`` for full-row-rank ``M`` (``[n, p]``) via QR of ``Mᵀ``.

    Returns ``(β, α)`` with ``β = Mᵀα`` and ``α = (MMᵀ)⁻¹y``, or ``None`` when ``M`` is
    numerically rank deficient.
    """
    Q, R = np.linalg.qr(M.T)  # Mᵀ = QR, Q: [p, n], R: [n, n]
    diag = np.abs(np.diag(R))
    if diag.min() <= 1e-13 * diag.max():
        return None
    z = scipy.linalg.solve_triangular(R, y, trans="T")  # Rᵀ z = y
    return Q @ z, scipy.linalg.solve_triangular(R, z)


def reduced_objective(Phi, y, omega, Gamma) -> tuple[float, np.ndarray]:
    """``min_β ‖β‖² + Ω(Γ) s.t. y = ΦΓβ`` for a fixed ``Gamma``; returns ``(value, β)``.

    The value is ``yᵀ(ΦΓΓᵀΦᵀ)⁻¹y + Ω(Γ)``; it is ``inf`` (with ``β`` all NaN) when ``ΦΓ`` has
    numerically deficient row rank.
    """
    Phi, y = _check_system(Phi, y)
    Gamma = _as_array(Gamma, "Gamma", 2)
    p = Phi.shape[1]
    if Gamma.shape != (p, p):
        raise ValueError(f"Gamma must have shape ({p}, {p}), got {Gamma.shape}")
    solved = _min_norm_weights(Phi @ Gamma, y)
    if solved is None:
        return np.inf, np.full(p, np.nan)
    beta, _ = solved
    return float(beta @ beta) + spectral_penalty(omega, Gamma), beta


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

    def kernel(self, Phi1, Phi2=None) -> np.ndarray:
        """Adapted kernel ``Φ₁ΓΓᵀΦ₂ᵀ`` (``[n1, n2]``; ``Phi2`` defaults to ``Phi1``)."""
        Phi1, Phi2 = _features(Phi1, Phi2, self.gamma.shape[0])
        return (Phi1 @ self.gamma) @ (Phi2 @ self.gamma).T

    def predict(self, Phi) -> np.ndarray:
        """Predictions ``φ(x)ᵀΓβ`` on features ``Phi`` (``[m, p]`` → ``[m]``)."""
        Phi, _ = _features(Phi, None, self.gamma.shape[0])
        return Phi @ self.theta


# Gauss–Hermite rule for the fallback smoothing E ω(|z + μξ|), ξ ~ N(0, 1), of non-smooth
# penalties without a smoothing hook; and the widths μ of the successive solver stages (the
# last, μ = 0, uses ω itself).
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()
_SMOOTHING_SCHEDULE = (1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 0.0)


def _penalty_and_grad(omega: Penalty, sigma: np.ndarray, mu: float):
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


def _full_objective(x, Phi, y, omega, mu):
    """Reduced objective over a dense ``Γ`` (flattened ``x``) and its gradient.

    With ``M = ΦΓ``, ``α = (MMᵀ)⁻¹y`` and ``β = Mᵀα``, the data term ``yᵀ(MMᵀ)⁻¹y = ‖β‖²`` has
    gradient ``−2 (Φᵀα) βᵀ`` in ``Γ``; the spectral term has gradient ``U diag(ω'(σ)) Vᵀ``.
    """
    p = Phi.shape[1]
    Gamma = x.reshape(p, p)
    solved = _min_norm_weights(Phi @ Gamma, y)
    if solved is None:  # singular ΦΓ: infinitely expensive; L-BFGS backtracks
        return np.inf, np.zeros_like(x)
    beta, alpha = solved
    U, sigma, Vt = np.linalg.svd(Gamma)
    pen, dpen = _penalty_and_grad(omega, sigma, mu)
    grad = -2.0 * np.outer(Phi.T @ alpha, beta) + (U * dpen) @ Vt
    return float(beta @ beta) + pen, grad.ravel()


def _solve_full(Phi, y, omega, restarts, seed, init_scale, max_iter, gtol):
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
    Phi,
    y,
    omega,
    structure: str = "full",
    restarts: int = 3,
    seed: int = 0,
    **kwargs,
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
    (5000), ``gtol`` (1e-11).  Any other ``structure`` is delegated to
    ``atf_lite.structured.solve_joint_structured`` with the remaining keywords.
    """
    if structure != "full":
        from .structured import solve_joint_structured

        return solve_joint_structured(Phi, y, omega, structure, restarts=restarts, seed=seed,
                                      **kwargs)
    Phi, y = _check_system(Phi, y)
    omega = _as_penalty(omega)
    if Phi.shape[0] > Phi.shape[1]:
        raise ValueError(f"Phi must have at most as many rows as columns (n ≤ p), got {Phi.shape}")
    if not (isinstance(restarts, int | np.integer) and restarts >= 1):
        raise ValueError(f"restarts must be a positive integer, got {restarts!r}")
    options = {"init_scale": 0.5, "max_iter": 5000, "gtol": 1e-11}
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise TypeError(f"solve_joint got unexpected keyword arguments {unknown}")
    options.update(kwargs)
    # Fail early, with the usual message, when no interpolator exists at all.
    min_norm_interpolator(Phi, y)
    return _solve_full(Phi, y, omega, restarts, seed, **options)


# --------------------------------------------------------------------------------------------
# Comparisons and test instances
# --------------------------------------------------------------------------------------------


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (scale if scale > 0 else 1.0))


def compare_with_theorem1(Phi, y, omega, joint: JointSolution) -> dict[str, float]:
    """Relative gaps between a numerical solution and Theorem 1, on the quantities that are
    unique at the optimum.

    ``(β, Γ)`` itself is not unique: ``(Rᵀβ, ΓR)`` is as good for any orthogonal ``R``.  What
    is unique is the objective, ``θ = Γβ`` (``= β̂``), ``‖β‖`` (``= ‖β̂‖/s``), ``ΓΓᵀ`` and with
    it the adapted kernel.  Keys: ``objective`` (signed: positive means the numerical solution
    costs more), ``theta``, ``beta_norm``, ``gram`` (``ΓΓᵀ``, Frobenius), ``kernel`` (on the
    training features, Frobenius), each relative to Theorem 1's value.
    """
    Phi, y = _check_system(Phi, y)
    exact = theorem1_solution(Phi, y, omega)
    G_exact = exact.gamma()
    denominator = exact.objective if exact.objective > 0 else 1.0
    return {
        "objective": float((joint.objective - exact.objective) / denominator),
        "theta": _relative(joint.theta, exact.theta),
        "beta_norm": abs(float(np.linalg.norm(joint.beta)) - exact.norm / exact.s)
        / max(exact.norm / exact.s, 1e-300),
        "gram": _relative(joint.gamma @ joint.gamma.T, G_exact @ G_exact.T),
        "kernel": _relative(joint.kernel(Phi), exact.kernel(Phi)),
    }


def random_instance(n: int, p: int, target_norm: float = 1.0, seed: int = 0):
    """A random interpolation problem: ``Φ`` (``[n, p]``, i.i.d. ``N(0, 1/p)``) and ``y``
    (``[n]``) scaled so that the minimum-norm interpolator has ``‖β̂‖ = target_norm``."""
    if not (0 < n <= p):
        raise ValueError(f"need 0 < n <= p, got n={n}, p={p}")
    if not target_norm >= 0:
        raise ValueError(f"target_norm must be non-negative, got {target_norm!r}")
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((n, p)) / np.sqrt(p)
    y = rng.standard_normal(n)
    y *= target_norm / np.linalg.norm(min_norm_interpolator(Phi, y))
    return Phi, y


def difficulty_targets(X, labels, features: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Three targets on the inputs ``X`` (``[n, d]``) of increasing difficulty, each ``[n]``.

    * ``"smooth"``: the least-squares fit of the ``±1`` ``labels`` by a linear function (with
      intercept) of ``features`` random ReLU features ``max(0, X W)``, ``W`` i.i.d.
      ``N(0, 2/d)``: a smooth function of the input that follows the labels.
    * ``"sign"``: its sign, a binary target with the same decision boundary.
    * ``"random"``: independent uniformly random ``±1`` labels.

    All three are scaled to ``‖y‖ = √n`` (root-mean-square 1), so that the targets differ in how
    well the features represent them, not in size.  ``seed`` fixes ``W`` and the random labels.
    """
    X = _as_array(X, "X", 2)
    labels = _as_array(labels, "labels", 1)
    n, d = X.shape
    if labels.shape[0] != n:
        raise ValueError(f"labels must have length X.shape[0] = {n}, got {labels.shape[0]}")
    if not np.all(np.abs(labels) == 1):
        raise ValueError("labels must be ±1")
    if not (isinstance(features, int | np.integer) and 0 < features < n - 1):
        raise ValueError(f"features must be an integer in (0, {n - 1}), got {features!r}")
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, features)) * np.sqrt(2.0 / d)
    design = np.hstack([np.maximum(X @ W, 0.0), np.ones((n, 1))])
    coef, *_ = scipy.linalg.lstsq(design, labels)
    smooth = design @ coef
    targets = {
        "smooth": smooth,
        "sign": np.where(smooth >= 0, 1.0, -1.0),
        "random": rng.choice([-1.0, 1.0], size=n),
    }
    return {name: y * np.sqrt(n) / np.linalg.norm(y) for name, y in targets.items()}
