"""Exact path-averaged tangent features of MLPs with piecewise-linear activations.

On each piece of the path where an MLP's activation patterns are fixed
(:mod:`atf_lite.networks.path_pieces`), the back-propagated signal ``g_j`` at linear layer ``j``
(of ``K``) is a polynomial of degree ``K − j`` in ``t`` and the layer's input ``h_j`` one of
degree ``j − 1``, so every tangent feature ``g_j h_jᵀ`` is a polynomial of degree at most
``K − 1``: its integral over the piece is exact from finitely many numbers.

On each finest piece, ``∫ t^k dt`` for ``k < K`` is computed by Gauss–Legendre with ``⌈K / 2⌉``
nodes, exact for these degrees.  Going backwards through the network, the moments
``∫ t^k g dt`` over each piece are carried from level to level: through a linear layer,
``W(t)ᵀ g = W0ᵀ g + t dWᵀ g`` turns ``k + 1`` moments into ``k``; through an activation, the
pieces it split are summed back into their parent, each with its slopes.  Layer ``j``'s block of
``Φ̄`` is ``Σ_pieces Σ_k (∫ t^k g_j dt) H_{j,k}ᵀ``, with ``H_{j,k}`` the coefficients of its
input.  Consecutive pieces of a parent differ in the slope of (typically) one unit, so matrix
products are done once per parent piece, and each further piece costs a rank-one update: the
cost grows with the number of pieces, not with a number of quadrature nodes.  The result is
exact up to float64 rounding.

* :func:`exact_path_features`: the exact ``Φ̄`` (float64) and the number of pieces per input;
* :func:`exact_path_kernel`: ``K̄ = Φ̄ Φ̄ᵀ`` and ``Φ̄ (θ1 − θ0)`` without forming ``Φ̄``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import check_tensor
from .functional import Params, check_inputs
from .path_pieces import (
    ForwardPieces,
    PathKink,
    PathLinear,
    PieceLevel,
    batch_ranges,
    follow_path,
    layers_along_path,
)

__all__ = ["ExactPathFeatures", "exact_path_features", "ExactPathKernel", "exact_path_kernel"]


# ----------------------------------------------------------------------------------------------
# Backward: moments of the back-propagated signal, from the finest pieces to the coarsest
# ----------------------------------------------------------------------------------------------


def _power_moments(level: PieceLevel, count: int) -> torch.Tensor:
    """``∫ t^k dt`` over each piece for ``k < count`` (``[P, count, 1]``), by Gauss–Legendre with
    ``⌈count / 2⌉`` nodes: exact for these degrees, and without the cancellation of
    ``(b^{k+1} − a^{k+1}) / (k + 1)`` on short pieces."""
    xi, omega = np.polynomial.legendre.leggauss(max(1, math.ceil(count / 2)))
    xi = torch.as_tensor((xi + 1) / 2, dtype=level.start.dtype, device=level.start.device)
    omega = torch.as_tensor(omega / 2, dtype=level.start.dtype, device=level.start.device)
    length = level.end - level.start
    t = level.start[:, None] + length[:, None] * xi
    powers = t[:, None, :] ** torch.arange(count, device=t.device)[None, :, None]
    return (powers * (length[:, None] * omega)[:, None, :]).sum(dim=2)[:, :, None]


def _sum_by(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sums of the rows of ``values`` (``[P, ...]``) with equal ``index``, ``size`` of them."""
    out = torch.zeros((size, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, index, values)


def _outer_sums(left: torch.Tensor, right: torch.Tensor, owner: torch.Tensor, B: int):
    """``Σ_{rows of input i} Σ_k left[r, k] ⊗ right[r, k]`` (``[B, m, d]``): one matrix product
    per input over its rows (``left`` ``[R, T, m]``, ``right`` ``[R, T, d]``, sorted by owner)."""
    terms = right.shape[1]
    L = left[:, :terms].reshape(-1, left.shape[2])
    R = right.reshape(-1, right.shape[2])
    block = torch.empty(B, L.shape[1], R.shape[1], dtype=L.dtype, device=L.device)
    begin = 0
    for i, end in enumerate((torch.cumsum(torch.bincount(owner, minlength=B), 0) * terms).tolist()):
        torch.mm(L[begin:end].T, R[begin:end], out=block[i])
        begin = end
    return block


def _back_through_linear(moments: torch.Tensor, layer: PathLinear) -> torch.Tensor:
    """Moments of ``W(t)ᵀ g`` from those of ``g``: ``k`` from ``k`` and ``k + 1``."""
    P, count, m = moments.shape
    fixed = moments[:, :-1].reshape(-1, m) @ layer.W0
    moving = moments[:, 1:].reshape(-1, m) @ layer.dW
    return (fixed + moving).reshape(P, count - 1, -1)


def _backward(X: torch.Tensor, ops: list[PathLinear | PathKink], forward: ForwardPieces) -> list:
    """Per linear layer, its weight block ``[B, m, d]`` and bias block ``[B, m]`` (or ``None``)
    of ``∫₀¹ ∇f dt`` for the rows of ``X``; ``moments[:, k]`` holds ``∫ t^k g dt`` over each
    piece of the current level, ``g`` the signal at the current point of the network."""
    B = X.shape[0]
    levels, inputs = forward.levels, list(forward.inputs)
    current = len(levels) - 1
    moments = _power_moments(levels[current], len(inputs))
    blocks = []
    skip_kink = False
    for op in reversed(ops):
        level = levels[current]
        if isinstance(op, PathKink):
            if not skip_kink:  # an activation not followed by a linear layer
                moments = _sum_by(
                    moments * level.slope[:, None, :],
                    level.parent,
                    levels[current - 1].start.shape[0],
                )
            skip_kink = False
            current -= 1
            continue
        at, polynomials, after_kink = inputs.pop()
        bias = _sum_by(moments[:, 0], level.owner, B) if op.b0 is not None else None
        more = bool(inputs)  # anything before this layer still needs the signal
        if not after_kink:
            if at == 0 and polynomials.shape[1] == 1:
                # Input constant along the path (the rows of X): keep ∫ g hᵀ dt = (∫ g dt) hᵀ
                # as its two factors.
                weight = (moments[:, 0], polynomials[:, 0])
            else:
                weight = _outer_sums(moments, polynomials, level.owner, B)
            blocks.append((weight, bias))
            if not more:
                break
            moments = _back_through_linear(moments, op)
            continue
        # The input is D ⊙ z with z one polynomial per parent and D the slopes: work per parent,
        # plus a rank-one correction per slope change, weighted by the moments of the pieces
        # from that change to the parent's end (suffix sums).
        parents = levels[current - 1]
        total = _sum_by(moments, level.parent, parents.start.shape[0])
        suffix = total[level.parent] - level.segment_cumsum(moments) + moments
        base = polynomials * level.first_slope()[:, None, :]
        block = _outer_sums(total, base, parents.owner, B)
        piece, unit, change = level.events
        z = polynomials[level.parent[piece], :, unit] * change[:, None]  # [E, T]
        column = (suffix[piece, : z.shape[1]] * z[:, :, None]).sum(dim=1)  # [E, m]
        rows = torch.arange(block.shape[1], device=X.device)
        block.index_put_(
            (level.owner[piece][:, None], rows[None, :], unit[:, None]), column, accumulate=True
        )
        blocks.append((block, bias))
        if more:
            moments = _back_through_linear(total, op) * level.first_slope()[:, None, :]
            correction = change[:, None] * (
                (suffix[piece, :-1] * op.W0.T[unit][:, None, :]).sum(dim=2)
                + (suffix[piece, 1:] * op.dW.T[unit][:, None, :]).sum(dim=2)
            )
            steps = torch.arange(moments.shape[1], device=X.device)
            moments.index_put_(
                (level.parent[piece][:, None], steps[None, :], unit[:, None]),
                correction,
                accumulate=True,
            )
            skip_kink = True  # the activation below has been accounted for
        if not more:
            break
    return blocks[::-1]


def _batch_blocks(
    X: torch.Tensor, ops: list[PathLinear | PathKink], batch_size: int | None
) -> Iterator[tuple[slice, list, torch.Tensor]]:
    """For each batch of rows of ``X``: ``(rows, blocks, pieces)`` with ``blocks`` as returned by
    :func:`_backward` and ``pieces`` the number of pieces per row."""
    X = X.to(torch.float64)
    starts, batch = batch_ranges(X.shape[0], batch_size)
    for first in starts:
        X_batch = X[first : first + batch]
        forward = follow_path(X_batch, ops)
        pieces = torch.bincount(forward.levels[-1].owner, minlength=X_batch.shape[0])
        yield slice(first, first + X_batch.shape[0]), _backward(X_batch, ops, forward), pieces


def _weight_rows(weight) -> torch.Tensor:
    """A layer's weight block as rows ``[B, m · d]`` (expanding a factored block)."""
    if isinstance(weight, tuple):
        signal, inputs = weight
        return (signal[:, :, None] * inputs[:, None, :]).reshape(signal.shape[0], -1)
    return weight.reshape(weight.shape[0], -1)


@dataclass(frozen=True)
class ExactPathFeatures:
    """Result of :func:`exact_path_features`: ``Phi_bar`` (float64 ``[n, p]``) and ``pieces``
    (int ``[n]``, the number of pieces of each input's path)."""

    Phi_bar: torch.Tensor
    pieces: np.ndarray


def exact_path_features(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    batch_size: int | None = None,
) -> ExactPathFeatures:
    """``Φ̄ = ∫₀¹ ∇_θ f(X; θ0 + t(θ1 − θ0)) dt`` exactly (float64 ``[n, p]``) for an MLP with
    piecewise-linear activations (see the module docstring), in batches of ``batch_size``
    inputs (default 32).  Columns follow the order of the model's parameters."""
    check_inputs(X, "X")
    check_tensor(X, "X", ndim=2)  # an MLP maps rows [n, d]
    ops = layers_along_path(model, params0, params1)
    Phi_bar, counts = None, []
    for rows, blocks, pieces in _batch_blocks(X, ops, batch_size):
        counts.append(pieces)
        columns = []
        for weight, bias in blocks:
            columns.append(_weight_rows(weight))
            if bias is not None:
                columns.append(bias)
        block = torch.cat(columns, dim=1)
        if Phi_bar is None:
            Phi_bar = torch.empty(
                X.shape[0], block.shape[1], dtype=block.dtype, device=block.device
            )
        Phi_bar[rows] = block
    return ExactPathFeatures(Phi_bar=Phi_bar, pieces=torch.cat(counts).cpu().numpy())


@dataclass(frozen=True)
class ExactPathKernel:
    """Result of :func:`exact_path_kernel` (float64): ``K_bar`` ``[n, n]``, the predicted output
    change ``Phi_bar (θ1 − θ0)`` ``[n]``, and ``pieces`` (int ``[n]``)."""

    K_bar: torch.Tensor
    predicted_change: torch.Tensor
    pieces: np.ndarray


def exact_path_kernel(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    batch_size: int | None = None,
) -> ExactPathKernel:
    """``K̄ = Φ̄ Φ̄ᵀ`` and ``Φ̄ (θ1 − θ0)`` with the exact ``Φ̄`` of :func:`exact_path_features`,
    without forming ``Φ̄``: a first linear layer whose input is ``x`` itself contributes
    ``(Ḡ Ḡᵀ) ⊙ (X Xᵀ + 1)`` (``Ḡ``: the path-averaged signals; ``+ 1`` with a bias), the others
    the Gram matrices of their blocks."""
    check_inputs(X, "X")
    check_tensor(X, "X", ndim=2)  # an MLP maps rows [n, d]
    ops = layers_along_path(model, params0, params1)
    linears = [op for op in ops if isinstance(op, PathLinear)]
    parts: list[list] = [[] for _ in linears]
    predicted = torch.zeros(X.shape[0], dtype=torch.float64, device=X.device)
    counts = []
    for rows, blocks, pieces in _batch_blocks(X, ops, batch_size):
        counts.append(pieces)
        for index, ((weight, bias), op) in enumerate(zip(blocks, linears)):
            if isinstance(weight, tuple):
                signal, inputs = weight
                change = inputs @ op.dW.T + (0 if op.db is None else op.db)
                predicted[rows] += (signal * change).sum(dim=1)
                parts[index].append((signal, inputs, op.b0 is not None))
                continue
            weight = weight.reshape(weight.shape[0], -1)
            if bias is not None:
                weight = torch.cat([weight, bias], dim=1)
            delta = op.dW.reshape(-1)
            if op.db is not None:
                delta = torch.cat([delta, op.db])
            predicted[rows] += weight @ delta
            parts[index].append(weight)
    K_bar = torch.zeros(X.shape[0], X.shape[0], dtype=torch.float64, device=X.device)
    for layer in parts:
        if isinstance(layer[0], tuple):
            signal = torch.cat([part[0] for part in layer])
            inputs = torch.cat([part[1] for part in layer])
            gram = inputs @ inputs.T + (1.0 if layer[0][2] else 0.0)
            K_bar += (signal @ signal.T) * gram
        else:
            rows = torch.cat(layer)
            K_bar += rows @ rows.T
    return ExactPathKernel(K_bar, predicted, torch.cat(counts).cpu().numpy())
