"""Argument checks shared by the report modules' tables and figures (package-private).

They complement :mod:`atf_lite._validation` with the shapes of argument the reports take:
matplotlib axes, sequences of result records, labelled mappings (``{label: value}``), text,
and indices into a record's arrays.  Each raises with a message naming the argument and the
value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._validation import (
    as_float_array,
    check_instance,
    check_int,
    check_int_sequence,
    check_mapping,
    check_nonnegative_int,
    check_real,
    check_sequence,
    check_system,
    describe,
)
from ..theory.penalties import Penalty, as_penalty

__all__ = ["check_axes", "check_records", "check_labelled", "check_text", "check_labels",
           "check_penalties", "check_index", "check_key", "check_width_sweep",
           "check_problem_instances", "check_descent", "check_label_weight", "check_curves"]


def check_axes(ax: Any, name: str = "ax") -> Any:
    """``ax`` if it is a ``matplotlib.axes.Axes``."""
    from matplotlib.axes import Axes

    return check_instance(ax, name, Axes, "a matplotlib Axes")


def check_records(value: Any, name: str, kind: type, what: str) -> tuple:
    """``value`` as a non-empty tuple of ``kind`` instances (``what``: how one is described);
    a wrong entry is named ``name[i]``."""
    entries = check_sequence(value, name)
    for index, entry in enumerate(entries):
        check_instance(entry, f"{name}[{index}]", kind, what)
    return entries


def check_labelled(value: Any, name: str, check: Callable[[Any, str], Any]) -> dict:
    """``value`` as a non-empty ``dict`` whose entries ``check(entry, "name[key]")`` accepts
    (the dict holds what ``check`` returns)."""
    out = check_mapping(value, name, allow_empty=False)
    return {key: check(entry, f"{name}[{key!r}]") for key, entry in out.items()}


def check_text(value: Any, name: str) -> str:
    """``value`` if it is a string (a title, a label, a name)."""
    return check_instance(value, name, str, "a string")


def check_labels(value: Any, name: str = "labels") -> dict[str, str] | None:
    """``None``, or a mapping (may be empty) of keys to string labels."""
    if value is None:
        return None
    out = check_mapping(value, name)
    for key, label in out.items():
        check_text(label, f"{name}[{key!r}]")
    return out


def check_penalties(value: Any, name: str = "penalties") -> dict[str, Penalty]:
    """``{label: penalty}``, non-empty, each a :class:`Penalty` or a callable."""
    return check_labelled(value, name, as_penalty)


def check_index(value: Any, name: str, length: int) -> int:
    """``value`` as an index into ``length`` entries; negative ones count from the end."""
    return check_int(value, name, minimum=-length, maximum=length - 1)


def check_key(mapping: Any, key: str, name: str) -> Any:
    """``mapping[key]`` where ``mapping`` (argument ``name``) must be a mapping holding
    ``key``."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{name} must be a mapping, got {describe(mapping)}")
    if key not in mapping:
        raise ValueError(f"{name} has no entry {key!r} (it has {sorted(map(str, mapping))})")
    return mapping[key]


# Chapters 1-3 (foundations_report).


def check_width_sweep(widths: Any, gaps: Any) -> tuple[tuple[int, ...], tuple]:
    """``widths`` (positive integers) and as many ``gaps`` (``LinearizationGap`` records)."""
    from ..networks.linear import LinearizationGap

    widths = check_int_sequence(widths, "widths", minimum=1)
    gaps = check_records(gaps, "gaps", LinearizationGap, "a LinearizationGap")
    if len(widths) != len(gaps):
        raise ValueError("widths and gaps must be non-empty and of the same length")
    return widths, gaps


def check_problem_instances(instances: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``instances``: a sequence of ``(Phi, y)`` systems, each checked as one."""
    if isinstance(instances, (str, bytes)) or not isinstance(instances, Sequence):
        raise TypeError(f"instances must be a sequence of (Phi, y) pairs, got {instances!r}")
    pairs = []
    for index, pair in enumerate(instances):
        try:
            Phi, y = pair
        except (TypeError, ValueError):
            raise ValueError(f"instances[{index}] must be a (Phi, y) pair, got {pair!r}") from None
        names = (f"instances[{index}].Phi", f"instances[{index}].y")
        pairs.append(check_system(Phi, y, names=names))
    return pairs


def check_descent(Phi: Any, r: Any, steps: Any, lr: Any, momentum: Any, reference: Any) -> tuple:
    """The arguments of ``feature_gradient_descent``: a system ``Phi β = r``, ``steps ≥ 0``,
    ``lr > 0``, ``momentum`` in ``[0, 1)`` and ``reference``: ``None`` or a non-zero ``[p]``."""
    Phi, r = check_system(Phi, r, names=("Phi", "r"))
    steps = check_nonnegative_int(steps, "steps")
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    ref = None
    if reference is not None:
        ref = as_float_array(reference, "reference", 1)
        if ref.shape != (Phi.shape[1],) or not np.any(ref):
            raise ValueError(f"reference must be a non-zero vector of length {Phi.shape[1]}")
    return Phi, r, steps, lr, momentum, ref


def check_label_weight(K0: Any, y: Any, scales: Any) -> tuple[np.ndarray, ...]:
    """``K0`` ``[n, n]``, ``y`` ``[n]`` non-zero and positive ``scales`` ``[m]``."""
    K0 = as_float_array(K0, "K0", 2)
    y = as_float_array(y, "y", 1)
    scales = as_float_array(scales, "scales", 1)
    if K0.shape != (len(y), len(y)):
        raise ValueError(f"K0 must be [{len(y)}, {len(y)}] to match y, got {K0.shape}")
    if not np.any(y) or np.any(scales <= 0):
        raise ValueError("y must be non-zero and scales positive")
    return K0, y, scales


def check_curves(curves: Any, index: Any, kind: type, *, nested: bool = False) -> tuple[dict, int]:
    """``curves``: ``{target: curve}`` of ``kind`` (``{penalty: {target: curve}}``, the same
    targets for every penalty, when ``nested``), and ``index`` into every curve's scales."""
    def one(value: Any, name: str) -> dict:
        return check_labelled(value, name, lambda c, n: check_instance(c, n, kind, kind.__name__))

    if not nested:
        curves = one(curves, "curves")
        return curves, check_index(index, "index", min(len(c.scales) for c in curves.values()))
    curves = check_labelled(curves, "curves", one)
    targets = [set(inner) for inner in curves.values()]
    if any(t != targets[0] for t in targets):
        raise ValueError(f"curves must hold the same targets for every penalty, got "
                         f"{ {label: list(inner) for label, inner in curves.items()} }")
    length = min(len(c.scales) for inner in curves.values() for c in inner.values())
    return curves, check_index(index, "index", length)
