"""The classifier's reported numbers against independent computations on small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from atf_lite.networks.classifier import ClassifierScore, evaluate_classifier, fit_classifier
from atf_lite.networks.feature_models import FullNet
from atf_lite.networks.mlp import mlp

pytestmark = pytest.mark.usefixtures("one_thread")


def clusters(n, seed):
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return 1.5 * torch.eye(3, 4)[y] + 0.8 * torch.randn(n, 4, generator=generator), y


def direct_score(X, y, model):
    """Error and mean cross-entropy written out from the logits, in float64."""
    with torch.no_grad():
        logits = model(X).double().numpy()
    labels = y.numpy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.mean(log_softmax[np.arange(len(labels)), labels])
    error = np.mean(np.argmax(logits, axis=1) != labels)
    return error, loss


@pytest.mark.parametrize("batch_size", [1, 4, 7, 4096])
def test_evaluate_classifier_is_the_mean_error_and_cross_entropy(batch_size):
    X, y = clusters(23, 0)
    model = FullNet(mlp(4, 6, 1, d_out=3, seed=1))
    score = evaluate_classifier(X, y, model, batch_size=batch_size)
    error, loss = direct_score(X, y, model)
    assert isinstance(score, ClassifierScore)
    assert score.error == pytest.approx(error, abs=1e-12)
    assert score.loss == pytest.approx(loss, rel=1e-6)
    assert 0 < score.error < 1 and score.loss > 0


def test_fit_reports_the_losses_and_errors_it_kept():
    X, y = clusters(30, 2)
    X_val, y_val = clusters(21, 3)
    model = FullNet(mlp(4, 8, 1, d_out=3, seed=0))
    fit = fit_classifier(X, y, X_val, y_val, model, lr=0.05, batch_size=7, max_epochs=6,
                         patience=None, seed=1)
    error, loss = direct_score(X_val, y_val, model)  # the restored (best) epoch
    assert fit.val_errors[fit.best_epoch - 1] == pytest.approx(error, abs=1e-12)
    assert fit.val_losses[fit.best_epoch - 1] == pytest.approx(loss, rel=1e-6)
    assert fit.best_val_error == min(fit.val_errors)
    assert fit.epochs_run == 6 == len(fit.train_losses) and fit.distinct_examples == 30
    # The training loss of an epoch is the mean over its minibatches weighted by their sizes
    # (5 batches of 7, 7, 7, 7, 2 rows), each evaluated before its step: recompute epoch 1.
    replay = FullNet(mlp(4, 8, 1, d_out=3, seed=0))
    opt = torch.optim.SGD(replay.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(1))
    total = 0.0
    for start in range(0, 30, 7):
        index = order[start : start + 7]
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(replay(X[index]), y[index])
        value.backward()
        opt.step()
        total += float(value.detach()) * len(index)
    assert fit.train_losses[0] == pytest.approx(total / 30, rel=1e-6)


def test_classifier_bad_input_is_named():
    X, y = clusters(12, 0)
    model = FullNet(mlp(4, 5, 1, d_out=3, seed=0))
    with pytest.raises(ValueError, match=r"X must be \[n, d\].*n ≥ 1"):
        evaluate_classifier(X[:0], y[:0], model)  # was a ZeroDivisionError
    for bad in (-1, 0, 2.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size"):
            evaluate_classifier(X, y, model, batch_size=bad)  # -1 used to return (0.0, 0.0)
    assert evaluate_classifier(X, y, model, batch_size=np.int64(5)) == evaluate_classifier(
        X, y, model, batch_size=5)
    bad_y = y.clone()
    bad_y[0] = 5
    with pytest.raises(ValueError, match="y holds class 5"):
        evaluate_classifier(X, bad_y, model)
    X_nan = X.clone()
    X_nan[1, 1] = math.nan
    with pytest.raises(ValueError, match="X_train contains NaN"):
        fit_classifier(X_nan, y, X, y, model)
    fit = fit_classifier(X, y, X, y, model, batch_size=np.int64(4), max_epochs=np.int64(1),
                         seed=-1)  # NumPy integers and negative seeds are valid
    assert fit.epochs_run == 1
