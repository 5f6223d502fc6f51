import numpy as np
import pytest
import torch

from atf_lite import linear, tangent
from atf_lite.models import mlp


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
    np.testing.assert_allclose(linear.kernel_regression(K, y), y, atol=1e-10)
    B = rng.standard_normal((3, 9))
    np.testing.assert_allclose(
        linear.kernel_regression(K, y, B @ A.T), B @ A.T @ np.linalg.solve(K, y), rtol=1e-10
    )
    with pytest.raises(ValueError, match="positive definite"):
        linear.kernel_regression(np.diag([1.0, 0.0]), np.ones(2))
    with pytest.raises(ValueError, match="y must have shape"):
        linear.kernel_regression(K, y[:3])
    with pytest.raises(ValueError, match="K_test"):
        linear.kernel_regression(K, y, np.ones((2, 5)))


def test_heavy_ball_parameters():
    lr, momentum = linear.heavy_ball_parameters(1.0, 1.0)
    assert lr == pytest.approx(1.0) and momentum == 0.0
    lr, momentum = linear.heavy_ball_parameters(1.0, 100.0)
    assert lr == pytest.approx(4 / 121) and momentum == pytest.approx((9 / 11) ** 2)
    with pytest.raises(ValueError, match="lambda_min"):
        linear.heavy_ball_parameters(0.0, 1.0)


def test_gradient_descent_on_linearisation_reaches_min_norm_interpolator():
    model, X, y = problem()
    Phi = tangent.tangent_features(model, X)
    residual = y - tangent.model_output(model, X)
    beta_hat = torch.linalg.lstsq(Phi, residual, driver="gelsd").solution
    # lstsq returns the minimum-norm solution for this underdetermined system.
    eigenvalues = torch.linalg.eigvalsh(Phi @ Phi.T)
    lr, momentum = linear.heavy_ball_parameters(float(eigenvalues[0]), float(eigenvalues[-1]))
    result = linear.train_linearized(model, X, y, 400, lr, momentum, reference=beta_hat)
    assert result.distances.shape == (401,) and result.distances[0] == pytest.approx(1.0)
    assert result.distances[-1] < 1e-8
    assert torch.allclose(result.delta, beta_hat, rtol=1e-7, atol=1e-9)
    assert result.losses[-1] < 1e-12 * result.losses[0]
    # The model itself is untouched.
    assert torch.equal(
        tangent.flatten_params(dict(model.named_parameters())).detach(),
        tangent.flatten_params(tangent.model_params(model)),
    )


def test_network_and_linearisation_agree_for_tiny_steps_only():
    model, X, y = problem(width=32)
    Phi = tangent.tangent_features(model, X)
    lr = 0.5 / float(torch.linalg.eigvalsh(Phi @ Phi.T)[-1])
    lin = linear.train_linearized(model, X, y, 1, lr)
    net = linear.train_network(model, X, y, 1, lr)
    # One step from the same point takes the same gradient in both models.
    assert torch.allclose(lin.delta, net.delta, atol=1e-14)
    assert lin.losses[0] == pytest.approx(net.losses[0])
    gap = linear.linearization_gap(model, X, y, X, steps=50)
    assert 0 < gap.function_gap < 1 and gap.parameter_change > 0
    assert gap.train_loss_lin < 0.5 * float(torch.sum(y**2))


def test_linearisation_gap_shrinks_with_width():
    gaps = []
    for width in (8, 512):
        model, X, y = problem(n=12, width=width, seed=1, dtype=torch.float32)
        gaps.append(linear.linearization_gap(model, X, y, X, steps=60).function_gap)
    assert gaps[1] < 0.5 * gaps[0]


def test_training_bad_input():
    model, X, y = problem()
    with pytest.raises(ValueError, match="steps"):
        linear.train_linearized(model, X, y, -1, 0.1)
    with pytest.raises(ValueError, match="lr"):
        linear.train_network(model, X, y, 1, 0.0)
    with pytest.raises(ValueError, match="momentum"):
        linear.train_linearized(model, X, y, 1, 0.1, momentum=1.0)
    with pytest.raises(ValueError, match="X must be"):
        linear.train_linearized(model, X, y[:3], 1, 0.1)
    with pytest.raises(ValueError, match="reference"):
        linear.train_linearized(model, X, y, 1, 0.1, reference=torch.zeros(3))
    with pytest.raises(ValueError, match="lr_scale"):
        linear.linearization_gap(model, X, y, X, steps=1, lr_scale=2.5)
    with pytest.raises(FloatingPointError, match="diverged"):
        linear.train_network(model, X, 1e3 * y, 200, 10.0)
