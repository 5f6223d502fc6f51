"""Kernels of trained MLPs: per-layer adapted kernels, weight-change structure, kernel change.

For a dense layer with input ``h(x)`` and back-propagated signal ``g(x)`` the tangent features
are the outer products ``g hᵀ`` (with a bias, the input is extended to ``h̃ = (h, 1)``).
Transforming them as ``g ↦ Aᵀ g`` and ``h̃ ↦ Bᵀ h̃``, i.e. ``Γ = A ⊗ B`` on the layer's
parameters flattened row by row (``φ = g ⊗ h̃``), gives the per-layer adapted kernel

    ``K_l(x, x') = (g(x)ᵀ A Aᵀ g(x')) · (h̃(x)ᵀ B Bᵀ h̃(x'))``,

which at ``A = B = I`` is that layer's term of the neural tangent kernel.

* :func:`layer_adapted_kernel` sums these terms over the layers of an MLP;
* :func:`weight_change_transforms` builds transforms that are the identity plus a low-rank
  update along the top singular vectors of each layer's weight change;
* :func:`weight_change_spectra` gives those singular values;
* :func:`eigen_overlaps` compares the top eigenvectors of a kernel (change) with a vector;
* :func:`quadrature_residuals` tabulates the residual of the path-averaged feature identity
  (quadrature rules, or exact integration for piecewise-linear MLPs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .._validation import (
    check_array,
    check_int_sequence,
    check_option,
    check_real,
    check_sequence,
    check_square_matrix,
    is_integer,
)
from .conv_tangent import cnn_layer_adapted_kernel, is_structured_cnn
from .functional import Params, check_inputs, check_transform, path_endpoints
from .path_averaging import PATH_RULES, path_averaged_features
from .tangent import is_structured_mlp, layer_signals

__all__ = [
    "dense_layer_names",
    "layer_adapted_kernel",
    "weight_change_transforms",
    "weight_change_spectra",
    "eigen_overlaps",
    "quadrature_residuals",
]


def dense_layer_names(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` children of an ``nn.Sequential`` MLP, input to output."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential MLP, got {type(model).__name__}")
    names = [name for name, module in model.named_children() if isinstance(module, nn.Linear)]
    if not names:
        raise TypeError("model has no nn.Linear layer")
    return names


def _augmented_inputs(H: torch.Tensor, has_bias: bool) -> torch.Tensor:
    """``[H, 1]`` for a layer with a bias (its bias features are ``g · 1``), else ``H``."""
    H = H.to(torch.float64)
    if not has_bias:
        return H
    return torch.cat([H, torch.ones(H.shape[0], 1, dtype=torch.float64, device=H.device)], 1)


def layer_adapted_kernel(
    X1: torch.Tensor,
    model: nn.Module,
    transforms: Sequence[tuple[torch.Tensor, torch.Tensor] | None],
    params: Params | None = None,
    *,
    X2: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adapted kernel ``Σ_l (G_l A_l A_lᵀ G_lᵀ) ⊙ (H̃_l B_l B_lᵀ H̃_lᵀ)`` (float64 ``[n1, n2]``).

    ``transforms`` has one entry per dense layer (input to output): ``None`` for the identity
    or a pair ``(A, B)`` with ``A`` of shape ``[m, m]`` (``m`` outputs of the layer) and ``B``
    of shape ``[d + 1, d + 1]`` for a layer with a bias (``d`` inputs; the last coordinate is
    the constant input of the bias) or ``[d, d]`` without.  Equivalent to transforming that
    layer's tangent features by ``Γ = A ⊗ B``; with every entry ``None`` it equals
    :func:`~atf_lite.networks.tangent.tangent_kernel`.  ``X2=None`` means ``X2 = X1``.
    A convolutional network goes to
    :func:`~atf_lite.networks.conv_tangent.cnn_layer_adapted_kernel` (one entry per
    convolution or dense layer).
    """
    if not is_structured_mlp(model) and is_structured_cnn(model):
        return cnn_layer_adapted_kernel(X1, model, transforms, params, X2=X2)
    check_inputs(X1, "X1")
    if X2 is not None:
        check_inputs(X2, "X2")
    if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
        raise TypeError(f"transforms must be a sequence of (A, B) pairs or None, got "
                        f"{type(transforms).__name__}")
    signals1 = layer_signals(X1, model, params, name="X1")
    signals2 = signals1 if X2 is None else layer_signals(X2, model, params, name="X2")
    if len(transforms) != len(signals1):
        raise ValueError(
            f"transforms must have one entry per dense layer ({len(signals1)}), got "
            f"{len(transforms)}"
        )
    K = None
    for index, ((H1, G1, has_bias), (H2, G2, _), transform) in enumerate(
        zip(signals1, signals2, transforms)
    ):
        G1, G2 = G1.to(torch.float64), G2.to(torch.float64)
        H1, H2 = _augmented_inputs(H1, has_bias), _augmented_inputs(H2, has_bias)
        if transform is not None:
            if len(transform) != 2:
                raise ValueError(f"transforms[{index}] must be None or a pair (A, B)")
            A = check_transform(transform[0], G1.shape[1], f"transforms[{index}][0] (A)")
            B = check_transform(transform[1], H1.shape[1], f"transforms[{index}][1] (B)")
            G1, G2 = G1 @ A, G2 @ A
            H1, H2 = H1 @ B, H2 @ B
        term = (G1 @ G2.T) * (H1 @ H2.T)
        K = term if K is None else K + term
    return K


def _weight_changes(model: nn.Module, params0: Params, params1: Params) -> list[torch.Tensor]:
    """Per dense layer, ``[ΔW, Δb]`` (float64 ``[m, d (+1)]``): the change of ``[W, b]``."""
    theta0, theta1 = path_endpoints(model, params0, params1)
    changes = []
    for name in dense_layer_names(model):
        delta = theta1[f"{name}.weight"] - theta0[f"{name}.weight"]
        if f"{name}.bias" in theta0:
            bias = theta1[f"{name}.bias"] - theta0[f"{name}.bias"]
            delta = torch.cat([delta, bias[:, None]], dim=1)
        changes.append(delta.to(torch.float64))
    return changes


def weight_change_spectra(model: nn.Module, params0: Params, params1: Params) -> list[np.ndarray]:
    """Singular values (descending, float64) of each dense layer's change ``[ΔW, Δb]``."""
    changes = _weight_changes(model, params0, params1)
    return [torch.linalg.svdvals(delta).cpu().numpy() for delta in changes]


def weight_change_transforms(
    model: nn.Module,
    params0: Params,
    params1: Params,
    scale: float,
    *,
    rank: int | Sequence[int] = 1,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer transforms ``A = I + (scale − 1) U Uᵀ``, ``B = I + (scale − 1) V Vᵀ``.

    ``U`` (``[m, rank]``) and ``V`` (``[d (+1), rank]``) are the top left and right singular
    vectors of the layer's change ``[ΔW, Δb]`` between ``params0`` and ``params1``, so each
    transform scales ``rank`` directions by ``scale`` and leaves the rest alone (the form of
    the optimal Kronecker-structured transforms).  ``rank``: one number for every layer, or one
    per dense layer (a layer's change ``[ΔW, Δb]`` has at most ``min(m, d + 1)`` directions; an
    output layer with one unit has one).  ``scale=1`` gives identities.
    """
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    changes = _weight_changes(model, params0, params1)
    if is_integer(rank):
        ranks = [rank] * len(changes)
    elif isinstance(rank, Sequence) and not isinstance(rank, (str, bytes)):
        ranks = list(rank)
    else:
        raise TypeError(f"rank must be an integer or a sequence of integers, got {rank!r}")
    if len(ranks) != len(changes):
        raise ValueError(
            f"rank must be an integer or one integer per dense layer ({len(changes)}), got "
            f"{rank!r}"
        )
    transforms = []
    for index, (delta, layer_rank) in enumerate(zip(changes, ranks)):
        if not is_integer(layer_rank) or not 1 <= layer_rank <= min(
            delta.shape
        ):
            raise ValueError(
                f"rank must be an integer in [1, {min(delta.shape)}] for layer {index}, got "
                f"{layer_rank!r}"
            )
        U, _, Vh = torch.linalg.svd(delta, full_matrices=False)
        U, V = U[:, :layer_rank], Vh[:layer_rank].T
        A = torch.eye(delta.shape[0], dtype=torch.float64) + (scale - 1.0) * U @ U.T
        B = torch.eye(delta.shape[1], dtype=torch.float64) + (scale - 1.0) * V @ V.T
        transforms.append((A, B))
    return transforms


def eigen_overlaps(
    K: np.ndarray | torch.Tensor, v: np.ndarray | torch.Tensor, *, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenvalues of the symmetric ``K`` (``[n, n]``) largest in magnitude, and ``|cos|``
    between each one's eigenvector and the vector ``v`` (``[n]``).

    Returns ``(eigenvalues, overlaps)``, both float64 ``[k]``, ordered by decreasing
    ``|eigenvalue|``.  An overlap of 1 means the eigenvector is parallel to ``v``.
    """
    K = check_square_matrix(K, "K")
    v = check_array(v, "v", finite=False)
    if not np.allclose(K, K.T, rtol=1e-8, atol=1e-8 * np.abs(K).max()):
        raise ValueError("K must be symmetric")
    if v.shape != (K.shape[0],):
        raise ValueError(f"v must have shape [{K.shape[0]}], got {v.shape}")
    if not np.all(np.isfinite(v)) or not np.any(v):
        raise ValueError("v must be finite and nonzero")
    if not is_integer(k) or not 1 <= k <= K.shape[0]:
        raise ValueError(f"k must be an integer in [1, {K.shape[0]}], got {k!r}")
    eigenvalues, eigenvectors = np.linalg.eigh(K)
    top = np.argsort(-np.abs(eigenvalues), kind="stable")[:k]
    overlaps = np.abs(eigenvectors[:, top].T @ v) / np.linalg.norm(v)
    return eigenvalues[top], overlaps


def quadrature_residuals(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    nodes: Sequence[int] = (4, 16, 64, 256),
    rules: Sequence[str] = ("riemann", "trapezoid", "gauss-legendre"),
) -> dict[str, np.ndarray]:
    """Relative residual of ``f(X; θ1) − f(X; θ0) = Φ̄ (θ1 − θ0)`` per rule and node count.

    Returns ``{rule: residuals}`` with ``residuals[j]`` (float64) from
    :func:`~atf_lite.networks.path_averaging.path_averaged_features` with ``nodes[j]`` nodes.
    ``rules`` may include ``"exact"``, which uses no nodes: it is computed once and repeated.
    """
    nodes = check_int_sequence(nodes, "nodes", minimum=1)
    rules = [
        check_option(rule, f"rules[{j}]", PATH_RULES)
        for j, rule in enumerate(check_sequence(rules, "rules"))
    ]
    table = {}
    for rule in rules:
        if rule == "exact":
            exact = path_averaged_features(X, model, params0, params1, rule="exact").residual
            table[rule] = np.full(len(nodes), exact)
            continue
        table[rule] = np.array(
            [
                path_averaged_features(
                    X, model, params0, params1, nodes=int(count), rule=rule
                ).residual
                for count in nodes
            ]
        )
    return table
