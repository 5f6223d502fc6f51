"""Path-averaged tangent features of a trained convolutional network.

``φ̄(x) = ∫₀¹ ∇_θ f(x; θ0 + t(θ1 − θ0)) dt`` (see :mod:`atf_lite.networks.path_averaging`) by
quadrature, each node's features assembled from the network's per-layer factors
(:func:`~atf_lite.networks.conv_tangent.cnn_tangent_features`) instead of a per-node Jacobian.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int
from .conv_tangent import check_cnn_inputs, cnn_tangent_features
from .functional import (
    MAX_BLOCK_FLOATS,
    Params,
    flatten_params,
    model_output,
    path_endpoints,
)
from .path_averaging import PathAveragedFeatures, quadrature_rule

__all__ = ["cnn_path_averaged_features"]


def cnn_path_averaged_features(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    nodes: int = 16,
    rule: str = "gauss-legendre",
    batch_size: int | None = None,
) -> PathAveragedFeatures:
    """Path-averaged tangent features of a convolutional network and the residual of their
    identity (a :class:`~atf_lite.networks.path_averaging.PathAveragedFeatures`).

    Same contract as :func:`~atf_lite.networks.path_averaging.path_averaged_features`:
    ``Phi_bar`` (``[n, p]``, the model's dtype) is ``Σ_k w_k Φ(X; θ0 + t_k(θ1 − θ0))`` for the
    ``nodes`` points ``t_k`` and weights ``w_k`` of quadrature ``rule``, and
    ``residual = ‖f(X; θ1) − f(X; θ0) − Phi_bar (θ1 − θ0)‖ / ‖f(X; θ1) − f(X; θ0)‖``.  ``model``
    must be a network that :func:`~atf_lite.networks.conv_tangent.cnn_layers` accepts.  Rows are
    processed in blocks of ``batch_size`` (default: blocks of ``Phi_bar`` under 2**26 floats).
    """
    check_cnn_inputs(X, model, "X")
    theta0, theta1 = path_endpoints(model, params0, params1)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1)
    t, w = quadrature_rule(nodes, rule=rule)
    thetas = [
        {name: theta0[name] + float(t_k) * (theta1[name] - theta0[name]) for name in theta0}
        for t_k in t
    ]
    p = sum(value.numel() for value in theta0.values())
    n = X.shape[0]
    block = batch_size if batch_size is not None else max(1, min(n, MAX_BLOCK_FLOATS // p))
    Phi_bar = None
    for start in range(0, n, block):
        X_block = X[start : start + block]
        total = None
        for theta_t, w_k in zip(thetas, w):
            Phi_t = cnn_tangent_features(X_block, model, theta_t)
            total = float(w_k) * Phi_t if total is None else total.add_(Phi_t, alpha=float(w_k))
        if Phi_bar is None:
            Phi_bar = torch.empty((n, p), dtype=total.dtype, device=total.device)
        Phi_bar[start : start + block] = total
    change = model_output(X, model, theta1) - model_output(X, model, theta0)
    scale = torch.linalg.vector_norm(change)
    if scale == 0:
        raise ValueError(
            "params0 and params1 give identical outputs on X: the residual is undefined"
        )
    predicted = Phi_bar @ (flatten_params(theta1) - flatten_params(theta0))
    residual = float(torch.linalg.vector_norm(change - predicted) / scale)
    return PathAveragedFeatures(Phi_bar=Phi_bar, residual=residual)
