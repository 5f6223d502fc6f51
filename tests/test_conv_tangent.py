"""Structured tangent features and kernels of convolutional networks against autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from atf_lite.networks.cnn import cnn, image_shape_for
from atf_lite.networks.conv_path_averaging import cnn_path_averaged_features
from atf_lite.networks.conv_tangent import (
    cnn_layer_signals,
    cnn_tangent_kernel,
    conv_patches,
    gram_term,
    is_structured_cnn,
    layer_features,
    patch_gram_is_cheaper,
)
from atf_lite.networks.functional import flatten_params, model_output
from atf_lite.networks.kernels import layer_adapted_kernel
from atf_lite.networks.path_averaging import path_averaged_features
from atf_lite.networks.tangent import (
    naive_tangent_features,
    naive_tangent_kernel,
    tangent_features,
    tangent_kernel,
)

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # torch notes that an even kernel with "same" padding pads a copy of the input.
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]
DTYPE = torch.float64


def rel_err(a, b):
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


def seeded(model, seed):
    """``model`` in float64 with its parameters (biases included) drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    model = model.to(DTYPE)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=DTYPE) / p[0].numel() ** 0.5)
    return model


ARCHITECTURES = {
    # The book's network: same padding, average pooling, flat inputs [n, 64].
    "book": lambda: cnn((1, 8, 8), (3, 4), hidden=(5,), flat_input=True, dtype=DTYPE),
    # Stride, dilation, a non-square kernel, max pooling, two dense layers.
    "strided-dilated": lambda: nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Tanh(),
        nn.Conv2d(3, 4, (2, 3), dilation=(2, 1), padding=(1, 0)), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 1),
    ),
    # "same" padding with an even kernel (asymmetric), no biases, adaptive pooling.
    "same-even-no-bias": lambda: nn.Sequential(
        nn.Conv2d(2, 3, 4, padding="same", bias=False), nn.GELU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(12, 1, bias=False),
    ),
    # "valid" padding, three convolutions, leaky ReLU and adaptive max pooling.
    "valid-three-convs": lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, padding="valid"), nn.LeakyReLU(0.1),
        nn.Conv2d(4, 4, 1), nn.Softplus(),
        nn.Conv2d(4, 2, 3, stride=(1, 2)), nn.ReLU(), nn.AdaptiveMaxPool2d((2, 1)),
        nn.Flatten(), nn.Linear(4, 1),
    ),
    # A dense layer applied at every row position (P > 1 for a dense layer).
    "dense-over-positions": lambda: nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Linear(10, 4), nn.Tanh(),
        nn.Flatten(), nn.Linear(3 * 10 * 4, 1),
    ),
    # An MLP on images (Flatten first): not an MLP for tangent.py, fine for the conv path.
    "flatten-mlp": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(200, 6), nn.ReLU(), nn.Linear(6, 1)
    ),
}


def images(name, n, seed):
    generator = torch.Generator().manual_seed(seed)
    if name == "book":
        return torch.randn(n, 64, generator=generator, dtype=DTYPE)
    return torch.randn(n, 2, 10, 10, generator=generator, dtype=DTYPE)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_structured_kernel_matches_jacobian_and_autograd_loop(name):
    model = seeded(ARCHITECTURES[name](), seed=len(name))
    assert is_structured_cnn(model)
    X1, X2 = images(name, 7, 0), images(name, 5, 1)
    reference = naive_tangent_kernel(X1, model)
    structured = tangent_kernel(X1, model, method="structured")
    assert rel_err(structured, reference) < 1e-6
    assert rel_err(tangent_kernel(X1, model, method="jacobian"), reference) < 1e-6
    assert rel_err(tangent_kernel(X1, model), reference) < 1e-6  # auto
    cross = naive_tangent_kernel(X1, model, X2=X2)
    assert rel_err(tangent_kernel(X1, model, X2=X2, method="structured"), cross) < 1e-6
    # Blocks of two rows give the same kernel.
    assert rel_err(cnn_tangent_kernel(X1, model, batch_size=2), reference) < 1e-12
    torch.testing.assert_close(structured, structured.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_structured_features_match_autograd_loop(name):
    model = seeded(ARCHITECTURES[name](), seed=3)
    X = images(name, 6, 2)
    reference = naive_tangent_features(X, model)
    Phi = tangent_features(X, model)
    assert Phi.shape == reference.shape
    assert rel_err(Phi, reference) < 1e-6
    assert rel_err(tangent_features(X, model, batch_size=4), reference) < 1e-6


def test_patches_are_those_of_unfold():
    X = torch.randn(3, 2, 9, 11, dtype=DTYPE, generator=torch.Generator().manual_seed(0))
    for conv in (
        nn.Conv2d(2, 3, (2, 3), stride=(2, 1), dilation=(1, 2), padding=(1, 2)),
        nn.Conv2d(2, 3, 3, padding="same", dilation=2),
        nn.Conv2d(2, 3, 3),
    ):
        padding = conv.padding if not isinstance(conv.padding, str) else (
            (2, 2) if conv.padding == "same" else (0, 0))
        expected = F.unfold(X, conv.kernel_size, dilation=conv.dilation, padding=padding,
                            stride=conv.stride)
        assert torch.equal(conv_patches(X, conv), expected)


def test_both_contractions_agree_and_the_cheaper_is_chosen():
    model = seeded(ARCHITECTURES["strided-dilated"](), seed=1)
    X1, X2 = images("strided-dilated", 4, 0), images("strided-dilated", 3, 1)
    for (H1, G1, bias), (H2, G2, _) in zip(cnn_layer_signals(X1, model),
                                           cnn_layer_signals(X2, model)):
        via_features = layer_features(H1, G1, bias) @ layer_features(H2, G2, bias).T
        torch.testing.assert_close(gram_term(H1, G1, H2, G2, bias), via_features)
    # Dense layers (one position) take the Gram form, convolutions the features form.
    assert patch_gram_is_cheaper(1, 256, 784)
    assert not patch_gram_is_cheaper(196, 16, 72)


def test_unsupported_modules_raise_naming_the_module():
    X = images("strided-dilated", 3, 0)
    for model, fragment in (
        (nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(128, 1)), "groups"),
        (nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(),
                       nn.Linear(200, 1)), "padding_mode"),
        (nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(128, 1)),
         "BatchNorm2d"),
    ):
        model = model.to(DTYPE).eval()
        assert not is_structured_cnn(model)
        with pytest.raises(TypeError, match=fragment):
            tangent_kernel(X, model, method="structured")
        # The Jacobian method still works for any single-output model.
        assert tangent_kernel(X, model, method="jacobian").shape == (3, 3)


def kronecker_transformed_kernel(X, model, transforms):
    """Reference: Φ with each layer's block transformed by Γ = A ⊗ B on [W, b] flattened."""
    Phi = naive_tangent_features(X, model)
    columns, start = [], 0
    layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    for module, (A, B) in zip(layers, transforms):
        m, d = module.weight.shape[0], module.weight[0].numel()
        block = Phi[:, start : start + m * d].reshape(len(X), m, d)
        start += m * d
        if module.bias is not None:
            block = torch.cat([block, Phi[:, start : start + m, None]], dim=2)
            start += m
        columns.append((A.T @ block @ B).reshape(len(X), -1))
    features = torch.cat(columns, dim=1)
    return features @ features.T


@pytest.mark.parametrize("name", ["book", "strided-dilated", "same-even-no-bias"])
def test_layer_adapted_kernel_of_a_cnn_matches_transformed_jacobian(name):
    model = seeded(ARCHITECTURES[name](), seed=5)
    X = images(name, 6, 3)
    generator = torch.Generator().manual_seed(9)
    transforms = []
    for module in model:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            m = module.weight.shape[0]
            d = module.weight[0].numel() + (module.bias is not None)
            transforms.append(
                (torch.eye(m, dtype=DTYPE) + 0.3 * torch.randn(m, m, generator=generator,
                                                                 dtype=DTYPE),
                 torch.eye(d, dtype=DTYPE) + 0.3 * torch.randn(d, d, generator=generator,
                                                                 dtype=DTYPE))
            )
    expected = kronecker_transformed_kernel(X, model, transforms)
    assert rel_err(layer_adapted_kernel(X, model, transforms), expected) < 1e-10
    identity = layer_adapted_kernel(X, model, [None] * len(transforms))
    assert identity.dtype == torch.float64
    assert rel_err(identity, naive_tangent_kernel(X, model)) < 1e-10
    with pytest.raises(ValueError, match="one entry per"):
        layer_adapted_kernel(X, model, transforms[:-1])
    with pytest.raises(ValueError, match=r"transforms\[0\]\[1\] \(B\)"):
        layer_adapted_kernel(X, model, [(transforms[0][0], torch.eye(2))] + transforms[1:])


def test_path_averaged_features_of_a_cnn():
    model = seeded(ARCHITECTURES["book"](), seed=2)
    X = images("book", 8, 4)
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(6)
    theta1 = {k: v + 0.2 * torch.randn(v.shape, generator=generator, dtype=DTYPE)
              for k, v in theta0.items()}
    ours = cnn_path_averaged_features(X, model, theta0, theta1, nodes=24, batch_size=3)
    generic = path_averaged_features(X, model, theta0, theta1, nodes=24)
    assert rel_err(ours.Phi_bar, generic.Phi_bar) < 1e-10
    assert ours.residual == pytest.approx(generic.residual, rel=1e-8)
    # More nodes: the identity f(θ1) − f(θ0) = Φ̄ (θ1 − θ0) holds more closely.
    fine = cnn_path_averaged_features(X, model, theta0, theta1, nodes=256)
    assert fine.residual < 0.2 * ours.residual
    change = model_output(X, model, theta1) - model_output(X, model, theta0)
    predicted = fine.Phi_bar @ (flatten_params(theta1) - flatten_params(theta0))
    assert float((change - predicted).norm() / change.norm()) == pytest.approx(fine.residual)
    with pytest.raises(ValueError, match="identical outputs"):
        cnn_path_averaged_features(X, model, theta0, theta0, nodes=2)


def test_cnn_builder_shapes_initialisation_and_seed(monkeypatch):
    monkeypatch.delenv("ATF_LITE_PERTURB", raising=False)
    net = cnn((1, 28, 28), (8, 16), d_out=10, flat_input=True, seed=3)
    assert net(torch.zeros(2, 784)).shape == (2, 10)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(8, 1, 3, 3), (16, 8, 3, 3)]
    assert net[-1].in_features == 7 * 7 * 16
    assert all(torch.count_nonzero(c.bias) == 0 for c in convs)
    # He initialisation: variance 2 / fan_in (fan_in = c_in·k·k), checked on a large layer.
    wide = cnn((64, 8, 8), (256,), seed=0)
    weight = wide[0].weight.detach()
    assert float(weight.var()) == pytest.approx(2 / (64 * 9), rel=0.02)
    lecun = cnn((64, 8, 8), (256,), seed=0, init="lecun")[0].weight.detach()
    assert float(lecun.var()) == pytest.approx(1 / (64 * 9), rel=0.02)
    assert float(lecun.abs().max()) <= 2 * (1 / (64 * 9)) ** 0.5 / 0.8796 + 1e-6
    # Seeded: the same seed gives the same network, another seed another one.
    again = cnn((1, 28, 28), (8, 16), d_out=10, flat_input=True, seed=3)
    other = cnn((1, 28, 28), (8, 16), d_out=10, flat_input=True, seed=4)
    assert torch.equal(flatten_params(dict(net.named_parameters())),
                       flatten_params(dict(again.named_parameters())))
    assert not torch.equal(net[1].weight, other[1].weight)
    assert image_shape_for(784) == (1, 28, 28) and image_shape_for(64) == (1, 8, 8)
    for bad, match in (({"channels": ()}, "channels"), ({"pooling": "sum"}, "pooling"),
                       ({"init": "xavier"}, "init"), ({"image_shape": (28, 28)}, "image_shape")):
        with pytest.raises(ValueError, match=match):
            cnn(**{"image_shape": (1, 8, 8), **bad})
    with pytest.raises(ValueError, match="not a square"):
        image_shape_for(10)


def test_cnn_builder_follows_the_perturbation_switch(monkeypatch):
    monkeypatch.delenv("ATF_LITE_PERTURB", raising=False)
    plain = flatten_params(dict(cnn((1, 8, 8), seed=0).named_parameters())).detach()
    monkeypatch.setenv("ATF_LITE_PERTURB", "1")
    moved = flatten_params(dict(cnn((1, 8, 8), seed=0).named_parameters())).detach()
    changed = plain != moved
    assert changed.any()
    # At most one ulp each: the next float towards the moved value is the moved value.
    towards = torch.nextafter(plain[changed], moved[changed])
    assert torch.equal(towards, moved[changed])
    assert np.isclose(float((plain - moved).abs().max()), 0, atol=1e-6)
