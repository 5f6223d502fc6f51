"""Problem generators: random instances and targets used by the chapters and the tests.

* :func:`random_instance`: a random interpolation problem with a prescribed ``‖β̂‖``
  (chapters 2 and 3);
* :func:`difficulty_targets`: targets of increasing difficulty on real inputs (chapter 3);
* :func:`sparse_recovery_instance`, :func:`matrix_sensing_instance`: the recovery problems of
  chapter 5.

Every generator is seeded and returns float64 NumPy arrays in a frozen record that also
unpacks like a tuple (``Phi, y = random_instance(...)``).  The targets of the alignment
experiment are :func:`atf_lite.experiments.alignment_run.random_feature_targets`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

import numpy as np
import scipy.linalg

from .._types import ArrayLike, UnpackableResult
from .._validation import (
    as_float_array,
    check_int,
    check_matrix_shape,
    check_real,
    check_seed,
    is_integer,
)
from ..linalg import min_norm_interpolator

__all__ = [
    "InterpolationProblem",
    "random_instance",
    "DifficultyTargets",
    "difficulty_targets",
    "RecoveryProblem",
    "sparse_recovery_instance",
    "matrix_sensing_instance",
]


@dataclass(frozen=True)
class InterpolationProblem(UnpackableResult):
    """``Phi`` (``[n, p]``) and targets ``y`` (``[n]``); unpacks as ``Phi, y = ...``."""

    Phi: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class RecoveryProblem(UnpackableResult):
    """Measurements ``y = Φ vec(truth)``: ``Phi`` (``[n, p]``), ``y`` (``[n]``) and the
    unknown ``truth`` (``[p]`` vector or ``[m, d]`` matrix); unpacks as
    ``Phi, y, truth = ...``."""

    Phi: np.ndarray
    y: np.ndarray
    truth: np.ndarray


def _check_sizes(**sizes: object) -> dict[str, int]:
    return {name: check_int(value, name, minimum=1) for name, value in sizes.items()}


def random_instance(
    n: int, p: int, target_norm: float = 1.0, *, seed: int = 0
) -> InterpolationProblem:
    """A random interpolation problem: ``Φ`` (``[n, p]``, i.i.d. ``N(0, 1/p)``) and ``y``
    (``[n]``) scaled so that the minimum-norm interpolator has ``‖β̂‖ = target_norm``
    (finite, ``≥ 0``)."""
    sizes = _check_sizes(n=n, p=p)
    n, p = sizes["n"], sizes["p"]
    if not n <= p:
        raise ValueError(f"need 0 < n <= p, got n={n}, p={p}")
    target_norm = check_real(target_norm, "target_norm", low=0.0)
    rng = np.random.default_rng(check_seed(seed))
    Phi = rng.standard_normal((n, p)) / np.sqrt(p)
    y = rng.standard_normal(n)
    y *= target_norm / np.linalg.norm(min_norm_interpolator(Phi, y))
    return InterpolationProblem(Phi, y)


@dataclass(frozen=True, eq=False)
class DifficultyTargets(Mapping):
    """The three targets of :func:`difficulty_targets` (each ``[n]``), also a read-only
    mapping ``name → target`` in the order ``smooth``, ``sign``, ``random``
    (``targets["sign"]``, ``targets.items()``)."""

    smooth: np.ndarray
    sign: np.ndarray
    random: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def difficulty_targets(
    X: ArrayLike, labels: ArrayLike, *, features: int = 32, seed: int = 0
) -> DifficultyTargets:
    """Three targets on the inputs ``X`` (``[n, d]``) of increasing difficulty, each ``[n]``.

    * ``"smooth"``: the least-squares fit of the ``±1`` ``labels`` by a linear function (with
      intercept) of ``features`` random ReLU features ``max(0, X W)``, ``W`` i.i.d.
      ``N(0, 2/d)``: a smooth function of the input that follows the labels.
    * ``"sign"``: its sign, a binary target with the same decision boundary.
    * ``"random"``: independent uniformly random ``±1`` labels.

    All three are scaled to ``‖y‖ = √n`` (root-mean-square 1), so that the targets differ in how
    well the features represent them, not in size.  ``seed`` fixes ``W`` and the random labels.
    Returns a :class:`DifficultyTargets` (a mapping name → target).
    """
    X = as_float_array(X, "X", 2)
    labels = as_float_array(labels, "labels", 1)
    n, d = X.shape
    if labels.shape[0] != n:
        raise ValueError(f"labels must have length X.shape[0] = {n}, got {labels.shape[0]}")
    if not np.all(np.abs(labels) == 1):
        raise ValueError("labels must be ±1")
    if not (is_integer(features) and 0 < features < n - 1):
        raise ValueError(f"features must be an integer in (0, {n - 1}), got {features!r}")
    rng = np.random.default_rng(check_seed(seed))
    W = rng.standard_normal((d, features)) * np.sqrt(2.0 / d)
    design = np.hstack([np.maximum(X @ W, 0.0), np.ones((n, 1))])
    coef, *_ = scipy.linalg.lstsq(design, labels)
    smooth = design @ coef
    targets = {
        "smooth": smooth,
        "sign": np.where(smooth >= 0, 1.0, -1.0),
        "random": rng.choice([-1.0, 1.0], size=n),
    }
    return DifficultyTargets(
        **{name: y * np.sqrt(n) / np.linalg.norm(y) for name, y in targets.items()}
    )


def sparse_recovery_instance(
    p: int, k: int, m: int, scale: float, *, seed: int = 0
) -> RecoveryProblem:
    """A ``k``-sparse ``θ*`` (``[p]``, non-zeros ``±scale`` at random positions) and ``m``
    Gaussian measurements ``y = Φθ*`` (``Φ``: ``[m, p]``, i.i.d. ``N(0, 1)``).

    Returns a :class:`RecoveryProblem` ``(Phi, y, theta_star)``.
    """
    sizes = _check_sizes(p=p, k=k, m=m)
    p, k, m = sizes["p"], sizes["k"], sizes["m"]
    if not k <= p:
        raise ValueError(f"need 0 < k <= p and m > 0, got p={p}, k={k}, m={m}")
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    rng = np.random.default_rng(check_seed(seed))
    theta = np.zeros(p)
    theta[rng.choice(p, size=k, replace=False)] = scale * rng.choice([-1.0, 1.0], size=k)
    Phi = rng.standard_normal((m, p))
    return RecoveryProblem(Phi, Phi @ theta, theta)


def matrix_sensing_instance(
    shape: tuple[int, int], rank: int, n: int, scale: float, *, seed: int = 0
) -> RecoveryProblem:
    """A rank-``rank`` ``Θ*`` (``[m, d]``) whose non-zero singular values all equal ``scale``,
    and ``n`` Gaussian linear measurements ``y_k = ⟨X_k, Θ*⟩`` (``Phi``: ``[n, m·d]``, row
    ``k`` the row-major ``vec(X_k)``, i.i.d. ``N(0, 1)``).  Returns a :class:`RecoveryProblem`
    ``(Phi, y, Theta_star)``.
    """
    m, d = check_matrix_shape(shape)
    sizes = _check_sizes(rank=rank, n=n)
    rank, n = sizes["rank"], sizes["n"]
    if not rank <= min(m, d):
        raise ValueError(f"need 0 < rank <= min(shape) and n > 0, got rank={rank}, n={n}")
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    rng = np.random.default_rng(check_seed(seed))
    U, _ = np.linalg.qr(rng.standard_normal((m, rank)))
    V, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    Theta = scale * U @ V.T
    Phi = rng.standard_normal((n, m * d))
    return RecoveryProblem(Phi, Phi @ Theta.ravel(), Theta)
