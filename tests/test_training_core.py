"""The training-loop core shared by the trainers, the thread limiter, and the linearised module.

The trainers were rewritten around one core (:func:`atf_lite.networks.training.gradient_steps`);
a long experiment and stored results depend on their numbers, so each trainer is compared bit
for bit with a verbatim copy of the loop it had before (the ``_reference_*`` functions below),
on the same machine and thread count.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits
from torch import nn

from atf_lite._threads import limit_threads, single_threaded
from atf_lite.networks.classifier import evaluate_classifier, fit_classifier
from atf_lite.networks.feature_models import feature_model
from atf_lite.networks.functional import LinearizedModel, linearize, model_output
from atf_lite.networks.linear import train_linearized, train_network
from atf_lite.networks.mlp import mlp
from atf_lite.networks.training import epoch_order, gradient_steps, make_optimizer, train

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------
# The loops as they were before they shared a core (references for bit-for-bit comparison)
# --------------------------------------------------------------------------------------------


def _reference_train(X, y, model, *, epochs, lr, momentum, batch_size, schedule, loss,
                     weight_decay, seed):
    n = len(X)
    batch = n if batch_size is None else int(batch_size)
    if loss == "mse":
        def criterion(out, target):
            return torch.mean((out.reshape(target.shape) - target) ** 2)
    else:
        criterion = nn.functional.cross_entropy
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                weight_decay=weight_decay)
    total_steps = epochs * math.ceil(n / batch)
    scheduler = None
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps)))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if batch < n else torch.arange(n)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            value = criterion(model(X[index]), y[index])
            value.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        with torch.no_grad():
            losses.append(float(criterion(model(X), y)))
    model.eval()
    return losses, {k: v.detach().clone() for k, v in model.named_parameters()}


def _reference_fit(X_train, y_train, X_val, y_val, model, *, optimizer, lr, momentum,
                   batch_size, max_epochs, patience, seed, epoch_subset):
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    else:
        opt = torch.optim.Adam(params, lr=lr)
    n_rows = len(X_train)
    n = n_rows if epoch_subset is None else int(epoch_subset)
    batch = min(int(batch_size), n)
    generator = torch.Generator().manual_seed(seed)
    best_key, best_state, best_epoch = None, None, 0
    train_losses, val_losses, val_errors = [], [], []
    seen = torch.zeros(n_rows, dtype=torch.bool)
    model.train()
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(n_rows, generator=generator)[:n]
        seen[order] = True
        total = 0.0
        for start in range(0, n, batch):
            index = order[start : start + batch]
            opt.zero_grad(set_to_none=True)
            value = nn.functional.cross_entropy(model(X_train[index]), y_train[index])
            value.backward()
            opt.step()
            total += float(value.detach()) * len(index)
        score = evaluate_classifier(X_val, y_val, model)
        train_losses.append(total / n)
        val_losses.append(score.loss)
        val_errors.append(score.error)
        key = (score.error, score.loss)
        if best_key is None or key < best_key:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif patience is not None and epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return best_epoch, train_losses, val_losses, val_errors, model.state_dict()


def _reference_descend(forward, params, y, steps, lr, momentum):
    trainable = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    optimizer = torch.optim.SGD(trainable.values(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * torch.sum((forward(trainable) - y) ** 2)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        losses.append(float(0.5 * torch.sum((forward(trainable) - y) ** 2)))
    return {k: v.detach() for k, v in trainable.items()}, np.array(losses)


def regression(n=40, d=5, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator, dtype=dtype)
    return X, torch.sin(X @ torch.randn(d, generator=generator, dtype=dtype))


def classes(n=48, d=5, seed=1):
    X, _ = regression(n, d, seed)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0.3).long()


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------
# Bit for bit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 16, 7])
@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_train_is_bit_for_bit_the_loop_it_replaced(batch_size, schedule):
    X, y = regression()
    options = dict(epochs=6, lr=0.05, momentum=0.9, batch_size=batch_size, schedule=schedule,
                   loss="mse", weight_decay=1e-3, seed=3)
    model = mlp(5, 16, 2, seed=1)
    reference = copy.deepcopy(model)
    result = train(X, y, model, **options)
    losses, params = _reference_train(X, y, reference, **options)
    assert result.losses == losses
    assert same(result.params1, params)


def test_train_cross_entropy_is_bit_for_bit():
    X, labels = classes()
    options = dict(epochs=4, lr=0.1, momentum=0.9, batch_size=8, schedule="cosine",
                   loss="cross_entropy", weight_decay=0.0, seed=0)
    model = mlp(5, 8, 1, d_out=3, seed=2)
    reference = copy.deepcopy(model)
    result = train(X, labels, model, **options)
    losses, params = _reference_train(X, labels, reference, **options)
    assert result.losses == losses and same(result.params1, params)


@pytest.mark.parametrize("kind", ["fixed", "adaptive", "full"])
@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.1), ("adam", 0.01)])
@pytest.mark.parametrize("epoch_subset", [None, 30])
def test_fit_classifier_is_bit_for_bit_the_loop_it_replaced(kind, optimizer, lr, epoch_subset):
    X, labels = classes()
    X_val, y_val = classes(20, seed=7)
    options = dict(optimizer=optimizer, lr=lr, momentum=0.9, batch_size=8, max_epochs=10,
                   patience=3, seed=5, epoch_subset=epoch_subset)
    model = feature_model(kind, mlp(5, 8, 2, d_out=3, seed=4))
    reference = copy.deepcopy(model)
    fit = fit_classifier(X, labels, X_val, y_val, model, **options)
    best, train_losses, val_losses, val_errors, state = _reference_fit(
        X, labels, X_val, y_val, reference, **options)
    assert fit.best_epoch == best
    assert (fit.train_losses, fit.val_losses, fit.val_errors) == (
        train_losses, val_losses, val_errors)
    assert same(model.state_dict(), state)


@pytest.mark.parametrize("momentum", [0.0, 0.6])
def test_gradient_descent_is_bit_for_bit_the_loop_it_replaced(momentum):
    X, y = regression(12, 3, seed=2, dtype=torch.float64)
    model = mlp(3, 10, 2, seed=6, dtype=torch.float64)
    theta0 = {k: v.detach() for k, v in model.named_parameters()}
    net = train_network(X, y, model, steps=25, lr=0.05, momentum=momentum)
    params, losses = _reference_descend(
        lambda p: torch.func.functional_call(model, p, (X,)).reshape(-1), theta0, y, 25, 0.05,
        momentum)
    assert same(net.params, params) and np.array_equal(net.losses, losses)
    f_lin = linearize(model)
    lin = train_linearized(X, y, model, steps=25, lr=0.05, momentum=momentum)
    params, losses = _reference_descend(lambda p: f_lin(X, p).reshape(-1), theta0, y, 25, 0.05,
                                        momentum)
    assert same(lin.params, params) and np.array_equal(lin.losses, losses)


# --------------------------------------------------------------------------------------------
# The core itself
# --------------------------------------------------------------------------------------------


def test_gradient_steps_records_the_loss_before_each_step_and_calls_the_hooks():
    weight = torch.tensor([2.0], requires_grad=True)
    optimizer = make_optimizer("sgd", [weight], lr=0.25)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    calls = []
    values = gradient_steps(optimizer, lambda batch: batch * (weight**2).sum(), [1.0, 1.0, 2.0],
                            scheduler=scheduler, before_step=lambda: calls.append(1))
    # w ← w − 0.25 · 2 b w: 2 → 1 → 0.5; the loss is read before each step.
    assert values == [4.0, 1.0, 0.5] and len(calls) == 3
    assert float(weight.detach()) == 0.0 and scheduler.last_epoch == 3


def test_divergence_and_a_bad_start_are_told_apart():
    # w ← w − 10 · 2w = −19 w: the float32 loss w² overflows at step 16.
    weight = torch.tensor([1.0], requires_grad=True)
    optimizer = make_optimizer("sgd", [weight], lr=10.0)
    with pytest.raises(FloatingPointError, match=r"demo diverged \(loss inf\) at step 16; lower"):
        gradient_steps(optimizer, lambda b: (weight**2).sum(), range(30), what="demo")
    weight = torch.tensor([math.inf], requires_grad=True)
    optimizer = make_optimizer("sgd", [weight], lr=0.1)
    with pytest.raises(FloatingPointError, match="at the initial parameters, before any step"):
        gradient_steps(optimizer, lambda b: (weight**2).sum(), range(3))


def test_nan_targets_are_bad_input_not_divergence():
    X, y = regression(8, 3)
    bad = y.clone()
    bad[2] = math.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        train(X, bad, mlp(3, 4, 1), epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="y contains NaN"):
        train_linearized(X, bad, mlp(3, 4, 1), steps=2, lr=0.1)
    with pytest.raises(ValueError, match="y contains NaN"):
        train_network(X, bad, mlp(3, 4, 1), steps=2, lr=0.1)
    broken = mlp(3, 4, 1)
    with torch.no_grad():
        broken[0].weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="parameter '0.weight' contains NaN"):
        train(X, y, broken, epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="parameter '0.weight' contains NaN"):
        train_network(X, y, broken, steps=1, lr=0.1)


def test_epoch_order_draws_only_when_shuffling():
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(epoch_order(5, generator, shuffle=False), torch.arange(5))
    first = epoch_order(6, generator, take=4)
    assert len(first) == 4 and len(set(first.tolist())) == 4
    assert torch.equal(first, torch.randperm(6, generator=torch.Generator().manual_seed(0))[:4])


# --------------------------------------------------------------------------------------------
# One thread limiter
# --------------------------------------------------------------------------------------------


def _blas_threads() -> int:
    return max(info["num_threads"] for info in threadpool_info())


def test_limit_threads_limits_and_restores_torch_and_blas():
    with limit_threads(None):  # the fixture holds one thread; None changes nothing
        assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    with threadpool_limits(limits=2):
        with limit_threads(1):
            assert torch.get_num_threads() == 1 and _blas_threads() == 1
            with limit_threads(1):
                pass
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2 and _blas_threads() == 2
        with pytest.raises(RuntimeError), limit_threads(1):
            raise RuntimeError("restored on the way out")
        assert torch.get_num_threads() == 2 and _blas_threads() == 2

        @single_threaded
        def threads_inside(depth):
            if depth:
                return threads_inside(depth - 1)
            return torch.get_num_threads(), _blas_threads()

        assert threads_inside(2) == (1, 1)
        assert torch.get_num_threads() == 2 and _blas_threads() == 2
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="count"):
            limit_threads(bad)


# --------------------------------------------------------------------------------------------
# θ0 of the linearised model is module state
# --------------------------------------------------------------------------------------------


def test_linearized_model_carries_theta0_as_buffers():
    model = mlp(3, 5, 1, seed=1)
    X = regression(6, 3)[0]
    f_lin = linearize(model)
    assert isinstance(f_lin, LinearizedModel)
    assert list(f_lin.parameters()) == []  # the model is not a submodule
    state = f_lin.state_dict()
    assert len(state) == len(list(model.parameters()))
    for (name, value), buffer in zip(model.named_parameters(), state.values(), strict=True):
        assert torch.equal(value, buffer) and f_lin.theta0[name] is not value
    torch.testing.assert_close(f_lin(X)[:, 0], model_output(X, model))
    # .double() moves θ0: with a float64 copy of the model the expansion point is float64 too.
    f64 = copy.deepcopy(f_lin).double()
    f64.model.double()
    assert all(v.dtype == torch.float64 for v in f64.state_dict().values())
    out = f64(X.double(), {k: v + 0.01 for k, v in f64.theta0.items()})
    assert out.dtype == torch.float64
    # load_state_dict restores the expansion point of another linearisation.
    other = linearize(mlp(3, 5, 1, seed=2))
    other.load_state_dict(state)
    torch.testing.assert_close(other(X), f_lin(X), rtol=0, atol=0)
