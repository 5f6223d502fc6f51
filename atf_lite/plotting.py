"""The figure style shared by every chapter, and a few plotting helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import check_array, check_bool, describe

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

__all__ = ["COLORS", "use_style", "heatmap", "loglog_slope"]

#: A colour-blind-safe palette (Okabe–Ito); chapters refer to colours by role.
COLORS = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "red": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

_STYLE = {
    "figure.figsize": (6.0, 3.8),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
    "axes.prop_cycle": None,  # filled in by use_style
}


def use_style() -> None:
    """Apply the book's matplotlib style (call once at the top of a chapter).

    Sizes: 10 pt text, 9 pt legends; inside IPython, inline figures are drawn at twice the
    pixel density (``retina``).
    """
    import matplotlib as mpl
    from cycler import cycler

    style = dict(_STYLE)
    style["axes.prop_cycle"] = cycler(
        color=[COLORS[c] for c in ("blue", "orange", "green", "red", "purple", "sky", "black")]
    )
    mpl.rcParams.update(style)
    # Inline figures as PNG at twice the pixel density, sharp on high-DPI screens and phones.
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing is shown inline
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def heatmap(
    ax: Axes,
    K: Any,
    *,
    title: str | None = None,
    order: Sequence[int] | np.ndarray | None = None,
    symmetric: bool = False,
    **kwargs: Any,
) -> AxesImage:
    """Show the matrix ``K`` (``[n, n]``) on ``ax``, rows and columns permuted by ``order``.

    ``symmetric=True`` centres the colour scale at zero (for kernels with negative entries).
    Returns the image, for a colour bar.
    """
    if not hasattr(ax, "imshow"):
        raise TypeError(f"ax must be a matplotlib Axes, got {describe(ax)}")
    K = check_array(K, "K", finite=False)
    if K.ndim != 2:
        raise ValueError(f"K must be a matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("K contains NaN or infinite values")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {describe(title)}")
    symmetric = check_bool(symmetric, "symmetric")
    if order is not None:
        order = np.asarray(order)
        n = max(K.shape)
        if (
            K.shape[0] != K.shape[1]
            or order.dtype.kind not in "iu"
            or order.ndim != 1
            or not np.array_equal(np.sort(order), np.arange(n))
        ):
            raise ValueError(
                f"order must be a permutation of range({n}) for a square K, got {describe(order)}"
            )
        K = K[np.ix_(order, order)]
    if symmetric:
        bound = np.abs(K).max()
        kwargs.setdefault("vmin", -bound)
        kwargs.setdefault("vmax", bound)
        kwargs.setdefault("cmap", "RdBu_r")
    image = ax.imshow(K, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)
    return image


def loglog_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the growth exponent of ``y``)."""
    x = check_array(x, "x", ndim=1)
    y = check_array(y, "y", ndim=1)
    if x.shape != y.shape or len(x) < 2:
        raise ValueError("x and y must be 1-D arrays of the same length, at least 2")
    for name, values in (("x", x), ("y", y)):
        if np.any(values <= 0):
            raise ValueError(f"{name} must be positive for a log-log slope")
    if np.ptp(x) == 0:
        raise ValueError("x must hold at least two different values for a slope")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
