import numpy as np
import pytest
import torch
from torch import nn

from atf_lite.networks.functional import flatten_params, linearize, model_output, unflatten_params
from atf_lite.networks.mlp import mlp
from atf_lite.networks.path_averaging import path_averaged_features, quadrature_rule
from atf_lite.networks.tangent import (
    is_structured_mlp,
    jacobian_block,
    layer_signals,
    naive_tangent_features,
    naive_tangent_kernel,
    tangent_features,
    tangent_kernel,
)

DTYPE = torch.float64


def rel_err(a, b):
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


def inputs(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


class SkipNet(nn.Module):
    """Not an nn.Sequential MLP (a skip connection and a LayerNorm): only the Jacobian applies."""

    def __init__(self, d):
        super().__init__()
        self.inner = nn.Linear(d, d, dtype=DTYPE)
        self.norm = nn.LayerNorm(d, dtype=DTYPE)
        self.out = nn.Linear(d, 1, dtype=DTYPE)

    def forward(self, x):
        return self.out(self.norm(x + torch.tanh(self.inner(x))))


CASES = [
    # (d_in, width, depth, bias, activation)
    (3, 5, 0, True, nn.ReLU),
    (4, 8, 1, True, nn.ReLU),
    (4, 8, 1, False, nn.ReLU),
    (6, 16, 2, True, nn.Tanh),
    (5, 7, 3, False, nn.GELU),
    (5, 32, 4, True, nn.ReLU),
]


@pytest.mark.parametrize("d_in, width, depth, bias, activation", CASES)
@pytest.mark.parametrize("method", ["jacobian", "structured", "auto"])
def test_kernel_matches_naive_loop(d_in, width, depth, bias, activation, method):
    model = mlp(d_in, width, depth, bias=bias, seed=depth, activation=activation, dtype=DTYPE)
    X1, X2 = inputs(9, d_in, 0), inputs(6, d_in, 1)
    reference_cross = naive_tangent_kernel(X1, model, X2=X2)
    reference_gram = naive_tangent_kernel(X1, model)
    assert rel_err(tangent_kernel(X1, model, X2=X2, method=method), reference_cross) < 1e-6
    assert rel_err(tangent_kernel(X1, model, method=method), reference_gram) < 1e-6
    # Batching must not change anything (blocks of 4 rows: uneven last block).
    batched = tangent_kernel(X1, model, X2=X2, method=method, batch_size=4)
    assert rel_err(batched, reference_cross) < 1e-6


def test_kernel_at_other_params_and_features_match_naive():
    model = mlp(4, 10, 2, seed=0, dtype=DTYPE)
    params = {k: v + 0.3 * torch.randn_like(v) for k, v in model.named_parameters()}
    X = inputs(7, 4, 2)
    reference = naive_tangent_features(X, model, params)
    assert rel_err(tangent_features(X, model, params), reference) < 1e-12
    assert rel_err(tangent_features(X, model, params, batch_size=3), reference) < 1e-12
    for method in ("jacobian", "structured"):
        K = tangent_kernel(X, model, params, method=method)
        assert rel_err(K, reference @ reference.T) < 1e-12
    # At the model's own parameters the kernel differs: params is really used.
    assert rel_err(tangent_kernel(X, model), reference @ reference.T) > 1e-3


def test_non_mlp_uses_jacobian():
    model = SkipNet(4)
    X1, X2 = inputs(5, 4, 3), inputs(4, 4, 4)
    assert not is_structured_mlp(model)
    reference = naive_tangent_kernel(X1, model, X2=X2)
    assert rel_err(tangent_kernel(X1, model, X2=X2), reference) < 1e-10
    features = tangent_features(X1, model)
    assert rel_err(features, naive_tangent_features(X1, model)) < 1e-12
    with pytest.raises(TypeError, match="nn.Sequential"):
        tangent_kernel(X1, model, method="structured")


def test_structured_rejects_unsupported_module():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double()
    X = inputs(5, 3, 0)
    with pytest.raises(TypeError, match="module '1' is BatchNorm1d"):
        tangent_kernel(X, model, method="structured")
    # "auto" falls back to the Jacobian, which handles it (in eval mode, per-sample).
    model.eval()
    K = tangent_kernel(X, model)
    assert rel_err(K, naive_tangent_kernel(X, model)) < 1e-10


def test_bad_inputs():
    model = mlp(3, 4, 1, dtype=DTYPE)
    X = inputs(4, 3, 0)
    with pytest.raises(ValueError, match="method"):
        tangent_kernel(X, model, method="exact")
    with pytest.raises(ValueError, match="X1 and X2"):
        tangent_kernel(X, model, X2=inputs(4, 5, 0))
    with pytest.raises(ValueError, match="NaN"):
        tangent_kernel(X * float("nan"), model)
    with pytest.raises(ValueError, match="batch dimension"):
        tangent_features(X[0], model)
    with pytest.raises(ValueError, match="batch_size"):
        tangent_features(X, model, batch_size=0)
    with pytest.raises(KeyError, match="missing"):
        tangent_features(X, model, {"0.weight": torch.zeros(4, 3)})
    bad = {k: v.detach() for k, v in model.named_parameters()}
    bad["0.weight"] = torch.zeros(2, 2, dtype=DTYPE)
    with pytest.raises(ValueError, match=r"params\['0.weight'\] has shape"):
        tangent_kernel(X, model, bad)
    wide = mlp(3, 4, 1, d_out=2, dtype=DTYPE)
    with pytest.raises(ValueError, match="one scalar output"):
        tangent_kernel(X, wide)


def test_errors_name_the_argument_holding_the_bad_value():
    model = mlp(3, 4, 1, dtype=DTYPE)
    X = inputs(4, 3, 0)
    theta = {k: v.detach() for k, v in model.named_parameters()}
    with pytest.raises(TypeError, match="model must be a torch nn.Module"):
        is_structured_mlp(None)
    with pytest.raises(TypeError, match="model must be an nn.Sequential MLP"):
        layer_signals(X, nn.Linear(3, 1))
    with pytest.raises(ValueError, match="one scalar output per row of X"):
        tangent_features(X[None], model)
    with pytest.raises(ValueError, match="X2 must not be empty"):
        naive_tangent_kernel(X, model, X2=X[:0])
    with pytest.raises(ValueError, match="X contains NaN"):
        jacobian_block(X * float("nan"), model, theta)
    with pytest.raises(TypeError, match="theta must be a name -> tensor mapping, got None"):
        jacobian_block(X, model, None)
    with pytest.raises(KeyError, match="theta does not match the model"):
        jacobian_block(X, model, {})


def test_flatten_roundtrip_and_column_order():
    model = mlp(3, 4, 1, dtype=DTYPE)
    params = dict(model.named_parameters())
    vector = flatten_params(params)
    assert vector.shape == (sum(p.numel() for p in params.values()),)
    back = unflatten_params(vector, params)
    assert all(torch.equal(back[k], params[k]) for k in params)
    with pytest.raises(ValueError, match="vector must have shape"):
        unflatten_params(vector[:-1], params)


def test_linearize_is_first_order_taylor_model():
    model = mlp(5, 12, 2, seed=1, dtype=DTYPE)
    X = inputs(8, 5, 5)
    f_lin = linearize(model)
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    assert torch.allclose(f_lin(X, theta0)[:, 0], model_output(X, model), atol=1e-14)
    delta = {k: 0.2 * torch.randn_like(v) for k, v in theta0.items()}
    shifted = {k: theta0[k] + delta[k] for k in theta0}
    Phi = naive_tangent_features(X, model)
    expected = model_output(X, model) + Phi @ flatten_params(delta)
    assert torch.allclose(f_lin(X, shifted)[:, 0], expected, rtol=1e-12, atol=1e-12)
    # Exactly linear in theta: doubling the displacement doubles the change.
    doubled = {k: theta0[k] + 2 * delta[k] for k in theta0}
    change = f_lin(X, shifted) - f_lin(X, theta0)
    assert torch.allclose(f_lin(X, doubled) - f_lin(X, theta0), 2 * change, atol=1e-12)
    # The network itself is not linear in theta.
    nonlinear = model_output(X, model, shifted) - model_output(X, model)
    assert not torch.allclose(nonlinear, change[:, 0], atol=1e-6)


def test_linearize_is_differentiable_and_frozen():
    model = mlp(3, 6, 1, seed=2, dtype=DTYPE)
    X = inputs(5, 3, 6)
    f_lin = linearize(model)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    f_lin(X, params).sum().backward()
    # Gradient of sum_i f_lin(x_i) wrt theta is sum_i phi(x_i), whatever theta is.
    Phi = naive_tangent_features(X, model)
    grad = flatten_params({k: v.grad for k, v in params.items()})
    assert torch.allclose(grad, Phi.sum(0), atol=1e-12)
    # Changing the model afterwards does not move the expansion point.
    before = f_lin(X, params).detach()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert torch.equal(f_lin(X, params).detach(), before)
    with pytest.raises(KeyError, match="missing"):
        f_lin(X, {})


def test_quadrature_rules_integrate_polynomials():
    for rule, nodes, degree in (("gauss-legendre", 4, 7), ("trapezoid", 2, 1), ("riemann", 1, 0)):
        t, w = quadrature_rule(nodes, rule=rule)
        for k in range(degree + 1):
            assert abs(np.sum(w * t**k) - 1.0 / (k + 1)) < 1e-13
    # A left Riemann sum with N nodes integrates t to 1/2 - 1/(2N).
    t, w = quadrature_rule(10, rule="riemann")
    assert abs(np.sum(w * t) - (0.5 - 0.05)) < 1e-14
    with pytest.raises(ValueError, match="rule"):
        quadrature_rule(4, rule="simpson")
    with pytest.raises(ValueError, match="nodes"):
        quadrature_rule(0)


def test_path_averaged_features_for_smooth_net():
    # tanh nets are smooth along the path, so Gauss–Legendre converges fast.
    model = mlp(4, 8, 2, seed=3, activation=nn.Tanh, dtype=DTYPE)
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(0)
    params1 = {
        k: v + 0.3 * torch.randn(v.shape, generator=generator, dtype=DTYPE)
        for k, v in params0.items()
    }
    X = inputs(6, 4, 7)
    residual_coarse = path_averaged_features(X, model, params0, params1, nodes=2).residual
    result = path_averaged_features(X, model, params0, params1, nodes=16)
    Phi_bar, residual = result.Phi_bar, result.residual
    assert residual < 1e-10 and residual_coarse > 1e-4
    assert Phi_bar.shape == (6, flatten_params(params0).numel())
