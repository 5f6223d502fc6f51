"""The pieces of the straight path ``θ(t) = θ0 + t(θ1 − θ0)`` on which an MLP is polynomial.

For an MLP whose activations are piecewise linear (ReLU, leaky ReLU, identity) every weight
matrix and bias is affine in ``t``, so for one input ``x``:

* the first layer's pre-activations ``z_1(t) = W_1(t) x + b_1(t)`` are affine in ``t``: each
  unit changes slope at most once, at the root of a degree-1 polynomial;
* while the first activation pattern ``D_1`` is fixed, ``h_2 = D_1 z_1`` is affine and the next
  pre-activations ``z_2 = W_2(t) h_2 + b_2(t)`` are polynomials of degree 2, whose roots split
  the pieces further; layer ``l``'s pre-activations are polynomials of degree ``l`` on each
  piece left by the layers below.

:func:`follow_path` carries every input through the layers as polynomials in ``t``, one *level*
of pieces per activation: the sign changes of the pre-activations on each piece
(:func:`atf_lite.networks.polynomial_roots.sign_changes`, robust to near-double roots) split it,
and breakpoints closer than a few ulps are merged.  Each level records, for the backward pass
of :mod:`atf_lite.networks.piecewise_path`, every piece's parent, its slopes, and where the
slopes change between consecutive pieces of one parent (typically in one unit).

* :func:`supports_exact_rule`: whether a model qualifies;
* :func:`layers_along_path`: the model's layers as ``W0 + t dW`` (float64);
* :func:`follow_path`: the levels of pieces of a batch of inputs;
* :func:`path_breakpoints`: the breakpoints of each input (``0 = t_0 < … < t_P = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import check_tensor
from .functional import Params, check_inputs, path_endpoints
from .polynomial_roots import polyval_rows, sign_changes, to_local

__all__ = [
    "SUPPORTED_ACTIVATIONS",
    "supports_exact_rule",
    "PathLinear",
    "PathKink",
    "layers_along_path",
    "batch_ranges",
    "PieceLevel",
    "ForwardPieces",
    "follow_path",
    "path_breakpoints",
]

#: Activations for which ``rule="exact"`` is available: piecewise linear with a kink at zero.
SUPPORTED_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Identity)
# Breakpoints closer than this (in t ∈ [0, 1]) are merged: the integral moves by at most this
# fraction of one slope change, far below the float64 rounding of the result.
_MERGE = 4 * float(np.finfo(np.float64).eps)
# Default number of inputs processed together (the piece tensors grow with it).
DEFAULT_BATCH = 32


@dataclass(frozen=True)
class PathLinear:
    """A dense layer along the path: ``W(t) = W0 + t dW``, ``b(t) = b0 + t db`` (float64)."""

    W0: torch.Tensor
    dW: torch.Tensor
    b0: torch.Tensor | None
    db: torch.Tensor | None


@dataclass(frozen=True)
class PathKink:
    """A piecewise-linear activation: slope 1 for ``z > 0`` and ``negative_slope`` otherwise."""

    negative_slope: float


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    advice = "use a quadrature rule such as rule='gauss-legendre' for this model"
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"rule='exact' needs an nn.Sequential MLP, got {type(model).__name__}; {advice}"
        )
    children = list(model.named_children())
    supported = ", ".join(f"nn.{cls.__name__}" for cls in SUPPORTED_ACTIVATIONS)
    for name, module in children:
        if not isinstance(module, (nn.Linear, *SUPPORTED_ACTIVATIONS)):
            raise ValueError(
                f"rule='exact' supports nn.Linear layers and the piecewise-linear activations "
                f"{supported}; module {name!r} is {type(module).__name__}: {advice}"
            )
    linears = [module for _, module in children if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError("rule='exact' needs a model with at least one nn.Linear layer")
    if linears[-1].out_features != 1:
        raise ValueError(
            f"tangent features need a model with one scalar output per input; the last "
            f"nn.Linear has {linears[-1].out_features} outputs"
        )
    return children


def supports_exact_rule(model: nn.Module) -> bool:
    """Whether ``model`` is an ``nn.Sequential`` of ``nn.Linear`` layers and activations from
    :data:`SUPPORTED_ACTIVATIONS`, so that ``rule="exact"`` applies to it."""
    try:
        _layers(model)
    except ValueError:
        return False
    return True


def layers_along_path(
    model: nn.Module, params0: Params, params1: Params
) -> list[PathLinear | PathKink]:
    """The model's layers along the path, in float64 (identities dropped)."""
    children = _layers(model)
    theta0, theta1 = path_endpoints(model, params0, params1)

    def along(key: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if key not in theta0:
            return None, None
        start = theta0[key].to(torch.float64)
        return start, theta1[key].to(torch.float64) - start

    ops: list[PathLinear | PathKink] = []
    for name, module in children:
        if isinstance(module, nn.Linear):
            ops.append(PathLinear(*along(f"{name}.weight"), *along(f"{name}.bias")))
        elif isinstance(module, nn.LeakyReLU):
            ops.append(PathKink(float(module.negative_slope)))
        elif isinstance(module, nn.ReLU):
            ops.append(PathKink(0.0))
    return ops


def batch_ranges(n: int, batch_size: int | None) -> tuple[range, int]:
    if batch_size is None:
        batch_size = DEFAULT_BATCH
    elif not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return range(0, n, batch_size), batch_size


# ----------------------------------------------------------------------------------------------
# Forward: the inputs follow the layers as polynomials in t, and the path splits into pieces
# ----------------------------------------------------------------------------------------------


@dataclass
class PieceLevel:
    """Pieces ``[start, end]`` of a batch's inputs, sorted by ``owner`` then ``start``.

    Below level 0 (one piece per input), each level comes from an activation: ``parent`` maps a
    piece to the piece it split, ``slope`` (``[P, width]``) holds the activation's slopes on it,
    ``first`` (one per parent) is the index of a parent's first piece, and ``events`` lists
    where the slopes change between consecutive pieces of a parent: ``(piece, unit, change)``.
    """

    owner: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    parent: torch.Tensor | None = None
    slope: torch.Tensor | None = None
    first: torch.Tensor | None = None
    events: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def first_slope(self) -> torch.Tensor:
        """The slopes of each parent's first piece (``[P_parent, width]``)."""
        return self.slope[self.first]

    def segment_cumsum(self, values: torch.Tensor) -> torch.Tensor:
        """Running sums of ``values`` (``[P, ...]``) over the pieces of each parent."""
        total = torch.cumsum(values, dim=0)
        before = total[self.first] - values[self.first]
        return total - before[self.parent]


def _slopes(z: torch.Tensor, kink: PathKink) -> torch.Tensor:
    """The activation's slope at ``z``: 1 where ``z > 0``, else ``negative_slope`` (what torch's
    backward pass uses, also at ``z = 0``)."""
    one = torch.ones((), dtype=z.dtype, device=z.device)
    return torch.where(z > 0, one, one * kink.negative_slope)


def _split(level: PieceLevel, coef: torch.Tensor, kink: PathKink) -> PieceLevel:
    """The level below ``level``: its pieces split wherever a coordinate of the pre-activation
    polynomials ``coef`` (``[P, D + 1, width]``) changes sign."""
    P = coef.shape[0]
    center = 0.5 * (level.start + level.end)
    radius = 0.5 * (level.end - level.start)
    local = to_local(coef, center, radius)  # each piece mapped onto s ∈ [-1, 1]
    # A polynomial whose constant term dominates the others keeps its sign on [-1, 1].
    possible = local[:, 0].abs() <= local[:, 1:].abs().sum(dim=1)
    piece, unit = torch.nonzero(possible, as_tuple=True)
    rows, s = sign_changes(local[piece, :, unit])
    piece = piece[rows]
    t = center[piece] + radius[piece] * s
    inside = (t - level.start[piece] > _MERGE) & (level.end[piece] - t > _MERGE)
    piece, t = piece[inside], t[inside]
    # New pieces start at the old starts and at the roots, sorted within each old piece.
    parent = torch.cat([torch.arange(P, device=t.device), piece])
    start = torch.cat([level.start, t])
    order = torch.argsort(start, stable=True)
    order = order[torch.argsort(parent[order], stable=True)]
    parent, start = parent[order], start[order]
    first = torch.ones_like(parent, dtype=torch.bool)
    first[1:] = parent[1:] != parent[:-1]
    keep = first.clone()
    keep[1:] |= start[1:] - start[:-1] > _MERGE  # merge breakpoints a few ulps apart
    parent, start, first = parent[keep], start[keep], first[keep]
    end = torch.empty_like(start)
    end[:-1] = start[1:]
    last = torch.ones_like(first)
    last[:-1] = first[1:]
    end[last] = level.end[parent[last]]
    slope = _slopes(polyval_rows(coef[parent], 0.5 * (start + end)), kink)
    changed = slope[1:] != slope[:-1]
    changed &= ~first[1:, None]
    event_piece, event_unit = torch.nonzero(changed, as_tuple=True)
    event_piece = event_piece + 1
    change = slope[event_piece, event_unit] - slope[event_piece - 1, event_unit]
    return PieceLevel(
        owner=level.owner[parent],
        start=start,
        end=end,
        parent=parent,
        slope=slope,
        first=torch.nonzero(first).flatten(),
        events=(event_piece, event_unit, change),
    )


def _linear(coef: torch.Tensor, layer: PathLinear) -> torch.Tensor:
    """``W(t) h + b(t)`` for polynomials ``h`` (``coef``, ``[P, T, d]``): ``[P, T + 1, m]``."""
    P, terms, width = coef.shape
    flat = coef.reshape(P * terms, width)
    out = torch.zeros(P, terms + 1, layer.W0.shape[0], dtype=coef.dtype, device=coef.device)
    out[:, :-1] += (flat @ layer.W0.T).reshape(P, terms, -1)
    out[:, 1:] += (flat @ layer.dW.T).reshape(P, terms, -1)
    if layer.b0 is not None:
        out[:, 0] += layer.b0
        out[:, 1] += layer.db
    return out


def _linear_after_kink(pre: torch.Tensor, level: PieceLevel, layer: PathLinear) -> torch.Tensor:
    """``W(t) (D ⊙ z) + b(t)`` on every piece of ``level``, where ``z`` is the activation's
    input (``pre``, ``[P_parent, T, d]``, one polynomial per parent) and ``D`` its slopes."""
    return _linear(pre[level.parent] * level.slope[:, None, :], layer)


@dataclass
class ForwardPieces:
    """The levels of one batch, and for each linear layer ``(level, polynomials, after_kink)``:
    its input on that level's pieces, or (``after_kink``) the preceding activation's input on
    the parent level's pieces."""

    levels: list[PieceLevel]
    inputs: list[tuple[int, torch.Tensor, bool]]


def follow_path(X: torch.Tensor, ops: list[PathLinear | PathKink]) -> ForwardPieces:
    """Follow the rows of ``X`` (float64 ``[B, d]``) through ``ops`` as polynomials in ``t``."""
    B = X.shape[0]
    ones = torch.ones(B, dtype=X.dtype, device=X.device)
    level = PieceLevel(owner=torch.arange(B, device=X.device), start=0 * ones, end=ones)
    forward = ForwardPieces(levels=[level], inputs=[])
    coef, pre = X[:, None, :], None  # pre: the last activation's input, on the parent level
    for index, op in enumerate(ops):
        last = index == len(ops) - 1
        here = len(forward.levels) - 1
        if isinstance(op, PathKink):
            if coef is None:  # two activations in a row: apply the first one's slopes
                below = forward.levels[-1]
                coef = pre[below.parent] * below.slope[:, None, :]
            forward.levels.append(_split(forward.levels[-1], coef, op))
            pre, coef = coef, None
            continue
        if pre is not None:
            forward.inputs.append((here, pre, True))
            if not last:
                coef = _linear_after_kink(pre, forward.levels[-1], op)
        else:
            forward.inputs.append((here, coef, False))
            if not last:
                coef = _linear(coef, op)
        pre = None
    return forward


def path_breakpoints(
    X: torch.Tensor,
    model: nn.Module,
    params0: Params,
    params1: Params,
    *,
    batch_size: int | None = None,
) -> list[np.ndarray]:
    """Breakpoints ``0 = t_0 < t_1 < … < t_P = 1`` of each input along the straight path.

    Between two consecutive breakpoints every activation of the MLP ``model`` keeps its slope
    for that input, so ``f(x; θ0 + t(θ1 − θ0))`` is a polynomial in ``t`` there.  Returns one
    float64 array per row of ``X`` (``[n, d]``); its length minus one is the input's number of
    pieces.  ``model`` must qualify for ``rule="exact"`` (:func:`supports_exact_rule`).
    """
    check_inputs(X, "X")
    check_tensor(X, "X", ndim=2)  # an MLP maps rows [n, d]
    ops = layers_along_path(model, params0, params1)
    X = X.to(torch.float64)
    starts, batch = batch_ranges(X.shape[0], batch_size)
    out = []
    for first in starts:
        X_batch = X[first : first + batch]
        final = follow_path(X_batch, ops).levels[-1]
        counts = torch.bincount(final.owner, minlength=X_batch.shape[0])
        for starts_of_input in torch.split(final.start, counts.tolist()):
            out.append(np.append(starts_of_input.cpu().numpy(), 1.0))
    return out
