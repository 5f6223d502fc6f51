"""Argument checks shared by the package's modules.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object) with a message
that names the argument and the offending value, and returns the argument normalised (a
float64 array, a Python ``int``, a tuple of index arrays, …).  Nothing here imports torch: a
tensor is recognised by its ``detach`` method.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "to_numpy",
    "as_float_array",
    "check_system",
    "check_feature_columns",
    "check_square_matrix",
    "check_nonnegative_array",
    "is_integer",
    "check_positive_int",
    "check_nonnegative_int",
    "STRUCTURES",
    "check_structure",
    "check_structure_options",
    "check_groups",
    "check_shape",
]


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """``x`` as a NumPy array of ``dtype``; a torch tensor is detached and moved to the CPU."""
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def as_float_array(x: Any, name: str, ndim: int) -> np.ndarray:
    """``x`` as a finite float64 array with ``ndim`` dimensions (an ``[n, 1]`` column counts as
    a vector when ``ndim`` is 1)."""
    arr = to_numpy(x)
    if arr.ndim == 2 and ndim == 1 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_system(Phi: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """A linear system ``Φ β = y``: ``Phi`` ``[n, p]`` and ``y`` ``[n]``, finite float64."""
    Phi = as_float_array(Phi, "Phi", 2)
    y = as_float_array(y, "y", 1)
    if y.shape[0] != Phi.shape[0]:
        raise ValueError(f"y must have length Phi.shape[0] = {Phi.shape[0]}, got {y.shape[0]}")
    return Phi, y


def check_feature_columns(Phi1: Any, Phi2: Any, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrices ``Phi1`` and ``Phi2`` (default ``Phi1``), each with ``p`` columns."""
    Phi1 = as_float_array(Phi1, "Phi1", 2)
    Phi2 = Phi1 if Phi2 is None else as_float_array(Phi2, "Phi2", 2)
    for name, F in (("Phi1", Phi1), ("Phi2", Phi2)):
        if F.shape[1] != p:
            raise ValueError(f"{name} must have {p} columns (features), got {F.shape[1]}")
    return Phi1, Phi2


def check_square_matrix(K: Any, name: str) -> np.ndarray:
    """``K`` as a finite square float64 matrix."""
    K = to_numpy(K)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return K


def check_nonnegative_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 array without NaN and without negative entries."""
    arr = np.asarray(x, dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min()!r}")
    return arr


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``bool`` is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int ≥ 1``."""
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an ``int ≥ 0``."""
    if not is_integer(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Structured transformations (diagonal, groups, Kronecker)
# --------------------------------------------------------------------------------------------

STRUCTURES = ("diagonal", "groups", "kronecker")


def check_structure(structure: Any) -> str:
    """``structure`` if it is ``"diagonal"``, ``"groups"`` or ``"kronecker"``."""
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    return structure


def check_structure_options(structure: str, groups: Any, omega_b: Any, shape: Any) -> None:
    """Options that belong to another structure are an error, never silently ignored."""
    if groups is not None and structure != "groups":
        raise ValueError(f"groups is only used with structure='groups', not {structure!r}")
    if omega_b is not None and structure != "kronecker":
        raise ValueError(f"omega_b is only used with structure='kronecker', not {structure!r}")
    if shape is not None and structure != "kronecker":
        raise ValueError(f"shape is only used with structure='kronecker', not {structure!r}")


def check_groups(groups: Any, p: int) -> tuple[np.ndarray, ...]:
    """``groups`` as a tuple of integer index arrays that partition ``range(p)``."""
    if groups is None:
        raise ValueError("structure='groups' needs groups: a list of index arrays")
    if isinstance(groups, str | bytes) or not hasattr(groups, "__iter__"):
        raise ValueError("groups must be a list of 1-D integer index arrays")
    out = []
    for k, g in enumerate(groups):
        arr = np.asarray(g)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"groups[{k}] must be a non-empty 1-D index array, got shape {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"groups[{k}] must hold integer indices, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= p:
            raise ValueError(f"groups[{k}] has indices outside [0, {p})")
        out.append(arr.astype(np.intp))
    if not out:
        raise ValueError("groups must contain at least one group")
    counts = np.bincount(np.concatenate(out), minlength=p)
    if np.any(counts > 1):
        raise ValueError(
            f"groups do not partition the indices: index {int(np.argmax(counts > 1))} is in "
            "more than one group"
        )
    if np.any(counts == 0):
        raise ValueError(
            f"groups do not partition the indices: index {int(np.argmin(counts))} is in no group"
        )
    return tuple(out)


def check_shape(shape: Any, p: int) -> tuple[int, int]:
    """``shape = (m, d)`` of a weight matrix with ``m · d = p`` parameters."""
    if shape is None:
        raise ValueError("structure='kronecker' needs shape=(m, d) of the weight matrix")
    try:
        m, d = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair of positive integers, got {shape!r}") from None
    if m < 1 or d < 1 or m * d != p:
        raise ValueError(f"shape {shape!r} does not match the {p} parameters (m · d must be {p})")
    return m, d
