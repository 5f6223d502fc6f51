"""Per-layer adapted kernels, weight-change transforms, eigen-overlaps, quadrature tables."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from atf_lite.networks.kernels import (
    dense_layer_names,
    eigen_overlaps,
    layer_adapted_kernel,
    quadrature_residuals,
    weight_change_spectra,
    weight_change_transforms,
)
from atf_lite.networks.mlp import mlp
from atf_lite.networks.path_averaging import path_averaged_features
from atf_lite.networks.tangent import naive_tangent_features, tangent_kernel

DTYPE = torch.float64


def inputs(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def random_matrix(size, seed):
    return torch.randn(size, size, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def layer_feature_matrices(Phi, offset, m, d, has_bias):
    """A layer's feature columns of ``Phi`` as flattened ``[m, d (+1)]`` matrices ``g h̃ᵀ``."""
    width = m * d + (m if has_bias else 0)
    block = Phi[:, offset : offset + width]
    W = block[:, : m * d].reshape(-1, m, d)
    if has_bias:
        W = torch.cat([W, block[:, m * d :, None]], dim=2)
    return W.reshape(len(Phi), -1), offset + width


def explicit_adapted_kernel(model, X1, X2, transforms):
    """Gram matrix of the features transformed by Γ_l = A_l ⊗ B_l, layer by layer.

    A layer's features, reshaped to ``[m, d (+1)]`` (weight columns then the bias column), are
    ``M = g h̃ᵀ``; Γᵀ maps ``M ↦ Aᵀ M B``, i.e. ``vec_row(M) ↦ (Aᵀ ⊗ Bᵀ) vec_row(M)``.
    """
    theta = dict(model.named_parameters())
    Phi1 = naive_tangent_features(X1, model)
    Phi2 = naive_tangent_features(X2, model)
    K, offset = 0.0, 0
    for name, (A, B) in zip(dense_layer_names(model), transforms):
        m, d = theta[f"{name}.weight"].shape
        has_bias = f"{name}.bias" in theta
        M1, _ = layer_feature_matrices(Phi1, offset, m, d, has_bias)
        M2, offset = layer_feature_matrices(Phi2, offset, m, d, has_bias)
        gamma_t = torch.kron(A.T, B.T)
        K = K + (M1 @ gamma_t.T) @ (M2 @ gamma_t.T).T
    assert offset == Phi1.shape[1]
    return K


@pytest.mark.parametrize("bias", [True, False])
def test_layer_adapted_kernel_equals_kronecker_transformed_features(bias):
    model = mlp(3, 4, 2, bias=bias, seed=0, dtype=DTYPE)
    X1, X2 = inputs(5, 3, 1), inputs(4, 3, 2)
    extra = 1 if bias else 0
    sizes = [(4, 3 + extra), (4, 4 + extra), (1, 4 + extra)]
    transforms = [
        (random_matrix(m, 10 + i), random_matrix(d, 20 + i)) for i, (m, d) in enumerate(sizes)
    ]
    K = layer_adapted_kernel(X1, model, transforms, X2=X2)
    torch.testing.assert_close(K, explicit_adapted_kernel(model, X1, X2, transforms))


def test_identity_transforms_give_the_tangent_kernel():
    model = mlp(6, 10, 3, seed=3, dtype=DTYPE)
    X = inputs(8, 6, 4)
    K = layer_adapted_kernel(X, model, [None] * 4)
    torch.testing.assert_close(K, tangent_kernel(X, model, method="jacobian"))
    eye = [(torch.eye(10, dtype=DTYPE), torch.eye(7, dtype=DTYPE))]
    K_eye = layer_adapted_kernel(X, model, eye + [None] * 3)
    torch.testing.assert_close(K_eye, K)


def test_layer_adapted_kernel_rejects_bad_transforms():
    model = mlp(3, 4, 1, seed=0, dtype=DTYPE)
    X = inputs(3, 3, 0)
    with pytest.raises(ValueError, match="one entry per dense layer"):
        layer_adapted_kernel(X, model, [None])
    with pytest.raises(ValueError, match=r"transforms\[0\]\[1\] \(B\) must have shape \(4, 4\)"):
        layer_adapted_kernel(X, model, [(torch.eye(4), torch.eye(3)), None])
    with pytest.raises(ValueError, match=r"transforms\[1\]\[0\] \(A\) contains NaN"):
        layer_adapted_kernel(X, model, [None, (torch.full((1, 1), np.nan), torch.eye(5))])
    with pytest.raises(ValueError, match="pair"):
        layer_adapted_kernel(X, model, [(torch.eye(4),), None])
    with pytest.raises(TypeError, match="nn.Sequential"):
        dense_layer_names(torch.nn.Linear(2, 1))


@settings(max_examples=15, deadline=None)
@given(st.floats(0.1, 5.0), st.integers(1, 3), st.integers(0, 100))
def test_weight_change_transforms_scale_the_top_singular_directions(scale, rank, seed):
    model = mlp(4, 6, 1, seed=seed, dtype=DTYPE)
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(seed)
    params1 = {
        k: v + torch.randn(v.shape, generator=generator, dtype=DTYPE) for k, v in params0.items()
    }
    spectra = weight_change_spectra(model, params0, params1)
    assert [len(s) for s in spectra] == [5, 1]  # [ΔW, Δb] is 6 × 5, then 1 × 7
    assert np.all(np.diff(spectra[0]) <= 1e-12)
    # The last layer's change has rank one, so only rank 1 is valid there: use layer 0 alone.
    transforms = weight_change_transforms(model, params0, params1, scale, rank=1)
    for A, B in transforms:
        for M in (A, B):
            # Symmetric with eigenvalue `scale` once and 1 for every other direction.
            torch.testing.assert_close(M, M.T)
            eigenvalues = np.sort(np.linalg.eigvalsh(M.numpy()))
            expected = np.sort(np.r_[scale, np.ones(len(eigenvalues) - 1)])
            np.testing.assert_allclose(eigenvalues, expected, atol=1e-10)
    delta = torch.cat(
        [
            params1["0.weight"] - params0["0.weight"],
            (params1["0.bias"] - params0["0.bias"])[:, None],
        ],
        dim=1,
    )
    U, singular_values, Vh = torch.linalg.svd(delta, full_matrices=False)
    # A scales exactly the top left singular vector, B the top right one.
    torch.testing.assert_close(transforms[0][0] @ U[:, 0], scale * U[:, 0])
    torch.testing.assert_close(transforms[0][1] @ Vh[0], scale * Vh[0])
    np.testing.assert_allclose(spectra[0], singular_values.numpy(), rtol=1e-12)
    # Higher rank on a one-layer model: `scale` on the top `rank` directions of A.
    shallow = mlp(4, 6, 0, d_out=6, seed=seed, dtype=DTYPE)
    shallow0 = {"0.weight": params0["0.weight"], "0.bias": params0["0.bias"]}
    shallow1 = {"0.weight": params1["0.weight"], "0.bias": params1["0.bias"]}
    ((A, _),) = weight_change_transforms(shallow, shallow0, shallow1, scale, rank=rank)
    torch.testing.assert_close(A @ U[:, :rank], scale * U[:, :rank])
    torch.testing.assert_close(A @ U[:, rank:], U[:, rank:])


def test_weight_change_transforms_rejects_bad_input():
    model = mlp(4, 6, 1, seed=0, dtype=DTYPE)
    params = {k: v.detach() for k, v in model.named_parameters()}
    with pytest.raises(ValueError, match="scale"):
        weight_change_transforms(model, params, params, 0.0)
    with pytest.raises(ValueError, match="rank"):
        weight_change_transforms(model, params, params, 2.0, rank=6)
    with pytest.raises(ValueError, match="one integer per dense layer"):
        weight_change_transforms(model, params, params, 2.0, rank=(2, 1, 1))
    with pytest.raises(ValueError, match=r"\[1, 1\] for layer 1"):
        weight_change_transforms(model, params, params, 2.0, rank=(2, 2))


def test_weight_change_transforms_take_one_rank_per_layer():
    model = mlp(4, 6, 1, seed=3, dtype=DTYPE)
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(4)
    params1 = {
        k: v + torch.randn(v.shape, generator=generator, dtype=DTYPE) for k, v in params0.items()
    }
    (A2, B2), (A_out, B_out) = weight_change_transforms(model, params0, params1, 3.0, rank=(2, 1))
    (A1, _), (A_out1, B_out1) = weight_change_transforms(model, params0, params1, 3.0)
    # Two stretched directions in the hidden layer (trace grows by 2 · (3 − 1)), one in the last.
    assert float(torch.trace(A2) - torch.trace(A1)) == pytest.approx(2.0)
    torch.testing.assert_close(A_out, A_out1)
    torch.testing.assert_close(B_out, B_out1)


def test_eigen_overlaps_on_a_known_kernel():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    eigenvalues = np.array([-9.0, 5.0, 3.0, 1.0, 0.5, 0.1])
    K = (Q * eigenvalues) @ Q.T
    values, overlaps = eigen_overlaps(K, 2.0 * Q[:, 1], k=3)
    np.testing.assert_allclose(values, [-9.0, 5.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(overlaps, [0.0, 1.0, 0.0], atol=1e-12)
    v = Q[:, 0] + Q[:, 2]
    _, overlaps = eigen_overlaps(K, v, k=6)
    np.testing.assert_allclose(overlaps[[0, 2]], [1 / np.sqrt(2)] * 2, atol=1e-12)


def test_eigen_overlaps_rejects_bad_input():
    K = np.eye(3)
    with pytest.raises(ValueError, match="square"):
        eigen_overlaps(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="symmetric"):
        eigen_overlaps(np.triu(np.ones((3, 3))), np.ones(3))
    with pytest.raises(ValueError, match="v must have shape"):
        eigen_overlaps(K, np.ones(4))
    with pytest.raises(ValueError, match="nonzero"):
        eigen_overlaps(K, np.zeros(3))
    with pytest.raises(ValueError, match="k must be"):
        eigen_overlaps(K, np.ones(3), k=4)


def test_quadrature_residuals_table_matches_single_calls():
    model = mlp(4, 8, 2, seed=1, dtype=DTYPE)
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    params1 = {k: v + 0.2 for k, v in params0.items()}
    X = inputs(6, 4, 2)
    table = quadrature_residuals(X, model, params0, params1, nodes=(2, 8), rules=("riemann",))
    assert list(table) == ["riemann"] and table["riemann"].shape == (2,)
    single = path_averaged_features(X, model, params0, params1, nodes=8, rule="riemann")
    assert table["riemann"][1] == single.residual
    with pytest.raises(ValueError, match="empty"):
        quadrature_residuals(X, model, params0, params1, nodes=())


def _endpoints(model):
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    params1 = {k: v + 0.1 for k, v in params0.items()}
    return params0, params1


@pytest.mark.parametrize("missing", ["params0", "params1"])
def test_path_functions_need_both_endpoints(missing):
    # None would otherwise be read as "the model's own parameters", a silent wrong path.
    model = mlp(3, 4, 1, dtype=DTYPE)
    ends = dict(zip(("params0", "params1"), _endpoints(model)))
    ends[missing] = None
    with pytest.raises(TypeError, match=f"{missing} must be a name -> tensor mapping, got None"):
        weight_change_spectra(model, ends["params0"], ends["params1"])
    with pytest.raises(TypeError, match=missing):
        path_averaged_features(inputs(4, 3, 0), model, ends["params0"], ends["params1"])


def test_quadrature_residuals_names_the_bad_entry():
    model = mlp(3, 4, 1, dtype=DTYPE)
    params0, params1 = _endpoints(model)
    X = inputs(4, 3, 0)
    with pytest.raises(TypeError, match="nodes must be a sequence"):
        quadrature_residuals(X, model, params0, params1, nodes="4")
    with pytest.raises(ValueError, match=r"nodes\[1\] must be an integer"):
        quadrature_residuals(X, model, params0, params1, nodes=[2, 2.5])
    with pytest.raises(ValueError, match=r"rules\[0\] must be one of"):
        quadrature_residuals(X, model, params0, params1, rules=["simpson"])
    with pytest.raises(ValueError, match="rules must not be empty"):
        quadrature_residuals(X, model, params0, params1, rules=[])


def test_eigen_overlaps_and_transforms_refuse_wrong_kinds():
    K = np.eye(3)
    with pytest.raises(TypeError, match="K must be real"):
        eigen_overlaps(K + 0j, np.ones(3), k=1)
    with pytest.raises(TypeError, match="v must hold real numbers"):
        eigen_overlaps(K, np.array(["a", "b", "c"]), k=1)
    with pytest.raises(ValueError, match="k must be an integer"):
        eigen_overlaps(K, np.ones(3), k=True)
    model = mlp(3, 4, 1, dtype=DTYPE)
    params0, params1 = _endpoints(model)
    with pytest.raises(ValueError, match="scale must be a real number"):
        weight_change_transforms(model, params0, params1, True)
    with pytest.raises(TypeError, match="rank must be an integer"):
        weight_change_transforms(model, params0, params1, 2.0, rank=True)


def test_adapted_kernel_names_the_input_of_a_multi_output_call():
    model = mlp(3, 4, 1, dtype=DTYPE)
    X = inputs(4, 3, 0)
    with pytest.raises(ValueError, match="one scalar output per row of X2"):
        layer_adapted_kernel(X, model, [None, None], X2=X[None])
