"""Tangent features and tangent kernels (the empirical NTK) of torch models.

Notation as in :mod:`atf_lite.networks.functional`: a model ``f(x; θ)`` with one scalar output
per input, parameters as a name → tensor dict, inputs ``X`` of shape ``[n, d]``.

* :func:`tangent_features`: the ``[n, p]`` matrix ``Φ`` with rows ``∇_θ f(x_i; θ)``; columns
  follow the order of the parameter dict, each tensor flattened row-major (see
  :func:`~atf_lite.networks.functional.flatten_params`).
* :func:`tangent_kernel`: the empirical neural tangent kernel ``Φ(X1) Φ(X2)ᵀ``.  For an MLP (an
  ``nn.Sequential`` of ``nn.Linear`` and element-wise activations) the ``"structured"`` method
  uses that a dense layer's features are outer products ``g(x) h(x)ᵀ`` and sums
  ``(G_l G_lᵀ) ⊙ (H_l H_lᵀ + 1)`` over layers without forming ``Φ``
  (:func:`layer_signals`).  Convolutional networks take the same route through their
  per-position factors (:mod:`atf_lite.networks.conv_tangent`).
* :func:`naive_tangent_features`, :func:`naive_tangent_kernel`: one autograd call per input,
  the reference of the tests and benchmarks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .._validation import check_instance
from .conv_tangent import cnn_tangent_features, cnn_tangent_kernel, is_structured_cnn
from .functional import Params, check_inputs, model_params, rows_per_block, scalar_output

__all__ = [
    "is_structured_mlp",
    "mlp_layers",
    "layer_signals",
    "jacobian_block",
    "tangent_features",
    "tangent_kernel",
    "naive_tangent_features",
    "naive_tangent_kernel",
]

# Parameter-free modules that act on each coordinate separately: a dense layer's tangent
# features stay outer products g hᵀ when only these sit between the layers.
_ELEMENTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.ELU,
    nn.Identity,
)

# Default cap on the number of floats held by one block of the Jacobian (2**26 floats is


def is_structured_mlp(model: nn.Module) -> bool:
    """Whether ``model`` is a flat ``nn.Sequential`` of ``nn.Linear`` and element-wise maps
    (``TypeError`` if ``model`` is not an ``nn.Module`` at all)."""
    check_instance(model, "model", nn.Module, "a torch nn.Module")
    try:
        mlp_layers(model)
    except TypeError:
        return False
    return True


def mlp_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` children of an MLP; ``TypeError`` if ``model`` is not one."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"model must be an nn.Sequential MLP for the structured method, got "
            f"{type(model).__name__}"
        )
    children = list(model.named_children())
    for name, module in children:
        if not isinstance(module, (nn.Linear, *_ELEMENTWISE)):
            raise TypeError(
                f"the structured method supports nn.Linear and element-wise activations "
                f"({', '.join(cls.__name__ for cls in _ELEMENTWISE)}); module {name!r} is "
                f"{type(module).__name__}"
            )
    if not any(isinstance(module, nn.Linear) for _, module in children):
        raise TypeError("the structured method needs at least one nn.Linear layer")
    return children


def layer_signals(
    X: torch.Tensor, model: nn.Module, params: Params | None = None, *, name: str = "X"
) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Per dense layer ``l`` of an MLP: ``(H_l, G_l, has_bias)``.

    ``H_l`` (``[n, d_l]``) holds the layer's inputs ``h(x_i)`` and ``G_l`` (``[n, m_l]``) the
    back-propagated signals ``g(x_i) = ∂f(x_i)/∂z_l`` at its pre-activation output, so that the
    layer's weight features are the outer products ``g(x_i) h(x_i)ᵀ`` and its bias features
    ``g(x_i)``.  ``name`` is the caller's name for ``X`` in error messages (``"X1"``, …).
    """
    check_inputs(X, name)
    children = mlp_layers(model)
    theta = model_params(model, params)
    inputs, outputs, biases = [], [], []
    with torch.enable_grad():
        h = X
        for layer, module in children:
            if isinstance(module, nn.Linear):
                weight = theta[f"{layer}.weight"]
                bias = theta.get(f"{layer}.bias")
                z = torch.nn.functional.linear(h, weight, bias)
                if not z.requires_grad:
                    # First layer: nothing upstream needs gradients, so make z a leaf that does.
                    z = z.detach().requires_grad_(True)
                inputs.append(h.detach())
                outputs.append(z)
                biases.append(bias is not None)
                h = z
            else:
                h = module(h)
        out = scalar_output(h, name)
        # Samples do not interact, so the gradient of the sum gives each sample's own signal.
        grads = torch.autograd.grad(out.sum(), outputs)
    return [(H, G.detach(), b) for H, G, b in zip(inputs, grads, biases)]


def _structured_block(signals1: list, signals2: list) -> torch.Tensor:
    K = None
    for (H1, G1, has_bias), (H2, G2, _) in zip(signals1, signals2):
        input_gram = H1 @ H2.T
        if has_bias:
            input_gram = input_gram + 1.0
        term = (G1 @ G2.T) * input_gram
        K = term if K is None else K + term
    return K


def _structured_kernel(
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    model: nn.Module,
    params: Params | None,
    batch_size: int | None,
) -> torch.Tensor:
    n1 = X1.shape[0]
    batch = n1 if batch_size is None else rows_per_block(n1, 1, batch_size)
    signals2 = None if X2 is None else layer_signals(X2, model, params)
    if X2 is None and batch >= n1:
        signals = layer_signals(X1, model, params)
        return _structured_block(signals, signals)
    if signals2 is None:
        signals2 = layer_signals(X1, model, params)
    blocks = [
        _structured_block(layer_signals(X1[i : i + batch], model, params), signals2)
        for i in range(0, n1, batch)
    ]
    return torch.cat(blocks, dim=0)


def jacobian_block(X: torch.Tensor, model: nn.Module, theta: Params) -> torch.Tensor:
    """Tangent features ``Φ`` (``[n, p]``) of the rows of ``X`` at ``theta`` by
    ``vmap(jacrev)`` (any single-output model; no batching)."""
    check_inputs(X, "X")
    if theta is None:  # model_params would read None as "the model's own parameters"
        raise TypeError("theta must be a name -> tensor mapping, got None")
    theta = model_params(model, theta, name="theta")

    def single(p: Params, x: torch.Tensor) -> torch.Tensor:
        return scalar_output(functional_call(model, p, (x.unsqueeze(0),)))[0]

    jac = vmap(jacrev(single), in_dims=(None, 0))(theta, X)
    return torch.cat([jac[name].reshape(X.shape[0], -1) for name in theta], dim=1)


def _structured_features(X: torch.Tensor, model: nn.Module, theta: Params) -> torch.Tensor:
    # Build the Jacobian from the outer-product structure: much cheaper than vmap(jacrev).
    columns = []
    signals = iter(layer_signals(X, model, theta))
    for name in theta:
        if name.endswith(".weight"):
            H, G, has_bias = next(signals)
            columns.append(torch.einsum("nm,nd->nmd", G, H).reshape(X.shape[0], -1))
            if has_bias:
                columns.append(G)
    return torch.cat(columns, dim=1)


def tangent_features(
    X: torch.Tensor,
    model: nn.Module,
    params: Params | None = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Tangent features ``Φ`` (``[n, p]``): row ``i`` is ``∇_θ f(x_i; θ)`` at ``θ = params``.

    Columns follow :func:`~atf_lite.networks.functional.flatten_params` of ``params``.
    Computed with ``torch.func`` (``vmap`` over ``jacrev`` of ``functional_call``) in batches
    of ``batch_size`` inputs (default: as many as keep one block under 2**26 floats).  For an
    MLP the outer-product structure of dense-layer features is used instead, which gives the
    same matrix faster, and for a convolutional network its per-position factors
    (:func:`~atf_lite.networks.conv_tangent.cnn_tangent_features`).
    """
    check_inputs(X, "X")
    theta = model_params(model, params)
    if not is_structured_mlp(model) and is_structured_cnn(model):
        return cnn_tangent_features(X, model, theta, batch_size=batch_size)
    p = sum(value.numel() for value in theta.values())
    batch = rows_per_block(X.shape[0], p, batch_size)
    structured = is_structured_mlp(model) and all(
        name.endswith((".weight", ".bias")) for name in theta
    )
    block = _structured_features if structured else jacobian_block
    return torch.cat([block(X[i : i + batch], model, theta) for i in range(0, X.shape[0], batch)])


def _jacobian_kernel(
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    model: nn.Module,
    params: Params | None,
    batch_size: int | None,
) -> torch.Tensor:
    theta = model_params(model, params)
    p = sum(value.numel() for value in theta.values())
    n1 = X1.shape[0]
    batch = rows_per_block(n1 if X2 is None else max(n1, X2.shape[0]), p, batch_size)
    if X2 is None and batch >= n1:
        Phi = jacobian_block(X1, model, theta)
        return Phi @ Phi.T
    X2 = X1 if X2 is None else X2
    rows = []
    for i in range(0, n1, batch):
        Phi1 = jacobian_block(X1[i : i + batch], model, theta)
        rows.append(
            torch.cat(
                [
                    Phi1 @ jacobian_block(X2[j : j + batch], model, theta).T
                    for j in range(0, X2.shape[0], batch)
                ],
                dim=1,
            )
        )
    return torch.cat(rows, dim=0)


def tangent_kernel(
    X1: torch.Tensor,
    model: nn.Module,
    params: Params | None = None,
    *,
    X2: torch.Tensor | None = None,
    method: str = "auto",
    batch_size: int | None = None,
) -> torch.Tensor:
    """Empirical tangent kernel ``K[i, j] = ∇_θ f(x1_i)ᵀ ∇_θ f(x2_j)`` (``[n1, n2]``).

    ``X2=None`` means ``X2 = X1``; parameters ``params`` default to the model's own.
    ``method``:

    * ``"jacobian"``: blocks of ``Φ`` from ``torch.func`` (any single-output model);
    * ``"structured"``: ``Σ_l (G_l G_lᵀ) ⊙ (H_l H_lᵀ + 1)`` for an ``nn.Sequential`` MLP (the
      ``+ 1`` only for layers with a bias), never forming ``Φ``;
      a convolutional network sums its layers' per-position factors instead
      (:func:`~atf_lite.networks.conv_tangent.cnn_tangent_kernel`);
    * ``"auto"``: ``"structured"`` when the model is such an MLP or network, else
      ``"jacobian"``.

    ``batch_size`` bounds the number of rows of ``X1`` (and ``X2``) processed at once.
    """
    check_inputs(X1, "X1")
    if X2 is not None:
        check_inputs(X2, "X2")
        if X2.shape[1:] != X1.shape[1:]:
            raise ValueError(
                f"X1 and X2 must have the same feature shape, got {tuple(X1.shape[1:])} and "
                f"{tuple(X2.shape[1:])}"
            )
    if method not in {"auto", "jacobian", "structured"}:
        raise ValueError(f"method must be 'auto', 'jacobian' or 'structured', got {method!r}")
    if method == "auto":
        method = "structured" if is_structured_cnn(model) else "jacobian"
    if method == "structured" and not is_structured_mlp(model):
        return cnn_tangent_kernel(X1, model, params, X2=X2, batch_size=batch_size)
    if method == "structured":
        return _structured_kernel(X1, X2, model, params, batch_size)
    return _jacobian_kernel(X1, X2, model, params, batch_size)


def naive_tangent_features(
    X: torch.Tensor, model: nn.Module, params: Params | None = None
) -> torch.Tensor:
    """Reference ``Φ`` by one ``torch.autograd.grad`` call per input (slow, obviously correct)."""
    return _naive_features(X, model, params, "X")


def _naive_features(X: torch.Tensor, model: nn.Module, params: Params | None, name: str):
    # ``name``: the caller's argument holding X, for error messages.
    check_inputs(X, name)
    theta = {
        name: value.clone().requires_grad_(True)
        for name, value in model_params(model, params).items()
    }
    rows = []
    for x in X:
        out = scalar_output(functional_call(model, theta, (x.unsqueeze(0),)), name)[0]
        grads = torch.autograd.grad(out, list(theta.values()), allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(value) if grad is None else grad).reshape(-1)
                    for value, grad in zip(theta.values(), grads)
                ]
            )
        )
    return torch.stack(rows)


def naive_tangent_kernel(
    X1: torch.Tensor,
    model: nn.Module,
    params: Params | None = None,
    *,
    X2: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference tangent kernel from :func:`naive_tangent_features` (the benchmarks' baseline)."""
    Phi1 = _naive_features(X1, model, params, "X1")
    Phi2 = Phi1 if X2 is None else _naive_features(X2, model, params, "X2")
    return Phi1 @ Phi2.T
