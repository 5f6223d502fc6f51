"""Progress bars that degrade gracefully.

``tqdm.auto`` draws a widget bar in JupyterLab when ipywidgets is installed; without ipywidgets
it would warn, so the plain text bar is used instead.  Setting the environment variable
``ATF_LITE_PROGRESS=0`` silences every bar (the book's build does this so rendered pages are
not cluttered with carriage-return output).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from typing import Any, TypeVar

from ._validation import check_bool, check_nonnegative_int, describe

__all__ = ["progress_bar", "progress_enabled"]

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars are shown (``ATF_LITE_PROGRESS`` is not ``0``/``false``/``no``)."""
    return os.environ.get("ATF_LITE_PROGRESS", "1").strip().lower() not in {"0", "false", "no"}


def progress_bar(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    enabled: bool | None = None,
    **kwargs: Any,
) -> Iterable[T]:
    """A tqdm bar over ``iterable``; ``enabled=None`` follows :func:`progress_enabled`."""
    if iterable is not None and not isinstance(iterable, Iterable):
        raise TypeError(f"iterable must be iterable or None, got {describe(iterable)}")
    if total is not None:
        check_nonnegative_int(total, "total")
    if desc is not None and not isinstance(desc, str):
        raise TypeError(f"desc must be a string or None, got {describe(desc)}")
    if enabled is not None:
        check_bool(enabled, "enabled")
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    show = progress_enabled() if enabled is None else bool(enabled)
    return tqdm(iterable, total=total, desc=desc, disable=not show, leave=False, **kwargs)
