"""Spectral penalties ``ω`` of a feature transformation.

A spectral penalty charges a feature transformation ``Γ`` through its singular values,
``Ω(Γ) = Σ_i ω(σ_i(Γ))`` (:func:`spectral_penalty`), where ``ω ≥ 0`` vanishes at 1 (the identity
costs nothing), is non-increasing on ``[0, 1]`` and non-decreasing on ``[1, ∞)``.  Its effective
penalty ``ω̃`` lives in :mod:`atf_lite.theory.effective`.

A penalty is a :class:`Penalty`: a name, a vectorised function, and optional hooks for its
derivative and for closed forms of ``ω̃`` and of the adaptation scale ``s``.  Provided penalties:

* ``omega_sq``: ``(z − 1)²``; ``s`` is the root ``≥ 1`` of the quartic ``z³ (z − 1) = v²``.
* ``omega_abs``: ``|z − 1|``; ``s = 1`` for ``v ≤ 1/√2`` and ``s = (2 v²)^(1/3)`` beyond.
* ``oplus(omega_a, omega_b)``: ``z ↦ inf_{uv = z} ω_a(u) + ω_b(v)``, the penalty of a product
  of two transformations.
* ``penalty(func)``: any callable, validated numerically on a grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import numpy as np

from .._types import ArrayLike
from .._validation import (
    check_bool,
    check_callable,
    check_nonnegative_array,
    check_square_matrix,
    describe,
)
from ._line_search import minimise_on_interval

__all__ = [
    "Penalty",
    "PenaltyLike",
    "penalty",
    "as_penalty",
    "omega_sq",
    "omega_abs",
    "oplus",
    "spectral_penalty",
    "LAZY_THRESHOLD_ABS",
]

ArrayFn = Callable[[np.ndarray], np.ndarray]

#: For ``omega_abs`` the adaptation scale is exactly 1 (no adaptation) iff ``v ≤ 1/√2``.
LAZY_THRESHOLD_ABS = math.sqrt(0.5)

@dataclass(frozen=True)
class Penalty:
    """A spectral penalty ``ω: [0, ∞) → [0, ∞]`` with ``ω(1) = 0``.

    Fields:

    * ``name``: label used in plots and error messages.
    * ``func``: vectorised ``ω``, float64 array in, float64 array of the same shape out.
    * ``derivative``: optional vectorised ``ω'`` (a one-sided derivative at kinks).  Without it,
      callers that need it (the joint solver) use central finite differences.
    * ``effective``, ``scale``: optional closed forms of ``ω̃(v)`` and of the adaptation scale
      ``s(v)`` for an array of ``v > 0``; without them both are found by numerical minimisation.
    * ``smooth``: whether ``ω`` is differentiable on ``(0, ∞)``; the joint solver smooths
      non-smooth penalties during its first stages.
    * ``smoothing``: optional ``(z, mu) ↦ (ω_μ(z), ω_μ'(z))``, a differentiable approximation
      that tends to ``ω`` as ``mu → 0``, used by the joint solver for non-smooth penalties
      (without it the solver averages ``ω`` over a Gaussian of width ``mu``).

    Call it on an array (or scalar) of non-negative ``z``: ``omega_sq(np.array([0.5, 2.0]))``.
    """

    name: str
    func: ArrayFn
    derivative: ArrayFn | None = None
    effective: ArrayFn | None = None
    scale: ArrayFn | None = None
    smooth: bool = True
    smoothing: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {describe(self.name)}")
        check_callable(self.func, "func")
        for hook in ("derivative", "effective", "scale", "smoothing"):
            if getattr(self, hook) is not None:
                check_callable(getattr(self, hook), hook)
        check_bool(self.smooth, "smooth")

    def __call__(self, z: float | np.ndarray) -> float | np.ndarray:
        z_arr = check_nonnegative_array(z, "z")
        out = self.func(z_arr)
        return float(out) if np.ndim(z) == 0 else out

    def grad(self, z: np.ndarray) -> np.ndarray:
        """``ω'(z)`` on a float64 array: the ``derivative`` hook or central differences."""
        z = check_nonnegative_array(z, "z")
        if self.derivative is not None:
            return np.asarray(self.derivative(z), dtype=np.float64)
        # Step ~ eps^(1/3) balances truncation and rounding error of the central difference;
        # the lower point is clipped at 0 (one-sided there).
        h = 6e-6 * np.maximum(z, 1.0)
        lo = np.maximum(z - h, 0.0)
        hi = z + h
        return (self.func(hi) - self.func(lo)) / (hi - lo)

    def __repr__(self) -> str:
        return f"Penalty({self.name!r})"


# --------------------------------------------------------------------------------------------
# Construction and validation of penalties from callables
# --------------------------------------------------------------------------------------------

# Validation grid: dense on [0, 1] and geometric on [1, 10⁴]; 1 itself is included.
_CHECK_GRID = np.unique(np.concatenate([np.linspace(0.0, 1.0, 201), np.geomspace(1.0, 1e4, 241)]))


def _vectorised(func: Callable, name: str) -> ArrayFn:
    """``func`` as a float64 array function; scalar-only callables are wrapped elementwise."""
    probe = np.array([0.5, 1.0, 2.0])
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(func(probe), dtype=np.float64)
        if out.shape == probe.shape:
            return lambda z: np.asarray(func(z), dtype=np.float64)
    except (TypeError, ValueError):
        pass
    scalar = np.vectorize(lambda t: float(func(float(t))), otypes=[np.float64])
    try:
        scalar(probe)
    except Exception as exc:
        raise TypeError(f"{name} must map float arrays (or floats) to floats: {exc}") from exc
    return scalar


def _validate(func: ArrayFn, name: str) -> None:
    """Check on a grid that ``func`` is a penalty; raise ``ValueError`` naming ``name`` if not."""
    z = _CHECK_GRID
    with np.errstate(all="ignore"):  # e.g. log-type penalties are infinite at 0
        w = np.asarray(func(z), dtype=np.float64)
    if w.shape != z.shape:
        raise ValueError(f"{name} must return an array of its input's shape, got {w.shape}")
    if np.any(np.isnan(w)):
        raise ValueError(f"{name} returns NaN at z = {float(z[np.isnan(w)][0])}")
    finite = w[np.isfinite(w)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    tol = 1e-12 * scale
    if np.any(w < -tol):
        k = int(np.argmax(w < -tol))
        raise ValueError(f"{name} must be non-negative, but {name}({z[k]:.6g}) = {w[k]:.6g}")
    at_one = float(w[z == 1.0][0])
    if abs(at_one) > tol:
        raise ValueError(f"{name} must be minimised at 1 with value 0, but {name}(1) = {at_one!r}")
    below, above = z <= 1.0, z >= 1.0
    with np.errstate(invalid="ignore"):  # inf − inf at a singular point counts as flat
        rises = np.diff(w[below]) > tol
        falls = np.diff(w[above]) < -tol
    if np.any(rises):
        where = float(z[below][:-1][rises][0])
        raise ValueError(
            f"{name} must be non-increasing on [0, 1] (minimised at 1), but it increases after "
            f"z = {where:.6g}"
        )
    if np.any(falls):
        where = float(z[above][:-1][falls][0])
        raise ValueError(
            f"{name} must be non-decreasing on [1, ∞) (minimised at 1), but it decreases after "
            f"z = {where:.6g}"
        )


def penalty(
    func: Callable,
    name: str | None = None,
    *,
    derivative: Callable | None = None,
    smooth: bool = True,
) -> Penalty:
    """Build a :class:`Penalty` from a callable ``ω`` and validate it numerically.

    The callable is checked on a grid of ``z ∈ [0, 10⁴]``: finite or ``+inf`` (never NaN),
    ``≥ 0``, ``ω(1) = 0``, non-increasing on ``[0, 1]`` and non-decreasing on ``[1, ∞)`` (to a
    relative tolerance of ``1e-12``).  A ``ValueError`` names the violated condition.
    Scalar-only callables are vectorised elementwise (slower).
    """
    if isinstance(func, Penalty):
        return func
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {describe(name)}")
    if derivative is not None:
        check_callable(derivative, "derivative")
    check_bool(smooth, "smooth")
    name = name or getattr(func, "__name__", "omega")
    vec = _vectorised(func, name)
    _validate(vec, name)
    deriv = _vectorised(derivative, f"derivative of {name}") if derivative is not None else None
    return Penalty(name=name, func=vec, derivative=deriv, smooth=smooth)


# A Penalty, or a callable ω that penalty() validates and wraps.
PenaltyLike = Union[Penalty, Callable[[np.ndarray], np.ndarray]]


def as_penalty(omega: PenaltyLike, name: str = "omega") -> Penalty:
    """``omega`` as a :class:`Penalty` (a callable is validated by :func:`penalty`; ``name``
    is the argument's name in messages)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {describe(name)}")
    if isinstance(omega, Penalty):
        return omega
    if callable(omega):
        return penalty(omega, name)
    raise TypeError(f"{name} must be a Penalty or a callable, got {type(omega).__name__}")


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------


def _sq_func(z):
    return (z - 1.0) ** 2


def _sq_scale_minus_one(v: np.ndarray) -> np.ndarray:
    """``t = s − 1`` for ``omega_sq``: the root ``t ≥ 0`` of ``t (1 + t)³ = v²``.

    Stationarity of ``(z − 1)² + v²/z²`` gives ``z³ (z − 1) = v²``; its left side increases
    from 0 on ``[1, ∞)``, so the root is unique and is the global minimiser on ``[1, ∞)``.
    Newton's method on ``h(t) = t (1 + t)³ − v²`` (increasing and convex for ``t ≥ 0``) started
    to the right of the root converges monotonically; ``t₀ = min(v², √v)`` is such a start since
    ``t (1 + t)³ ≥ t`` and ``√v (1 + √v)³ ≥ v²``.  Working with ``t`` rather than ``s`` keeps
    full relative accuracy of ``s − 1 ≈ v²`` for small ``v``.
    """
    v2 = v * v
    t = np.minimum(v2, np.sqrt(v))
    for _ in range(100):
        h = t * (1.0 + t) ** 3 - v2
        dh = (1.0 + t) ** 2 * (1.0 + 4.0 * t)
        t_new = np.maximum(t - h / dh, 0.0)
        # Monotone decrease stops exactly once rounding is reached.
        if np.all(t_new >= t):
            break
        t = np.minimum(t, t_new)
    return t


def _sq_scale(v):
    return 1.0 + _sq_scale_minus_one(v)


def _sq_effective(v):
    t = _sq_scale_minus_one(v)
    return t * t + (v / (1.0 + t)) ** 2


def _abs_scale(v):
    # Stationarity of z − 1 + v²/z² gives z³ = 2 v²; below the threshold the constraint z ≥ 1
    # binds.  The floor at the next float above 1 keeps s > 1 strictly beyond the threshold.
    interior = np.maximum(np.cbrt(2.0 * v * v), np.nextafter(1.0, 2.0))
    return np.where(v <= LAZY_THRESHOLD_ABS, 1.0, interior)


def _abs_effective(v):
    s = _abs_scale(v)
    # At the interior optimum v² = s³/2, so ω̃ = s − 1 + s/2; below the threshold ω̃ = v².
    return np.where(v <= LAZY_THRESHOLD_ABS, v * v, 1.5 * s - 1.0)


#: ``ω(z) = (z − 1)²``, with closed forms of ``ω̃`` and of the adaptation scale.
omega_sq = Penalty(
    name="(z-1)^2",
    func=_sq_func,
    derivative=lambda z: 2.0 * (z - 1.0),
    effective=_sq_effective,
    scale=_sq_scale,
)

def _abs_smoothing(z, mu):
    # Pseudo-Huber: sqrt((z − 1)² + μ²) − μ lies below |z − 1| and within μ of it.
    root = np.sqrt((z - 1.0) ** 2 + mu * mu)
    return root - mu, (z - 1.0) / root


#: ``ω(z) = |z − 1|``, with closed forms; no adaptation (``s = 1``) for ``v ≤ 1/√2``.
omega_abs = Penalty(
    name="|z-1|",
    func=lambda z: np.abs(z - 1.0),
    # Right derivative at the kink z = 1, the relevant side for singular values that grow.
    derivative=lambda z: np.where(z >= 1.0, 1.0, -1.0),
    effective=_abs_effective,
    scale=_abs_scale,
    smooth=False,
    smoothing=_abs_smoothing,
)


# --------------------------------------------------------------------------------------------
# Vectorised one-dimensional minimisation
# --------------------------------------------------------------------------------------------


def _oplus_value(omega_a: Penalty, omega_b: Penalty, z: np.ndarray) -> np.ndarray:
    """``inf_{uv = z} ω_a(u) + ω_b(v)`` for an array of ``z ≥ 0``.

    Writing ``u = z^α``, ``v = z^(1−α)`` with ``α ∈ [0, 1]`` loses nothing: for ``z ≥ 1`` a
    factor below 1 or above ``z`` can be moved to 1 or ``z`` without increasing either term (the
    penalties are monotone on each side of 1), and symmetrically for ``z ≤ 1``.
    """
    flat = z.reshape(-1)
    out = np.zeros_like(flat)  # ω_a(1) + ω_b(1) = 0 is the exact value at z = 1
    # As z → 0 one factor must vanish; the other is best left at 1.
    at_zero = np.array([0.0])
    out[flat == 0.0] = min(omega_a.func(at_zero)[0], omega_b.func(at_zero)[0])
    active = (flat != 1.0) & (flat != 0.0)
    if np.any(active):
        zz = flat[active][:, None]

        def objective(alpha):
            return omega_a.func(zz**alpha) + omega_b.func(zz ** (1.0 - alpha))

        m = zz.shape[0]
        _, f = minimise_on_interval(objective, np.zeros(m), np.ones(m), grid=33, iterations=45)
        out[active] = f
    return out.reshape(z.shape)


def oplus(omega_a: PenaltyLike, omega_b: PenaltyLike) -> Penalty:
    """The penalty ``(ω_a ⊕ ω_b)(z) = inf_{uv = z, u, v > 0} ω_a(u) + ω_b(v)``.

    It is what a product of two transformations ``Γ = Γ_a Γ_b`` costs per singular value when
    each factor is charged separately; ``z ↦ (ω_a ⊕ ω_b)(z)`` is again a penalty.  Evaluated by
    numerical minimisation over the split ``u = z^α``, ``α ∈ [0, 1]``.
    """
    a = as_penalty(omega_a, "omega_a")
    b = as_penalty(omega_b, "omega_b")
    return Penalty(
        name=f"({a.name}) ⊕ ({b.name})",
        func=lambda z: _oplus_value(a, b, np.asarray(z, dtype=np.float64)),
        # In log coordinates ⊕ is an infimal convolution, which inherits differentiability from
        # one differentiable convex factor (true of the penalties here near z = 1 and above).
        smooth=a.smooth or b.smooth,
    )


def spectral_penalty(Gamma: ArrayLike, omega: PenaltyLike) -> float:
    """``Ω(Γ) = Σ_i ω(σ_i(Γ))`` over the singular values of a square matrix ``Gamma``
    (``[p, p]``: a transformation of ``p`` features; a non-square matrix is refused)."""
    Gamma = check_square_matrix(Gamma, "Gamma")
    omega = as_penalty(omega)
    return float(np.sum(omega.func(np.linalg.svd(Gamma, compute_uv=False))))
