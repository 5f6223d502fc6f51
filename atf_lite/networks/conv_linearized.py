"""The linearised convolutional network, propagated layer by layer in forward mode.

For a network ``f(x; θ)`` and a parameter change ``δ``, the first-order Taylor model
``f(x; θ0) + J(θ0) δ`` is computed without ``J``: every layer's output ``z`` travels with its
tangent ``dz``.  A convolution or dense layer ``z = W0 ⋆ h + b0`` gives
``dz = W0 ⋆ dh + (δW ⋆ h + δb)``; a ReLU passes ``dz`` where ``z > 0`` (the derivative torch's
autograd uses, 0 at the kink); average pooling and reshapes are linear and act on ``dz`` as on
``z``; max pooling passes the tangent of the entry it selects.  One such pass costs about two
forward passes of the network, less than a ``torch.func.jvp`` through the same modules.

:func:`conv_tangent_plan` checks that a network qualifies; :func:`linearized_forward` evaluates
the linearisation.  The tangent-feature models of :mod:`atf_lite.networks.feature_models` use
them for convolutional networks.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LINEAR_MODULES", "conv_tangent_plan", "linearized_forward"]

#: Parameter-free modules that are linear maps, which act on the tangent as on the value.
LINEAR_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def conv_tangent_plan(base: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The ``(name, module)`` steps of the layer-wise linearisation of ``base``, or ``None``.

    ``base`` qualifies when it is an ``nn.Sequential`` with at least one ``nn.Conv2d``
    (``groups=1``, zero padding) made of ``nn.Conv2d``, ``nn.Linear``, ``nn.ReLU``,
    ``nn.MaxPool2d`` and the linear modules ``LINEAR_MODULES``.
    """
    if not isinstance(base, nn.Sequential):
        return None
    steps = list(base.named_children())
    for _, module in steps:
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.padding_mode != "zeros":
                return None
        elif not isinstance(module, (nn.Linear, nn.ReLU, nn.MaxPool2d, *LINEAR_MODULES)):
            return None
    if not any(isinstance(module, nn.Conv2d) for _, module in steps):
        return None
    return steps


def _layer(module: nn.Module, h: torch.Tensor, weight: torch.Tensor,
           bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        return F.conv2d(h, weight, bias, module.stride, module.padding, module.dilation)
    return F.linear(h, weight, bias)


def linearized_forward(
    X: torch.Tensor,
    plan: list[tuple[str, nn.Module]],
    theta0: Mapping[str, torch.Tensor],
    delta: Mapping[str, torch.Tensor],
) -> torch.Tensor:
    """``f(X; θ0) + J(θ0) δ`` for a network of :func:`conv_tangent_plan` (output shape of the
    network).

    ``theta0`` and ``delta`` map the network's parameter names to tensors of their shapes;
    gradients flow to ``delta`` (and to ``theta0`` if it requires them).
    """
    h, dh = X, None
    for name, module in plan:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight, bias = theta0[f"{name}.weight"], theta0.get(f"{name}.bias")
            change = _layer(module, h, delta[f"{name}.weight"], delta.get(f"{name}.bias"))
            if dh is not None:
                change = change + _layer(module, dh, weight, None)
            h, dh = _layer(module, h, weight, bias), change
        elif isinstance(module, nn.ReLU):
            active = h > 0
            h, dh = torch.relu(h), None if dh is None else torch.where(active, dh, 0.0)
        elif isinstance(module, nn.MaxPool2d):
            h, index = F.max_pool2d(
                h, module.kernel_size, module.stride, module.padding, module.dilation,
                ceil_mode=module.ceil_mode, return_indices=True,
            )
            if dh is not None:
                dh = dh.flatten(2).gather(2, index.flatten(2)).view_as(h)
        else:
            h, dh = module(h), None if dh is None else module(dh)
    return h if dh is None else h + dh
