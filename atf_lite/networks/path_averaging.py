"""Path-averaged tangent features of a trained network.

``φ̄(x) = ∫₀¹ ∇_θ f(x; θ0 + t(θ1 − θ0)) dt`` satisfies ``f(x; θ1) − f(x; θ0) = φ̄(x)ᵀ(θ1 − θ0)``
exactly: a trained network is a linear model in adapted tangent features.  The integral is
computed by quadrature (:func:`quadrature_rule`) or, for MLPs with piecewise-linear
activations, exactly (``rule="exact"``, :mod:`atf_lite.networks.piecewise_path`); the residual
of the identity is always reported (:func:`path_averaged_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import check_positive_int
from .functional import (
    Params,
    check_inputs,
    flatten_params,
    model_output,
    path_endpoints,
    rows_per_block,
)
from .piecewise_path import exact_path_features, exact_path_kernel
from .tangent import is_structured_mlp, jacobian_block, layer_signals, mlp_layers

__all__ = [
    "QUADRATURE_RULES",
    "PATH_RULES",
    "quadrature_rule",
    "PathAveragedFeatures",
    "path_averaged_features",
    "PathAveragedKernel",
    "path_averaged_kernel",
]

QUADRATURE_RULES = ("gauss-legendre", "trapezoid", "riemann")
#: Every ``rule`` of :func:`path_averaged_features`: the quadrature rules and ``"exact"``.
PATH_RULES = (*QUADRATURE_RULES, "exact")


def quadrature_rule(
    nodes: int, *, rule: str = "gauss-legendre"
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``t`` and weights ``w`` on ``[0, 1]`` with ``Σ w_k g(t_k) ≈ ∫₀¹ g(t) dt``.

    ``rule``: ``"gauss-legendre"`` (``nodes`` Gauss points), ``"trapezoid"`` (``nodes`` equally
    spaced points including both ends), ``"riemann"`` (left Riemann sum ``t_k = k / nodes``).
    """
    nodes = check_positive_int(nodes, "nodes")
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


def _path_averaged_mlp_block(
    X: torch.Tensor, model: nn.Module, thetas: Sequence[Params], weights: np.ndarray
) -> torch.Tensor:
    """``Σ_k w_k Φ(X; θ_k)`` for an MLP from its layer signals, without any per-node ``Φ``."""
    signals = [layer_signals(X, model, theta) for theta in thetas]
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


@dataclass(frozen=True)
class PathAveragedFeatures:
    """Result of :func:`path_averaged_features`.

    ``Phi_bar``: ``[n, p]`` path-averaged tangent features (dtype of the model; float64 for
    ``rule="exact"``); ``residual``: relative residual of
    ``f(X; θ1) − f(X; θ0) = Phi_bar (θ1 − θ0)``; ``pieces`` (``rule="exact"`` only, else
    ``None``): the number of pieces of each input's path (int ``[n]``).
    """

    Phi_bar: torch.Tensor
    residual: float
    pieces: np.ndarray | None = None


def _relative_residual(
    X: torch.Tensor, model: nn.Module, theta0: Params, theta1: Params, Phi_bar: torch.Tensor
) -> float:
    """``‖f(X; θ1) − f(X; θ0) − Phi_bar (θ1 − θ0)‖ / ‖f(X; θ1) − f(X; θ0)‖`` in ``Phi_bar``'s
    dtype (the parameters are converted exactly when that is wider than the model's)."""
    dtype = Phi_bar.dtype
    theta0 = {name: value.to(dtype) for name, value in theta0.items()}
    theta1 = {name: value.to(dtype) for name, value in theta1.items()}
    X = X.to(dtype)
    change = model_output(X, model, theta1) - model_output(X, model, theta0)
    predicted = Phi_bar @ (flatten_params(theta1) - flatten_params(theta0))
    scale = torch.linalg.vector_norm(change)
    if scale == 0:
        raise ValueError(
            "params0 and params1 give identical outputs on X: the residual is undefined"
        )
    return float(torch.linalg.vector_norm(change - predicted) / scale)


def path_averaged_features(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    nodes: int = 16,
    rule: str = "gauss-legendre",
    batch_size: int | None = None,
) -> PathAveragedFeatures:
    """Path-averaged tangent features and the relative residual of their defining identity.

    Returns a :class:`PathAveragedFeatures` with ``Phi_bar`` (``[n, p]``) the approximation of
    ``∫₀¹ ∇_θ f(x; θ0 + t(θ1 − θ0)) dt`` by ``rule`` and
    ``residual = ‖f(X; θ1) − f(X; θ0) − Phi_bar (θ1 − θ0)‖ / ‖f(X; θ1) − f(X; θ0)‖``, which is
    zero for exact integration.

    ``rule``: a quadrature rule of :func:`quadrature_rule` with ``nodes`` nodes, or
    ``"exact"`` for an MLP with piecewise-linear activations (ReLU, leaky ReLU, identity): the
    path of each input is split where an activation changes slope and every piece is integrated
    exactly (:func:`~atf_lite.networks.piecewise_path.exact_path_features`), in float64;
    ``nodes`` is then unused, the residual is at float64 round-off, and ``pieces`` gives each
    input's number of pieces.

    Inputs are processed in batches of ``batch_size`` rows (quadrature default: as many as keep
    each block under 2**26 floats; exact default: 32).  For a quadrature rule and an MLP the
    per-node layer signals ``g_k, h_k`` are stacked and each layer's block ``Σ_k w_k g_k h_kᵀ`` is
    one batched matrix product; other models accumulate one Jacobian per node.
    """
    check_inputs(X, "X")
    if rule == "exact":
        exact = exact_path_features(X, model, params0, params1, batch_size=batch_size)
        theta0, theta1 = path_endpoints(model, params0, params1)
        residual = _relative_residual(X, model, theta0, theta1, exact.Phi_bar)
        return PathAveragedFeatures(exact.Phi_bar, residual, pieces=exact.pieces)
    if rule not in QUADRATURE_RULES:
        raise ValueError(f"rule must be one of {PATH_RULES}, got {rule!r}")
    theta0, theta1 = path_endpoints(model, params0, params1)
    t, w = quadrature_rule(nodes, rule=rule)
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
            for _, module in mlp_layers(model)
            if isinstance(module, nn.Linear)
        )
        per_row = max(p, len(t) * widths)
    else:
        per_row = p
    batch = rows_per_block(X.shape[0], per_row, batch_size)
    Phi_bar = None
    for start in range(0, X.shape[0], batch):
        X_batch = X[start : start + batch]
        if structured:
            block = _path_averaged_mlp_block(X_batch, model, thetas, w)
        else:
            block = None
            for theta_t, w_k in zip(thetas, w):
                Phi_t = jacobian_block(X_batch, model, theta_t)
                block = float(w_k) * Phi_t if block is None else block.add_(Phi_t, alpha=w_k)
        if Phi_bar is None:
            Phi_bar = torch.empty((X.shape[0], p), dtype=block.dtype, device=block.device)
        Phi_bar[start : start + batch] = block
    residual = _relative_residual(X, model, theta0, theta1, Phi_bar)
    return PathAveragedFeatures(Phi_bar=Phi_bar, residual=residual)


@dataclass(frozen=True)
class PathAveragedKernel:
    """Result of :func:`path_averaged_kernel`: ``K_bar`` (float64 ``[n, n]``), the relative
    ``residual`` of the path identity, and ``pieces`` as in :class:`PathAveragedFeatures`."""

    K_bar: torch.Tensor
    residual: float
    pieces: np.ndarray | None = None


def path_averaged_kernel(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    nodes: int = 16,
    rule: str = "exact",
    batch_size: int | None = None,
) -> PathAveragedKernel:
    """The path-averaged kernel ``K̄ = Φ̄ Φ̄ᵀ`` (float64 ``[n, n]``) and the residual of the path
    identity, with ``Φ̄`` from :func:`path_averaged_features` (same ``nodes``, ``rule`` and
    ``batch_size``).  For ``rule="exact"`` (the default) ``Φ̄`` is never formed: the first
    layer, whose input ``x`` does not move along the path, contributes
    ``(Ḡ Ḡᵀ) ⊙ (X Xᵀ + 1)`` (:func:`~atf_lite.networks.piecewise_path.exact_path_kernel`)."""
    check_inputs(X, "X")
    check_positive_int(nodes, "nodes")  # checked even where the exact rule does not use it
    if rule != "exact":
        path = path_averaged_features(
            X, model, params0, params1, nodes=nodes, rule=rule, batch_size=batch_size
        )
        K_bar = (path.Phi_bar @ path.Phi_bar.T).to(torch.float64)
        return PathAveragedKernel(K_bar, path.residual)
    exact = exact_path_kernel(X, model, params0, params1, batch_size=batch_size)
    theta0, theta1 = (
        {k: v.to(torch.float64) for k, v in theta.items()}
        for theta in path_endpoints(model, params0, params1)
    )
    X64 = X.to(torch.float64)
    change = model_output(X64, model, theta1) - model_output(X64, model, theta0)
    scale = torch.linalg.vector_norm(change)
    if scale == 0:
        raise ValueError(
            "params0 and params1 give identical outputs on X: the residual is undefined"
        )
    residual = float(torch.linalg.vector_norm(change - exact.predicted_change) / scale)
    return PathAveragedKernel(exact.K_bar, residual, pieces=exact.pieces)
