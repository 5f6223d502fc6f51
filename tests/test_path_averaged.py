"""Path-averaged tangent features: the exact identity f(θ1) − f(θ0) = Φ̄ (θ1 − θ0)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from atf_lite.networks.functional import flatten_params, model_output
from atf_lite.networks.mlp import mlp
from atf_lite.networks.path_averaging import path_averaged_features, quadrature_rule
from atf_lite.networks.tangent import naive_tangent_features, tangent_features

DTYPE = torch.float64
RULES = ("gauss-legendre", "trapezoid", "riemann")


def endpoints(model, scale, seed):
    """``params0`` (the model's) and a random ``params1`` at distance ~``scale``."""
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(seed)
    params1 = {
        k: v + scale * torch.randn(v.shape, generator=generator, dtype=v.dtype)
        for k, v in params0.items()
    }
    return params0, params1


def inputs(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def reference(model, params0, params1, X, nodes, rule):
    """``Σ_k w_k Φ(X; θ_k)`` from one autograd call per input and node (obviously correct)."""
    t, w = quadrature_rule(nodes, rule=rule)
    return sum(
        w_k
        * naive_tangent_features(
            X, model, {k: params0[k] + t_k * (params1[k] - params0[k]) for k in params0}
        )
        for t_k, w_k in zip(t, w)
    )


class Wrapped(nn.Module):
    """The same MLP behind a module that is not an nn.Sequential: forces the Jacobian path."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rule", RULES)
def test_structured_path_matches_per_node_reference(bias, rule):
    model = mlp(5, 7, 2, bias=bias, seed=1, dtype=DTYPE)
    params0, params1 = endpoints(model, 0.4, 2)
    X = inputs(9, 5, 3)
    # batch_size=4 splits the rows into uneven blocks.
    result = path_averaged_features(
        X, model, params0, params1, nodes=5, rule=rule, batch_size=4
    )
    Phi_bar, residual = result.Phi_bar, result.residual
    expected = reference(model, params0, params1, X, 5, rule)
    torch.testing.assert_close(Phi_bar, expected, rtol=1e-12, atol=1e-12)
    change = model_output(X, model, params1) - model_output(X, model, params0)
    delta = flatten_params(params1) - flatten_params(params0)
    expected_residual = torch.linalg.vector_norm(change - expected @ delta) / torch.linalg.norm(
        change
    )
    assert residual == pytest.approx(float(expected_residual), rel=1e-9)


def test_generic_path_matches_structured_path():
    net = mlp(4, 6, 2, seed=4, dtype=DTYPE)
    wrapped = Wrapped(net)
    params0, params1 = endpoints(net, 0.3, 5)
    X = inputs(7, 4, 6)
    result = path_averaged_features(X, net, params0, params1, nodes=6)
    structured, r1 = result.Phi_bar, result.residual
    wrapped0 = {f"net.{k}": v for k, v in params0.items()}
    wrapped1 = {f"net.{k}": v for k, v in params1.items()}
    result = path_averaged_features(
        X, wrapped, wrapped0, wrapped1, nodes=6, batch_size=3
    )
    generic, r2 = result.Phi_bar, result.residual
    torch.testing.assert_close(generic, structured, rtol=1e-12, atol=1e-12)
    assert r1 == pytest.approx(r2, rel=1e-9)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.floats(0.05, 2.0))
def test_two_gauss_nodes_are_exact_for_a_linear_network(seed, scale):
    # With identity activations f is a product of three matrices that are each linear in t,
    # so ∇f along the path is a quadratic polynomial in t: two Gauss–Legendre nodes (exact to
    # degree 3) integrate it exactly, the trapezoid rule does not.
    model = mlp(3, 5, 2, seed=seed, activation=nn.Identity, dtype=DTYPE)
    params0, params1 = endpoints(model, scale, seed + 1)
    X = inputs(6, 3, seed + 2)
    result = path_averaged_features(X, model, params0, params1, nodes=2)
    Phi_2, residual = result.Phi_bar, result.residual
    Phi_8 = path_averaged_features(X, model, params0, params1, nodes=8).Phi_bar
    assert residual < 1e-12
    torch.testing.assert_close(Phi_2, Phi_8, rtol=1e-11, atol=1e-11)
    trapezoid = path_averaged_features(
        X, model, params0, params1, nodes=2, rule="trapezoid"
    ).residual
    assert trapezoid > 1e-6


def test_relu_network_identity_converges_with_more_nodes():
    # ReLU kinks make ∇f jump along the path, so every rule converges only like 1/nodes; the
    # left Riemann sum also misses the endpoint correction of order 1/nodes.
    torch.manual_seed(0)
    model = mlp(6, 32, 2, seed=7, dtype=DTYPE)
    params0, params1 = endpoints(model, 0.3, 8)
    X = inputs(40, 6, 9)
    residuals = {
        rule: [
            path_averaged_features(X, model, params0, params1, nodes=n, rule=rule).residual
            for n in (8, 64, 512)
        ]
        for rule in RULES
    }
    for rule, values in residuals.items():
        assert values[2] < values[1] < values[0], rule
    assert residuals["gauss-legendre"][2] < 1e-3
    assert residuals["riemann"][2] > residuals["gauss-legendre"][2]
    # Roughly first order: 64× more nodes reduce the Riemann residual by well over 10×.
    assert residuals["riemann"][2] < residuals["riemann"][0] / 10


def test_endpoint_features_for_a_single_node_riemann_sum():
    # One left Riemann node is the plain tangent features at θ0.
    model = mlp(4, 5, 1, seed=2, dtype=DTYPE)
    params0, params1 = endpoints(model, 0.5, 3)
    X = inputs(5, 4, 4)
    Phi_bar = path_averaged_features(X, model, params0, params1, nodes=1, rule="riemann").Phi_bar
    torch.testing.assert_close(Phi_bar, tangent_features(X, model, params0))


def test_path_averaged_features_rejects_bad_input():
    model = mlp(3, 4, 1, seed=0, dtype=DTYPE)
    params0, params1 = endpoints(model, 0.1, 1)
    X = inputs(4, 3, 2)
    with pytest.raises(ValueError, match="rule"):
        path_averaged_features(X, model, params0, params1, rule="simpson")
    with pytest.raises(ValueError, match="nodes"):
        path_averaged_features(X, model, params0, params1, nodes=0)
    with pytest.raises(ValueError, match="identical outputs"):
        path_averaged_features(X, model, params0, params0)
    with pytest.raises(ValueError, match="X contains NaN"):
        path_averaged_features(X * np.nan, model, params0, params1)
    with pytest.raises(KeyError, match="missing"):
        path_averaged_features(X, model, {}, params1)
    with pytest.raises(ValueError, match="batch_size"):
        path_averaged_features(X, model, params0, params1, batch_size=0)
