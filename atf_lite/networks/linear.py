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

from .._types import UnpackableResult
from .._validation import check_int, check_real, check_tensor, describe
from ..progress import progress_bar
from .functional import (
    Params,
    check_inputs,
    check_model,
    flatten_params,
    linearize,
    model_output,
    model_params,
)
from .tangent import tangent_kernel
from .training import check_finite_parameters, gradient_steps, make_optimizer

__all__ = [
    "HeavyBall",
    "heavy_ball_parameters",
    "GradientDescentResult",
    "train_linearized",
    "train_network",
    "LinearizationGap",
    "linearization_gap",
]


@dataclass(frozen=True)
class HeavyBall(UnpackableResult):
    """Step size ``lr`` and ``momentum`` of the heavy ball; unpacks as ``lr, momentum = ...``."""

    lr: float
    momentum: float


def heavy_ball_parameters(lambda_min: float, lambda_max: float) -> HeavyBall:
    """Step size and momentum of Polyak's heavy ball that are optimal for a quadratic whose
    Hessian has eigenvalues in ``[lambda_min, lambda_max]`` (both > 0).

    The error then contracts by ``(√κ − 1)/(√κ + 1)`` per step (``κ = lambda_max/lambda_min``)
    instead of plain gradient descent's ``(κ − 1)/(κ + 1)``.  Returns a :class:`HeavyBall`.
    """
    lambda_min = check_real(lambda_min, "lambda_min")
    lambda_max = check_real(lambda_max, "lambda_max")
    if not 0 < lambda_min <= lambda_max:
        raise ValueError(
            f"need 0 < lambda_min <= lambda_max, got lambda_min={lambda_min}, "
            f"lambda_max={lambda_max}"
        )
    root_max, root_min = np.sqrt(lambda_max), np.sqrt(lambda_min)
    lr = 4.0 / (root_max + root_min) ** 2
    momentum = ((root_max - root_min) / (root_max + root_min)) ** 2
    return HeavyBall(float(lr), float(momentum))


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
    X: torch.Tensor,
    y: torch.Tensor,
    model: nn.Module,
    steps: int,
    lr: float,
    momentum: float,
    *,
    min_steps: int = 0,
) -> tuple[int, float, float]:
    """Checked ``(steps, lr, momentum)``; ``X``, ``y`` and the model's parameters must be
    finite, so that a non-finite loss during descent can only mean divergence."""
    check_model(model)
    for name, value in (("X", X), ("y", y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {describe(value)}")
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be [n, ...] and y [n]; got {tuple(X.shape)} and {tuple(y.shape)}")
    check_inputs(X, "X")
    check_tensor(y, "y", ndim=1)
    steps = check_int(steps, "steps", minimum=min_steps)
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    return steps, lr, momentum


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
    check_finite_parameters(trainable.items(), "initial")
    optimizer = make_optimizer("sgd", trainable.values(), lr=lr, momentum=momentum)

    def loss_at(p: Params) -> torch.Tensor:
        return 0.5 * torch.sum((forward(p) - y) ** 2)

    tracked: list[float] = []
    losses = gradient_steps(
        optimizer,
        lambda _: loss_at(trainable),
        progress_bar(range(steps), desc=desc),
        before_step=None if track is None else lambda: tracked.append(track(trainable)),
        what=desc,
    )
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
    steps, lr, momentum = _check_training_inputs(X, y, model, steps, lr, momentum)
    theta0 = model_params(model, params0, name="params0")
    flat0 = flatten_params(theta0)
    track = None
    if reference is not None:
        if not isinstance(reference, torch.Tensor | np.ndarray):
            raise TypeError(f"reference must be a tensor or array, got {describe(reference)}")
        if isinstance(reference, np.ndarray):
            reference = torch.from_numpy(reference)
        if reference.is_complex():
            raise TypeError(f"reference must be real, got {reference.dtype}")
        reference = torch.as_tensor(reference, dtype=flat0.dtype)
        if reference.shape != flat0.shape:
            raise ValueError(
                f"reference must have shape {tuple(flat0.shape)}, got {tuple(reference.shape)}"
            )
        if not bool(torch.isfinite(reference).all()):
            raise ValueError("reference contains NaN or infinite values")
        scale = torch.linalg.vector_norm(reference)
        if scale == 0:
            raise ValueError("reference must be non-zero: distances are relative to its norm")

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
    steps, lr, momentum = _check_training_inputs(X, y, model, steps, lr, momentum)
    theta0 = model_params(model, params0, name="params0")
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
    lr_scale = check_real(lr_scale, "lr_scale")
    if not 0 < lr_scale < 2:
        raise ValueError(
            f"lr_scale must be in (0, 2) for stable gradient descent, got {lr_scale!r}"
        )
    # At least one step: the function gap is relative to how far the linearisation moved.
    _check_training_inputs(X, y, model, steps, 1.0, 0.0, min_steps=1)
    check_inputs(X_eval, "X_eval")
    if X_eval.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"X_eval must have the inputs' shape [m, {', '.join(map(str, X.shape[1:]))}], got "
            f"{tuple(X_eval.shape)}"
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
