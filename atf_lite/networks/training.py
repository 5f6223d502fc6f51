"""The training-loop core shared by every trainer, and the regression trainer
:func:`~atf_lite.networks.training.train`.

Core (used by :func:`~atf_lite.networks.training.train`,
:func:`atf_lite.networks.classifier.fit_classifier` and the
full-batch gradient descent of :mod:`atf_lite.networks.linear`):

* :func:`make_optimizer`: SGD with momentum (and weight decay) or Adam;
* :func:`epoch_order`: the rows of one epoch, shuffled by a seeded generator;
* :func:`gradient_steps`: one optimiser step per batch, with the loss before each step
  recorded and a non-finite loss reported as divergence.

:func:`~atf_lite.networks.training.train` fits any torch model with a mean-squared-error (or
cross-entropy) loss by SGD with momentum and a cosine learning-rate schedule, and returns the
initial and final parameters with the loss history (the trainer of chapters 6 and 7).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

from .._validation import (
    check_bool,
    check_callable,
    check_int,
    check_option,
    check_positive_int,
    check_real,
    check_seed,
    check_tensor,
    describe,
)
from ..progress import progress_bar
from .functional import check_model

__all__ = [
    "OPTIMIZERS",
    "make_optimizer",
    "epoch_order",
    "gradient_steps",
    "check_finite_parameters",
    "TrainResult",
    "train",
]

#: Optimisers :func:`make_optimizer` builds.
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
LOSSES = ("mse", "cross_entropy")

Batch = TypeVar("Batch")


def make_optimizer(
    name: str,
    params: Iterable[torch.Tensor],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """``"sgd"`` (heavy-ball ``momentum``, ``weight_decay``) or ``"adam"`` (default betas,
    ``weight_decay``) over ``params`` with learning rate ``lr``."""
    check_option(name, "name", OPTIMIZERS)
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
    if isinstance(params, torch.Tensor) or not isinstance(params, Iterable):
        raise TypeError(f"params must be an iterable of tensors, got {describe(params)}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def epoch_order(
    n_rows: int, generator: torch.Generator, *, take: int | None = None, shuffle: bool = True
) -> torch.Tensor:
    """The row indices of one epoch: a permutation of ``range(n_rows)`` drawn from
    ``generator`` (``shuffle=False``: in order, drawing nothing), cut to its first ``take``."""
    n_rows = check_int(n_rows, "n_rows", minimum=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {describe(generator)}")
    take = check_int(take, "take", minimum=1, maximum=n_rows, allow_none=True)
    shuffle = check_bool(shuffle, "shuffle")
    order = torch.randperm(n_rows, generator=generator) if shuffle else torch.arange(n_rows)
    return order if take is None else order[:take]


def gradient_steps(
    optimizer: torch.optim.Optimizer,
    loss_of: Callable[[Batch], torch.Tensor],
    batches: Iterable[Batch],
    *,
    scheduler: Any = None,
    before_step: Callable[[], None] | None = None,
    what: str = "training",
    first_step: int = 0,
) -> list[float]:
    """One optimiser step per element of ``batches``: the core of every trainer here.

    For each batch: ``before_step()`` (if given), zero the gradients, ``loss = loss_of(batch)``,
    back-propagate, step the optimiser, then the scheduler (if given).  Returns the loss of every
    step, evaluated before that step.  A non-finite loss stops the loop with a
    ``FloatingPointError``: "diverged" (lower the learning rate) after at least one step, or
    "not finite at the initial parameters" at the very first step (``first_step == 0``), which
    no learning rate causes.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch optimizer, got {describe(optimizer)}")
    check_callable(loss_of, "loss_of")
    if not isinstance(batches, Iterable):
        raise TypeError(f"batches must be iterable, got {describe(batches)}")
    if before_step is not None:
        check_callable(before_step, "before_step")
    if scheduler is not None and not hasattr(scheduler, "step"):
        raise TypeError(f"scheduler must have a step() method, got {describe(scheduler)}")
    if not isinstance(what, str):
        raise TypeError(f"what must be a string, got {describe(what)}")
    first_step = check_int(first_step, "first_step", minimum=0)
    values: list[float] = []
    for step, batch in enumerate(batches, start=first_step):
        if before_step is not None:
            before_step()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            if step == 0:
                raise FloatingPointError(
                    f"{what}: the loss is {value} at the initial parameters, before any step; "
                    "the model overflows on these inputs"
                )
            raise FloatingPointError(f"{what} diverged (loss {value}) at step {step}; lower lr")
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        values.append(value)
    return values


def check_finite_parameters(params: Iterable[tuple[str, torch.Tensor]], what: str) -> None:
    """Every ``(name, tensor)`` must be finite, so that a NaN loss can only mean divergence."""
    if not isinstance(what, str):
        raise TypeError(f"what must be a string, got {describe(what)}")
    if isinstance(params, torch.Tensor) or not isinstance(params, Iterable):
        raise TypeError(
            f"params must be an iterable of (name, tensor) pairs, got {describe(params)}"
        )
    for item in params:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], torch.Tensor)):
            raise TypeError(f"params must hold (name, tensor) pairs, got {describe(item)}")
        name, value = item
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{what} parameter {name!r} contains NaN or infinite values")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`~atf_lite.networks.training.train`.

    ``params0``/``params1``: detached copies of the parameters before and after training;
    ``losses``: training loss after each epoch (float, ``[epochs]``).
    """

    params0: dict[str, torch.Tensor]
    params1: dict[str, torch.Tensor]
    losses: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        """The training loss after the last epoch (NaN without epochs)."""
        return self.losses[-1] if self.losses else float("nan")


def _loss_fn(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    check_option(loss, "loss", LOSSES)
    if loss == "mse":
        return lambda out, target: torch.mean((out.reshape(target.shape) - target) ** 2)
    return nn.functional.cross_entropy


def _check_targets(y: Any, loss: str, n: int) -> None:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {describe(y)}")
    if len(y) != n or y.ndim != 1 and loss == "cross_entropy":
        raise ValueError(f"X must be [n, ...] and y [n]; got n = {n} and y {tuple(y.shape)}")
    if loss == "mse":
        check_tensor(y, "y")
    else:
        check_tensor(y, "y", ndim=1, floating=False)
        if int(y.min()) < 0:
            raise ValueError(f"y must hold class indices ≥ 0, found {int(y.min())}")


def train(
    X: torch.Tensor,
    y: torch.Tensor,
    model: nn.Module,
    *,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    batch_size: int | None = None,
    schedule: str = "cosine",
    loss: str = "mse",
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(X, y)`` with SGD and return a :class:`TrainResult`.

    ``X``: ``[n, d]``; ``y``: ``[n]`` targets (``loss="mse"``, the mean of squared errors) or
    int64 class indices (``loss="cross_entropy"``).  ``batch_size=None`` is full-batch gradient
    descent.  ``schedule``: ``"cosine"`` (learning rate ``lr · (1 + cos(π t / T)) / 2`` per step)
    or ``"constant"``.  Minibatch order is drawn from a generator seeded with ``seed``.
    """
    check_model(model)
    epochs = check_positive_int(epochs, "epochs")
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
    check_option(schedule, "schedule", SCHEDULES)
    criterion = _loss_fn(loss)
    seed = check_seed(seed)
    if progress is not None:
        check_bool(progress, "progress")
    if (
        not isinstance(X, torch.Tensor)
        or not isinstance(y, torch.Tensor)
        or X.ndim < 2
        or y.ndim < 1
        or len(X) != len(y)
    ):
        raise ValueError(
            f"X must be [n, ...] and y [n]; got X {describe(X)} and y {describe(y)}"
        )
    check_tensor(X, "X", min_ndim=2)
    _check_targets(y, loss, len(X))
    n = len(X)
    batch = n if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
    check_finite_parameters(model.named_parameters(), "model")
    params0 = {name: value.detach().clone() for name, value in model.named_parameters()}
    optimizer = make_optimizer(
        "sgd", model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    steps_per_epoch = math.ceil(n / batch)
    total_steps = epochs * steps_per_epoch
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
        )
    else:
        scheduler = None
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for epoch in progress_bar(range(epochs), desc="training", enabled=progress):
        order = epoch_order(n, generator, shuffle=batch < n)
        gradient_steps(
            optimizer,
            lambda index: criterion(model(X[index]), y[index]),
            _split(order, batch),
            scheduler=scheduler,
            what=f"training (epoch {epoch + 1})",
            first_step=epoch * steps_per_epoch,
        )
        with torch.no_grad():
            epoch_loss = float(criterion(model(X), y))
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"training diverged (loss {epoch_loss}) after {len(losses) + 1} epochs; lower lr"
            )
        losses.append(epoch_loss)
    model.eval()
    params1 = {name: value.detach().clone() for name, value in model.named_parameters()}
    return TrainResult(params0=params0, params1=params1, losses=losses)


def _split(order: torch.Tensor, batch: int) -> Iterator[torch.Tensor]:
    """Consecutive chunks of ``batch`` indices (the last one shorter)."""
    for start in range(0, len(order), batch):
        yield order[start : start + batch]
