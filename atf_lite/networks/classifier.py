"""Minibatch classification training with early stopping on a validation split (chapter 8).

:func:`fit_classifier` trains any model with ``[n, classes]`` logits (in particular the
:mod:`atf_lite.networks.feature_models`) by cross-entropy and keeps the epoch with the lowest
validation error; :func:`evaluate_classifier` scores it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import (
    check_bool,
    check_int,
    check_option,
    check_real,
    check_seed,
    check_tensor,
    describe,
)
from ..progress import progress_bar
from .functional import check_model
from .training import (
    OPTIMIZERS,
    check_finite_parameters,
    epoch_order,
    gradient_steps,
    make_optimizer,
)

__all__ = ["OPTIMIZERS", "FitResult", "ClassifierScore", "evaluate_classifier", "fit_classifier"]


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_classifier`.

    ``best_epoch``: the epoch (1-based) whose parameters were kept, the one with the lowest
    validation error (ties: lowest validation loss); ``epochs_run``: epochs actually trained;
    ``train_losses``, ``val_losses``, ``val_errors``: per epoch (``[epochs_run]``);
    ``distinct_examples``: how many different training examples the kept parameters were
    trained on (all ``n`` for a fixed training set; with ``epoch_subset`` the size of the union
    of the subsets drawn up to ``best_epoch``); ``distinct_examples_total``: the same up to the
    last epoch run.
    """

    best_epoch: int
    epochs_run: int
    train_losses: list[float]
    val_losses: list[float]
    val_errors: list[float]
    distinct_examples: int = 0
    distinct_examples_total: int = 0

    @property
    def best_val_error(self) -> float:
        """The validation error of the kept epoch."""
        return self.val_errors[self.best_epoch - 1]


def _check_classification_data(X: torch.Tensor, y: torch.Tensor, xn: str, yn: str) -> None:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{xn} must be a torch tensor, got {describe(X)}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{yn} must be a torch tensor, got {describe(y)}")
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"{xn} must be [n, d] and {yn} [n] with n ≥ 1; got {tuple(X.shape)} and "
            f"{tuple(y.shape)}"
        )
    check_tensor(X, xn, ndim=2)
    if y.dtype != torch.int64:
        raise TypeError(f"{yn} must hold int64 class indices, got {y.dtype}")
    if int(y.min()) < 0:
        raise ValueError(f"{yn} must hold class indices ≥ 0, found {int(y.min())}")


@dataclass(frozen=True)
class ClassifierScore:
    """``error``: misclassified fraction; ``loss``: mean cross-entropy (see
    :func:`evaluate_classifier`)."""

    error: float
    loss: float


@torch.no_grad()
def evaluate_classifier(
    X: torch.Tensor, y: torch.Tensor, model: nn.Module, *, batch_size: int = 4096
) -> ClassifierScore:
    """Misclassified fraction and mean cross-entropy of ``model`` on ``(X, y)``.

    ``X``: ``[n, d]`` (``n ≥ 1``), ``y``: int64 class indices ``[n]``; the model's
    ``[n, classes]`` logits are evaluated in batches of ``batch_size`` rows.
    """
    check_model(model)
    _check_classification_data(X, y, "X", "y")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    errors, loss = 0, 0.0
    for start in range(0, len(X), batch_size):
        logits = model(X[start : start + batch_size])
        target = y[start : start + batch_size]
        if logits.ndim != 2 or len(logits) != len(target):
            raise ValueError(
                f"model must map [n, d] inputs to [n, classes] logits, got {tuple(logits.shape)}"
            )
        if int(target.max()) >= logits.shape[1]:
            raise ValueError(f"y holds class {int(target.max())}, the model has "
                             f"{logits.shape[1]} outputs")
        errors += int((logits.argmax(dim=1) != target).sum())
        loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
    return ClassifierScore(error=errors / len(X), loss=loss / len(X))


def fit_classifier(
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    model: nn.Module,
    *,
    optimizer: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 50,
    max_epochs: int = 200,
    patience: int | None = 30,
    seed: int = 0,
    epoch_subset: int | None = None,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` in place by minibatch cross-entropy with early stopping; keep the best epoch.

    ``X_train`` ``[n, d]``, ``y_train`` int64 ``[n]`` class indices; ``(X_val, y_val)`` is a
    validation split held out from the training data (never the test set).  ``optimizer``:
    ``"sgd"`` (with ``momentum``) or ``"adam"`` (default betas), constant learning rate ``lr``,
    over ``model``'s parameters that require gradients.  Each epoch is one pass over shuffled
    minibatches of ``min(batch_size, n)`` examples (order drawn from a generator seeded with
    ``seed``), followed by a validation check.  Training stops after ``max_epochs`` or once the
    validation error has not improved for ``patience`` epochs (``None``: never early); the
    parameters of the best epoch (lowest validation error, ties broken by validation loss) are
    restored.  Raises ``FloatingPointError`` if the training loss becomes non-finite.

    ``epoch_subset=m`` changes what an epoch is: each epoch draws a *fresh* uniformly random
    subset of ``m`` rows of ``(X_train, y_train)`` (without replacement, from the same seeded
    generator) and passes over it once.  This reproduces a data pipeline that shuffles a large
    pool and takes its first ``m`` examples anew every epoch: the model is nominally trained on
    ``m`` examples but sees many more distinct ones (``FitResult.distinct_examples``).
    """
    _check_classification_data(X_train, y_train, "X_train", "y_train")
    _check_classification_data(X_val, y_val, "X_val", "y_val")
    if X_val.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_val has {X_val.shape[1]} features, X_train has {X_train.shape[1]}")
    check_model(model)
    check_option(optimizer, "optimizer", OPTIMIZERS)
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    max_epochs = check_int(max_epochs, "max_epochs", minimum=1)
    patience = check_int(patience, "patience", minimum=1, allow_none=True)
    epoch_subset = check_int(
        epoch_subset, "epoch_subset", minimum=1, maximum=len(X_train), allow_none=True
    )
    seed = check_seed(seed)
    if progress is not None:
        check_bool(progress, "progress")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    check_finite_parameters(model.named_parameters(), "model")
    with torch.no_grad():
        n_out = model(X_val[:1]).shape[1]
    if int(y_train.max()) >= n_out or int(y_val.max()) >= n_out:
        raise ValueError(f"labels exceed the model's {n_out} outputs")
    opt = make_optimizer(optimizer, params, lr=lr, momentum=momentum)
    n_rows = len(X_train)
    n = n_rows if epoch_subset is None else int(epoch_subset)
    batch = min(int(batch_size), n)
    generator = torch.Generator().manual_seed(seed)
    best_key, best_state, best_epoch = None, None, 0
    train_losses: list[float] = []
    val_losses: list[float] = []
    val_errors: list[float] = []
    seen = torch.zeros(n_rows, dtype=torch.bool)
    seen_at_best = n
    model.train()
    for epoch in progress_bar(
        range(1, max_epochs + 1), desc=f"fit ({n} examples)", enabled=progress
    ):
        # A permutation of all rows; its first n rows are this epoch's (fresh) subset.
        order = epoch_order(n_rows, generator, take=n)
        seen[order] = True
        batches = [order[start : start + batch] for start in range(0, n, batch)]
        values = gradient_steps(
            opt,
            lambda index: nn.functional.cross_entropy(model(X_train[index]), y_train[index]),
            batches,
            what=f"training (epoch {epoch})",
            first_step=(epoch - 1) * len(batches),
        )
        total = 0.0
        for value, index in zip(values, batches, strict=True):
            total += value * len(index)
        train_loss = total / n
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training diverged (loss {train_loss}) in epoch {epoch}; lower lr"
            )
        score = evaluate_classifier(X_val, y_val, model)
        val_error, val_loss = score.error, score.loss
        train_losses.append(train_loss)
        val_losses.append(val_loss)
        val_errors.append(val_error)
        key = (val_error, val_loss)
        if best_key is None or key < best_key:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            seen_at_best = int(seen.sum())
        elif patience is not None and epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        best_epoch=best_epoch,
        epochs_run=len(train_losses),
        train_losses=train_losses,
        val_losses=val_losses,
        val_errors=val_errors,
        distinct_examples=seen_at_best,
        distinct_examples_total=int(seen.sum()),
    )
