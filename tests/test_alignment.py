"""Label kernels, kernel alignment and the least-squares kernel decomposition."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from atf_lite.alignment import center_kernel, decompose_kernel, kernel_alignment, label_kernel

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def random_psd(n, rank, seed):
    F = np.random.default_rng(seed).standard_normal((n, rank))
    return F @ F.T


def test_label_kernel_is_outer_product_for_vectors_and_columns():
    y = np.array([1.0, -2.0, 0.5])
    expected = np.array([[1.0, -2.0, 0.5], [-2.0, 4.0, -1.0], [0.5, -1.0, 0.25]])
    np.testing.assert_array_equal(label_kernel(y), expected)
    np.testing.assert_array_equal(label_kernel(torch.tensor(y)[:, None]), expected)
    assert label_kernel(y).dtype == np.float64


def test_label_kernel_rejects_bad_targets():
    with pytest.raises(ValueError, match="y must be a vector"):
        label_kernel(np.ones((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        label_kernel(np.array([1.0, np.nan]))


def test_center_kernel_matches_centring_matrix_and_kills_constants():
    K = random_psd(6, 3, 0)
    C = np.eye(6) - np.ones((6, 6)) / 6
    np.testing.assert_allclose(center_kernel(K), C @ K @ C, atol=1e-12)
    np.testing.assert_allclose(center_kernel(np.full((4, 4), 3.0)), 0.0, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, 5, elements=finite), arrays(np.float64, 5, elements=finite))
def test_alignment_of_rank_one_kernels_is_squared_cosine(u, v):
    if np.linalg.norm(u) < 1e-3 or np.linalg.norm(v) < 1e-3:
        return
    cosine = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    assert kernel_alignment(np.outer(u, u), np.outer(v, v)) == pytest.approx(cosine**2, abs=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 100), st.floats(0.01, 100))
def test_alignment_is_symmetric_scale_invariant_and_bounded(seed, s1, s2):
    K1, K2 = random_psd(7, 2, seed), random_psd(7, 3, seed + 1)
    a = kernel_alignment(K1, K2)
    assert kernel_alignment(K2, K1) == pytest.approx(a, rel=1e-12)
    assert kernel_alignment(s1 * K1, s2 * K2) == pytest.approx(a, rel=1e-10)
    # PSD kernels have a non-negative Frobenius inner product.
    assert 0.0 <= a <= 1.0 + 1e-12
    assert kernel_alignment(K1, K1) == pytest.approx(1.0, rel=1e-12)
    assert kernel_alignment(K1, -K1) == pytest.approx(-1.0, rel=1e-12)


def test_alignment_known_values():
    # Identity against the all-ones kernel: <I, 11ᵀ> = n, norms √n and n.
    n = 9
    assert kernel_alignment(np.eye(n), np.ones((n, n))) == pytest.approx(1 / np.sqrt(n))
    # Orthogonal label vectors give orthogonal label kernels.
    y1 = np.array([1.0, 1.0, -1.0, -1.0])
    y2 = np.array([1.0, -1.0, 1.0, -1.0])
    assert kernel_alignment(label_kernel(y1), label_kernel(y2)) == pytest.approx(0.0, abs=1e-15)
    # 11ᵀ and yyᵀ (y ⊥ 1) are orthogonal with equal norms n, so K = 11ᵀ + yyᵀ has cosine 1/√2
    # with yyᵀ; centring removes the constant part and leaves yyᵀ itself.
    K = np.ones((4, 4)) + label_kernel(y1)
    assert kernel_alignment(K, label_kernel(y1)) == pytest.approx(1 / np.sqrt(2))
    assert kernel_alignment(K, label_kernel(y1), centered=True) == pytest.approx(1.0)


def test_alignment_rejects_bad_input():
    K = np.eye(3)
    with pytest.raises(ValueError, match="K1 must be a square matrix"):
        kernel_alignment(np.ones((3, 2)), K)
    with pytest.raises(ValueError, match="K2 must be a square matrix"):
        kernel_alignment(K, np.ones(3))
    with pytest.raises(ValueError, match="same shape"):
        kernel_alignment(K, np.eye(4))
    with pytest.raises(ValueError, match="K2 contains NaN"):
        kernel_alignment(K, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="K1 is zero"):
        kernel_alignment(np.zeros((3, 3)), K)
    with pytest.raises(ValueError, match="K2 is zero after centring"):
        kernel_alignment(K, np.ones((3, 3)), centered=True)


def test_alignment_accepts_torch_tensors():
    K1, K2 = random_psd(5, 2, 3), random_psd(5, 2, 4)
    assert kernel_alignment(torch.tensor(K1), torch.tensor(K2, dtype=torch.float32)) == (
        pytest.approx(kernel_alignment(K1, K2), rel=1e-6)
    )


def test_decompose_kernel_recovers_exact_combination():
    K0 = random_psd(8, 8, 5)
    y = np.random.default_rng(6).standard_normal(8)
    fit = decompose_kernel(2.5 * K0 + 0.75 * label_kernel(y), K0, label_kernel(y))
    assert fit.a == pytest.approx(2.5, rel=1e-10)
    assert fit.b == pytest.approx(0.75, rel=1e-10)
    assert fit.relative_residual < 1e-12
    np.testing.assert_allclose(fit.residual, 0.0, atol=1e-10)


def test_decompose_kernel_residual_is_orthogonal_to_both_kernels():
    K0, K_label = random_psd(6, 6, 7), label_kernel(np.arange(6.0) - 2.5)
    K = random_psd(6, 2, 8)
    fit = decompose_kernel(K, K0, K_label)
    # Normal equations of least squares: the residual is orthogonal to the regressors.
    assert abs(np.sum(fit.residual * K0)) < 1e-9 * np.linalg.norm(K) * np.linalg.norm(K0)
    assert abs(np.sum(fit.residual * K_label)) < 1e-9 * np.linalg.norm(K) * np.linalg.norm(K_label)
    np.testing.assert_allclose(fit.residual, K - fit.a * K0 - fit.b * K_label, atol=1e-12)
    assert 0 < fit.relative_residual < 1


def test_decompose_kernel_rejects_bad_input():
    K0 = random_psd(4, 4, 9)
    with pytest.raises(ValueError, match="linearly dependent"):
        decompose_kernel(K0, K0, 3 * K0)
    with pytest.raises(ValueError, match="same shape"):
        decompose_kernel(K0, K0, np.eye(5))
    with pytest.raises(ValueError, match="K_label contains NaN"):
        decompose_kernel(K0, K0, np.full((4, 4), np.nan))
