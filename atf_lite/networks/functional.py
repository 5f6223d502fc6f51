"""Functional views of torch models: parameter dicts, outputs and the linearised model.

Notation: a model ``f(x; θ)`` with a scalar output (or, for :func:`linearize`, any output),
parameters ``θ ∈ R^p`` given as a name → tensor dict (as from
``dict(model.named_parameters())``), inputs ``X`` of shape ``[n, d]``.  Functions take the data
first, then the model, then its parameters (default: the model's own).

* :func:`model_params`, :func:`flatten_params`, :func:`unflatten_params`: parameter dicts;
* :func:`model_output`: ``f(X; θ)`` as an ``[n]`` vector;
* :func:`linearize`: ``θ ↦ f(X; θ0) + J(θ0)(θ − θ0)`` with a Jacobian-vector product, as a
  :class:`LinearizedModel` module that carries ``θ0`` as buffers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call, jvp

from .._validation import check_tensor, describe, is_integer

__all__ = [
    "Params",
    "model_params",
    "path_endpoints",
    "flatten_params",
    "unflatten_params",
    "check_inputs",
    "check_transform",
    "check_model",
    "scalar_output",
    "model_output",
    "rows_per_block",
    "LinearizedModel",
    "linearize",
]

# Parameters of a model: name → tensor, in the model's named_parameters() order.
Params = Mapping[str, torch.Tensor]

# Default cap on the number of floats held by one block of the Jacobian (2**26 floats is
# 256 MiB in float32); batches are sized to respect it.
MAX_BLOCK_FLOATS = 2**26


def check_model(model: nn.Module, name: str = "model") -> nn.Module:
    """``model`` if it is a torch ``nn.Module`` with at least one parameter."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {describe(name)}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch nn.Module, got {describe(model)}")
    if next(model.parameters(), None) is None:
        raise ValueError(f"{name} has no parameters")
    return model


def model_params(
    model: nn.Module, params: Params | None = None, *, name: str = "params"
) -> dict[str, torch.Tensor]:
    """``params`` as a detached dict, defaulting to the model's own named parameters.

    ``params`` must hold a tensor of the right shape for every parameter of ``model``, and
    nothing else; ``name`` is the argument's name in error messages (``"params0"``, …).
    """
    check_model(model)
    own = dict(model.named_parameters())
    if params is None:
        return {key: value.detach() for key, value in own.items()}
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a name -> tensor mapping, got {type(params).__name__}")
    missing = sorted(set(own) - set(params))
    extra = sorted(set(params) - set(own))
    if missing or extra:
        raise KeyError(f"{name} does not match the model: missing {missing}, unexpected {extra}")
    for key, value in params.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}[{key!r}] must be a tensor, got {describe(value)}")
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(
                f"{name}[{key!r}] has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[key].shape)}"
            )
    # Keep the model's parameter order: it fixes the column order of the features.
    return {key: params[key].detach() for key in own}


def path_endpoints(
    model: nn.Module, params0: Params, params1: Params
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The two ends ``θ0, θ1`` of a straight parameter path, each checked by
    :func:`model_params` under its own name; neither may be ``None`` (a path needs both ends
    given explicitly, so a forgotten argument cannot silently become the model's own
    parameters)."""
    for name, params in (("params0", params0), ("params1", params1)):
        if params is None:
            raise TypeError(f"{name} must be a name -> tensor mapping, got None")
    return (
        model_params(model, params0, name="params0"),
        model_params(model, params1, name="params1"),
    )


def _check_params_mapping(params: Params, name: str) -> None:
    if not isinstance(params, Mapping) or not params:
        raise TypeError(
            f"{name} must be a non-empty name -> tensor mapping, got {describe(params)}"
        )
    for key, value in params.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}[{key!r}] must be a tensor, got {describe(value)}")


def flatten_params(params: Params) -> torch.Tensor:
    """The tensors of ``params``, each flattened, concatenated in dict order (``[p]``)."""
    _check_params_mapping(params, "params")
    return torch.cat([value.reshape(-1) for value in params.values()])


def unflatten_params(vector: torch.Tensor, like: Params) -> dict[str, torch.Tensor]:
    """Split a ``[p]`` vector into tensors shaped like those of ``like`` (inverse of flatten)."""
    if not isinstance(vector, torch.Tensor):
        raise TypeError(f"vector must be a torch.Tensor, got {describe(vector)}")
    if not vector.is_floating_point():
        raise TypeError(f"vector must be a real floating-point tensor, got dtype {vector.dtype}")
    _check_params_mapping(like, "like")
    sizes = [value.numel() for value in like.values()]
    if vector.ndim != 1 or vector.numel() != sum(sizes):
        raise ValueError(f"vector must have shape [{sum(sizes)}], got {tuple(vector.shape)}")
    pieces = torch.split(vector, sizes)
    return {name: piece.reshape(value.shape) for (name, value), piece in zip(like.items(), pieces)}


def check_transform(M: object, size: int, what: str) -> torch.Tensor:
    """A layer's feature transformation as a finite float64 tensor ``[size, size]``; the error
    names it by ``what`` (for example ``"transforms[0][1]"``)."""
    M = torch.as_tensor(M, dtype=torch.float64)
    if M.shape != (size, size):
        raise ValueError(f"{what} must have shape ({size}, {size}), got {tuple(M.shape)}")
    if not torch.isfinite(M).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return M


def check_inputs(X: torch.Tensor, name: str) -> None:
    """``X`` must be a finite, non-empty, real floating-point tensor with a batch dimension
    (``[n, ...]``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {describe(name)}")
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(X).__name__}")
    if X.ndim < 2:
        raise ValueError(
            f"{name} must have shape [n, ...] with a batch dimension, got {tuple(X.shape)}"
        )
    check_tensor(X, name, min_ndim=2)


def scalar_output(out: torch.Tensor, inputs: str = "X") -> torch.Tensor:
    """``[n, 1]`` or ``[n]`` model output as ``[n]``; anything else is an error that names the
    argument holding the model's inputs (``inputs``: ``"X"``, ``"X1"``, …)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor, got {describe(out)}")
    if out.ndim == 2 and out.shape[1] == 1:
        return out[:, 0]
    if out.ndim == 1:
        return out
    raise ValueError(
        f"tangent features need a model with one scalar output per row of {inputs}; the model "
        f"gave output (out) of shape {tuple(out.shape)}"
    )


def model_output(X: torch.Tensor, model: nn.Module, params: Params | None = None) -> torch.Tensor:
    """``f(X; θ)`` as a ``[n]`` vector for a single-output model (``θ`` = ``params``)."""
    check_inputs(X, "X")
    out = functional_call(model, model_params(model, params), (X,))
    if not (out.ndim == 1 or out.ndim == 2 and out.shape[1] == 1) or len(out) != len(X):
        raise ValueError(
            f"model must give one scalar output per row of X; got output shape "
            f"{tuple(out.shape)} for X of shape {tuple(X.shape)}"
        )
    return scalar_output(out)


def rows_per_block(n: int, p: int, batch_size: int | None) -> int:
    """Rows of ``n`` processed at once: ``batch_size``, or by default as many as keep a block of
    ``p`` floats per row under ``MAX_BLOCK_FLOATS``."""
    for label, value in (("n", n), ("p", p)):
        if not is_integer(value) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {describe(value)}")
    if batch_size is None:
        return max(1, min(n, MAX_BLOCK_FLOATS // max(p, 1)))
    if not is_integer(batch_size) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer or None, got {describe(batch_size)}"
        )
    return int(batch_size)



class LinearizedModel(nn.Module):
    """The first-order Taylor model ``f_lin(X, θ) = f(X; θ0) + J(θ0)(θ − θ0)`` of a model.

    The expansion point ``θ0`` is module state: one buffer per parameter of the model
    (:attr:`theta0` gives them back by the model's parameter names), so ``.to(device)``,
    ``.double()`` and ``state_dict()`` carry it.  The model itself supplies only the
    architecture: every parameter is replaced by ``θ0`` (and ``θ``) in the call, so it is kept
    outside the module's state (not a submodule; its parameters are not this module's
    parameters and later changes to them do not move ``θ0``).  Buffers of the model itself
    (batch-norm statistics) are used as they are and are not moved with this module.

    Call it as ``f_lin(X, params)`` (``X``: ``[n, ...]``, ``params``: name → tensor; default
    ``θ0``); the output has the model's output shape and is differentiable in ``params``.  One
    forward-mode Jacobian-vector product (``torch.func.jvp``) per call; the Jacobian is never
    formed.
    """

    def __init__(self, model: nn.Module, params0: Params | None = None) -> None:
        super().__init__()
        theta0 = model_params(model, params0, name="params0")
        # A plain attribute, not a submodule: see the class docstring.
        self.__dict__["model"] = model
        self._names = list(theta0)
        for index, value in enumerate(theta0.values()):
            self.register_buffer(f"theta0_{index}", value.clone())

    @property
    def theta0(self) -> dict[str, torch.Tensor]:
        """The expansion point ``θ0``: name → tensor (the buffers themselves, in the model's
        parameter order)."""
        return {name: getattr(self, f"theta0_{index}") for index, name in enumerate(self._names)}

    def extra_repr(self) -> str:
        return f"model={type(self.model).__name__}, parameters={self._names}"

    def forward(self, X: torch.Tensor, params: Params | None = None) -> torch.Tensor:
        """``f(X; θ0) + J(θ0)(θ − θ0)`` with ``θ = params`` (default ``θ0``)."""
        check_inputs(X, "X")
        theta0 = self.theta0
        if params is None:
            params = theta0
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a name -> tensor mapping, got {type(params).__name__}"
            )
        missing = sorted(set(theta0) - set(params))
        if missing:
            raise KeyError(f"params is missing {missing}")
        for name, value in theta0.items():
            given = params[name]
            if not isinstance(given, torch.Tensor) or given.shape != value.shape:
                raise ValueError(
                    f"params[{name!r}] must be a tensor of shape {tuple(value.shape)}, got "
                    f"{describe(given)}"
                )
        delta = {name: params[name] - theta0[name] for name in theta0}
        model = self.model

        def forward(p: Params) -> torch.Tensor:
            return functional_call(model, p, (X,))

        out0, change = jvp(forward, (theta0,), (delta,))
        return out0 + change


def linearize(model: nn.Module, params0: Params | None = None) -> LinearizedModel:
    """The first-order Taylor model of ``model`` around ``θ0 = params0`` (default: its parameters).

    Returns a :class:`LinearizedModel` ``f_lin`` with ``f_lin(X, params) = f(X; θ0) +
    J(θ0)(θ − θ0)``, of the model's output shape, differentiable in ``params``; ``θ0`` is
    copied into its buffers.
    """
    return LinearizedModel(model, params0)
