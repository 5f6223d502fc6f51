"""Problem generators: random instances and targets used by the chapters and the tests.

* :func:`random_instance`: a random interpolation problem with a prescribed ``‖β̂‖``
  (chapters 2 and 3);
* :func:`difficulty_targets`: targets of increasing difficulty on real inputs (chapter 3);
* :func:`sparse_recovery_instance`, :func:`matrix_sensing_instance`: the recovery problems of
  chapter 5.

Every generator is seeded and returns float64 NumPy arrays (tuples for unpacking).  The targets
of the alignment experiment are
:func:`atf_lite.experiments.alignment_run.random_feature_targets`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._types import ArrayLike
from .._validation import as_float_array
from ..linalg import min_norm_interpolator

__all__ = [
    "random_instance",
    "difficulty_targets",
    "sparse_recovery_instance",
    "matrix_sensing_instance",
]


def random_instance(
    n: int, p: int, target_norm: float = 1.0, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
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


def difficulty_targets(
    X: ArrayLike, labels: ArrayLike, *, features: int = 32, seed: int = 0
) -> dict[str, np.ndarray]:
    """Three targets on the inputs ``X`` (``[n, d]``) of increasing difficulty, each ``[n]``.

    * ``"smooth"``: the least-squares fit of the ``±1`` ``labels`` by a linear function (with
      intercept) of ``features`` random ReLU features ``max(0, X W)``, ``W`` i.i.d.
      ``N(0, 2/d)``: a smooth function of the input that follows the labels.
    * ``"sign"``: its sign, a binary target with the same decision boundary.
    * ``"random"``: independent uniformly random ``±1`` labels.

    All three are scaled to ``‖y‖ = √n`` (root-mean-square 1), so that the targets differ in how
    well the features represent them, not in size.  ``seed`` fixes ``W`` and the random labels.
    """
    X = as_float_array(X, "X", 2)
    labels = as_float_array(labels, "labels", 1)
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


def sparse_recovery_instance(
    p: int, k: int, m: int, scale: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``k``-sparse ``θ*`` (``[p]``, non-zeros ``±scale`` at random positions) and ``m``
    Gaussian measurements ``y = Φθ*`` (``Φ``: ``[m, p]``, i.i.d. ``N(0, 1)``).

    Returns ``(Phi, y, theta_star)``.
    """
    if not (0 < k <= p and 0 < m):
        raise ValueError(f"need 0 < k <= p and m > 0, got p={p}, k={k}, m={m}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rng = np.random.default_rng(seed)
    theta = np.zeros(p)
    theta[rng.choice(p, size=k, replace=False)] = scale * rng.choice([-1.0, 1.0], size=k)
    Phi = rng.standard_normal((m, p))
    return Phi, Phi @ theta, theta


def matrix_sensing_instance(
    shape: tuple[int, int], rank: int, n: int, scale: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rank-``rank`` ``Θ*`` (``[m, d]``) whose non-zero singular values all equal ``scale``,
    and ``n`` Gaussian linear measurements ``y_k = ⟨X_k, Θ*⟩`` (``Phi``: ``[n, m·d]``, row
    ``k`` the row-major ``vec(X_k)``, i.i.d. ``N(0, 1)``).  Returns ``(Phi, y, Theta_star)``.
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
    Phi = rng.standard_normal((n, m * d))
    return Phi, Phi @ Theta.ravel(), Theta
