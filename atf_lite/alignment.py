"""Label kernels and kernel alignment.

The alignment of two kernel matrices is their cosine similarity as vectors,
``⟨K1, K2⟩_F / (‖K1‖_F ‖K2‖_F)`` :cite:p:`cristianini2001alignment`; the centred variant
first applies ``C K C`` with ``C = I − 11ᵀ/n`` to both :cite:p:`cortes2012centered`.  The
label kernel of targets ``y`` is ``y yᵀ``; by Theorem 1 the adapted kernel on the training set
is the initial kernel plus a multiple of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._types import ArrayLike
from ._validation import check_array, check_bool, check_square_matrix

__all__ = [
    "label_kernel",
    "center_kernel",
    "kernel_alignment",
    "KernelDecomposition",
    "decompose_kernel",
]


def label_kernel(y: ArrayLike) -> np.ndarray:
    """The label kernel ``y yᵀ`` (float64 ``[n, n]``) of targets ``y`` (``[n]`` or ``[n, 1]``)."""
    y = check_array(y, "y", finite=False)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be a vector of targets [n], got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    return np.outer(y, y)


def center_kernel(K: ArrayLike) -> np.ndarray:
    """``C K C`` with the centring matrix ``C = I − 11ᵀ/n`` (float64 ``[n, n]``)."""
    K = check_square_matrix(K, "K")
    return K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()


def kernel_alignment(K1: ArrayLike, K2: ArrayLike, *, centered: bool = False) -> float:
    """Cosine similarity ``⟨K1, K2⟩_F / (‖K1‖_F ‖K2‖_F)`` of two ``[n, n]`` kernel matrices.

    ``centered=True`` centres both kernels first.  Raises ``ValueError`` when either kernel is
    zero (after centring), where the alignment is undefined.
    """
    A = check_square_matrix(K1, "K1")
    B = check_square_matrix(K2, "K2")
    centered = check_bool(centered, "centered")
    if A.shape != B.shape:
        raise ValueError(f"K1 and K2 must have the same shape, got {A.shape} and {B.shape}")
    if centered:
        A, B = center_kernel(A), center_kernel(B)
    norm_a, norm_b = np.linalg.norm(A), np.linalg.norm(B)
    for name, norm in (("K1", norm_a), ("K2", norm_b)):
        if norm == 0:
            raise ValueError(
                f"{name} is zero{' after centring' if centered else ''}: alignment undefined"
            )
    return float(np.sum(A * B) / (norm_a * norm_b))


@dataclass(frozen=True)
class KernelDecomposition:
    """Least-squares fit ``K ≈ a K0 + b K_label`` in the Frobenius norm.

    ``residual`` is the matrix ``R = K − a K0 − b K_label`` and ``relative_residual`` is
    ``‖R‖_F / ‖K‖_F`` (0: ``K`` lies exactly in the span of ``K0`` and ``K_label``).
    """

    a: float
    b: float
    residual: np.ndarray
    relative_residual: float


def decompose_kernel(K: ArrayLike, K0: ArrayLike, K_label: ArrayLike) -> KernelDecomposition:
    """Fit ``K ≈ a K0 + b K_label + R`` by least squares over the entries (all ``[n, n]``)."""
    K = check_square_matrix(K, "K")
    K0 = check_square_matrix(K0, "K0")
    K_label = check_square_matrix(K_label, "K_label")
    if not K.shape == K0.shape == K_label.shape:
        raise ValueError(
            f"K, K0 and K_label must have the same shape, got {K.shape}, {K0.shape}, "
            f"{K_label.shape}"
        )
    design = np.stack([K0.ravel(), K_label.ravel()], axis=1)
    if np.linalg.matrix_rank(design) < 2:
        raise ValueError("K0 and K_label are linearly dependent: the decomposition is not unique")
    (a, b), *_ = np.linalg.lstsq(design, K.ravel(), rcond=None)
    residual = K - a * K0 - b * K_label
    return KernelDecomposition(
        a=float(a),
        b=float(b),
        residual=residual,
        relative_residual=float(np.linalg.norm(residual) / np.linalg.norm(K)),
    )
