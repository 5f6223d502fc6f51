"""Structured tangent features and tangent kernels of convolutional networks.

A convolution with weight ``W`` (``[M, C, k_h, k_w]``) and bias ``b`` computes, at each of its
``P`` output positions ``p``, ``z_p = W u_p + b``, where ``u_p ∈ R^D`` (``D = C·k_h·k_w``) is
the input patch that the kernel sees there (the columns of ``torch.nn.functional.unfold``,
see :func:`conv_patches`; ``W`` flattened to ``[M, D]``).  The same weights act at every
position, so the tangent features of one input ``x`` are a *sum over positions* of outer
products,

    ``∂f/∂[W b] = Σ_p g_p ũ_pᵀ = G Ũᵀ``  (``[M, D + 1]``),

with ``g_p = ∂f/∂z_p`` the back-propagated signal at position ``p`` (the columns of
``G ∈ R^{M×P}``) and ``ũ_p = (u_p, 1)`` the patch extended by the bias's constant input (the
columns of ``Ũ ∈ R^{(D+1)×P}``).  A dense layer is the case ``P = 1``.  The layer's term of the
tangent kernel is

    ``K_l(x, x') = ⟨G Ũᵀ, G' Ũ'ᵀ⟩_F = Σ_{p,q} (g_p·g'_q)(ũ_p·ũ'_q)``.

Two contractions compute it (per pair of inputs, in multiply-adds):

* **features**: form ``J = G Ũᵀ`` once per input (``P·M·(D+1)``, a batched matrix product) and
  take ``⟨J, J'⟩`` (``M·(D+1)`` per pair).  This is the layer's own block of the Jacobian,
  ``n × M(D+1)``; the whole ``n × p`` Jacobian is never formed.
* **Gram**: ``Σ_{p,q} (Gᵀ G')_{pq} (Ũᵀ Ũ')_{pq}``, costing ``P²·(M + D + 2)`` per pair and an
  ``n × n' × P × P`` intermediate.  For a dense layer (``P = 1``) this is the MLP formula
  ``(G Gᵀ) ⊙ (H Hᵀ + 1)``, which never forms the ``M × D`` outer products.

Each layer uses the cheaper one: the Gram form when ``P²(M + D + 2) < M(D + 1)`` (dense layers),
the features form otherwise (every convolution here: ``P`` is the number of output pixels, in
the hundreds, so the ``P × P`` position pairs would cost orders of magnitude more).  Inputs are
processed in blocks of rows, so the only tensors held for all inputs are these per-layer
factors.

Supported models (:func:`cnn_layers`): an ``nn.Sequential`` of ``nn.Conv2d`` (any stride,
padding, dilation; ``groups=1``, zero padding), ``nn.Linear`` and parameter-free modules
(element-wise activations, ``Flatten``/``Unflatten``, average and max pooling).  MLPs qualify
too.  Inputs are images ``[n, C, H, W]``, or rows ``[n, d]`` for a model that starts with
``nn.Unflatten`` or is an MLP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_int, describe
from .functional import (
    MAX_BLOCK_FLOATS,
    Params,
    check_inputs,
    check_transform,
    model_params,
    scalar_output,
)

__all__ = [
    "PARAMETER_FREE_MODULES",
    "cnn_layers",
    "is_structured_cnn",
    "check_cnn_inputs",
    "cnn_layer_signals",
    "cnn_tangent_features",
    "cnn_tangent_kernel",
    "cnn_layer_adapted_kernel",
    "patch_gram_is_cheaper",
    "conv_patches",
    "layer_features",
    "gram_term",
]

#: Parameter-free modules allowed between the layers.  Each input is processed on its own, so a
#: layer's tangent features stay the sums of outer products above.
PARAMETER_FREE_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.Softplus, nn.ELU,
    nn.Identity, nn.Flatten, nn.Unflatten, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)

# Floats of layer signals (patches and back-propagated signals) held for one block of inputs;
# larger blocks gain no speed, and this keeps the peak memory of the kernel small.
SIGNAL_BLOCK_FLOATS = 2**20


def cnn_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` children of a supported network; ``TypeError`` naming the first
    unsupported module otherwise."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"model must be an nn.Sequential network for the structured method, got "
            f"{describe(model)}"
        )
    children = list(model.named_children())
    for name, module in children:
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.padding_mode != "zeros":
                raise TypeError(
                    f"the structured method supports nn.Conv2d with groups=1 and zero padding; "
                    f"module {name!r} has groups={module.groups}, "
                    f"padding_mode={module.padding_mode!r}"
                )
        elif not isinstance(module, (nn.Linear, *PARAMETER_FREE_MODULES)):
            supported = ", ".join(cls.__name__ for cls in PARAMETER_FREE_MODULES)
            raise TypeError(
                f"the structured method supports nn.Conv2d, nn.Linear and the parameter-free "
                f"modules {supported}; module {name!r} is {type(module).__name__}"
            )
    if not any(isinstance(module, (nn.Conv2d, nn.Linear)) for _, module in children):
        raise TypeError("the structured method needs at least one nn.Conv2d or nn.Linear layer")
    return children


def is_structured_cnn(model: nn.Module) -> bool:
    """Whether :func:`cnn_layers` accepts ``model`` (convolutional networks and MLPs);
    ``TypeError`` when ``model`` is not an ``nn.Module`` at all."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {describe(model)}")
    try:
        cnn_layers(model)
    except TypeError:
        return False
    return True


def check_cnn_inputs(X: torch.Tensor, model: nn.Module, name: str = "X") -> None:
    """``X`` must be a finite real floating-point batch ``[n, ...]`` of the shape that the first
    module of ``model`` (a network :func:`cnn_layers` accepts) takes: ``[n, C·H·W]`` before an
    ``nn.Unflatten`` to ``(C, H, W)``, ``[n, C, H, W]`` with ``C`` input channels before an
    ``nn.Conv2d``, ``[..., d]`` before an ``nn.Linear``.  Errors name ``name``."""
    check_inputs(X, name)
    first = cnn_layers(model)[0][1]
    if isinstance(first, nn.Unflatten):
        size = math.prod(first.unflattened_size)
        if X.ndim != 2 or X.shape[1] != size:
            raise ValueError(f"{name} must have shape [n, {size}] (flattened "
                             f"{tuple(first.unflattened_size)} images), got {tuple(X.shape)}")
    elif isinstance(first, nn.Conv2d):
        if X.ndim != 4 or X.shape[1] != first.in_channels:
            raise ValueError(f"{name} must have shape [n, {first.in_channels}, H, W], got "
                             f"{tuple(X.shape)}")
    elif isinstance(first, nn.Linear) and X.shape[-1] != first.in_features:
        raise ValueError(f"{name} must have shape [n, {first.in_features}], got "
                         f"{tuple(X.shape)}")


def _padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding of a convolution, as torch applies it."""
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return 0, 0, 0, 0
        # "same": total d·(k − 1) per dimension, the odd pixel on the right / bottom.
        pads = []
        for size, dilation in zip(conv.kernel_size, conv.dilation):
            total = dilation * (size - 1)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return left, right, top, bottom
    ph, pw = conv.padding
    return pw, pw, ph, ph


def conv_patches(h: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The input patches ``[n, D, P]`` of ``conv`` for its input ``h`` (``[n, C, H, W]``).

    Column ``p`` is the patch at output position ``p`` (row-major), flattened like a row of the
    weight (channel, kernel row, kernel column): the same matrix as
    ``torch.nn.functional.unfold``, gathered through a strided view of the padded input,
    which is several times faster on a CPU.
    """
    x = F.pad(h, _padding(conv))
    (kh, kw), (dh, dw), (sh, sw) = conv.kernel_size, conv.dilation, conv.stride
    view = x.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)
    view = view[..., ::dh, ::dw]  # [n, C, H_out, W_out, k_h, k_w]
    return view.permute(0, 1, 4, 5, 2, 3).reshape(h.shape[0], h.shape[1] * kh * kw, -1)


def cnn_layer_signals(
    X: torch.Tensor, model: nn.Module, params: Params | None = None
) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Per parametrised layer (``nn.Conv2d`` or ``nn.Linear``), input to output:
    ``(H, G, has_bias)``.

    ``H`` (``[n, D, P]``) holds the layer's input patches, one column per output position
    (:func:`conv_patches`; ``D = d`` and ``P = 1`` for a dense layer on ``[n, d]``); ``G``
    (``[n, M, P]``) the back-propagated signals ``∂f(x_i)/∂z`` at its ``M`` outputs per
    position.  The layer's
    tangent features for input ``i`` are ``G_i H_iᵀ`` (weights, ``[M, D]``) and ``G_i 1``
    (bias).  One forward and one backward pass for all rows of ``X``.
    """
    check_cnn_inputs(X, model, "X")
    children = cnn_layers(model)
    theta = model_params(model, params)
    patches, outputs, biases, convolutions = [], [], [], []
    with torch.enable_grad():
        h = X
        for name, module in children:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                weight, bias = theta[f"{name}.weight"], theta.get(f"{name}.bias")
                if isinstance(module, nn.Conv2d):
                    z = F.conv2d(h, weight, bias, module.stride, module.padding,
                                 module.dilation)
                    patches.append(conv_patches(h.detach(), module))
                else:
                    z = F.linear(h, weight, bias)
                    patches.append(h.detach().reshape(len(h), -1, h.shape[-1]).transpose(1, 2))
                if not z.requires_grad:
                    # First layer: nothing upstream needs gradients, so make z a leaf that does.
                    z = z.detach().requires_grad_(True)
                outputs.append(z)
                biases.append(bias is not None)
                convolutions.append(isinstance(module, nn.Conv2d))
                h = z
            else:
                h = module(h)
        out = scalar_output(h)
        # Samples do not interact, so the gradient of the sum gives each sample's own signal.
        grads = torch.autograd.grad(out.sum(), outputs)
    signals = []
    for H, grad, has_bias, convolution in zip(patches, grads, biases, convolutions):
        if convolution:  # [n, M, H_out, W_out] → [n, M, P]
            G = grad.reshape(grad.shape[0], grad.shape[1], -1)
        else:  # dense layer on [n, ..., d]: [n, ..., M] → [n, M, P]
            G = grad.reshape(grad.shape[0], -1, grad.shape[-1]).transpose(1, 2)
        signals.append((H, G.detach(), has_bias))
    return signals


def patch_gram_is_cheaper(positions: int, outputs: int, patch: int) -> bool:
    """Whether the Gram contraction beats the features contraction for a layer with ``positions``
    output positions, ``outputs`` channels and patches of length ``patch`` (module docstring)."""
    return positions * positions * (outputs + patch + 2) < outputs * (patch + 1)


def layer_features(H: torch.Tensor, G: torch.Tensor, has_bias: bool) -> torch.Tensor:
    """The layer's block of tangent features, ``[n, M·D (+ M)]``, from its signals ``H``
    (``[n, D, P]``) and ``G`` (``[n, M, P]``): ``vec(G_i H_iᵀ)`` (row-major, the order of the
    flattened weight) followed by the bias features ``G_i 1``."""
    n = H.shape[0]
    weight = torch.bmm(G, H.transpose(1, 2)).reshape(n, -1)
    return torch.cat([weight, G.sum(dim=2)], dim=1) if has_bias else weight


def _rows_per_block(n: int, per_row: int, batch_size: int | None) -> int:
    if batch_size is not None:
        return check_int(batch_size, "batch_size", minimum=1)
    return max(1, min(n, SIGNAL_BLOCK_FLOATS // max(per_row, 1)))


def _signal_blocks(X: torch.Tensor, model: nn.Module, theta: Params, batch_size: int | None):
    """Yield ``cnn_layer_signals`` for consecutive blocks of rows of ``X``."""
    first = cnn_layer_signals(X[:1], model, theta)
    per_row = sum(H[0].numel() + G[0].numel() for H, G, _ in first)
    block = _rows_per_block(X.shape[0], per_row, batch_size)
    for start in range(0, X.shape[0], block):
        yield cnn_layer_signals(X[start : start + block], model, theta)


def cnn_tangent_features(
    X: torch.Tensor,
    model: nn.Module,
    params: Params | None = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Tangent features ``Φ`` (``[n, p]``) of a supported network from its layer factors.

    Columns follow the model's parameter order (each weight flattened row-major, then its bias),
    as :func:`~atf_lite.networks.tangent.tangent_features`.  ``batch_size`` rows are processed at
    once (default: as many as keep the layer signals of a block under 2**20 floats).
    """
    check_cnn_inputs(X, model, "X")
    theta = model_params(model, params)
    blocks = [
        torch.cat([layer_features(H, G, b) for H, G, b in signals], dim=1)
        for signals in _signal_blocks(X, model, theta, batch_size)
    ]
    return torch.cat(blocks, dim=0)


def _transformed(
    H: torch.Tensor, G: torch.Tensor, has_bias: bool, transform: tuple | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Bᵀ H̃, Aᵀ G)`` in float64, ``H̃`` the patches with the bias's constant input appended."""
    H, G = H.to(torch.float64), G.to(torch.float64)
    if has_bias:
        H = torch.cat([H, H.new_ones(H.shape[0], 1, H.shape[2])], dim=1)
    if transform is not None:
        A, B = transform
        H, G = torch.matmul(B.T, H), torch.matmul(A.T, G)
    return H, G


def _factors(
    X: torch.Tensor,
    model: nn.Module,
    theta: Params,
    batch_size: int | None,
    transforms: list | None = None,
) -> list:
    """Per layer, the compact factor of the cheaper contraction for all rows of ``X``:
    ``("features", J)`` or ``("gram", H, G, has_bias)``.  With ``transforms`` (one ``(A, B)``
    or ``None`` per layer), the signals are first mapped to ``(Bᵀ H̃, Aᵀ G)`` in float64."""
    parts: list[list] = []
    biases: list[bool] = []
    for signals in _signal_blocks(X, model, theta, batch_size):
        if not parts:
            parts, biases = [[] for _ in signals], [b for _, _, b in signals]
        for index, (store, (H, G, has_bias)) in enumerate(zip(parts, signals)):
            if transforms is not None:
                H, G = _transformed(H, G, has_bias, transforms[index])
                has_bias = False  # the constant input is now a row of H
            if patch_gram_is_cheaper(H.shape[2], G.shape[1], H.shape[1]):
                store.append((H, G))
            else:
                store.append(layer_features(H, G, has_bias))
    factors = []
    for store, has_bias in zip(parts, biases):
        if isinstance(store[0], tuple):
            H = torch.cat([pair[0] for pair in store])
            G = torch.cat([pair[1] for pair in store])
            factors.append(("gram", H, G, has_bias and transforms is None))
        else:
            factors.append(("features", torch.cat(store)))
    return factors


def gram_term(
    H1: torch.Tensor, G1: torch.Tensor, H2: torch.Tensor, G2: torch.Tensor, has_bias: bool
) -> torch.Tensor:
    """``Σ_{p,q} (g_p·g'_q)(h_p·h'_q + 1[bias])`` for all pairs (``[n1, n2]``), in blocks of rows
    that keep the ``n1 × n2 × P × P`` intermediate under 2**26 floats."""
    n1, P1 = H1.shape[0], H1.shape[2]
    n2, P2 = H2.shape[0], H2.shape[2]
    g2 = G2.transpose(1, 2).reshape(n2 * P2, -1)
    h2 = H2.transpose(1, 2).reshape(n2 * P2, -1)
    block = max(1, MAX_BLOCK_FLOATS // max(n2 * P1 * P2, 1))
    rows = []
    for start in range(0, n1, block):
        g1 = G1[start : start + block].transpose(1, 2).reshape(-1, g2.shape[1])
        h1 = H1[start : start + block].transpose(1, 2).reshape(-1, h2.shape[1])
        inputs = h1 @ h2.T
        if has_bias:
            inputs += 1.0
        term = (g1 @ g2.T).mul_(inputs)
        rows.append(term.reshape(-1, P1, n2, P2).sum(dim=(1, 3)))
    return torch.cat(rows, dim=0)


def _kernel(factors1: list, factors2: list) -> torch.Tensor:
    K = None
    for first, second in zip(factors1, factors2):
        if first[0] == "features":
            term = first[1] @ second[1].T
        else:
            term = gram_term(first[1], first[2], second[1], second[2], first[3])
        K = term if K is None else K.add_(term)
    return K


def cnn_tangent_kernel(
    X1: torch.Tensor,
    model: nn.Module,
    params: Params | None = None,
    *,
    X2: torch.Tensor | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Tangent kernel ``Σ_l K_l`` (``[n1, n2]``) of a supported network from per-layer factors.

    Each layer takes the cheaper of the two contractions of the module docstring; ``X2=None``
    means ``X2 = X1``.  ``batch_size`` bounds the rows whose layer signals are held at once.
    """
    check_cnn_inputs(X1, model, "X1")
    if X2 is not None:
        check_cnn_inputs(X2, model, "X2")
    theta = model_params(model, params)
    factors1 = _factors(X1, model, theta, batch_size)
    factors2 = factors1 if X2 is None else _factors(X2, model, theta, batch_size)
    return _kernel(factors1, factors2)


def cnn_layer_adapted_kernel(
    X1: torch.Tensor,
    model: nn.Module,
    transforms: Sequence[tuple[torch.Tensor, torch.Tensor] | None],
    params: Params | None = None,
    *,
    X2: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-layer adapted kernel of a convolutional network (float64 ``[n1, n2]``).

    ``transforms`` has one entry per ``nn.Conv2d`` / ``nn.Linear`` layer (input to output):
    ``None`` for the identity or a pair ``(A, B)``, ``A`` of shape ``[M, M]`` acting on the
    layer's ``M`` output channels and ``B`` of shape ``[D + 1, D + 1]`` acting on its patch
    dimension (``D = c·k_h·k_w`` patch values and, last, the constant input of the bias;
    ``[D, D]`` without a bias).  The layer's features ``G Ũᵀ`` become ``Aᵀ G Ũᵀ B``, i.e. they
    are transformed by ``Γ = A ⊗ B`` on the flattened ``[M, D + 1]`` weight-and-bias matrix,
    and its kernel term becomes

        ``Σ_{p,q} (g_pᵀ A Aᵀ g'_q)(ũ_pᵀ B Bᵀ ũ'_q)``.

    ``A`` can only mix output channels and ``B`` only patch coordinates, the same at every
    position.  With every entry ``None`` this is the tangent kernel.  ``X2=None`` means
    ``X2 = X1``.
    """
    check_cnn_inputs(X1, model, "X1")
    if X2 is not None:
        check_cnn_inputs(X2, model, "X2")
    theta = model_params(model, params)
    shapes = [
        (theta[f"{name}.weight"].shape[0],
         theta[f"{name}.weight"][0].numel() + (f"{name}.bias" in theta))
        for name, module in cnn_layers(model) if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
        raise TypeError(f"transforms must be a list of (A, B) pairs or None, got "
                        f"{describe(transforms)}")
    if len(transforms) != len(shapes):
        raise ValueError(
            f"transforms must have one entry per convolution or dense layer ({len(shapes)}), "
            f"got {len(transforms)}"
        )
    checked: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for index, (transform, (m, d)) in enumerate(zip(transforms, shapes)):
        if transform is None:
            checked.append(None)
            continue
        if len(transform) != 2:
            raise ValueError(f"transforms[{index}] must be None or a pair (A, B)")
        checked.append((check_transform(transform[0], m, f"transforms[{index}][0] (A)"),
                        check_transform(transform[1], d, f"transforms[{index}][1] (B)")))
    factors1 = _factors(X1, model, theta, None, checked)
    factors2 = factors1 if X2 is None else _factors(X2, model, theta, None, checked)
    return _kernel(factors1, factors2)
