"""Multi-layer perceptrons with the paper's initialisation, and a deterministic training loop.

``mlp`` builds ``nn.Sequential(Linear, ReLU, …, Linear)`` with weights drawn from
``N(0, 2 / fan_in)`` and zero biases.  ``train`` fits any torch model with a mean-squared-error
(or cross-entropy) loss by SGD with momentum and a cosine learning-rate schedule, and returns the
initial and final parameters with the loss history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .progress import progress_bar

__all__ = ["mlp", "TrainResult", "train"]


def mlp(
    d_in: int,
    width: int,
    depth: int,
    d_out: int = 1,
    bias: bool = True,
    seed: int = 0,
    activation: type[nn.Module] = nn.ReLU,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """An MLP ``d_in → width (× depth hidden layers) → d_out`` with ReLU activations.

    ``depth`` counts hidden layers (the paper's Figure 1 network has ``depth=2``, ``width=256``).
    Weights are ``N(0, 2 / fan_in)`` (He initialisation), biases zero; ``seed`` makes the draw
    reproducible without touching torch's global random state.
    """
    for name, value in (("d_in", d_in), ("width", width), ("d_out", d_out)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
    sizes = [d_in] + [width] * depth + [d_out]
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(
                torch.randn(fan_out, fan_in, generator=generator, dtype=dtype)
                * math.sqrt(2.0 / fan_in)
            )
            if bias:
                linear.bias.zero_()
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


@dataclass
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
        return self.losses[-1] if self.losses else float("nan")


def _loss_fn(loss: str):
    if loss == "mse":
        return lambda out, target: torch.mean((out.reshape(target.shape) - target) ** 2)
    if loss == "cross_entropy":
        return nn.functional.cross_entropy
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    batch_size: int | None = None,
    schedule: str = "cosine",
    *,
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
