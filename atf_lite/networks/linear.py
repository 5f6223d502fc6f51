"""Linear models in tangent feature space: gradient descent on the linearised network, and how
far a trained network drifts from its linearisation.

The linearised model around ``θ0`` is ``f_lin(x; θ) = f(x; θ0) + φ(x)ᵀ(θ − θ0)`` with tangent
features ``φ`` (see :mod:`atf_lite.networks.tangent`).  Kernel regression itself is
:func:`atf_lite.linalg.kernel_regression`.  Gradient descent on the squared loss
``½ ‖f_lin(X; θ) − y‖²`` from ``θ = θ0`` keeps ``θ − θ0`` in the row space of ``Φ`` and therefore
converges to the minimum-norm interpolator of the residual targets ``y − f(X; θ0)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..progress import progress_bar
from .functional import Params, flatten_params, linearize, model_output, model_params
from .tangent import tangent_kernel

__all__ = [
    "heavy_ball_parameters",
    "GradientDescentResult",
    "train_linearized",
    "train_network",
    "LinearizationGap",
    "linearization_gap",
]


def heavy_ball_parameters(lambda_min: float, lambda_max: float) -> tuple[float, float]:
    """Step size and momentum of Polyak's heavy ball that are optimal for a quadratic whose
    Hessian has eigenvalues in ``[lambda_min, lambda_max]`` (both > 0).

    The error then contracts by ``(√κ − 1)/(√κ + 1)`` per step (``κ = lambda_max/lambda_min``)
    instead of plain gradient descent's ``(κ − 1)/(κ + 1)``.
    """
    if not 0 < lambda_min <= lambda_max:
        raise ValueError(
            f"need 0 < lambda_min <= lambda_max, got lambda_min={lambda_min}, "
            f"lambda_max={lambda_max}"
        )
    root_max, root_min = np.sqrt(lambda_max), np.sqrt(lambda_min)
    lr = 4.0 / (root_max + root_min) ** 2
    momentum = ((root_max - root_min) / (root_max + root_min)) ** 2
    return float(lr), float(momentum)


@dataclass(frozen=True)
class GradientDescentResult:
    """Parameters after gradient descent and the loss ``½‖f − y‖²`` before each step.

    ``delta``: ``θ − θ0`` flattened (``[p]``, the weights ``β`` of the linear model);
    ``params``: the final parameters as a name → tensor dict; ``losses``: ``[steps + 1]`` with
    the final loss last; ``distances``: ``[steps + 1]`` relative distances
    ``‖δ_t − reference‖ / ‖reference‖`` when a reference was given, else ``None``.
    """

    delta: torch.Tensor
    params: dict[str, torch.Tensor]
    losses: np.ndarray
    distances: np.ndarray | None = None


def _check_training_inputs(
    X: torch.Tensor, y: torch.Tensor, steps: int, lr: float, momentum: float
) -> None:
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be [n, ...] and y [n]; got {tuple(X.shape)} and {tuple(y.shape)}")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")


def _descend(
    forward: Callable[[Params], torch.Tensor],
    params: Params,
    y: torch.Tensor,
    steps: int,
    lr: float,
    momentum: float,
    desc: str,
    track: Callable[[Params], float] | None = None,
) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray | None]:
    """Full-batch (heavy-ball) gradient descent on ``½‖forward(params) − y‖²``.

    ``track(params) -> float`` is evaluated before every step and after the last one.
    """
    trainable = {
        name: value.detach().clone().requires_grad_(True) for name, value in params.items()
    }
    optimizer = torch.optim.SGD(trainable.values(), lr=lr, momentum=momentum)

    def loss_at(p: Params) -> torch.Tensor:
        return 0.5 * torch.sum((forward(p) - y) ** 2)

    losses, tracked = [], []
    for _ in progress_bar(range(steps), desc=desc):
        if track is not None:
            tracked.append(track(trainable))
        optimizer.zero_grad(set_to_none=True)
        loss = loss_at(trainable)
        losses.append(loss.item())
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(
                f"gradient descent diverged after {len(losses) - 1} steps; lower lr"
            )
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        losses.append(float(loss_at(trainable)))
        if track is not None:
            tracked.append(track(trainable))
    final = {name: value.detach() for name, value in trainable.items()}
    return final, np.array(losses), (np.array(tracked) if track is not None else None)


def train_linearized(
    X: torch.Tensor,
    y: torch.Tensor,
    model: nn.Module,
    params0: Params | None = None,
    *,
    steps: int,
    lr: float,
    momentum: float = 0.0,
    reference: torch.Tensor | None = None,
) -> GradientDescentResult:
    """Full-batch gradient descent on the linearised model's loss ``½‖f_lin(X; θ) − y‖²``.

    Starts at ``θ = θ0`` (``params0``, default the model's parameters), so ``δ = θ − θ0`` starts at
    zero.  ``X``: ``[n, d]``, ``y``: ``[n]`` targets for the model's scalar output.  With a
    ``reference`` vector (``[p]``, e.g. the minimum-norm interpolator) the relative distance of
    ``δ`` to it is recorded at every step.
    """
    _check_training_inputs(X, y, steps, lr, momentum)
    theta0 = model_params(model, params0)
    flat0 = flatten_params(theta0)
    track = None
    if reference is not None:
        reference = torch.as_tensor(reference, dtype=flat0.dtype)
        if reference.shape != flat0.shape:
            raise ValueError(
                f"reference must have shape {tuple(flat0.shape)}, got {tuple(reference.shape)}"
            )
        scale = torch.linalg.vector_norm(reference)

        def track(p: Params) -> float:
            with torch.no_grad():
                gap = flatten_params(p) - flat0 - reference
                return float(torch.linalg.vector_norm(gap) / scale)

    f_lin = linearize(model, theta0)
    params, losses, distances = _descend(
        lambda p: f_lin(X, p).reshape(-1), theta0, y, steps, lr, momentum, "linearised GD", track
    )
    delta = flatten_params(params) - flat0
    return GradientDescentResult(delta=delta, params=params, losses=losses, distances=distances)


def train_network(
    X: torch.Tensor,
    y: torch.Tensor,
    model: nn.Module,
    params0: Params | None = None,
    *,
    steps: int,
    lr: float,
    momentum: float = 0.0,
) -> GradientDescentResult:
    """The same full-batch gradient descent as :func:`train_linearized`, on the network itself.

    The model's own parameters are left untouched (training runs on copies).
    """
    _check_training_inputs(X, y, steps, lr, momentum)
    theta0 = model_params(model, params0)
    # functional_call keeps the graph to the trainable copies (model_output detaches).
    params, losses, _ = _descend(
        lambda p: functional_call(model, p, (X,)).reshape(-1),
        theta0,
        y,
        steps,
        lr,
        momentum,
        "network GD",
    )
    delta = flatten_params(params) - flatten_params(theta0)
    return GradientDescentResult(delta=delta, params=params, losses=losses)


@dataclass(frozen=True)
class LinearizationGap:
    """How far gradient descent on a network strays from gradient descent on its linearisation.

    ``function_gap``: ``‖f_net − f_lin‖ / ‖f_lin − f0‖`` on the evaluation inputs after training
    (0: the network behaved exactly like its linearisation); ``parameter_change``:
    ``‖θ_T − θ0‖ / ‖θ0‖`` of the network; ``kernel_change``: ``‖K_T − K0‖_F / ‖K0‖_F`` of the
    tangent kernel on the training inputs; ``train_loss_net`` / ``train_loss_lin``: final
    training losses ``½‖f − y‖²``.
    """

    function_gap: float
    parameter_change: float
    kernel_change: float
    train_loss_net: float
    train_loss_lin: float


def linearization_gap(
    X: torch.Tensor,
    y: torch.Tensor,
    X_eval: torch.Tensor,
    model: nn.Module,
    *,
    steps: int,
    lr_scale: float = 1.0,
) -> LinearizationGap:
    """Train ``model`` and its linearisation with identical full-batch gradient descent and
    compare them on ``X_eval`` (``[m, d]``).

    The step size is ``lr_scale / λ_max(K0)`` with ``K0`` the tangent kernel on ``X``: this makes
    runs comparable across widths, whose kernels have different scales (stable for
    ``lr_scale < 2``).
    """
    if not 0 < lr_scale < 2:
        raise ValueError(
            f"lr_scale must be in (0, 2) for stable gradient descent, got {lr_scale!r}"
        )
    theta0 = model_params(model)
    K0 = tangent_kernel(X, model, theta0)
    lr = lr_scale / float(torch.linalg.eigvalsh(K0.double())[-1])
    lin = train_linearized(X, y, model, theta0, steps=steps, lr=lr)
    net = train_network(X, y, model, theta0, steps=steps, lr=lr)
    with torch.no_grad():
        f0 = model_output(X_eval, model, theta0)
        f_net = model_output(X_eval, model, net.params)
        f_lin = linearize(model, theta0)(X_eval, lin.params).reshape(-1)
    KT = tangent_kernel(X, model, net.params)
    return LinearizationGap(
        function_gap=float(
            torch.linalg.vector_norm(f_net - f_lin) / torch.linalg.vector_norm(f_lin - f0)
        ),
        parameter_change=float(
            torch.linalg.vector_norm(net.delta) / torch.linalg.vector_norm(flatten_params(theta0))
        ),
        kernel_change=float(torch.linalg.matrix_norm(KT - K0) / torch.linalg.matrix_norm(K0)),
        train_loss_net=float(net.losses[-1]),
        train_loss_lin=float(lin.losses[-1]),
    )
