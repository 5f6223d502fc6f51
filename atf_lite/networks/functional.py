"""Functional views of torch models: parameter dicts, outputs and the linearised model.

Notation: a model ``f(x; θ)`` with a scalar output (or, for :func:`linearize`, any output),
parameters ``θ ∈ R^p`` given as a name → tensor dict (as from
``dict(model.named_parameters())``), inputs ``X`` of shape ``[n, d]``.  Functions take the data
first, then the model, then its parameters (default: the model's own).

* :func:`model_params`, :func:`flatten_params`, :func:`unflatten_params`: parameter dicts;
* :func:`model_output`: ``f(X; θ)`` as an ``[n]`` vector;
* :func:`linearize`: ``θ ↦ f(X; θ0) + J(θ0)(θ − θ0)`` with a Jacobian-vector product.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, jvp

__all__ = [
    "Params",
    "model_params",
    "flatten_params",
    "unflatten_params",
    "check_inputs",
    "scalar_output",
    "model_output",
    "rows_per_block",
    "linearize",
]

# Parameters of a model: name → tensor, in the model's named_parameters() order.
Params = Mapping[str, torch.Tensor]

# Default cap on the number of floats held by one block of the Jacobian (2**26 floats is
# 256 MiB in float32); batches are sized to respect it.
MAX_BLOCK_FLOATS = 2**26


def model_params(model: nn.Module, params: Params | None = None) -> dict[str, torch.Tensor]:
    """``params`` as a detached dict, defaulting to the model's own named parameters."""
    own = dict(model.named_parameters())
    if params is None:
        return {name: value.detach() for name, value in own.items()}
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a name -> tensor mapping, got {type(params).__name__}")
    missing = sorted(set(own) - set(params))
    extra = sorted(set(params) - set(own))
    if missing or extra:
        raise KeyError(f"params does not match the model: missing {missing}, unexpected {extra}")
    for name, value in params.items():
        if tuple(value.shape) != tuple(own[name].shape):
            raise ValueError(
                f"params[{name!r}] has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[name].shape)}"
            )
    # Keep the model's parameter order: it fixes the column order of the features.
    return {name: params[name].detach() for name in own}


def flatten_params(params: Params) -> torch.Tensor:
    """The tensors of ``params``, each flattened, concatenated in dict order (``[p]``)."""
    return torch.cat([value.reshape(-1) for value in params.values()])


def unflatten_params(vector: torch.Tensor, like: Params) -> dict[str, torch.Tensor]:
    """Split a ``[p]`` vector into tensors shaped like those of ``like`` (inverse of flatten)."""
    sizes = [value.numel() for value in like.values()]
    if vector.ndim != 1 or vector.numel() != sum(sizes):
        raise ValueError(f"vector must have shape [{sum(sizes)}], got {tuple(vector.shape)}")
    pieces = torch.split(vector, sizes)
    return {name: piece.reshape(value.shape) for (name, value), piece in zip(like.items(), pieces)}


def check_inputs(X: torch.Tensor, name: str) -> None:
    """``X`` must be a finite tensor with a batch dimension (``[n, ...]``)."""
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(X).__name__}")
    if X.ndim < 2:
        raise ValueError(
            f"{name} must have shape [n, ...] with a batch dimension, got {tuple(X.shape)}"
        )
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def scalar_output(out: torch.Tensor) -> torch.Tensor:
    """``[n, 1]`` or ``[n]`` model output as ``[n]``; anything else is an error."""
    if out.ndim == 2 and out.shape[1] == 1:
        return out[:, 0]
    if out.ndim == 1:
        return out
    raise ValueError(
        f"tangent features need a model with one scalar output per input; got output shape "
        f"{tuple(out.shape)}"
    )


def model_output(X: torch.Tensor, model: nn.Module, params: Params | None = None) -> torch.Tensor:
    """``f(X; θ)`` as a ``[n]`` vector for a single-output model (``θ`` = ``params``)."""
    check_inputs(X, "X")
    return scalar_output(functional_call(model, model_params(model, params), (X,)))


def rows_per_block(n: int, p: int, batch_size: int | None) -> int:
    """Rows of ``n`` processed at once: ``batch_size``, or by default as many as keep a block of
    ``p`` floats per row under ``MAX_BLOCK_FLOATS``."""
    if batch_size is None:
        return max(1, min(n, MAX_BLOCK_FLOATS // max(p, 1)))
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return batch_size



def linearize(
    model: nn.Module, params0: Params | None = None
) -> Callable[[Params, torch.Tensor], torch.Tensor]:
    """The first-order Taylor model of ``model`` around ``θ0 = params0`` (default: its parameters).

    Returns ``f_lin(X, params) = f(X; θ0) + J(θ0)(θ − θ0)`` with the output shape of the model.
    Evaluated with one forward-mode Jacobian-vector product (``torch.func.jvp``); the Jacobian
    is never formed, and ``f_lin`` is differentiable in ``params``.
    """
    theta0 = {name: value.clone() for name, value in model_params(model, params0).items()}

    def linearized(X: torch.Tensor, params: Params) -> torch.Tensor:
        check_inputs(X, "X")
        missing = sorted(set(theta0) - set(params))
        if missing:
            raise KeyError(f"params is missing {missing}")
        delta = {name: params[name] - theta0[name] for name in theta0}

        def forward(p: Params) -> torch.Tensor:
            return functional_call(model, p, (X,))

        out0, change = jvp(forward, (theta0,), (delta,))
        return out0 + change

    return linearized
