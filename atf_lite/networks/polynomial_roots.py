"""Batched real polynomials in float64: evaluation, change of variable, and sign changes.

Polynomials are stored by their coefficients in increasing powers (``coef[..., k]`` multiplies
``t**k`` along the coefficient dimension).  :func:`sign_changes` finds, for many polynomials at
once, every point of ``(−1, 1)`` where one changes sign, robustly: the critical points (roots of
the derivative, found the same way, or in closed form for a quadratic) split ``[−1, 1]`` into
monotone segments, each holding at most one root, and bisection on every segment whose ends
have opposite signs locates that root to float64 precision.  No formula whose accuracy depends
on the conditioning of the root is trusted: a near-double root pair, where the quadratic
formula or a companion-matrix eigenvalue loses half the digits, is separated by the critical
point between its two roots and each root is bisected like any other; a polynomial that only
touches zero has no sign change and gives no root.  These are the breakpoints of
:mod:`atf_lite.networks.piecewise_path`.
"""

from __future__ import annotations

import torch

__all__ = ["polyval", "polyval_rows", "to_local", "sign_changes"]

# Bisection halves [-1, 1] until the bracket is below the spacing of float64 numbers near 1.
BISECTIONS = 56


def polyval(coef: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Values of the polynomials ``coef`` (``[N, D + 1]``) at the points ``t`` (``[N]``)."""
    value = coef[:, -1].clone()
    for k in range(coef.shape[1] - 2, -1, -1):
        value = value * t + coef[:, k]
    return value


def polyval_rows(coef: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Values of ``coef`` (``[P, D + 1, m]``: ``m`` polynomials per row) at one point per row,
    ``t`` (``[P]``); returns ``[P, m]``."""
    value = coef[:, -1].clone()
    for k in range(coef.shape[1] - 2, -1, -1):
        value = value * t[:, None] + coef[:, k]
    return value


def to_local(coef: torch.Tensor, center: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Coefficients of ``s ↦ p(center + radius · s)`` for the polynomials ``coef``
    (``[P, D + 1, m]``) with one ``center`` and ``radius`` per row (``[P]``): a Taylor shift by
    repeated synthetic division, then a scaling.  Maps each row's interval
    ``[center − radius, center + radius]`` onto ``s ∈ [−1, 1]``."""
    a = coef.clone()
    degree = a.shape[1] - 1
    shift = center[:, None]
    for i in range(degree):
        for j in range(degree - 1, i - 1, -1):
            a[:, j] += shift * a[:, j + 1]
    scale = radius[:, None]
    power = scale
    for k in range(1, degree + 1):
        a[:, k] *= power
        power = power * scale
    return a


def _bisect(coef: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """The root of each polynomial in ``[left, right]``, where it changes sign exactly once."""
    sign_left = torch.sign(polyval(coef, left))
    for _ in range(BISECTIONS):
        middle = 0.5 * (left + right)
        same = torch.sign(polyval(coef, middle)) == sign_left
        left = torch.where(same, middle, left)
        right = torch.where(same, right, middle)
    return 0.5 * (left + right)


def _critical_points(coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, points)``: the points of ``(−1, 1)`` that separate monotone segments."""
    D = coef.shape[1] - 1
    if D == 1:
        return (
            torch.empty(0, dtype=torch.long, device=coef.device),
            torch.empty(0, dtype=coef.dtype, device=coef.device),
        )
    if D == 2:
        # The vertex −b / 2a, in closed form.
        curved = coef[:, 2] != 0
        vertex = -coef[:, 1] / torch.where(curved, 2 * coef[:, 2], torch.ones_like(coef[:, 2]))
        inside = curved & (vertex > -1) & (vertex < 1)
        return torch.nonzero(inside).flatten(), vertex[inside]
    derivative = coef[:, 1:] * torch.arange(1, D + 1, dtype=coef.dtype, device=coef.device)
    return sign_changes(derivative)


def sign_changes(coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every point of ``(−1, 1)`` where one of the polynomials ``coef`` (``[N, D + 1]``) changes
    sign: ``(rows, roots)``, the row of each root and the root (float64 precision).

    Roots of even multiplicity (the polynomial touches zero without crossing) are not sign
    changes and are not returned; a zero polynomial has none.
    """
    N, D = coef.shape[0], coef.shape[1] - 1
    device, dtype = coef.device, coef.dtype
    if N == 0 or D == 0:
        return torch.empty(0, dtype=torch.long, device=device), torch.empty(0, dtype=dtype)
    rows_c, critical = _critical_points(coef)
    # Segment ends per row: −1, the sorted critical points, then 1 (repeated as padding).
    counts = torch.bincount(rows_c, minlength=N)
    width = int(counts.max()) + 2 if critical.numel() else 2
    ends = torch.ones(N, width, dtype=dtype, device=device)
    ends[:, 0] = -1.0
    if critical.numel():
        order = torch.argsort(rows_c * 4.0 + critical, stable=True)  # by row, then by point
        rows_sorted = rows_c[order]
        first = torch.cumsum(counts, 0) - counts
        slot = torch.arange(rows_sorted.numel(), device=device) - first[rows_sorted] + 1
        ends[rows_sorted, slot] = critical[order]
    values = torch.stack([polyval(coef, ends[:, k]) for k in range(width)], dim=1)
    change = torch.sign(values[:, :-1]) * torch.sign(values[:, 1:]) < 0
    rows, segment = torch.nonzero(change, as_tuple=True)
    roots = _bisect(coef[rows], ends[rows, segment], ends[rows, segment + 1])
    if critical.numel():
        # A critical point where the polynomial vanishes exactly leaves no strict sign change on
        # either side; if it is a crossing (odd multiplicity), it is a root all the same.
        inner = ends[:, 1:-1]
        zero = (values[:, 1:-1] == 0) & (inner > -1) & (inner < 1)
        crossing = torch.sign(values[:, :-2]) * torch.sign(values[:, 2:]) < 0
        extra_rows, extra_slot = torch.nonzero(zero & crossing, as_tuple=True)
        rows = torch.cat([rows, extra_rows])
        roots = torch.cat([roots, inner[extra_rows, extra_slot]])
    return rows, roots
