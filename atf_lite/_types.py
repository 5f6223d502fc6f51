"""Types shared by the whole package: the ``ArrayLike`` alias, the warning a solver gives when
it stops unconverged, and the base of result records that still unpack like tuples.

``ArrayLike`` and ``ConvergenceWarning`` are re-exported as ``atf_lite.ArrayLike`` and
``atf_lite.ConvergenceWarning``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union

import numpy.typing as npt

if TYPE_CHECKING:  # torch is not imported just to name a type
    import torch

__all__ = ["ArrayLike", "ConvergenceWarning", "UnpackableResult"]

# Anything the float64 solvers accept as an array: a NumPy array (or nested sequence, or
# scalar) or a torch tensor, which is detached and copied to the CPU.
ArrayLike = Union[npt.ArrayLike, "torch.Tensor"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped (iteration limit reached) before its stopping rule was met.

    The result is still returned, with ``converged=False`` where the result type has that
    field; it is the last iterate, not a solution to the requested tolerance.  Raise the
    iteration limit, loosen the tolerance, or turn the warning into an error with
    ``warnings.simplefilter("error", atf_lite.ConvergenceWarning)``.
    """


class UnpackableResult:
    """Mixin for frozen dataclass results that used to be tuples: ``a, b = result`` and
    ``result[0]`` still work, in field order, next to the named attributes."""

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values())

    def __getitem__(self, index: int | slice) -> Any:
        return self._values()[index]

    def __len__(self) -> int:
        return len(dataclasses.fields(self))
