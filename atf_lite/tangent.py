"""Tangent features, tangent kernels and linearisation of torch models.

Notation: a model ``f(x; θ)`` with a scalar output, parameters ``θ ∈ R^p`` given as a name →
tensor dict (as from ``dict(model.named_parameters())``), inputs ``X`` of shape ``[n, d]``.

* ``tangent_features``: the ``[n, p]`` matrix ``Φ`` with rows ``∇_θ f(x_i; θ)``; columns follow
  the order of the parameter dict, each tensor flattened row-major (see ``flatten_params``).
* ``tangent_kernel``: the empirical neural tangent kernel ``Φ(X1) Φ(X2)ᵀ``.  For an MLP (an
  ``nn.Sequential`` of ``nn.Linear`` and element-wise activations) the ``"structured"`` method
  uses that a dense layer's features are outer products ``g(x) h(x)ᵀ`` and sums
  ``(G_l G_lᵀ) ⊙ (H_l H_lᵀ + 1)`` over layers without forming ``Φ``.
* ``linearize``: ``θ ↦ f(X; θ0) + J(θ0)(θ − θ0)`` with a Jacobian-vector product.
* ``path_averaged_features``: ``φ̄(x) = ∫₀¹ ∇_θ f(x; θ0 + t(θ1 − θ0)) dt`` by quadrature, for
  which ``f(x; θ1) − f(x; θ0) = φ̄(x)ᵀ(θ1 − θ0)`` holds exactly (up to quadrature error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vmap

__all__ = [
    "model_params",
    "flatten_params",
    "unflatten_params",
    "model_output",
    "tangent_features",
    "tangent_kernel",
    "naive_tangent_features",
    "naive_tangent_kernel",
    "is_structured_mlp",
    "layer_signals",
    "linearize",
    "quadrature_rule",
    "path_averaged_features",
]

Params = Mapping[str, torch.Tensor]

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
# 256 MiB in float32); batches are sized to respect it.
_MAX_BLOCK_FLOATS = 2**26


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


def _check_inputs(X: torch.Tensor, name: str) -> None:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(X).__name__}")
    if X.ndim < 2:
        raise ValueError(
            f"{name} must have shape [n, ...] with a batch dimension, got {tuple(X.shape)}"
        )
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _scalar_output(out: torch.Tensor) -> torch.Tensor:
    """``[n, 1]`` or ``[n]`` model output as ``[n]``; anything else is an error."""
    if out.ndim == 2 and out.shape[1] == 1:
        return out[:, 0]
    if out.ndim == 1:
        return out
    raise ValueError(
        f"tangent features need a model with one scalar output per input; got output shape "
        f"{tuple(out.shape)}"
    )


def model_output(model: nn.Module, X: torch.Tensor, params: Params | None = None) -> torch.Tensor:
    """``f(X; θ)`` as a ``[n]`` vector for a single-output model (``θ`` = ``params``)."""
    _check_inputs(X, "X")
    return _scalar_output(functional_call(model, model_params(model, params), (X,)))


def _batch_size(n: int, p: int, batch_size: int | None) -> int:
    if batch_size is None:
        return max(1, min(n, _MAX_BLOCK_FLOATS // max(p, 1)))
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return batch_size


def is_structured_mlp(model: nn.Module) -> bool:
    """Whether ``model`` is a flat ``nn.Sequential`` of ``nn.Linear`` and element-wise maps."""
    try:
        _mlp_children(model)
    except TypeError:
        return False
    return True


def _mlp_children(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"the structured method needs an nn.Sequential MLP, got {type(model).__name__}"
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
    model: nn.Module, X: torch.Tensor, params: Params | None = None
) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Per dense layer ``l`` of an MLP: ``(H_l, G_l, has_bias)``.

    ``H_l`` (``[n, d_l]``) holds the layer's inputs ``h(x_i)`` and ``G_l`` (``[n, m_l]``) the
    back-propagated signals ``g(x_i) = ∂f(x_i)/∂z_l`` at its pre-activation output, so that the
    layer's weight features are the outer products ``g(x_i) h(x_i)ᵀ`` and its bias features
    ``g(x_i)``.
    """
    _check_inputs(X, "X")
    children = _mlp_children(model)
    theta = model_params(model, params)
    inputs, outputs, biases = [], [], []
    with torch.enable_grad():
        h = X
        for name, module in children:
            if isinstance(module, nn.Linear):
                weight = theta[f"{name}.weight"]
                bias = theta.get(f"{name}.bias")
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
        out = _scalar_output(h)
        # Samples do not interact, so the gradient of the sum gives each sample's own signal.
        grads = torch.autograd.grad(out.sum(), outputs)
    return [(H, G.detach(), b) for H, G, b in zip(inputs, grads, biases)]


def _structured_block(signals1, signals2) -> torch.Tensor:
    K = None
    for (H1, G1, has_bias), (H2, G2, _) in zip(signals1, signals2):
        input_gram = H1 @ H2.T
        if has_bias:
            input_gram = input_gram + 1.0
        term = (G1 @ G2.T) * input_gram
        K = term if K is None else K + term
    return K


def _structured_kernel(model, X1, X2, params, batch_size):
    n1 = X1.shape[0]
    batch = n1 if batch_size is None else _batch_size(n1, 1, batch_size)
    signals2 = None if X2 is None else layer_signals(model, X2, params)
    if X2 is None and batch >= n1:
        signals = layer_signals(model, X1, params)
        return _structured_block(signals, signals)
    if signals2 is None:
        signals2 = layer_signals(model, X1, params)
    blocks = [
        _structured_block(layer_signals(model, X1[i : i + batch], params), signals2)
        for i in range(0, n1, batch)
    ]
    return torch.cat(blocks, dim=0)


def _jacobian_block(model, X, theta) -> torch.Tensor:
    def single(p, x):
        return _scalar_output(functional_call(model, p, (x.unsqueeze(0),)))[0]

    jac = vmap(jacrev(single), in_dims=(None, 0))(theta, X)
    return torch.cat([jac[name].reshape(X.shape[0], -1) for name in theta], dim=1)


def _structured_features(model, X, theta) -> torch.Tensor:
    # Build the Jacobian from the outer-product structure: much cheaper than vmap(jacrev).
    columns = []
    signals = iter(layer_signals(model, X, theta))
    for name in theta:
        if name.endswith(".weight"):
            H, G, has_bias = next(signals)
            columns.append(torch.einsum("nm,nd->nmd", G, H).reshape(X.shape[0], -1))
            if has_bias:
                columns.append(G)
    return torch.cat(columns, dim=1)


def tangent_features(
    model: nn.Module,
    X: torch.Tensor,
    params: Params | None = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Tangent features ``Φ`` (``[n, p]``): row ``i`` is ``∇_θ f(x_i; θ)`` at ``θ = params``.

    Columns follow ``flatten_params(params)``.  Computed with ``torch.func`` (``vmap`` over
    ``jacrev`` of ``functional_call``) in batches of ``batch_size`` inputs (default: as many as
    keep one block under 2**26 floats).  For an MLP the outer-product structure of dense-layer
    features is used instead, which gives the same matrix faster.
    """
    _check_inputs(X, "X")
    theta = model_params(model, params)
    p = sum(value.numel() for value in theta.values())
    batch = _batch_size(X.shape[0], p, batch_size)
    structured = is_structured_mlp(model) and all(
        name.endswith((".weight", ".bias")) for name in theta
    )
    block = _structured_features if structured else _jacobian_block
    return torch.cat([block(model, X[i : i + batch], theta) for i in range(0, X.shape[0], batch)])


def _jacobian_kernel(model, X1, X2, params, batch_size):
    theta = model_params(model, params)
    p = sum(value.numel() for value in theta.values())
    n1 = X1.shape[0]
    batch = _batch_size(n1 if X2 is None else max(n1, X2.shape[0]), p, batch_size)
    if X2 is None and batch >= n1:
        Phi = _jacobian_block(model, X1, theta)
        return Phi @ Phi.T
    X2 = X1 if X2 is None else X2
    rows = []
    for i in range(0, n1, batch):
        Phi1 = _jacobian_block(model, X1[i : i + batch], theta)
        rows.append(
            torch.cat(
                [
                    Phi1 @ _jacobian_block(model, X2[j : j + batch], theta).T
                    for j in range(0, X2.shape[0], batch)
                ],
                dim=1,
            )
        )
    return torch.cat(rows, dim=0)


def tangent_kernel(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None = None,
    params: Params | None = None,
    method: str = "auto",
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Empirical tangent kernel ``K[i, j] = ∇_θ f(x1_i)ᵀ ∇_θ f(x2_j)`` (``[n1, n2]``).

    ``X2=None`` means ``X2 = X1``.  ``method``:

    * ``"jacobian"``: blocks of ``Φ`` from ``torch.func`` (any single-output model);
    * ``"structured"``: ``Σ_l (G_l G_lᵀ) ⊙ (H_l H_lᵀ + 1)`` for an ``nn.Sequential`` MLP (the
      ``+ 1`` only for layers with a bias), never forming ``Φ``;
    * ``"auto"``: ``"structured"`` when the model is such an MLP, else ``"jacobian"``.

    ``batch_size`` bounds the number of rows of ``X1`` (and ``X2``) processed at once.
    """
    _check_inputs(X1, "X1")
    if X2 is not None:
        _check_inputs(X2, "X2")
        if X2.shape[1:] != X1.shape[1:]:
            raise ValueError(
                f"X1 and X2 must have the same feature shape, got {tuple(X1.shape[1:])} and "
                f"{tuple(X2.shape[1:])}"
            )
    if method not in {"auto", "jacobian", "structured"}:
        raise ValueError(f"method must be 'auto', 'jacobian' or 'structured', got {method!r}")
    if method == "auto":
        method = "structured" if is_structured_mlp(model) else "jacobian"
    if method == "structured":
        return _structured_kernel(model, X1, X2, params, batch_size)
    return _jacobian_kernel(model, X1, X2, params, batch_size)


def naive_tangent_features(
    model: nn.Module, X: torch.Tensor, params: Params | None = None
) -> torch.Tensor:
    """Reference ``Φ`` by one ``torch.autograd.grad`` call per input (slow, obviously correct)."""
    _check_inputs(X, "X")
    theta = {
        name: value.clone().requires_grad_(True)
        for name, value in model_params(model, params).items()
    }
    rows = []
    for x in X:
        out = _scalar_output(functional_call(model, theta, (x.unsqueeze(0),)))[0]
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
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None = None,
    params: Params | None = None,
) -> torch.Tensor:
    """Reference tangent kernel from :func:`naive_tangent_features` (the benchmarks' baseline)."""
    Phi1 = naive_tangent_features(model, X1, params)
    Phi2 = Phi1 if X2 is None else naive_tangent_features(model, X2, params)
    return Phi1 @ Phi2.T


def linearize(
    model: nn.Module, params0: Params | None = None
) -> Callable[[Params, torch.Tensor], torch.Tensor]:
    """The first-order Taylor model of ``model`` around ``θ0 = params0`` (default: its parameters).

    Returns ``f_lin(params, X) = f(X; θ0) + J(θ0)(θ − θ0)`` with the output shape of the model.
    Evaluated with one forward-mode Jacobian-vector product (``torch.func.jvp``); the Jacobian
    is never formed, and ``f_lin`` is differentiable in ``params``.
    """
    theta0 = {name: value.clone() for name, value in model_params(model, params0).items()}

    def linearized(params: Params, X: torch.Tensor) -> torch.Tensor:
        _check_inputs(X, "X")
        missing = sorted(set(theta0) - set(params))
        if missing:
            raise KeyError(f"params is missing {missing}")
        delta = {name: params[name] - theta0[name] for name in theta0}

        def forward(p):
            return functional_call(model, p, (X,))

        out0, change = jvp(forward, (theta0,), (delta,))
        return out0 + change

    return linearized


def quadrature_rule(nodes: int, rule: str = "gauss-legendre") -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``t`` and weights ``w`` on ``[0, 1]`` with ``Σ w_k g(t_k) ≈ ∫₀¹ g(t) dt``.

    ``rule``: ``"gauss-legendre"`` (``nodes`` Gauss points), ``"trapezoid"`` (``nodes`` equally
    spaced points including both ends), ``"riemann"`` (left Riemann sum ``t_k = k / nodes``).
    """
    if not isinstance(nodes, (int, np.integer)) or nodes < 1:
        raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
    if rule == "gauss-legendre":
        x, w = np.polynomial.legendre.leggauss(int(nodes))
        return (x + 1.0) / 2.0, w / 2.0
    if rule == "trapezoid":
        if nodes < 2:
            raise ValueError("nodes must be at least 2 for the trapezoid rule")
        t = np.linspace(0.0, 1.0, int(nodes))
        w = np.full(int(nodes), 1.0 / (nodes - 1))
        w[[0, -1]] /= 2.0
        return t, w
    if rule == "riemann":
        return np.arange(int(nodes)) / nodes, np.full(int(nodes), 1.0 / nodes)
    raise ValueError(f"rule must be 'gauss-legendre', 'trapezoid' or 'riemann', got {rule!r}")


def _path_averaged_mlp_block(model, X, thetas, weights) -> torch.Tensor:
    """``Σ_k w_k Φ(X; θ_k)`` for an MLP from its layer signals, without any per-node ``Φ``."""
    signals = [layer_signals(model, X, theta) for theta in thetas]
    columns = []
    for layer, (H0, _, has_bias) in enumerate(signals[0]):
        # Row i of the layer's weight block is vec(Σ_k w_k g_k h_kᵀ): one matrix product of the
        # weighted signals [m, nodes] and the inputs [nodes, d], batched over the rows.
        w = torch.as_tensor(np.asarray(weights), dtype=H0.dtype, device=H0.device)
        G = torch.stack([node[layer][1] for node in signals], dim=2) * w
        H = torch.stack([node[layer][0] for node in signals], dim=1)
        columns.append(torch.bmm(G, H).reshape(X.shape[0], -1))
        if has_bias:
            columns.append(G.sum(dim=2))
    return torch.cat(columns, dim=1)


def path_averaged_features(
    model: nn.Module,
    params0: Params,
    params1: Params,
    X: torch.Tensor,
    nodes: int = 16,
    rule: str = "gauss-legendre",
    *,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, float]:
    """Path-averaged tangent features and the relative residual of their defining identity.

    Returns ``(Phi_bar, residual)`` with ``Phi_bar`` (``[n, p]``) the quadrature approximation of
    ``∫₀¹ ∇_θ f(x; θ0 + t(θ1 − θ0)) dt`` and
    ``residual = ‖f(X; θ1) − f(X; θ0) − Phi_bar (θ1 − θ0)‖ / ‖f(X; θ1) − f(X; θ0)‖``, which is
    zero for exact integration.  Inputs are processed in batches of ``batch_size`` rows (default:
    as many as keep each block under 2**26 floats).  For an MLP the per-node layer signals
    ``g_k, h_k`` are stacked and each layer's block ``Σ_k w_k g_k h_kᵀ`` is one batched matrix
    product; other models accumulate one Jacobian per node.
    """
    _check_inputs(X, "X")
    theta0 = model_params(model, params0)
    theta1 = model_params(model, params1)
    t, w = quadrature_rule(nodes, rule)
    thetas = [
        {name: theta0[name] + float(t_k) * (theta1[name] - theta0[name]) for name in theta0}
        for t_k in t
    ]
    p = sum(value.numel() for value in theta0.values())
    structured = is_structured_mlp(model) and all(
        name.endswith((".weight", ".bias")) for name in theta0
    )
    if structured:
        # The stacked signals hold nodes × (inputs + outputs) floats per row and layer.
        widths = sum(
            module.in_features + module.out_features
            for _, module in _mlp_children(model)
            if isinstance(module, nn.Linear)
        )
        per_row = max(p, len(t) * widths)
    else:
        per_row = p
    batch = _batch_size(X.shape[0], per_row, batch_size)
    Phi_bar = None
    for start in range(0, X.shape[0], batch):
        X_batch = X[start : start + batch]
        if structured:
            block = _path_averaged_mlp_block(model, X_batch, thetas, w)
        else:
            block = None
            for theta_t, w_k in zip(thetas, w):
                Phi_t = _jacobian_block(model, X_batch, theta_t)
                block = float(w_k) * Phi_t if block is None else block.add_(Phi_t, alpha=w_k)
        if Phi_bar is None:
            Phi_bar = torch.empty((X.shape[0], p), dtype=block.dtype, device=block.device)
        Phi_bar[start : start + batch] = block
    change = model_output(model, X, theta1) - model_output(model, X, theta0)
    predicted = Phi_bar @ (flatten_params(theta1) - flatten_params(theta0))
    scale = torch.linalg.vector_norm(change)
    if scale == 0:
        raise ValueError(
            "params0 and params1 give identical outputs on X: the residual is undefined"
        )
    residual = float(torch.linalg.vector_norm(change - predicted) / scale)
    return Phi_bar, residual
