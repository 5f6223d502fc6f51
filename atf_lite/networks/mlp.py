"""Multi-layer perceptrons with the paper's initialisations."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_bool, check_int, check_option, check_seed, describe
from ..perturbation import perturb_ulp_, perturbation_seed

__all__ = ["INITS", "mlp"]


INITS = ("he", "lecun")
# Standard deviation of a standard normal truncated to [-2, 2]; dividing by it restores unit
# variance after truncation (the constant Flax's truncated ``variance_scaling`` uses).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def _initial_weight(
    fan_out: int, fan_in: int, init: str, generator: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    """A ``[fan_out, fan_in]`` weight matrix drawn by the rule ``init`` (see :func:`mlp`)."""
    if init == "he":
        return torch.randn(fan_out, fan_in, generator=generator, dtype=dtype) * math.sqrt(
            2.0 / fan_in
        )
    # Truncated normal by rejection: redraw the entries outside [-2, 2] until none are left.
    sample = torch.randn(fan_out, fan_in, generator=generator, dtype=torch.float64)
    outside = sample.abs() > 2
    while outside.any():
        sample[outside] = torch.randn(int(outside.sum()), generator=generator, dtype=torch.float64)
        outside = sample.abs() > 2
    return (sample * (math.sqrt(1.0 / fan_in) / _TRUNCATED_NORMAL_STD)).to(dtype)


def mlp(
    d_in: int,
    width: int,
    depth: int,
    *,
    d_out: int = 1,
    bias: bool = True,
    seed: int = 0,
    activation: type[nn.Module] = nn.ReLU,
    dtype: torch.dtype = torch.float32,
    init: str = "he",
) -> nn.Sequential:
    """An MLP ``d_in → width (× depth hidden layers) → d_out`` with ReLU activations.

    ``depth`` counts hidden layers (the paper's Figure 1 network has ``depth=2``, ``width=256``).
    Biases are zero.  Weights follow ``init``:

    * ``"he"``: ``N(0, 2 / fan_in)``, the initialisation of the paper's Figure 1 network;
    * ``"lecun"``: variance ``1 / fan_in`` from a normal truncated at two standard deviations and
      rescaled to that variance, which is Flax's default for dense layers and therefore the
      initialisation of the authors' sample-complexity code.

    ``seed`` makes the draw reproducible without touching torch's global random state.  When
    the test switch ``$ATF_LITE_PERTURB`` is set, the drawn weights are then moved by one ulp
    (:func:`atf_lite.perturbation.perturb_ulp_`), as another machine's arithmetic would.
    """
    d_in = check_int(d_in, "d_in", minimum=1)
    width = check_int(width, "width", minimum=1)
    d_out = check_int(d_out, "d_out", minimum=1)
    depth = check_int(depth, "depth", minimum=0)
    bias = check_bool(bias, "bias")
    seed = check_seed(seed)
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise TypeError(
            f"activation must be an nn.Module class such as nn.ReLU, got {describe(activation)}"
        )
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {describe(dtype)}")
    check_option(init, "init", INITS)
    sizes = [d_in] + [width] * depth + [d_out]
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(_initial_weight(fan_out, fan_in, init, generator, dtype))
            if bias:
                linear.bias.zero_()
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(activation())
    network = nn.Sequential(*layers)
    perturbation = perturbation_seed()
    if perturbation is not None:
        perturb_ulp_(network, perturbation)
    return network
