"""Exact path-averaged features of piecewise-linear MLPs: roots, pieces, features, kernels.

The reference for ``Φ̄`` is independent of the backward pass under test: on each piece returned
by ``path_breakpoints`` (whose constancy of activation patterns is checked separately, by
sampling the network's own pre-activations), a 3-node Gauss–Legendre rule over plain autograd
gradients, one input and one node at a time.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from atf_lite.data import load_digits_pair
from atf_lite.networks.functional import flatten_params, model_output
from atf_lite.networks.mlp import mlp
from atf_lite.networks.path_averaging import (
    PATH_RULES,
    path_averaged_features,
    path_averaged_kernel,
)
from atf_lite.networks.path_pieces import path_breakpoints, supports_exact_rule
from atf_lite.networks.piecewise_path import exact_path_features, exact_path_kernel
from atf_lite.networks.polynomial_roots import polyval, sign_changes, to_local
from atf_lite.networks.tangent import naive_tangent_features
from atf_lite.networks.training import train

D64 = torch.float64


def endpoints(model, scale, seed, bias_shift=0.3):
    """``params0`` (the model's) and a random ``params1`` (biases also shifted, so that the
    pre-activations cross zero along the path even when the biases start at zero)."""
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(seed)
    params1 = {
        k: v
        + scale * torch.randn(v.shape, generator=generator, dtype=v.dtype)
        + (bias_shift if k.endswith("bias") else 0.0)
        for k, v in params0.items()
    }
    return params0, params1


def inputs(n, d, seed, dtype=D64):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def relative_residual(X, model, params0, params1, Phi_bar):
    """The path identity's residual in float64, computed here from plain forward passes."""
    theta0 = {k: v.to(D64) for k, v in params0.items()}
    theta1 = {k: v.to(D64) for k, v in params1.items()}
    change = model_output(X.to(D64), model, theta1) - model_output(X.to(D64), model, theta0)
    predicted = Phi_bar @ (flatten_params(theta1) - flatten_params(theta0))
    return float(torch.linalg.norm(change - predicted) / torch.linalg.norm(change))


def piecewise_reference(X, model, params0, params1):
    """``∫ ∇f dt`` by 3-node Gauss–Legendre on each piece, from per-input autograd gradients."""
    xi, omega = np.polynomial.legendre.leggauss(3)
    xi, omega = (xi + 1) / 2, omega / 2
    rows = []
    for i, breakpoints in enumerate(path_breakpoints(X, model, params0, params1)):
        total = 0.0
        for a, b in zip(breakpoints[:-1], breakpoints[1:]):
            for x_k, w_k in zip(xi, omega):
                t = a + (b - a) * x_k
                theta = {k: params0[k] + t * (params1[k] - params0[k]) for k in params0}
                gradient = naive_tangent_features(X[i : i + 1], model, theta)[0]
                total = total + (b - a) * w_k * gradient
        rows.append(total)
    return torch.stack(rows)


def pre_activations(X, model, theta):
    """Inputs of every activation module of an nn.Sequential, concatenated (``[n, units]``)."""
    values, h = [], X
    for name, module in model.named_children():
        if isinstance(module, nn.Linear):
            h = nn.functional.linear(h, theta[f"{name}.weight"], theta.get(f"{name}.bias"))
        else:
            if isinstance(module, (nn.ReLU, nn.LeakyReLU)):
                values.append(h)
            h = module(h)
    return torch.cat(values, dim=1)


# ----------------------------------------------------------------------------------------------
# Polynomial roots
# ----------------------------------------------------------------------------------------------


def from_roots(roots, lead=1.0):
    """Coefficients (increasing powers) of ``lead · Π (s − r)``."""
    coef = np.polynomial.polynomial.polyfromroots(roots) * lead
    return torch.as_tensor(coef, dtype=D64)


def test_sign_changes_finds_simple_roots_to_float64_precision():
    cases = [[0.3], [-0.7, 0.2], [-0.9, -0.1, 0.5], [-0.95, -0.3, 0.25, 0.8]]
    for roots in cases:
        for lead in (1.0, -3.0):
            rows, found = sign_changes(from_roots(roots, lead)[None])
            assert rows.tolist() == [0] * len(roots)
            np.testing.assert_allclose(np.sort(found.numpy()), roots, atol=1e-15)


def test_sign_changes_separates_near_double_roots():
    # Two roots 1e-6 apart: the polynomial dips to −2.5e-13 between them, far above its float64
    # evaluation error (≈ 1e-17), so bisection on either side of the vertex finds both, each to
    # the accuracy the values allow (≈ eps / |p'| ≈ 1e-11), and never as a complex pair.  (Pairs
    # closer than about √eps ≈ 1e-8 are indistinguishable in float64 from a root that only
    # touches zero.)
    gap = 1e-6
    for roots in ([0.4, 0.4 + gap], [-0.5, 0.1, 0.1 + gap], [-0.3 - gap, -0.3, 0.2, 0.9]):
        rows, found = sign_changes(from_roots(roots)[None])
        found = np.sort(found.numpy())
        np.testing.assert_allclose(found, roots, atol=1e-10)
        assert np.all(np.diff(found) > gap / 2)


def test_sign_changes_ignores_touching_roots_and_handles_degenerate_rows():
    # A root that touches zero (even multiplicity) changes no sign; a triple root does.
    touching = torch.cat([from_roots([0.2, 0.2]), torch.zeros(1, dtype=D64)])
    rows, found = sign_changes(torch.stack([touching, from_roots([0.2] * 3)]))
    assert rows.tolist() == [1]
    np.testing.assert_allclose(found.numpy(), [0.2], atol=1e-5)  # a triple root is ill-posed
    rest = torch.stack(
        [
            torch.tensor([0.0, 0.0, 0.0], dtype=D64),  # zero polynomial
            torch.tensor([2.0, 0.0, 0.0], dtype=D64),  # constant
            torch.tensor([0.5, 1.0, 0.0], dtype=D64),  # linear, root at -0.5
            from_roots([1.5, -2.0]),  # roots outside (-1, 1)
        ]
    )
    rows, found = sign_changes(rest)
    assert rows.tolist() == [2]
    np.testing.assert_allclose(found.numpy(), [-0.5], atol=1e-16)
    assert sign_changes(torch.empty(0, 3, dtype=D64))[0].numel() == 0


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-0.98, 0.98), min_size=1, max_size=4, unique=True),
    st.floats(0.1, 10.0),
)
def test_sign_changes_matches_random_root_sets(roots, lead):
    roots = sorted(roots)
    if len(roots) > 1 and np.min(np.diff(roots)) < 1e-6:
        return
    rows, found = sign_changes(from_roots(roots, lead)[None])
    np.testing.assert_allclose(np.sort(found.numpy()), roots, atol=1e-11)


def test_to_local_maps_an_interval_onto_minus_one_one():
    generator = torch.Generator().manual_seed(0)
    coef = torch.randn(5, 4, 3, generator=generator, dtype=D64)
    center = torch.rand(5, generator=generator, dtype=D64)
    radius = torch.rand(5, generator=generator, dtype=D64)
    local = to_local(coef, center, radius)
    for s in (-1.0, -0.3, 0.0, 0.8, 1.0):
        t = center + radius * s
        for unit in range(3):
            expected = polyval(coef[:, :, unit], t)
            value = polyval(local[:, :, unit], torch.full_like(t, s))
            torch.testing.assert_close(value, expected, rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_activation_patterns_are_constant_on_pieces_and_change_at_breakpoints(depth):
    model = mlp(4, 12, depth, seed=depth, dtype=D64)
    params0, params1 = endpoints(model, 0.5, 7)
    X = inputs(5, 4, 8)
    for i, breakpoints in enumerate(path_breakpoints(X, model, params0, params1, batch_size=2)):
        assert breakpoints[0] == 0.0 and breakpoints[-1] == 1.0
        assert np.all(np.diff(breakpoints) > 0)

        def pattern(t, x=X[i : i + 1]):
            theta = {k: params0[k] + t * (params1[k] - params0[k]) for k in params0}
            return pre_activations(x, model, theta)[0] > 0

        for a, b in zip(breakpoints[:-1], breakpoints[1:]):
            inside = [pattern(a + (b - a) * u) for u in np.linspace(0.01, 0.99, 25)]
            assert all(torch.equal(p, inside[0]) for p in inside)
        for left, point, right in zip(breakpoints[:-2], breakpoints[1:-1], breakpoints[2:]):
            before = pattern(point - 1e-3 * (point - left))
            after = pattern(point + 1e-3 * (right - point))
            assert not torch.equal(before, after)


def test_an_identity_network_has_one_piece_and_first_layer_units_switch_once():
    linear = mlp(3, 6, 2, seed=0, activation=nn.Identity, dtype=D64)
    params0, params1 = endpoints(linear, 0.5, 1)
    assert all(len(b) == 2 for b in path_breakpoints(inputs(4, 3, 2), linear, params0, params1))
    # One hidden layer: pieces = 1 + the number of units whose sign differs at the two ends.
    shallow = mlp(3, 20, 1, seed=0, dtype=D64)
    params0, params1 = endpoints(shallow, 0.5, 1)
    X = inputs(6, 3, 2)
    flips = (
        (pre_activations(X, shallow, params0) > 0) != (pre_activations(X, shallow, params1) > 0)
    ).sum(dim=1)
    pieces = [len(b) - 1 for b in path_breakpoints(X, shallow, params0, params1)]
    assert pieces == (flips + 1).tolist()


# ----------------------------------------------------------------------------------------------
# Features and kernels
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", [nn.ReLU, nn.LeakyReLU])
def test_exact_features_match_the_piecewise_autograd_reference(depth, bias, activation):
    model = mlp(5, 10, depth, bias=bias, seed=depth, activation=activation, dtype=D64)
    params0, params1 = endpoints(model, 0.5, 1)
    X = inputs(5, 5, 2)
    result = exact_path_features(X, model, params0, params1, batch_size=2)
    expected = piecewise_reference(X, model, params0, params1)
    torch.testing.assert_close(result.Phi_bar, expected, rtol=1e-12, atol=1e-13)
    assert result.Phi_bar.dtype == D64
    assert result.pieces.tolist() == [
        len(b) - 1 for b in path_breakpoints(X, model, params0, params1)
    ]
    assert relative_residual(X, model, params0, params1, result.Phi_bar) < 1e-13


@pytest.mark.parametrize(
    "layers",
    [
        # consecutive activations, leaky slopes and an activation on the output
        lambda: [nn.Linear(5, 8), nn.ReLU(), nn.ReLU(), nn.Linear(8, 6), nn.LeakyReLU(0.2),
                 nn.Linear(6, 1), nn.ReLU()],
        # an activation on the input, two linear layers in a row, an identity
        lambda: [nn.ReLU(), nn.Linear(5, 8), nn.Linear(8, 6), nn.ReLU(), nn.Identity(),
                 nn.Linear(6, 1)],
    ],
)
def test_exact_features_for_unusual_layer_orders(layers):
    torch.manual_seed(0)
    model = nn.Sequential(*layers()).to(D64)
    params0, params1 = endpoints(model, 0.5, 3)
    X = inputs(6, 5, 4)
    result = exact_path_features(X, model, params0, params1, batch_size=4)
    torch.testing.assert_close(
        result.Phi_bar, piecewise_reference(X, model, params0, params1), rtol=1e-12, atol=1e-13
    )


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.booleans(), st.floats(0.05, 1.5))
def test_identity_residual_at_float64_round_off_on_random_networks(seed, depth, bias, scale):
    model = mlp(4, 16, depth, bias=bias, seed=seed, dtype=D64)
    params0, params1 = endpoints(model, scale, seed + 1)
    X = inputs(12, 4, seed + 2)
    result = path_averaged_features(X, model, params0, params1, rule="exact")
    assert result.residual < 1e-12
    assert relative_residual(X, model, params0, params1, result.Phi_bar) < 1e-12


def test_two_gauss_nodes_per_piece_suffice_for_a_linear_network():
    # Identity activations: one piece, a degree-2 integrand (three linear layers), and the
    # exact rule agrees with two-node Gauss–Legendre, itself exact here.
    model = mlp(3, 5, 2, seed=3, activation=nn.Identity, dtype=D64)
    params0, params1 = endpoints(model, 0.8, 4)
    X = inputs(6, 3, 5)
    exact = path_averaged_features(X, model, params0, params1, rule="exact").Phi_bar
    gauss = path_averaged_features(X, model, params0, params1, nodes=2).Phi_bar
    torch.testing.assert_close(exact, gauss, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_identity_residual_on_trained_float32_networks(depth, bias, one_thread):
    # Networks trained in float32 as in the chapters (digits 2 vs 3, sign of a smooth target),
    # integrated exactly in float64 from their float32 parameters.
    X, labels = load_digits_pair(2, 3, n=120, seed=0)
    model = mlp(64, 32, depth, bias=bias, seed=depth)
    run = train(X, labels, model, epochs=30, lr=0.05, batch_size=16, seed=0)
    result = path_averaged_features(X, model, run.params0, run.params1, rule="exact")
    assert result.residual <= 1e-10
    assert result.pieces.min() >= 1 and result.Phi_bar.dtype == D64
    assert relative_residual(X, model, run.params0, run.params1, result.Phi_bar) <= 1e-10
    # 512 Gauss–Legendre nodes leave a far larger residual: the ReLU kinks.
    gauss = path_averaged_features(X, model, run.params0, run.params1, nodes=64)
    assert gauss.residual > 1e3 * max(result.residual, 1e-16)


def test_residual_of_the_chapters_network(one_thread):
    # The chapters' architecture (64-256-256-1, He initialisation, biases) trained on the sign of
    # a smooth target; fewer epochs than the chapters to keep the test short.
    X, labels = load_digits_pair(2, 3, seed=0)
    model = mlp(64, 256, 2, seed=0)
    run = train(X, labels, model, epochs=10, lr=0.1, batch_size=32, seed=0)
    result = path_averaged_kernel(X, model, run.params0, run.params1)
    assert result.residual <= 1e-10
    assert np.median(result.pieces) > 10


def test_exact_kernel_matches_the_gram_matrix_of_the_exact_features():
    for bias in (True, False):
        model = mlp(6, 9, 2, bias=bias, seed=5, dtype=D64)
        params0, params1 = endpoints(model, 0.4, 6)
        X = inputs(11, 6, 7)
        Phi_bar = exact_path_features(X, model, params0, params1).Phi_bar
        kernel = exact_path_kernel(X, model, params0, params1, batch_size=3)
        torch.testing.assert_close(kernel.K_bar, Phi_bar @ Phi_bar.T, rtol=1e-12, atol=1e-12)
        delta = flatten_params(params1) - flatten_params(params0)
        torch.testing.assert_close(kernel.predicted_change, Phi_bar @ delta)
        wrapped = path_averaged_kernel(X, model, params0, params1)
        assert wrapped.residual < 1e-13 and wrapped.pieces.tolist() == kernel.pieces.tolist()
        quadrature = path_averaged_kernel(X, model, params0, params1, rule="trapezoid", nodes=9)
        features = path_averaged_features(X, model, params0, params1, rule="trapezoid", nodes=9)
        torch.testing.assert_close(quadrature.K_bar, features.Phi_bar @ features.Phi_bar.T)
        assert quadrature.pieces is None


def test_float32_model_is_integrated_in_float64():
    model = mlp(4, 8, 2, seed=1)
    params0, params1 = endpoints(model, 0.3, 2)
    X = inputs(7, 4, 3, dtype=torch.float32)
    result = path_averaged_features(X, model, params0, params1, rule="exact")
    assert result.Phi_bar.dtype == D64 and result.residual < 1e-13
    assert "exact" in PATH_RULES


def test_exact_rule_names_the_supported_activations():
    model = mlp(3, 4, 2, activation=nn.Tanh, dtype=D64)
    params0, params1 = endpoints(model, 0.1, 1)
    X = inputs(4, 3, 2)
    assert not supports_exact_rule(model) and supports_exact_rule(mlp(3, 4, 2))
    with pytest.raises(ValueError, match=r"nn\.ReLU, nn\.LeakyReLU, nn\.Identity.*Tanh"):
        path_averaged_features(X, model, params0, params1, rule="exact")

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp(3, 4, 1, dtype=D64)

        def forward(self, x):
            return self.net(x)

    wrapped = Wrapped()
    with pytest.raises(ValueError, match="nn.Sequential"):
        exact_path_features(X, wrapped, *endpoints(wrapped, 0.1, 1))
    two_outputs = mlp(3, 4, 1, d_out=2, dtype=D64)
    with pytest.raises(ValueError, match="one scalar output"):
        path_averaged_features(X, two_outputs, *endpoints(two_outputs, 0.1, 1), rule="exact")
    relu = mlp(3, 4, 1, dtype=D64)
    with pytest.raises(ValueError, match="rule must be one of"):
        path_averaged_features(X, relu, *endpoints(relu, 0.1, 1), rule="simpson")
    with pytest.raises(ValueError, match="batch_size"):
        exact_path_features(X, relu, *endpoints(relu, 0.1, 1), batch_size=0)
    with pytest.raises(ValueError, match="identical outputs"):
        params0, _ = endpoints(relu, 0.1, 1)
        path_averaged_kernel(X, relu, params0, params0)


def test_exact_rule_through_the_functional_api_matches_functional_call():
    # The parameters may be given for a model whose own dtype differs; outputs are recomputed
    # with functional_call, as in the residual.
    model = mlp(3, 5, 2, seed=2)
    params0, params1 = endpoints(model, 0.3, 5)
    X = inputs(4, 3, 6, dtype=torch.float32)
    result = path_averaged_features(X, model, params0, params1, rule="exact")
    theta = {k: v.to(D64) for k, v in params1.items()}
    out = functional_call(model, theta, (X.to(D64),))
    assert out.dtype == D64 and result.Phi_bar.shape == (4, flatten_params(params0).numel())
