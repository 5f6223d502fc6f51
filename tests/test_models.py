import math

import pytest
import torch
from torch import nn

from atf_lite.networks.mlp import mlp
from atf_lite.networks.training import train


def test_mlp_architecture_and_initialisation():
    model = mlp(784, 256, 2, seed=0)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 256), (256, 1)]
    assert sum(isinstance(m, nn.ReLU) for m in model) == 2
    for layer in linears[:2]:
        # He initialisation: empirical variance of the weights close to 2 / fan_in.
        ratio = layer.weight.var().item() / (2.0 / layer.in_features)
        assert abs(ratio - 1.0) < 0.05
        assert torch.count_nonzero(layer.bias) == 0
    assert torch.equal(mlp(5, 4, 1, seed=3)[0].weight, mlp(5, 4, 1, seed=3)[0].weight)
    assert not torch.equal(mlp(5, 4, 1, seed=3)[0].weight, mlp(5, 4, 1, seed=4)[0].weight)
    assert all(p.bias is None for p in mlp(3, 4, 2, bias=False) if isinstance(p, nn.Linear))
    assert len(mlp(3, 4, 0)) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [({"width": 0}, "width"), ({"depth": -1}, "depth"), ({"d_in": 2.5}, "d_in")],
)
def test_mlp_bad_input(kwargs, match):
    args = {"d_in": 3, "width": 4, "depth": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        mlp(**args)


def regression_problem(n=64, d=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator)
    y = torch.sin(X @ torch.randn(d, generator=generator))
    return X, y


def test_train_reduces_loss_and_is_deterministic():
    X, y = regression_problem()
    runs = []
    for _ in range(2):
        model = mlp(5, 64, 2, seed=1)
        result = train(X, y, model, epochs=60, lr=0.05, batch_size=16, seed=2)
        runs.append(result)
        # params1 are the trained model's own parameters, detached copies.
        for name, value in model.named_parameters():
            assert (
                torch.equal(result.params1[name], value) and not result.params1[name].requires_grad
            )
    first, second = runs
    assert first.losses == second.losses
    assert first.final_loss < 0.2 * torch.mean(y**2).item()
    for name in first.params0:
        assert torch.equal(first.params1[name], second.params1[name])
        assert not torch.equal(first.params0[name], first.params1[name])


def test_train_full_batch_cosine_and_cross_entropy():
    X, y = regression_problem(n=40)
    model = mlp(5, 32, 1, seed=0)
    result = train(X, y, model, epochs=5, lr=0.01, schedule="constant")
    assert len(result.losses) == 5
    labels = (y > 0).long()
    classifier = mlp(5, 32, 1, d_out=2, seed=0)
    result = train(X, labels, classifier, epochs=100, lr=0.1, loss="cross_entropy")
    accuracy = (classifier(X).argmax(1) == labels).float().mean().item()
    assert result.losses[-1] < result.losses[0] and accuracy > 0.9


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"schedule": "step"}, ValueError, "schedule"),
        ({"loss": "hinge"}, ValueError, "loss"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_train_bad_arguments(kwargs, error, match):
    X, y = regression_problem(n=8)
    args = {"epochs": 1, "lr": 0.1} | kwargs
    with pytest.raises(error, match=match):
        train(X, y, mlp(5, 4, 1), **args)


def test_train_bad_data_and_divergence():
    X, y = regression_problem(n=8)
    with pytest.raises(ValueError, match="X must be"):
        train(X, y[:4], mlp(5, 4, 1), epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="NaN"):
        train(X, y * math.nan, mlp(5, 4, 1), epochs=1, lr=0.1)
    with pytest.raises(FloatingPointError, match="diverged"):
        train(X, 100 * y, mlp(5, 64, 3), epochs=50, lr=10.0, momentum=0.99)
