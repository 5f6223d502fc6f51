"""A switch that makes this machine behave like another one, for testing the book's checks.

Float32 training is chaotic in its last bits: two CPUs that sum in a different order (AVX2 vs
AVX-512 kernels, another BLAS) produce trajectories that drift apart and end at slightly
different trained networks.  A check that passes only on the machine that executed the
notebooks is worthless to anyone else, so the tests run the chapters a second time with the
environment variable ``ATF_LITE_PERTURB`` set to a positive integer ``k``: every network that
:mod:`atf_lite` builds then starts from weights moved by one unit in the last place (each entry
independently up, down or not at all, drawn with seed ``k``).  That is the size of the
difference another machine makes after its first reduction, and it propagates through training
in the same way.  Cached results are keyed by ``k`` as well (see :mod:`atf_lite.cache`), so a
perturbed run never reads unperturbed results and vice versa.

The switch is for tests only; unset (or ``0``) it changes nothing.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

__all__ = ["PERTURB_ENV_VAR", "perturbation_seed", "perturb_ulp_"]

PERTURB_ENV_VAR = "ATF_LITE_PERTURB"


def perturbation_seed() -> int | None:
    """The seed ``k`` of ``$ATF_LITE_PERTURB`` (``None`` when unset, empty or ``0``).

    Raises ``ValueError`` naming the variable when it is set to anything but a non-negative
    integer, so a typo never silently disables the perturbed test run.
    """
    raw = os.environ.get(PERTURB_ENV_VAR, "").strip()
    if raw in {"", "0"}:
        return None
    if not raw.isdigit():
        raise ValueError(
            f"{PERTURB_ENV_VAR} must be a non-negative integer (0 or unset: off), got {raw!r}"
        )
    return int(raw)


@torch.no_grad()
def perturb_ulp_(module: nn.Module, seed: int) -> nn.Module:
    """Move every floating-point parameter of ``module`` by at most one ulp, in place.

    Each entry independently goes one representable number up, one down, or stays (probability
    1/3 each), drawn from a generator seeded with ``seed`` and the parameter's position, so the
    perturbation is reproducible and independent of the global random state.  Returns
    ``module``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch nn.Module, got {type(module).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**40:
        raise ValueError(f"seed must be an integer in [0, 2**40), got {seed!r}")
    seed = int(seed)
    for index, parameter in enumerate(module.parameters()):
        if not parameter.is_floating_point():
            continue
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        step = torch.randint(-1, 2, parameter.shape, generator=generator)
        step = step.to(device=parameter.device)
        up = torch.nextafter(parameter, torch.full_like(parameter, float("inf")))
        down = torch.nextafter(parameter, torch.full_like(parameter, float("-inf")))
        parameter.copy_(torch.where(step > 0, up, torch.where(step < 0, down, parameter)))
    return module
