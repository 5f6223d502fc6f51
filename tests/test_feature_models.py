"""Fixed (linearized), adaptive and full tangent-feature models, and their training loop."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import jacrev

from atf_lite.networks.classifier import ClassifierScore, evaluate_classifier, fit_classifier
from atf_lite.networks.feature_models import (
    MODEL_KINDS,
    AdaptiveNet,
    FullNet,
    LinearizedNet,
    feature_model,
)
from atf_lite.networks.functional import linearize
from atf_lite.networks.mlp import mlp

# The models here are tiny: a thread pool only adds overhead (and contention).
pytestmark = pytest.mark.usefixtures("one_thread")


def inputs(n, d, seed, dtype=torch.float32):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def randomize(model, scale, seed):
    """Set every trainable tensor of ``model`` to a random value (identity + noise for M's)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_at_initialisation_equals_base_network(kind, bias, dtype):
    base = mlp(6, 12, 2, d_out=4, bias=bias, seed=3, dtype=dtype)
    X = inputs(9, 6, 0, dtype)
    model = feature_model(kind, base)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(model(X), base(X), rtol=tol, atol=tol)
    # The output scale multiplies the outputs and nothing else.
    scaled = feature_model(kind, base, output_scale=0.25)
    torch.testing.assert_close(scaled(X), 0.25 * base(X), rtol=tol, atol=tol)
    for change in model.parameter_change().values():
        assert torch.count_nonzero(change) == 0


@settings(max_examples=15, deadline=None)
@given(
    width=st.integers(1, 9),
    depth=st.integers(0, 3),
    d_out=st.integers(1, 4),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_adaptive_with_identity_transforms_is_exactly_linearized(width, depth, d_out, bias, seed):
    base = mlp(5, width, depth, d_out=d_out, bias=bias, seed=seed)
    X = inputs(7, 5, seed + 1)
    adaptive = AdaptiveNet(base)
    generator = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for key in adaptive.K:
            adaptive.K[key].copy_(torch.randn(adaptive.K[key].shape, generator=generator))
    fixed = LinearizedNet(base)
    with torch.no_grad():
        for name, change in adaptive.parameter_change().items():
            fixed.delta[name.replace(".", "_")].copy_(change)
    change = adaptive.parameter_change()
    for key, weight_name, bias_name in adaptive.layers:
        d = base.get_parameter(weight_name).shape[1]
        K = adaptive.K[key].detach()
        # δ[W b] is K itself, its last column the bias change.
        assert torch.equal(change[weight_name], K[:, :d])
        if bias_name is not None:
            assert torch.equal(change[bias_name], K[:, d])
    assert torch.equal(adaptive(X), fixed(X))


def test_adaptive_weight_change_is_the_product_of_the_factors():
    base = mlp(4, 6, 1, d_out=3, seed=0, dtype=torch.float64)
    model = AdaptiveNet(base)
    randomize(model, 0.3, seed=1)
    change = model.parameter_change()
    for key, weight_name, bias_name in model.layers:
        product = (model.M1[key] @ model.K[key] @ model.M2[key]).detach()
        stacked = torch.cat([change[weight_name], change[bias_name][:, None]], dim=1)
        torch.testing.assert_close(stacked, product)
    # Evaluated through the linearisation with that change.
    fixed = LinearizedNet(base)
    with torch.no_grad():
        for name, value in change.items():
            fixed.delta[name.replace(".", "_")].copy_(value)
    X = inputs(5, 4, 2, torch.float64)
    torch.testing.assert_close(model(X), fixed(X))


def test_linearized_net_is_first_order_taylor_model():
    base = mlp(3, 7, 2, d_out=2, seed=4, dtype=torch.float64)
    X = inputs(6, 3, 5, torch.float64)
    model = LinearizedNet(base)
    randomize(model, 0.1, seed=6)
    delta = model.parameter_change()
    theta0 = model.initial_params

    def outputs(params):
        return torch.func.functional_call(base, params, (X,))

    # Explicit Jacobian (small model only): f(θ0) + Σ_k ∂f/∂θ_k · δ_k.
    jac = jacrev(outputs)(theta0)
    expected = outputs(theta0) + sum(
        (jac[name].reshape(6, 2, -1) @ delta[name].reshape(-1)) for name in theta0
    )
    torch.testing.assert_close(model(X), expected, rtol=1e-12, atol=1e-12)
    # Agrees with the network to second order in the step: halving δ quarters the gap.
    gaps = []
    for t in (1e-2, 5e-3):
        params = {name: theta0[name] + t * delta[name] for name in theta0}
        small = LinearizedNet(base)
        with torch.no_grad():
            for name in theta0:
                small.delta[name.replace(".", "_")].copy_(t * delta[name])
        gaps.append(float((small(X) - outputs(params)).detach().abs().max()))
    assert 3.0 < gaps[0] / gaps[1] < 5.0


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_gradients_reach_every_trainable_tensor(kind):
    base = mlp(5, 8, 2, d_out=3, seed=1)
    model = feature_model(kind, base)
    # Away from initialisation: at K = 0 the gradients of M1 and M2 vanish by construction.
    randomize(model, 0.05, seed=2)
    X, y = inputs(10, 5, 3), torch.arange(10) % 3
    loss = nn.functional.cross_entropy(model(X), y)
    loss.backward()
    params = dict(model.named_parameters())
    assert params, "no trainable tensors"
    for name, p in params.items():
        assert p.requires_grad, name
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, f"zero gradient for {name}"
    # The base network only supplies the initial point: it receives no gradient.
    assert all(p.grad is None for p in base.parameters())


def test_trainable_tensor_counts():
    base = mlp(5, 8, 2, d_out=3, seed=1)
    p = sum(v.numel() for v in base.parameters())
    count = lambda m: sum(v.numel() for v in m.trainable_parameters())  # noqa: E731
    assert count(FullNet(base)) == p
    assert count(LinearizedNet(base)) == p
    # Per layer m² + m(d + 1) + (d + 1)²: 5 → 8 → 8 → 3.
    expected = sum(m * m + m * (d + 1) + (d + 1) ** 2 for d, m in [(5, 8), (8, 8), (8, 3)])
    assert count(AdaptiveNet(base)) == expected


def test_transform_change_is_zero_at_initialisation_and_detects_moves():
    model = AdaptiveNet(mlp(4, 6, 1, d_out=2, seed=0))
    assert all(pair == (0.0, 0.0) for pair in model.transform_change().values())
    with torch.no_grad():
        model.M1["0"][0, 0] += 3.0
    change = model.transform_change()
    assert change["0"][0] == pytest.approx(3.0 / math.sqrt(6))
    assert change["0"][1] == 0.0 and change["2"] == (0.0, 0.0)


def test_full_net_training_leaves_base_untouched():
    base = mlp(4, 6, 1, d_out=3, seed=0)
    before = [p.detach().clone() for p in base.parameters()]
    X, y = inputs(30, 4, 1), torch.arange(30) % 3
    for kind in MODEL_KINDS:
        fit_classifier(X, y, X, y, feature_model(kind, base), max_epochs=3, patience=None)
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters()))


def test_bad_arguments_raise():
    base = mlp(4, 6, 1, d_out=3, seed=0)
    with pytest.raises(ValueError, match="kind"):
        feature_model("lazy", base)
    with pytest.raises(ValueError, match="output_scale"):
        LinearizedNet(base, output_scale=0.0)
    with pytest.raises(ValueError, match="output_scale"):
        FullNet(base, output_scale=float("nan"))

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            return self.lin(x) + x[:, :3]

    with pytest.raises(TypeError, match="nn.Sequential"):
        AdaptiveNet(Skip())
    # LinearizedNet works for any module.
    assert LinearizedNet(Skip())(inputs(2, 4, 0)).shape == (2, 3)


def separable_problem(n, seed):
    """Three well separated Gaussian clusters in 4 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = 3.0 * torch.eye(3, 4)
    return centres[y] + 0.3 * torch.randn(n, 4, generator=generator), y


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.01)])
def test_fit_learns_and_is_deterministic(kind, optimizer, lr):
    X, y = separable_problem(60, 0)
    X_val, y_val = separable_problem(30, 1)
    results = []
    for _ in range(2):
        model = feature_model(kind, mlp(4, 16, 1, d_out=3, seed=0))
        fit = fit_classifier(
            X,
            y,
            X_val,
            y_val,
            model,
            optimizer=optimizer,
            lr=lr,
            batch_size=16,
            max_epochs=40,
            patience=10,
            seed=5,
        )
        results.append((fit, [p.detach().clone() for p in model.parameters()], model))
    (fit, params, model), (fit2, params2, _) = results
    assert fit.train_losses == fit2.train_losses and fit.best_epoch == fit2.best_epoch
    assert all(torch.equal(a, b) for a, b in zip(params, params2))
    assert fit.train_losses[-1] < 0.5 * math.log(3)
    # The kept parameters are those of the best epoch.
    assert evaluate_classifier(X_val, y_val, model).error == fit.best_val_error
    assert fit.best_val_error == min(fit.val_errors) == 0.0


def test_early_stopping_restores_best_epoch():
    X, y = separable_problem(45, 2)
    # Validation labels that disagree with training: validation error rises as training fits.
    X_val, y_val = separable_problem(30, 3)
    y_val = (y_val + 1) % 3
    model = FullNet(mlp(4, 16, 1, d_out=3, seed=0))
    fit = fit_classifier(X, y, X_val, y_val, model, lr=0.05, max_epochs=200, patience=5)
    assert fit.epochs_run == fit.best_epoch + 5 < 200
    assert len(fit.val_errors) == len(fit.train_losses) == fit.epochs_run
    best = min(zip(fit.val_errors, fit.val_losses))
    assert (fit.val_errors[fit.best_epoch - 1], fit.val_losses[fit.best_epoch - 1]) == best
    score = evaluate_classifier(X_val, y_val, model)
    assert isinstance(score, ClassifierScore)
    assert (score.error, score.loss) == pytest.approx(best, rel=1e-6)


def test_fit_rejects_bad_input():
    X, y = separable_problem(12, 0)
    model = FullNet(mlp(4, 5, 1, d_out=3, seed=0))
    cases = [
        (dict(optimizer="rmsprop"), ValueError, "optimizer"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(momentum=1.0), ValueError, "momentum"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(max_epochs=0), ValueError, "max_epochs"),
        (dict(patience=0), ValueError, "patience"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            fit_classifier(X, y, X, y, model, **kwargs)
    with pytest.raises(TypeError, match="y_train"):
        fit_classifier(X, y.float(), X, y, model)
    with pytest.raises(ValueError, match="X_val"):
        fit_classifier(X, y, X[:, :3], y, model)
    with pytest.raises(ValueError, match="X_train"):
        fit_classifier(X, y[:5], X, y, model)
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit_classifier(bad, y, X, y, model)
    with pytest.raises(ValueError, match="outputs"):
        fit_classifier(X, y + 1, X, y, model)
    with pytest.raises(ValueError, match="y_val"):
        fit_classifier(X, y, X, y - 1, model)
    with pytest.raises(FloatingPointError, match="diverged"):
        fit_classifier(1e3 * X, y, X, y, model, lr=1e6, max_epochs=5)


@pytest.mark.parametrize("kind", ["fixed", "adaptive"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n", [3, 40])  # fewer and more inputs than the hidden width
def test_layerwise_forward_mode_matches_the_jacobian_vector_product(kind, bias, n):
    base = mlp(6, 12, 2, d_out=3, bias=bias, seed=3, dtype=torch.float64)
    model = feature_model(kind, base)
    assert model._plan is not None  # the layer-wise path is the one under test
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.trainable_parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator,
                                             dtype=parameter.dtype))
    X = torch.randn(n, 6, generator=generator, dtype=torch.float64)
    theta0 = model.initial_params
    delta = model.parameter_change()
    params = {name: theta0[name] + delta[name] for name in theta0}
    expected = linearize(base, theta0)(X, params)
    torch.testing.assert_close(model(X), expected, rtol=1e-12, atol=1e-12)


def test_other_architectures_use_the_jacobian_vector_product():
    base = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    model = LinearizedNet(base)
    assert model._plan is None
    with torch.no_grad():
        assert torch.equal(model(torch.ones(2, 4)), base(torch.ones(2, 4)))


@pytest.mark.parametrize("output_scale", [None, "2", True, 1j, 0.0, float("nan")])
def test_output_scale_must_be_a_positive_real_number(output_scale):
    with pytest.raises(ValueError, match="output_scale must be"):
        FullNet(mlp(3, 4, 1), output_scale=output_scale)
