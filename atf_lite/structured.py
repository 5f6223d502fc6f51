"""Structured feature transformations: diagonal, block-diagonal (groups) and Kronecker.

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

The module provides the closed forms (:func:`structured_penalty`), a solver of the linearly
constrained problem ``min Ω̃(θ) s.t. Aθ = y`` (:func:`solve_structured`, alternating
minimisation over ``θ`` and the transformation), an independent brute-force solver of the joint
problem over the factorised parameters (:func:`solve_joint_structured`), the convex baselines
(minimum ``ℓ1`` and nuclear norm) and the recovery experiments of chapter 4.  Everything is
float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
from threadpoolctl import threadpool_limits

from .adaptive import (
    JointSolution,
    _as_array,
    _check_system,
    _min_norm_weights,
    min_norm_interpolator,
    spectral_penalty,
)
from .penalties import Penalty, _as_penalty, effective_penalty_and_scale

__all__ = [
    "STRUCTURES",
    "StructuredPenalty",
    "kronecker_penalty_and_scales",
    "structured_penalty",
    "StructuredSolution",
    "solve_structured",
    "solve_joint_structured",
    "min_l1_interpolator",
    "min_nuclear_norm_interpolator",
    "relative_error",
    "sparse_recovery_instance",
    "matrix_sensing_instance",
    "RecoveryTrials",
    "sparse_recovery_trials",
    "matrix_sensing_trials",
]

STRUCTURES = ("diagonal", "groups", "kronecker")

# The solvers work with many small matrices; multithreaded BLAS only adds synchronisation
# overhead there (and is slowed down a hundredfold on a busy machine), so they run single-threaded.
_single_threaded = threadpool_limits.wrap(limits=1)


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_structure(structure) -> str:
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    return structure


def _check_groups(groups, p: int) -> tuple[np.ndarray, ...]:
    """``groups`` as a tuple of integer index arrays that partition ``range(p)``."""
    if groups is None:
        raise ValueError("structure='groups' needs groups: a list of index arrays")
    if isinstance(groups, str | bytes) or not hasattr(groups, "__iter__"):
        raise ValueError("groups must be a list of 1-D integer index arrays")
    out = []
    for k, g in enumerate(groups):
        arr = np.asarray(g)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"groups[{k}] must be a non-empty 1-D index array, got shape "
                             f"{arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"groups[{k}] must hold integer indices, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= p:
            raise ValueError(f"groups[{k}] has indices outside [0, {p})")
        out.append(arr.astype(np.intp))
    if not out:
        raise ValueError("groups must contain at least one group")
    counts = np.bincount(np.concatenate(out), minlength=p)
    if np.any(counts > 1):
        raise ValueError(f"groups do not partition the indices: index {int(np.argmax(counts > 1))}"
                         " is in more than one group")
    if np.any(counts == 0):
        raise ValueError(f"groups do not partition the indices: index {int(np.argmin(counts))} "
                         "is in no group")
    return tuple(out)


def _check_options(structure: str, groups, omega_b) -> None:
    """Options that belong to another structure are an error, never silently ignored."""
    if groups is not None and structure != "groups":
        raise ValueError(f"groups is only used with structure='groups', not {structure!r}")
    if omega_b is not None and structure != "kronecker":
        raise ValueError(f"omega_b is only used with structure='kronecker', not {structure!r}")


def _check_shape(shape, p: int) -> tuple[int, int]:
    if shape is None:
        raise ValueError("structure='kronecker' needs shape=(m, d) of the weight matrix")
    try:
        m, d = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair of positive integers, got {shape!r}") from None
    if m < 1 or d < 1 or m * d != p:
        raise ValueError(f"shape {shape!r} does not match the {p} parameters (m · d must be {p})")
    return m, d


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------


def _scale_function(omega: Penalty):
    """``v ↦ s(v)`` for a 1-D array ``v ≥ 0``: the penalty's closed form when it has one
    (called directly, skipping the value and the input checks, since this runs in inner
    loops), else :func:`atf_lite.penalties.effective_penalty_and_scale`."""
    if omega.scale is None:
        return lambda v: effective_penalty_and_scale(omega, v)[1]

    def scale(v):
        out = np.ones_like(v)
        positive = v > 0
        out[positive] = omega.scale(v[positive])
        return out

    return scale


def kronecker_penalty_and_scales(omega_a, omega_b, v, tol: float = 1e-15, max_iter: int = 2000):
    """Per-singular-value penalty ``h(v)`` of the Kronecker structure and its optimal factors.

    ``h(v) = inf_{a, b ≥ 1} ωa(a) + ωb(b) + v²/(ab)²``, which equals the effective penalty of
    ``ωa ⊕ ωb`` at ``v``.  Returns ``(h, a, b)``, float64 arrays of ``v``'s shape (``v ≥ 0``).

    Solved by exact alternating minimisation: for fixed ``b`` the best ``a`` is the adaptation
    scale of ``ωa`` at ``v/b``, and vice versa.  In log coordinates the objective is convex
    when ``x ↦ ω(eˣ)`` is convex on ``x ≥ 0`` (true of ``omega_sq``, ``omega_abs`` and their
    ``⊕``), and its non-smooth part is separable, so the alternation converges to the global
    minimiser; it stops when ``a`` and ``b`` change by less than ``tol`` relative.
    """
    omega_a = _as_penalty(omega_a, "omega_a")
    omega_b = _as_penalty(omega_b, "omega_b")
    v_arr = np.asarray(v, dtype=np.float64)
    if np.any(~np.isfinite(v_arr)) or np.any(v_arr < 0):
        raise ValueError("v must be finite and non-negative")
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
    h = omega_a.func(a) + omega_b.func(b) + (flat / (a * b)) ** 2
    shape = v_arr.shape
    return h.reshape(shape), a.reshape(shape), b.reshape(shape)


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
    directions: object = None
    factor_scales: tuple | None = None
    groups: tuple | None = None

    @property
    def p(self) -> int:
        """Number of parameters."""
        return int(self.beta.size)

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


def _identity_penalty(structure, p, groups, shape) -> StructuredPenalty:
    """The transformation ``Γ = I`` (all scales 1) in the form of a :class:`StructuredPenalty`."""
    if structure == "diagonal":
        zeros = np.zeros(p)
        return StructuredPenalty(structure, 0.0, zeros, zeros, np.ones(p), zeros)
    if structure == "groups":
        k = len(groups)
        return StructuredPenalty(structure, 0.0, np.zeros(k), np.zeros(k), np.ones(k),
                                 np.zeros(p), np.zeros(p), None, groups)
    m, d = shape
    r = min(m, d)
    return StructuredPenalty(structure, 0.0, np.zeros(r), np.zeros(r), np.ones(r),
                             np.zeros((m, d)), (np.zeros((m, r)), np.zeros((d, r))),
                             (np.ones(r), np.ones(r)))


def structured_penalty(theta, omega, structure: str, groups=None, omega_b=None):
    """The equivalent regulariser ``Ω̃(θ)`` of a structured transformation, in closed form.

    ``theta``: ``[p]`` for ``"diagonal"`` and ``"groups"``, a matrix ``Θ`` (``[m, d]``) for
    ``"kronecker"``.  ``omega``: the penalty of ``Γ`` (of the left factor ``A`` for
    Kronecker); ``omega_b``: the penalty of the right factor ``B`` (Kronecker only; default
    ``omega``).  ``groups``: a list of integer index arrays partitioning ``range(p)`` (groups
    only).  Returns a :class:`StructuredPenalty` with the value, the per-term penalties and the
    optimal transformation.
    """
    structure = _check_structure(structure)
    _check_options(structure, groups, omega_b)
    omega = _as_penalty(omega)
    if structure == "kronecker":
        Theta = _as_array(theta, "theta", 2)
        omega_b = omega if omega_b is None else _as_penalty(omega_b, "omega_b")
        U, sigma, Vt = np.linalg.svd(Theta, full_matrices=False)
        h, a, b = kronecker_penalty_and_scales(omega, omega_b, sigma)
        M = (U * (sigma / (a * b))) @ Vt
        return StructuredPenalty(structure, float(h.sum()), h, sigma, a * b, M, (U, Vt.T),
                                 (a, b))
    theta = _as_array(theta, "theta", 1)
    if structure == "diagonal":
        magnitude = np.abs(theta)
        terms, scales = effective_penalty_and_scale(omega, magnitude)
        return StructuredPenalty(structure, float(terms.sum()), terms, magnitude, scales,
                                 theta / scales)
    groups = _check_groups(groups, theta.size)
    norms = np.array([np.linalg.norm(theta[g]) for g in groups])
    terms, scales = effective_penalty_and_scale(omega, norms)
    directions = np.zeros_like(theta)
    beta = np.zeros_like(theta)
    for g, norm, s in zip(groups, norms, scales, strict=True):
        if norm > 0:
            directions[g] = theta[g] / norm
            beta[g] = theta[g] / s
    return StructuredPenalty(structure, float(terms.sum()), terms, norms, scales, beta,
                             directions, None, groups)


# --------------------------------------------------------------------------------------------
# The linearly constrained problem min Ω̃(θ) s.t. Aθ = y
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StructuredSolution:
    """A solution of ``min Ω̃(θ) s.t. Aθ = y`` from :func:`solve_structured`.

    Attributes: ``theta`` (``[p]``, row-major ``vec(Θ)`` for Kronecker), ``objective``
    (``Ω̃(θ)``), ``constraint_residual`` (``‖Aθ − y‖/‖y‖``), ``iterations`` (of the best start),
    ``converged``, ``penalty`` (the :class:`StructuredPenalty` at ``theta``: optimal
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


def _alternate(A, y, penalty_of, start: StructuredPenalty, max_iter: int, tol: float):
    """Alternating minimisation of ``F(θ, Γ) = θᵀ(ΓΓᵀ)⁻¹θ + Ω(Γ)`` subject to ``Aθ = y``.

    For fixed ``Γ`` the best feasible ``θ`` is ``Γβ`` with ``β`` the minimum-norm solution of
    ``(AΓ)β = y`` (kernel regression with the adapted features); for fixed ``θ`` the best ``Γ``
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
        features = pen.apply_gamma(A)
        solved = _min_norm_weights(features, y)  # QR; SVD-based lstsq if rank deficient
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


@_single_threaded
def _check_problem(structure, A, y, omega, omega_b, shape, groups):
    """Validate a structured problem's arguments; returns them normalised (same order)."""
    structure = _check_structure(structure)
    _check_options(structure, groups, omega_b)
    A, y = _check_system(A, y)
    omega = _as_penalty(omega)
    if structure == "kronecker":
        shape = _check_shape(shape, A.shape[1])
        omega_b = omega if omega_b is None else _as_penalty(omega_b, "omega_b")
    elif shape is not None:
        raise ValueError(f"shape is only used with structure='kronecker', not {structure!r}")
    if structure == "groups":
        groups = _check_groups(groups, A.shape[1])
    return structure, A, y, omega, omega_b, shape, groups


def solve_structured(
    A,
    y,
    omega,
    structure: str,
    shape=None,
    groups=None,
    omega_b=None,
    max_iter: int = 5000,
    tol: float = 1e-11,
    restarts: int = 0,
    seed: int = 0,
) -> StructuredSolution:
    """Solve ``min Ω̃(θ) s.t. Aθ = y`` for a structured regulariser (float64).

    ``A``: ``[n, p]`` measurement (or feature) matrix, ``y``: ``[n]`` in its range.
    ``structure``, ``omega``, ``groups``, ``omega_b`` as in :func:`structured_penalty`;
    ``shape = (m, d)`` with ``m·d = p`` for Kronecker (``θ`` is the row-major ``vec(Θ)``).

    Method: alternating minimisation over ``θ`` and the transformation ``Γ`` (an iteratively
    reweighted least-squares scheme).  ``Ω̃`` is not convex, so this finds a stationary point
    that depends on the start.  The first start is ``Γ = I``, whose first iterate is the
    minimum-norm interpolator: the lazy solution, from which the features adapt.  ``restarts``
    further starts use the transformation that is optimal for a random Gaussian ``θ`` of the
    minimum-norm interpolator's norm times ``10^U[-1, 2]`` (from ``seed``); the best objective
    is returned and every start's objective is reported.  Stops when ``θ`` changes by less
    than ``tol`` relative, or after ``max_iter`` iterations (then ``converged`` is False).
    """
    structure, A, y, omega, omega_b, shape, groups = _check_problem(
        structure, A, y, omega, omega_b, shape, groups
    )
    p = A.shape[1]
    if not (isinstance(restarts, int | np.integer) and restarts >= 0):
        raise ValueError(f"restarts must be a non-negative integer, got {restarts!r}")
    if not (isinstance(max_iter, int | np.integer) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    theta_min_norm = min_norm_interpolator(A, y)  # raises when no interpolator exists

    def penalty_of(theta):
        arg = theta.reshape(shape) if structure == "kronecker" else theta
        return structured_penalty(arg, omega, structure, groups=groups, omega_b=omega_b)

    starts = [_identity_penalty(structure, p, groups, shape)]
    rng = np.random.default_rng(seed)
    norm = np.linalg.norm(theta_min_norm)
    for _ in range(restarts):
        direction = rng.standard_normal(p)
        magnitude = norm * 10.0 ** rng.uniform(-1.0, 2.0)
        starts.append(penalty_of(magnitude * direction / np.linalg.norm(direction)))
    best = None
    finals = []
    for start in starts:
        run = _alternate(A, y, penalty_of, start, max_iter, tol)
        finals.append(run[1].value)
        if best is None or run[1].value < best[1].value:
            best = run
    theta, pen, history, iterations, converged = best
    norm_y = np.linalg.norm(y)
    residual = np.linalg.norm(A @ theta - y) / (norm_y if norm_y > 0 else 1.0)
    return StructuredSolution(theta, pen.value, float(residual), int(iterations),
                              bool(converged), pen, history, tuple(finals),
                              shape if structure == "kronecker" else None)


# --------------------------------------------------------------------------------------------
# Brute force: the joint problem over the factorised parameters
# --------------------------------------------------------------------------------------------
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
    solved = _min_norm_weights(Phi @ Gamma, y)
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


@_single_threaded
def solve_joint_structured(
    Phi,
    y,
    omega,
    structure: str,
    groups=None,
    shape=None,
    omega_b=None,
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
    definition of ``Ω̃(θ)``, so this checks :func:`structured_penalty` without using it.

    ``β`` is eliminated (minimum-norm solution for fixed ``Γ``); each factor is written
    ``R diag(c)`` with ``R = exp(skew)`` a rotation and ``c ≥ 0``, and the reduced objective is
    minimised by L-BFGS-B with exact gradients from ``restarts`` random starts (Gaussian skew
    generators, ``c = 1 + init_scale · U[0, 1]``).  Nothing about the closed form (alignment
    with singular vectors, how a scale splits between ``A`` and ``B``) is assumed.  Returns
    :class:`atf_lite.adaptive.JointSolution`; its ``gamma`` is the dense ``[p, p]`` matrix
    (``np.kron(A, B)`` for Kronecker, with ``β = vec(M)`` row-major) and its ``objective`` is
    the exact cost of the returned feasible point, recomputed from singular values.
    """
    structure, Phi, y, omega, omega_b, shape, groups = _check_problem(
        structure, Phi, y, omega, omega_b, shape, groups
    )
    p = Phi.shape[1]
    if not (isinstance(restarts, int | np.integer) and restarts >= 1):
        raise ValueError(f"restarts must be a positive integer, got {restarts!r}")
    if not init_scale >= 0:
        raise ValueError(f"init_scale must be non-negative, got {init_scale!r}")
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
    factors, Gamma = _assemble(_unpack(best.x, layout), layout, structure, groups, p)
    beta, _ = _min_norm_weights(Phi @ Gamma, y)
    if structure == "kronecker":
        (_, Ra, ca), (_, Rb, cb) = factors
        transform_cost = spectral_penalty(omega, Ra * ca) + spectral_penalty(omega_b, Rb * cb)
    else:
        transform_cost = spectral_penalty(omega, Gamma)
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


# --------------------------------------------------------------------------------------------
# Convex baselines
# --------------------------------------------------------------------------------------------


def min_l1_interpolator(A, y) -> np.ndarray:
    """``argmin ‖θ‖₁ s.t. Aθ = y`` (``[p]``) by linear programming (HiGHS).

    ``θ = θ⁺ − θ⁻`` with ``θ± ≥ 0``.  The vertex returned by the LP is then polished by an
    exact least-squares solve on its support, so the constraint holds to rounding error.
    """
    A, y = _check_system(A, y)
    n, p = A.shape
    result = scipy.optimize.linprog(
        np.ones(2 * p), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None), method="highs"
    )
    if result.status != 0:
        raise ValueError(f"the l1 interpolation problem could not be solved: {result.message}")
    theta = result.x[:p] - result.x[p:]
    support = np.flatnonzero(np.abs(theta) > 1e-9 * max(np.abs(theta).max(), 1e-300))
    if 0 < support.size <= n:
        polished = np.zeros(p)
        polished[support], *_ = scipy.linalg.lstsq(A[:, support], y)
        if np.linalg.norm(A @ polished - y) <= np.linalg.norm(A @ theta - y):
            theta = polished
    return theta


def _singular_value_threshold(X: np.ndarray, tau: float) -> np.ndarray:
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    return (U * np.maximum(s - tau, 0.0)) @ Vt


@_single_threaded
def min_nuclear_norm_interpolator(A, y, shape, max_iter: int = 5000, tol: float = 1e-9,
                                  step: float | None = None):
    """``argmin ‖Θ‖_* s.t. A vec(Θ) = y`` by Douglas–Rachford splitting.

    ``A``: ``[n, m·d]`` (row-major ``vec``), ``shape = (m, d)``.  The iteration alternates the
    projection onto ``{Θ : A vec(Θ) = y}`` with singular-value soft thresholding (the proximal
    map of ``step · ‖·‖_*``; default ``step`` = the minimum-norm interpolator's spectral norm
    divided by 10).  Returns ``(Θ [m, d], iterations)``; ``Θ`` is the projected iterate, so
    it satisfies the constraint to rounding error.  Stops when the two half-steps agree to
    ``tol`` relative.
    """
    A, y = _check_system(A, y)
    m, d = _check_shape(shape, A.shape[1])
    x_min_norm = min_norm_interpolator(A, y)
    Q, R = np.linalg.qr(A.T)  # projection onto the affine set through the row space of A

    def project(z):
        return z - Q @ scipy.linalg.solve_triangular(R, A @ z - y, trans="T")

    if step is None:
        step = 0.1 * max(np.linalg.norm(x_min_norm.reshape(m, d), 2), 1e-300)
    if not step > 0:
        raise ValueError(f"step must be positive, got {step!r}")
    z = x_min_norm.copy()
    x = project(z)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        x = project(z)
        w = _singular_value_threshold((2.0 * x - z).reshape(m, d), step).ravel()
        z = z + w - x
        if np.linalg.norm(w - x) <= tol * max(np.linalg.norm(x), 1e-300):
            break
    return project(z).reshape(m, d), iterations


# --------------------------------------------------------------------------------------------
# Recovery experiments
# --------------------------------------------------------------------------------------------


def relative_error(estimate, truth) -> float:
    """``‖estimate − truth‖ / ‖truth‖`` (Frobenius for matrices)."""
    estimate = np.asarray(estimate, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate has shape {estimate.shape}, truth has {truth.shape}")
    scale = np.linalg.norm(truth)
    if scale == 0:
        raise ValueError("truth must be non-zero for a relative error")
    return float(np.linalg.norm(estimate - truth) / scale)


def sparse_recovery_instance(p: int, k: int, m: int, scale: float, seed: int = 0):
    """A ``k``-sparse ``θ*`` (``[p]``, non-zeros ``±scale`` at random positions) and ``m``
    Gaussian measurements ``y = Aθ*`` (``A``: ``[m, p]``, i.i.d. ``N(0, 1)``).

    Returns ``(A, y, theta_star)``.
    """
    if not (0 < k <= p and 0 < m):
        raise ValueError(f"need 0 < k <= p and m > 0, got p={p}, k={k}, m={m}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rng = np.random.default_rng(seed)
    theta = np.zeros(p)
    theta[rng.choice(p, size=k, replace=False)] = scale * rng.choice([-1.0, 1.0], size=k)
    A = rng.standard_normal((m, p))
    return A, A @ theta, theta


def matrix_sensing_instance(shape, rank: int, n: int, scale: float, seed: int = 0):
    """A rank-``rank`` ``Θ*`` (``[m, d]``) whose non-zero singular values all equal ``scale``,
    and ``n`` Gaussian linear measurements ``y_k = ⟨X_k, Θ*⟩`` (``A``: ``[n, m·d]``, row ``k``
    the row-major ``vec(X_k)``, i.i.d. ``N(0, 1)``).  Returns ``(A, y, Theta_star)``.
    """
    m, d = (int(s) for s in shape)
    if not (0 < rank <= min(m, d) and n > 0):
        raise ValueError(f"need 0 < rank <= min(shape) and n > 0, got rank={rank}, n={n}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, rank)))
    V, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    Theta = scale * U @ V.T
    A = rng.standard_normal((n, m * d))
    return A, A @ Theta.ravel(), Theta


@dataclass(frozen=True)
class RecoveryTrials:
    """Results of a recovery experiment over random instances (one entry per trial).

    ``errors``: method → ``[trials]`` relative errors against the truth (methods: ``"min_l2"``,
    the convex baseline ``"l1"`` or ``"nuclear"`` when computed, and one entry per adaptive
    penalty label).  For each adaptive label: ``gaps`` (``‖θ − θ_l2‖/‖θ_l2‖``, the distance
    from the lazy solution), ``residuals`` (relative constraint residuals), ``below_truth``
    (``Ω̃(θ) ≤ Ω̃(θ*)``: True means the solver found a point the regulariser prefers to the
    truth, so the remaining error is the regulariser's, not the optimiser's) and
    ``converged``.  ``top_energy`` (matrix sensing only): method → fraction of ``‖Θ‖_F²`` in
    the top ``rank`` singular values.
    """

    errors: dict
    gaps: dict
    residuals: dict
    below_truth: dict
    converged: dict
    top_energy: dict

    def median(self, method: str) -> float:
        """Median relative error of ``method`` over the trials."""
        return float(np.median(self.errors[method]))


def _collect(rows: list[dict]) -> dict:
    return {key: np.array([row[key] for row in rows]) for key in rows[0]} if rows else {}


def _top_energy(X: np.ndarray, rank: int) -> float:
    s = np.linalg.svd(X, compute_uv=False)
    return float(np.sum(s[:rank] ** 2) / np.sum(s**2))


@_single_threaded
def sparse_recovery_trials(penalties: dict, m: int, scale: float, trials: int, p: int = 60,
                           k: int = 3, seed: int = 0, l1: bool = True) -> RecoveryTrials:
    """Sparse recovery from ``m`` Gaussian measurements over ``trials`` random instances.

    ``penalties``: label → penalty ``ω`` of a diagonal transformation; each is solved by
    :func:`solve_structured` from the lazy start.  Instance ``t`` is
    :func:`sparse_recovery_instance` ``(p, k, m, scale, seed + t)``.  Also computes the
    minimum-norm interpolator and, when ``l1``, the minimum-``ℓ1`` interpolator.
    """
    from .progress import progress_bar

    errors, gaps, residuals, below, converged = [], [], [], [], []
    for t in progress_bar(range(trials), desc=f"sparse m={m} scale={scale:g}"):
        A, y, theta_star = sparse_recovery_instance(p, k, m, scale, seed=seed + t)
        theta_l2 = min_norm_interpolator(A, y)
        err = {"min_l2": relative_error(theta_l2, theta_star)}
        if l1:
            err["l1"] = relative_error(min_l1_interpolator(A, y), theta_star)
        gap, res, bel, conv = {}, {}, {}, {}
        for label, omega in penalties.items():
            sol = solve_structured(A, y, omega, "diagonal")
            err[label] = relative_error(sol.theta, theta_star)
            gap[label] = relative_error(sol.theta, theta_l2)
            res[label] = sol.constraint_residual
            bel[label] = sol.objective <= structured_penalty(theta_star, omega, "diagonal").value
            conv[label] = sol.converged
        for rows, row in ((errors, err), (gaps, gap), (residuals, res), (below, bel),
                          (converged, conv)):
            rows.append(row)
    return RecoveryTrials(_collect(errors), _collect(gaps), _collect(residuals), _collect(below),
                          _collect(converged), {})


@_single_threaded
def matrix_sensing_trials(penalties: dict, n: int, scale: float, trials: int, shape=(20, 20),
                          rank: int = 2, seed: int = 0, nuclear: bool = True) -> RecoveryTrials:
    """Low-rank matrix sensing from ``n`` Gaussian measurements over ``trials`` instances.

    ``penalties``: label → ``(omega_a, omega_b)``, the penalties of the left and right factors
    of a Kronecker transformation, each solved by :func:`solve_structured` from the lazy start.
    Instance ``t`` is :func:`matrix_sensing_instance` ``(shape, rank, n, scale, seed + t)``.
    Also computes the minimum-norm interpolator and, when ``nuclear``, the minimum nuclear
    norm interpolator; ``top_energy`` is filled for every method.
    """
    from .progress import progress_bar

    errors, gaps, residuals, below, converged, energy = [], [], [], [], [], []
    for t in progress_bar(range(trials), desc=f"sensing n={n} scale={scale:g}"):
        A, y, Theta_star = matrix_sensing_instance(shape, rank, n, scale, seed=seed + t)
        Theta_l2 = min_norm_interpolator(A, y).reshape(Theta_star.shape)
        err = {"min_l2": relative_error(Theta_l2, Theta_star)}
        top = {"min_l2": _top_energy(Theta_l2, rank)}
        if nuclear:
            Theta_nuc, _ = min_nuclear_norm_interpolator(A, y, shape)
            err["nuclear"] = relative_error(Theta_nuc, Theta_star)
            top["nuclear"] = _top_energy(Theta_nuc, rank)
        gap, res, bel, conv = {}, {}, {}, {}
        for label, (omega_a, omega_b) in penalties.items():
            sol = solve_structured(A, y, omega_a, "kronecker", shape=shape, omega_b=omega_b)
            err[label] = relative_error(sol.matrix, Theta_star)
            top[label] = _top_energy(sol.matrix, rank)
            gap[label] = relative_error(sol.matrix, Theta_l2)
            res[label] = sol.constraint_residual
            truth = structured_penalty(Theta_star, omega_a, "kronecker", omega_b=omega_b).value
            bel[label] = sol.objective <= truth
            conv[label] = sol.converged
        for rows, row in ((errors, err), (gaps, gap), (residuals, res), (below, bel),
                          (converged, conv), (energy, top)):
            rows.append(row)
    return RecoveryTrials(_collect(errors), _collect(gaps), _collect(residuals), _collect(below),
                          _collect(converged), _collect(energy))
