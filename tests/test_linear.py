import numpy as np
import pytest
import torch

from atf_lite.linalg import kernel_regression
from atf_lite.networks.functional import flatten_params, model_output, model_params
from atf_lite.networks.linear import (
    heavy_ball_parameters,
    linearization_gap,
    train_linearized,
    train_network,
)
from atf_lite.networks.mlp import mlp
from atf_lite.networks.tangent import tangent_features


def problem(n=10, d=4, width=16, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator, dtype=dtype)
    y = torch.sign(torch.randn(n, generator=generator, dtype=dtype))
    return mlp(d, width, 2, seed=seed, dtype=dtype), X, y


def test_kernel_regression_interpolates_and_matches_solve():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 9))
    K = A @ A.T
    y = rng.standard_normal(6)
    np.testing.assert_allclose(kernel_regression(K, y), y, atol=1e-10)
    B = rng.standard_normal((3, 9))
    np.testing.assert_allclose(
        kernel_regression(K, y, B @ A.T), B @ A.T @ np.linalg.solve(K, y), rtol=1e-10
    )
    with pytest.raises(ValueError, match="positive definite"):
        kernel_regression(np.diag([1.0, 0.0]), np.ones(2))
    with pytest.raises(ValueError, match="y must have shape"):
        kernel_regression(K, y[:3])
    with pytest.raises(ValueError, match="K_test"):
        kernel_regression(K, y, np.ones((2, 5)))


def test_heavy_ball_parameters():
    lr, momentum = heavy_ball_parameters(1.0, 1.0)
    assert lr == pytest.approx(1.0) and momentum == 0.0
    lr, momentum = heavy_ball_parameters(1.0, 100.0)
    assert lr == pytest.approx(4 / 121) and momentum == pytest.approx((9 / 11) ** 2)
    with pytest.raises(ValueError, match="lambda_min"):
        heavy_ball_parameters(0.0, 1.0)


def test_gradient_descent_on_linearisation_reaches_min_norm_interpolator():
    model, X, y = problem()
    Phi = tangent_features(X, model)
    residual = y - model_output(X, model)
    beta_hat = torch.linalg.lstsq(Phi, residual, driver="gelsd").solution
    # lstsq returns the minimum-norm solution for this underdetermined system.
    eigenvalues = torch.linalg.eigvalsh(Phi @ Phi.T)
    lr, momentum = heavy_ball_parameters(float(eigenvalues[0]), float(eigenvalues[-1]))
    result = train_linearized(X, y, model, steps=400, lr=lr, momentum=momentum, reference=beta_hat)
    assert result.distances.shape == (401,) and result.distances[0] == pytest.approx(1.0)
    assert result.distances[-1] < 1e-8
    assert torch.allclose(result.delta, beta_hat, rtol=1e-7, atol=1e-9)
    assert result.losses[-1] < 1e-12 * result.losses[0]
    # The model itself is untouched.
    assert torch.equal(
        flatten_params(dict(model.named_parameters())).detach(),
        flatten_params(model_params(model)),
    )


def test_network_and_linearisation_agree_for_tiny_steps_only():
    model, X, y = problem(width=32)
    Phi = tangent_features(X, model)
    lr = 0.5 / float(torch.linalg.eigvalsh(Phi @ Phi.T)[-1])
    lin = train_linearized(X, y, model, steps=1, lr=lr)
    net = train_network(X, y, model, steps=1, lr=lr)
    # One step from the same point takes the same gradient in both models.
    assert torch.allclose(lin.delta, net.delta, atol=1e-14)
    assert lin.losses[0] == pytest.approx(net.losses[0])
    gap = linearization_gap(X, y, X, model, steps=50)
    assert 0 < gap.function_gap < 1 and gap.parameter_change > 0
    assert gap.train_loss_lin < 0.5 * float(torch.sum(y**2))


def test_linearisation_gap_shrinks_with_width():
    gaps = []
    for width in (8, 512):
        model, X, y = problem(n=12, width=width, seed=1, dtype=torch.float32)
        gaps.append(linearization_gap(X, y, X, model, steps=60).function_gap)
    assert gaps[1] < 0.5 * gaps[0]


def test_training_bad_input():
    model, X, y = problem()
    with pytest.raises(ValueError, match="steps"):
        train_linearized(X, y, model, steps=-1, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        train_network(X, y, model, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        train_linearized(X, y, model, steps=1, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="X must be"):
        train_linearized(X, y[:3], model, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="reference"):
        train_linearized(X, y, model, steps=1, lr=0.1, reference=torch.zeros(3))
    with pytest.raises(ValueError, match="lr_scale"):
        linearization_gap(X, y, X, model, steps=1, lr_scale=2.5)
    with pytest.raises(FloatingPointError, match="diverged"):
        train_network(X, 1e3 * y, model, steps=200, lr=10.0)


def test_linearization_gap_metrics_against_a_direct_computation():
    model, X, y = problem(n=6, width=8, seed=3)
    X_eval = torch.randn(4, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    steps, lr_scale = 15, 0.8
    gap = linearization_gap(X, y, X_eval, model, steps=steps, lr_scale=lr_scale)
    # Independently: the tangent features by autograd, row by row (naive_tangent_features).
    from atf_lite.networks.tangent import naive_tangent_features, naive_tangent_kernel

    theta0 = model_params(model)
    K0 = naive_tangent_kernel(X, model)
    lr = lr_scale / float(torch.linalg.eigvalsh(K0)[-1])
    net = train_network(X, y, model, steps=steps, lr=lr)
    lin = train_linearized(X, y, model, steps=steps, lr=lr)
    f0 = model_output(X_eval, model)
    f_net = model_output(X_eval, model, net.params)
    f_lin = f0 + naive_tangent_features(X_eval, model) @ lin.delta  # f(θ0) + φᵀ δ
    KT = naive_tangent_kernel(X, model, net.params)
    assert gap.function_gap == pytest.approx(
        float(torch.linalg.norm(f_net - f_lin) / torch.linalg.norm(f_lin - f0)), rel=1e-8)
    assert gap.kernel_change == pytest.approx(
        float(torch.linalg.norm(KT - K0) / torch.linalg.norm(K0)), rel=1e-8)
    assert gap.parameter_change == pytest.approx(
        float(torch.linalg.norm(net.delta) / torch.linalg.norm(flatten_params(theta0))),
        rel=1e-12)
    assert gap.train_loss_net == pytest.approx(
        0.5 * float(torch.sum((model_output(X, model, net.params) - y) ** 2)), rel=1e-12)
    residual = model_output(X, model) + naive_tangent_features(X, model) @ lin.delta - y
    assert gap.train_loss_lin == pytest.approx(0.5 * float(torch.sum(residual**2)), rel=1e-8)
    assert 0 < gap.kernel_change < 1 and 0 < gap.function_gap < 1


def test_distances_to_the_reference_are_relative_norms():
    model, X, y = problem(n=6, width=8, seed=5)
    reference = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64,
                            generator=torch.Generator().manual_seed(6))
    result = train_linearized(X, y, model, steps=4, lr=0.01, reference=reference)
    assert len(result.distances) == 5 and result.distances[0] == pytest.approx(1.0)
    expected = float(torch.linalg.norm(result.delta - reference) / torch.linalg.norm(reference))
    assert result.distances[-1] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="reference must be non-zero"):
        train_linearized(X, y, model, steps=1, lr=0.01, reference=torch.zeros_like(reference))
    with pytest.raises(ValueError, match="steps"):
        linearization_gap(X, y, X, model, steps=0)


def test_heavy_ball_parameters_unpack_and_have_names():
    result = heavy_ball_parameters(1.0, 9.0)
    lr, momentum = result
    assert (lr, momentum) == (result.lr, result.momentum) == (0.25, 0.25)
    for bad in (np.nan, "1", True, None):
        with pytest.raises(ValueError, match="lambda_min"):
            heavy_ball_parameters(bad, 9.0)
