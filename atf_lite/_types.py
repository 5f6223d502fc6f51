"""Type aliases shared by the whole package (re-exported as ``atf_lite.ArrayLike``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import numpy.typing as npt

if TYPE_CHECKING:  # torch is not imported just to name a type
    import torch

__all__ = ["ArrayLike"]

# Anything the float64 solvers accept as an array: a NumPy array (or nested sequence, or
# scalar) or a torch tensor, which is detached and copied to the CPU.
ArrayLike = Union[npt.ArrayLike, "torch.Tensor"]
