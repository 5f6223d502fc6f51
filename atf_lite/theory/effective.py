"""The effective penalty ``ω̃(v) = inf_{z ≥ 1} ω(z) + v² / z²`` and the adaptation scale.

``ω̃(v)`` is the cost of a weight vector of norm ``v`` once the features may be rescaled by
``z`` (chapter 2); the minimiser ``s(v) ≥ 1`` is the adaptation scale of Theorem 1 (chapter 3).
Penalties with closed forms (``omega_sq``, ``omega_abs``) use them; any other penalty is
minimised numerically (a grid over ``log z`` to find the basin, then golden-section search and a
parabolic polish), to about ``1e-12`` relative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._types import UnpackableResult
from .._validation import check_array
from ._line_search import minimise_on_interval
from .penalties import Penalty, PenaltyLike, as_penalty

__all__ = [
    "PenaltyAndScale",
    "effective_penalty",
    "adaptation_scale",
    "effective_penalty_and_scale",
]

# The search for s works in t = log z ∈ [0, log z_hi]; z_hi comes from a doubling ladder.
_LADDER = 2.0 ** np.arange(1, 257)


def _check_v(v: float | np.ndarray) -> np.ndarray:
    arr = check_array(v, "v", finite=False, allow_empty=True)
    if np.any(np.isnan(arr)):
        raise ValueError("v contains NaN")
    if np.any(arr < 0):
        raise ValueError(f"v must be non-negative, got minimum {arr.min()!r}")
    if np.any(np.isinf(arr)):
        raise ValueError("v must be finite")
    return arr


def _numerical_effective(omega: Penalty, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ω̃(v), s(v))`` for a 1-D array of ``v > 0`` by numerical minimisation over ``z ≥ 1``.

    Since ``ω(s) + v²/s² ≤ ω(1) + v² = v²``, the minimiser satisfies ``ω(s) < v²``; the first
    ``z_hi = 2^k`` with ``ω(z_hi) ≥ v²`` therefore bounds it (``ω`` is non-decreasing there).
    """
    v2 = v * v
    with np.errstate(over="ignore"):
        ladder_values = np.maximum.accumulate(omega.func(_LADDER))
    idx = np.searchsorted(ladder_values, v2, side="left")
    if np.any(idx >= _LADDER.size):
        bad = v[idx >= _LADDER.size][0]
        raise ValueError(
            f"omega ({omega.name}) grows too slowly: omega(z) < v² = {bad**2!r} for all z up to "
            "2^256, so the infimum over z is not attained"
        )
    t_hi = np.log(_LADDER[idx])

    def objective(t):
        with np.errstate(over="ignore"):
            return omega.func(np.exp(t)) + v2[:, None] * np.exp(-2.0 * t)

    t, f = minimise_on_interval(
        objective, np.zeros_like(v), t_hi, grid=129, iterations=50
    )
    return f, np.exp(t)


@dataclass(frozen=True)
class PenaltyAndScale(UnpackableResult):
    """``value``: the effective penalty ``ω̃(v)``; ``scale``: the adaptation scale ``s(v)``.

    Floats for a scalar ``v``, float64 arrays of ``v``'s shape otherwise; unpacks as
    ``value, scale = effective_penalty_and_scale(v, omega)``.
    """

    value: float | np.ndarray
    scale: float | np.ndarray


def effective_penalty_and_scale(v: float | np.ndarray, omega: PenaltyLike) -> PenaltyAndScale:
    """``(ω̃(v), s(v))`` in one pass; see :func:`effective_penalty` and :func:`adaptation_scale`.

    ``v`` is a non-negative scalar or array; scalars give floats, arrays give float64 arrays
    of ``v``'s shape (fields of the returned :class:`PenaltyAndScale`).
    """
    omega = as_penalty(omega)
    v_arr = _check_v(v)
    flat = v_arr.reshape(-1)
    value = np.zeros_like(flat)  # v = 0: ω̃ = 0 attained at s = 1
    scale = np.ones_like(flat)
    pos = flat > 0
    if np.any(pos):
        vp = flat[pos]
        if omega.effective is not None and omega.scale is not None:
            value[pos], scale[pos] = omega.effective(vp), omega.scale(vp)
        else:
            value[pos], scale[pos] = _numerical_effective(omega, vp)
    value, scale = value.reshape(v_arr.shape), scale.reshape(v_arr.shape)
    if v_arr.ndim == 0:
        return PenaltyAndScale(float(value), float(scale))
    return PenaltyAndScale(value, scale)


def effective_penalty(v: float | np.ndarray, omega: PenaltyLike) -> float | np.ndarray:
    """The effective penalty ``ω̃(v) = inf_{z ≥ 1} ω(z) + v² / z²``.

    ``omega`` is a :class:`~atf_lite.theory.penalties.Penalty` (or a callable, validated by
    :func:`~atf_lite.theory.penalties.penalty`); ``v ≥ 0`` a
    scalar or array (vectorised; a scalar gives a float).  Closed forms are used when the penalty
    provides them; otherwise numerical minimisation, accurate to about ``1e-12`` relative.
    Raises ``ValueError`` for negative, NaN or infinite ``v``.
    """
    return effective_penalty_and_scale(v, omega).value


def adaptation_scale(v: float | np.ndarray, omega: PenaltyLike) -> float | np.ndarray:
    """The adaptation scale ``s(v) = argmin_{z ≥ 1} ω(z) + v² / z²`` (``s ≥ 1``).

    ``s = 1`` means no adaptation (the lazy regime).  Same arguments and errors as
    :func:`effective_penalty`.  Without a closed form the minimiser is found numerically; if it
    is not unique, one of the minimisers is returned.
    """
    return effective_penalty_and_scale(v, omega).scale
