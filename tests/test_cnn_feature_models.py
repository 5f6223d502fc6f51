"""Tangent-feature models of convolutional networks, and θ0 as module state of every model."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, jvp

from atf_lite.networks.classifier import fit_classifier
from atf_lite.networks.cnn import cnn
from atf_lite.networks.conv_linearized import conv_tangent_plan, linearized_forward
from atf_lite.networks.feature_models import (
    MODEL_KINDS,
    AdaptiveNet,
    LinearizedNet,
    feature_model,
)
from atf_lite.networks.mlp import mlp

pytestmark = pytest.mark.usefixtures("one_thread")
DTYPE = torch.float64


def small_cnn(pooling="avg", bias=True, dtype=DTYPE, d_out=3):
    return cnn((1, 8, 8), (3, 4), hidden=(5,), d_out=d_out, pooling=pooling, bias=bias,
               flat_input=True, seed=2, dtype=dtype)


def rows(n, seed, dtype=DTYPE):
    return torch.randn(n, 64, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def randomize(model, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def jvp_reference(base, model, X):
    """``f(X; θ0) + J(θ0) δ`` by torch.func.jvp through the base network."""
    theta0, delta = model.initial_params, model.parameter_change()
    out0, change = jvp(lambda p: functional_call(base, p, (X,)), (theta0,), (delta,))
    return out0 + change


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, DTYPE])
def test_cnn_models_start_at_the_network(kind, dtype):
    base = small_cnn(dtype=dtype)
    X = rows(9, 0, dtype)
    model = feature_model(kind, base, output_scale=0.5)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(model(X), 0.5 * base(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("pooling", ["avg", "max", "none"])
@pytest.mark.parametrize("kind", ["fixed", "adaptive"])
def test_layerwise_conv_linearisation_matches_the_jvp(pooling, kind):
    base = small_cnn(pooling)
    model = feature_model(kind, base)
    assert model._conv_plan is not None  # the layer-wise path is the one under test
    randomize(model, 0.2, seed=4)
    X = rows(11, 1)
    torch.testing.assert_close(model(X), jvp_reference(base, model, X), rtol=1e-12, atol=1e-12)


def test_other_networks_go_through_the_jvp():
    base = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 2, 3), nn.Tanh(),
                         nn.Flatten(), nn.Linear(72, 2)).to(DTYPE)
    assert conv_tangent_plan(base) is None
    model = LinearizedNet(base)
    randomize(model, 0.2, seed=1)
    X = rows(5, 2)
    torch.testing.assert_close(model(X), jvp_reference(base, model, X), rtol=1e-12, atol=1e-12)
    # The plan's own evaluation equals the JVP for a network it accepts.
    convnet = small_cnn("max")
    lin = LinearizedNet(convnet)
    randomize(lin, 0.1, seed=3)
    plan = conv_tangent_plan(convnet)
    torch.testing.assert_close(linearized_forward(X, plan, lin.initial_params,
                                                  lin.parameter_change()),
                               jvp_reference(convnet, lin, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_adaptive_cnn_with_identity_transforms_is_exactly_linearized(bias):
    base = small_cnn(bias=bias, dtype=torch.float32)
    adaptive = AdaptiveNet(base)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for key in adaptive.K:
            adaptive.K[key].copy_(0.1 * torch.randn(adaptive.K[key].shape, generator=generator))
    fixed = LinearizedNet(base)
    with torch.no_grad():
        for name, change in adaptive.parameter_change().items():
            fixed.delta[name.replace(".", "_")].copy_(change)
    X = rows(13, 2, torch.float32)
    assert torch.equal(adaptive(X), fixed(X))


def test_adaptive_conv_factors_have_the_patch_shapes_and_multiply():
    base = small_cnn()
    model = AdaptiveNet(base)
    # Conv 1→3 (3×3), conv 3→4 (3×3), dense 16→5, dense 5→3; bias as a constant input.
    shapes = {key: (tuple(model.M1[key].shape), tuple(model.K[key].shape),
                    tuple(model.M2[key].shape)) for key, _, _ in model.layers}
    assert list(shapes.values()) == [
        ((3, 3), (3, 10), (10, 10)),
        ((4, 4), (4, 28), (28, 28)),
        ((5, 5), (5, 17), (17, 17)),
        ((3, 3), (3, 6), (6, 6)),
    ]
    randomize(model, 0.3, seed=1)
    change = model.parameter_change()
    for key, weight_name, bias_name in model.layers:
        product = (model.M1[key] @ model.K[key] @ model.M2[key]).detach()
        weight = change[weight_name]
        assert weight.shape == base.get_parameter(weight_name).shape
        stacked = torch.cat([weight.reshape(len(weight), -1), change[bias_name][:, None]], 1)
        torch.testing.assert_close(stacked, product)


@pytest.mark.parametrize("make", [lambda: mlp(6, 7, 2, d_out=3, seed=0),
                                  lambda: small_cnn(dtype=torch.float32)])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_initial_parameters_are_buffers_that_travel_with_the_module(make, kind):
    base = make()
    model = feature_model(kind, base)
    theta0 = {name: value.detach().clone() for name, value in base.named_parameters()}
    state = model.state_dict()
    for name, value in theta0.items():
        key = "theta0_" + name.replace(".", "_")
        assert torch.equal(state[key], value)
    # θ0 is state, not a trainable tensor, and a copy: changing the base changes nothing.
    assert not any(name.startswith("theta0") for name, _ in model.named_parameters())
    d = 64 if isinstance(base[0], nn.Unflatten) else 6
    X = torch.randn(4, d, generator=torch.Generator().manual_seed(1))
    before = model(X).detach().clone()
    with torch.no_grad():
        for p in base.parameters():
            p.add_(1.0)
    torch.testing.assert_close(model(X), before)
    # .double() converts θ0 with everything else; the model then runs in float64.
    model.double()
    assert all(v.dtype == DTYPE for v in model.initial_params.values())
    torch.testing.assert_close(model(X.double()), before.double(), rtol=1e-5, atol=1e-6)
    # .to(device) moves θ0 (the CPU is the device every machine has).
    assert all(v.device.type == "cpu" for v in model.to("cpu").initial_params.values())
    # A fresh model with other θ0 reproduces the outputs once it loads the state dict.
    other = feature_model(kind, make()).double()
    with torch.no_grad():
        for name, value in other.state_dict().items():
            if name.startswith("theta0"):
                value.add_(0.5)
    if kind != "full":  # the full network's outputs do not depend on θ0
        assert not torch.equal(other(X.double()), model(X.double()))
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other(X.double()), model(X.double()), rtol=0, atol=0)


def test_fit_classifier_trains_an_adaptive_cnn():
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    templates = torch.randn(3, 64, generator=generator)
    X = templates[y] + 0.3 * torch.randn(60, 64, generator=generator)
    model = AdaptiveNet(small_cnn(dtype=torch.float32))
    fit = fit_classifier(X, y, X, y, model, optimizer="adam", lr=0.01, batch_size=20,
                         max_epochs=30, patience=None)
    assert fit.train_losses[-1] < 0.5 * fit.train_losses[0]
    assert any(value > 0 for pair in model.transform_change().values() for value in pair)
