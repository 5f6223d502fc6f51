"""Argument checks shared by the experiment modules (package-private).

They complement :mod:`atf_lite._validation` with the shapes of argument the experiments take:
parsed command lines and pairs of digit classes.  Like those checks,
each raises with a message naming the argument and the value.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from .._validation import check_instance, describe, is_integer

__all__ = ["check_args", "check_parser", "check_pair"]


def check_args(args: Any, name: str = "args") -> argparse.Namespace:
    """``args`` if it is an ``argparse.Namespace`` (the parsed options of a command)."""
    return check_instance(args, name, argparse.Namespace, "an argparse.Namespace")


def check_parser(parser: Any, name: str = "parser") -> argparse.ArgumentParser:
    """``parser`` if it is an ``argparse.ArgumentParser``."""
    return check_instance(parser, name, argparse.ArgumentParser, "an argparse.ArgumentParser")


def check_pair(value: Any, name: str, *, minimum: int | None = None,
               maximum: int | None = None, what: str = "a pair of integers") -> tuple[int, int]:
    """``value`` (a tuple, list or array, never a string) as a pair of Python ints in
    ``[minimum, maximum]``; any fault is a ``ValueError`` ``"{name} must be {what}, got …"``,
    as in :func:`~atf_lite._validation.check_matrix_shape`."""
    ok = isinstance(value, tuple | list | np.ndarray) and len(value) == 2 and all(
        is_integer(v) and (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
        for v in value
    )
    if not ok:
        raise ValueError(f"{name} must be {what}, got {describe(value)}")
    return int(value[0]), int(value[1])
