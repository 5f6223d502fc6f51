"""Argument checks shared by the package's modules.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object) with a message
that names the argument and the offending value, and returns the argument normalised (a
float64 array, a Python ``int``, a tuple of index arrays, …).  Nothing here imports torch: a
tensor is recognised by its ``detach`` method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "describe",
    "to_numpy",
    "check_array",
    "as_float_array",
    "check_system",
    "check_feature_columns",
    "check_square_matrix",
    "check_nonnegative_array",
    "check_tensor",
    "is_integer",
    "check_int",
    "check_positive_int",
    "check_nonnegative_int",
    "check_real",
    "check_bool",
    "check_option",
    "check_seed",
    "check_callable",
    "check_instance",
    "check_mapping",
    "check_sequence",
    "check_int_sequence",
    "STRUCTURES",
    "check_structure",
    "check_structure_options",
    "check_groups",
    "check_matrix_shape",
    "check_shape",
]


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message: arrays by shape and dtype,
    long reprs cut."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0:
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "is_complex")


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """``x`` as a NumPy array of ``dtype``; a torch tensor is detached and moved to the CPU.

    No checks: :func:`check_array` is the validating version.
    """
    if _is_tensor(x):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    finite: bool = True,
    allow_empty: bool = False,
    column_as_vector: bool = True,
) -> np.ndarray:
    """``x`` (array, nested sequence, scalar or torch tensor) as a float64 NumPy array.

    Refused, with a message naming ``name``: ``None``; strings, objects and ragged sequences;
    complex values (never silently made real); a number of dimensions other than ``ndim``
    (an ``[n, 1]`` column counts as a vector when ``ndim`` is 1 and ``column_as_vector``);
    no entries (unless ``allow_empty``); NaN or infinite entries (when ``finite``).
    Booleans and integers are converted to float64.
    """
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    if isinstance(x, str | bytes):
        raise TypeError(f"{name} must be an array of numbers, got the string {x!r}")
    if _is_tensor(x):
        if x.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor ({x.dtype})")
        x = x.detach().cpu().numpy()
    try:
        raw = np.asarray(x)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None
    if raw.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {raw.dtype}")
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    arr = raw.astype(np.float64, copy=False)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None:
        if column_as_vector and 1 in allowed and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim not in allowed:
            wanted = " or ".join(f"{k}-D" for k in allowed)
            raise ValueError(f"{name} must be a {wanted} array, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_float_array(x: Any, name: str, ndim: int) -> np.ndarray:
    """``x`` as a finite, non-empty float64 array with ``ndim`` dimensions (see
    :func:`check_array`)."""
    return check_array(x, name, ndim=ndim)


def check_system(
    Phi: Any, y: Any, names: tuple[str, str] = ("Phi", "y")
) -> tuple[np.ndarray, np.ndarray]:
    """A linear system ``Φ β = y``: ``Phi`` ``[n, p]`` and ``y`` ``[n]``, finite float64."""
    Phi = as_float_array(Phi, names[0], 2)
    y = as_float_array(y, names[1], 1)
    if y.shape[0] != Phi.shape[0]:
        raise ValueError(
            f"{names[1]} must have length {names[0]}.shape[0] = {Phi.shape[0]}, got {y.shape[0]}"
        )
    return Phi, y


def check_feature_columns(
    Phi1: Any, Phi2: Any, p: int, names: tuple[str, str] = ("Phi1", "Phi2")
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrices ``Phi1`` and ``Phi2`` (default ``Phi1``), each with ``p`` columns
    (``names``: the arguments' names in messages)."""
    Phi1 = as_float_array(Phi1, names[0], 2)
    Phi2 = Phi1 if Phi2 is None else as_float_array(Phi2, names[1], 2)
    for name, F in zip(names, (Phi1, Phi2), strict=True):
        if F.shape[1] != p:
            raise ValueError(f"{name} must have {p} columns (features), got {F.shape[1]}")
    return Phi1, Phi2


def check_square_matrix(K: Any, name: str) -> np.ndarray:
    """``K`` as a finite, non-empty square float64 matrix."""
    K = check_array(K, name, finite=False)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {K.shape}")
    if K.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return K


def check_nonnegative_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 array without NaN and without negative entries (``+inf`` allowed)."""
    arr = check_array(x, name, finite=False, allow_empty=True)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min()!r}")
    return arr


def check_tensor(
    X: Any,
    name: str,
    *,
    min_ndim: int = 1,
    ndim: int | None = None,
    floating: bool = True,
    allow_empty: bool = False,
) -> Any:
    """``X`` must be a torch tensor: real (floating when ``floating``, else integer), with
    ``ndim`` (or at least ``min_ndim``) dimensions, non-empty and finite.  Returns ``X``."""
    if not _is_tensor(X):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(X).__name__}")
    if X.is_complex():
        raise TypeError(f"{name} must be real, got a complex tensor ({X.dtype})")
    if floating and not X.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {X.dtype}")
    if not floating and (X.is_floating_point() or str(X.dtype) == "torch.bool"):
        raise TypeError(f"{name} must hold integer class indices, got dtype {X.dtype}")
    if ndim is not None and X.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(X.shape)}")
    if X.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {tuple(X.shape)}"
        )
    if not allow_empty and X.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(X.shape)}")
    if floating and not bool(X.isfinite().all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``bool`` is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _kind_of(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


# Scalar checks raise ValueError for every bad value, whatever its type (a float where an
# integer is expected is a wrong value, as is a negative one); object checks (an array, a
# tensor, a callable expected) raise TypeError for the wrong kind of object.


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """``value`` as a Python ``int`` in ``[minimum, maximum]`` (``None`` passes through when
    ``allow_none``).  Floats (also ``2.0``), bools, numeric strings and ``None`` are refused."""
    if value is None and allow_none:
        return None
    if not is_integer(value):
        extra = " or None" if allow_none else ""
        raise ValueError(
            f"{name} must be an integer{extra}, got {describe(value)} ({_kind_of(value)})"
        )
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
    return int(value)


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int ≥ 1``."""
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {describe(value)}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an ``int ≥ 0``."""
    if not is_integer(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {describe(value)}")
    return int(value)


def check_real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a Python ``float`` in the interval from ``low`` to ``high`` (open ends when
    ``low_open`` / ``high_open``).

    Refused with a message naming ``name``: bools, strings (also numeric ones), complex
    numbers, ``None`` (unless ``allow_none``), NaN, and infinities (unless ``allow_inf``).
    0-dimensional NumPy arrays and NumPy scalars are accepted.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if _is_tensor(value) and getattr(value, "ndim", None) == 0 and not value.is_complex():
        value = value.item()
    numeric = (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numeric):
        raise ValueError(f"{name} must be a real number, got {describe(value)} ({_kind_of(value)})")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name} must be a number, got nan")
    if math.isinf(number) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {number}")
    if low is not None and (number < low or (low_open and number == low)):
        bound = ">" if low_open else "≥"
        raise ValueError(f"{name} must be {bound} {low:g}, got {value!r}")
    if high is not None and (number > high or (high_open and number == high)):
        bound = "<" if high_open else "≤"
        raise ValueError(f"{name} must be {bound} {high:g}, got {value!r}")
    return number


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a Python ``bool``: only ``True``/``False`` (or NumPy bools) are accepted,
    never strings such as ``"no"`` (which would be true) or numbers."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {describe(value)} ({_kind_of(value)})")
    return bool(value)


def check_option(value: Any, name: str, options: tuple[Any, ...] | list[Any]) -> Any:
    """``value`` if it is one of ``options`` (compared by equality, same type)."""
    options = tuple(options)
    if not any(type(value) is type(o) and value == o for o in options):
        raise ValueError(f"{name} must be one of {options}, got {describe(value)}")
    return value


#: Seeds torch accepts (``torch.Generator.manual_seed``); negative ones are mapped as torch does.
_SEED_MIN, _SEED_MAX = -(2**63), 2**64 - 1


def check_seed(value: Any, name: str = "seed") -> int:
    """A random seed as a non-negative ``int`` that NumPy and torch generators both accept.

    Any integer torch accepts, ``[-2⁶³, 2⁶⁴ − 1]``, is valid; a negative seed is mapped to
    ``2⁶⁴ − 1 + seed`` as ``torch.Generator.manual_seed`` does, so a negative seed names the
    same stream in NumPy and torch and non-negative seeds are unchanged.
    """
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {describe(value)} ({_kind_of(value)})")
    value = int(value)
    if not _SEED_MIN <= value <= _SEED_MAX:
        raise ValueError(f"{name} must lie in [-2**63, 2**64 - 1], got {value}")
    return value if value >= 0 else _SEED_MAX + value


def check_callable(value: Any, name: str) -> Any:
    """``value`` if it is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {describe(value)} ({_kind_of(value)})")
    return value


def check_instance(value: Any, name: str, kind: type | tuple[type, ...], what: str = "") -> Any:
    """``value`` if it is an instance of ``kind``; otherwise a ``TypeError`` naming ``name``,
    what was expected (``what``, or the class names) and what was given."""
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = what or " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"{name} must be {expected}, got {describe(value)} ({_kind_of(value)})")
    return value


def check_mapping(value: Any, name: str, *, allow_empty: bool = True) -> dict:
    """``value`` as a ``dict`` if it is a mapping (a string or a list of pairs is refused);
    an empty mapping is refused unless ``allow_empty``."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {describe(value)} ({_kind_of(value)})")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty, got {describe(value)}")
    return dict(value)


def check_sequence(value: Any, name: str, *, allow_empty: bool = False) -> tuple:
    """``value`` as a tuple of its entries.

    A string is refused although it is iterable: ``"012"`` for ``[0, 1, 2]`` is a typing
    slip, not three seeds.  Mappings are refused too (their keys would be taken silently).
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence, got {describe(value)}")
    entries = tuple(value)
    if not entries and not allow_empty:
        raise ValueError(f"{name} must not be empty, got {describe(value)}")
    return entries


def check_int_sequence(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> tuple[int, ...]:
    """``value`` as a non-empty tuple of Python ints in ``[minimum, maximum]``; an entry's
    message names it as ``name[i]``."""
    entries = check_sequence(value, name)
    return tuple(
        check_int(v, f"{name}[{i}]", minimum=minimum, maximum=maximum)
        for i, v in enumerate(entries)
    )


# --------------------------------------------------------------------------------------------
# Structured transformations (diagonal, groups, Kronecker)
# --------------------------------------------------------------------------------------------

STRUCTURES = ("diagonal", "groups", "kronecker")


def check_structure(structure: Any) -> str:
    """``structure`` if it is ``"diagonal"``, ``"groups"`` or ``"kronecker"``."""
    return check_option(structure, "structure", STRUCTURES)


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


def check_matrix_shape(shape: Any, name: str = "shape") -> tuple[int, int]:
    """``shape`` as a pair ``(m, d)`` of positive integers (a tuple or list; never a string,
    whose characters would otherwise be read as digits)."""
    if isinstance(shape, str | bytes) or not isinstance(shape, tuple | list | np.ndarray):
        raise ValueError(
            f"{name} must be a pair (m, d) of positive integers, got {describe(shape)} "
            f"({_kind_of(shape)})"
        )
    if len(shape) != 2 or not all(is_integer(s) and s >= 1 for s in shape):
        raise ValueError(f"{name} must be a pair (m, d) of positive integers, got {shape!r}")
    return int(shape[0]), int(shape[1])


def check_shape(shape: Any, p: int) -> tuple[int, int]:
    """``shape = (m, d)`` of a weight matrix with ``m · d = p`` parameters."""
    if shape is None:
        raise ValueError("structure='kronecker' needs shape=(m, d) of the weight matrix")
    m, d = check_matrix_shape(shape)
    if m * d != p:
        raise ValueError(f"shape {shape!r} does not match the {p} parameters (m · d must be {p})")
    return m, d
