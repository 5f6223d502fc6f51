"""A deterministic training loop for regression (and classification) by SGD.

:func:`train` fits any torch model with a mean-squared-error (or cross-entropy) loss by SGD
with momentum and a cosine learning-rate schedule, and returns the initial and final parameters
with the loss history (the trainer of chapters 6 and 7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..progress import progress_bar

__all__ = ["TrainResult", "train"]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

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
    if loss == "mse":
        return lambda out, target: torch.mean((out.reshape(target.shape) - target) ** 2)
    if loss == "cross_entropy":
        return nn.functional.cross_entropy
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


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
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if schedule not in {"cosine", "constant"}:
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if X.ndim < 2 or len(X) != len(y):
        raise ValueError(
            f"X must be [n, ...] and y [n]; got X {tuple(X.shape)} and y {tuple(y.shape)}"
        )
    if not torch.isfinite(X).all() or (y.is_floating_point() and not torch.isfinite(y).all()):
        raise ValueError("X or y contains NaN or infinite values")
    n = len(X)
    batch = n if batch_size is None else int(batch_size)
    if batch < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size!r}")
    criterion = _loss_fn(loss)
    params0 = {name: value.detach().clone() for name, value in model.named_parameters()}
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
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
    for _ in progress_bar(range(epochs), desc="training", enabled=progress):
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
            epoch_loss = float(criterion(model(X), y))
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"training diverged (loss {epoch_loss}) after {len(losses) + 1} epochs; lower lr"
            )
        losses.append(epoch_loss)
    model.eval()
    params1 = {name: value.detach().clone() for name, value in model.named_parameters()}
    return TrainResult(params0=params0, params1=params1, losses=losses)
