"""Small convolutional networks with the paper's initialisations.

:func:`cnn` builds the book's convolutional network: blocks of a 3×3 convolution with zero
("same") padding, a ReLU and 2×2 average pooling, with the number of channels doubling from
block to block, then dense layers.  It is a two-block version of the convolutional network of
the paper's first preprint (its Figure 4, on CIFAR-10: four such blocks of 16, 32, 64 and 128
channels, two hidden dense layers, ten outputs).  :func:`image_shape_for` guesses the image
shape of flattened square grey-scale inputs (the book's data loaders return rows ``[n, d]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._validation import check_bool, check_positive_int, check_seed, describe, is_integer
from ..perturbation import perturb_ulp_, perturbation_seed
from .mlp import INITS

__all__ = ["POOLINGS", "cnn", "image_shape_for"]

#: Pooling after each convolution block.
POOLINGS = ("avg", "max", "none")

# Standard deviation of a standard normal truncated to [-2, 2] (erf closed form): dividing by it
# restores unit variance after truncation.
_TRUNCATED_STD = math.sqrt(
    1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(math.sqrt(2.0))
)


def _initialise_(weight: torch.Tensor, init: str, generator: torch.Generator) -> None:
    """Draw ``weight`` (``[fan_out, fan_in, ...]``) in place by rule ``init`` (see :func:`cnn`)."""
    fan_in = weight[0].numel()
    if init == "he":
        nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_in), generator=generator)
    else:
        std = math.sqrt(1.0 / fan_in) / _TRUNCATED_STD
        nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)


def _positive_ints(values: object, name: str) -> list[int]:
    """``values`` as a list of positive ints (any sequence of them, possibly empty)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of positive integers, got {describe(values)}")
    if not all(is_integer(v) and v >= 1 for v in values):
        raise ValueError(f"{name} must be positive integers, got {list(values)!r}")
    return [int(v) for v in values]


def _check_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    if isinstance(image_shape, (str, bytes)) or not isinstance(image_shape, Sequence):
        raise ValueError(f"image_shape must be (channels, height, width), got "
                         f"{describe(image_shape)}")
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(is_integer(v) and v >= 1 for v in shape):
        raise ValueError(
            f"image_shape must be three positive integers (channels, height, width), got "
            f"{image_shape!r}"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def cnn(
    image_shape: Sequence[int] = (1, 28, 28),
    channels: Sequence[int] = (8, 16),
    *,
    hidden: Sequence[int] = (),
    d_out: int = 1,
    kernel_size: int = 3,
    pooling: str = "avg",
    bias: bool = True,
    seed: int = 0,
    activation: type[nn.Module] = nn.ReLU,
    dtype: torch.dtype = torch.float32,
    init: str = "he",
    flat_input: bool = False,
) -> nn.Sequential:
    """A convolutional network for images of shape ``image_shape = (C, H, W)``.

    One block per entry of ``channels``: ``Conv2d(c_in, c, kernel_size, padding="same")``, the
    activation, then 2×2 pooling (``pooling``: ``"avg"``, ``"max"`` or ``"none"``; a block
    whose input is smaller than 2×2 is not pooled).  Then ``Flatten``, one dense layer per entry
    of ``hidden`` (each followed by the activation) and a dense output layer with ``d_out``
    units.  The default ``channels=(8, 16)`` on 28×28 MNIST images has 80 + 1 168 convolution
    parameters and 7·7·16 = 784 inputs to the output layer.

    Inputs are ``[n, C, H, W]``; with ``flat_input=True`` the network starts with an
    ``nn.Unflatten`` and takes the rows ``[n, C·H·W]`` of the book's data loaders.  Biases are
    zero; weights follow ``init`` with ``fan_in = c_in·k·k`` for a convolution and ``d`` for a
    dense layer: ``"he"`` draws ``N(0, 2 / fan_in)``, ``"lecun"`` a normal truncated at two
    standard deviations with variance ``1 / fan_in`` (as :func:`~atf_lite.networks.mlp.mlp`).
    ``seed`` makes the draw reproducible without touching torch's global random state; with
    ``$ATF_LITE_PERTURB`` set the drawn weights are moved by one ulp
    (:func:`atf_lite.perturbation.perturb_ulp_`), exactly as for ``mlp``.
    """
    c, height, width = _check_shape(image_shape)
    channels, hidden = _positive_ints(channels, "channels"), _positive_ints(hidden, "hidden")
    if not channels:
        raise ValueError("channels must name at least one convolution block")
    d_out, kernel_size = check_positive_int(d_out, "d_out"), check_positive_int(kernel_size,
                                                                               "kernel_size")
    bias, flat_input = check_bool(bias, "bias"), check_bool(flat_input, "flat_input")
    seed = check_seed(seed)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    layers: list[nn.Module] = [nn.Unflatten(1, (c, height, width))] if flat_input else []
    for out_channels in channels:
        layers += [nn.Conv2d(c, out_channels, kernel_size, padding="same", bias=bias,
                             dtype=dtype), activation()]
        c = out_channels
        if pooling != "none" and min(height, width) >= 2:
            layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
            height, width = height // 2, width // 2
    layers.append(nn.Flatten())
    d = c * height * width
    for units in hidden:
        layers += [nn.Linear(d, units, bias=bias, dtype=dtype), activation()]
        d = units
    layers.append(nn.Linear(d, d_out, bias=bias, dtype=dtype))
    network = nn.Sequential(*layers)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                _initialise_(module.weight, init, generator)
                if module.bias is not None:
                    module.bias.zero_()
    perturbation = perturbation_seed()
    if perturbation is not None:
        perturb_ulp_(network, perturbation)
    return network


def image_shape_for(d: int) -> tuple[int, int, int]:
    """``(1, s, s)`` for flattened square grey-scale images of ``d = s²`` pixels (MNIST: 784 →
    28×28; scikit-learn's digits: 64 → 8×8); ``ValueError`` when ``d`` is not a square."""
    d = check_positive_int(d, "d")
    side = math.isqrt(int(d))
    if side * side != d:
        raise ValueError(f"d = {d} pixels is not a square image; pass image_shape explicitly")
    return 1, side, side
