"""Tables and figures of the convolutional chapter (chapter 9).

* :func:`position_pair_terms`: one layer's kernel value ``K_l(x, x')`` resolved into its
  ``P × P'`` position pairs;
* :func:`contraction_costs`: per layer, the cost of the two ways to contract the factors
  (:mod:`atf_lite.networks.conv_tangent`) and which one is used;
* :func:`kronecker_sizes`: numbers in a layer's Kronecker transform against an unstructured one;
* :func:`plot_position_contributions` (where in the image a kernel value comes from) and
  :func:`plot_alignment_by_architecture` (CNN against MLP, per seed and task).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._validation import (
    check_array,
    check_instance,
    check_int_sequence,
    check_mapping,
    check_real,
    check_sequence,
    describe,
    is_integer,
)
from ..networks.conv_tangent import (
    check_cnn_inputs,
    cnn_layer_signals,
    cnn_layers,
    patch_gram_is_cheaper,
)
from ..networks.functional import Params
from ..plotting import COLORS
from ._report_inputs import check_axes, check_key, check_labelled, check_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "parametrised_layers",
    "position_pair_terms",
    "contraction_costs",
    "kronecker_sizes",
    "plot_position_contributions",
    "plot_alignment_by_architecture",
    "alignment_by_architecture",
    "format_architecture_table",
]


def parametrised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` of every ``nn.Conv2d`` and ``nn.Linear`` layer, input to output."""
    return [(n, m) for n, m in cnn_layers(model) if isinstance(m, (nn.Conv2d, nn.Linear))]


def _layer_index(model: nn.Module, layer: int) -> int:
    count = len(parametrised_layers(model))
    if not is_integer(layer) or not -count <= layer < count:
        raise ValueError(f"layer must index one of the {count} parametrised layers, got {layer!r}")
    return int(layer) % count


def position_pair_terms(
    x1: torch.Tensor,
    x2: torch.Tensor,
    model: nn.Module,
    *,
    layer: int,
    params: Params | None = None,
) -> np.ndarray:
    """``T[p, q] = (g_p·g'_q)(ũ_p·ũ'_q)`` for layer ``layer`` (an index into
    :func:`parametrised_layers`) and the inputs ``x1``, ``x2`` (one each, without batch axis).

    Returns a float64 ``[P, P]`` array whose sum is the layer's term ``K_l(x1, x2)`` of the
    tangent kernel: row ``p`` belongs to output position ``p`` of ``x1`` (row-major over the
    layer's output grid), column ``q`` to position ``q`` of ``x2``.
    """
    index = _layer_index(model, layer)
    for name, x in (("x1", x1), ("x2", x2)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (one input), got {describe(x)}")
        check_cnn_inputs(x[None], model, name)
    H, G, has_bias = cnn_layer_signals(torch.stack([x1, x2]), model, params)[index]
    H, G = H.to(torch.float64), G.to(torch.float64)
    inputs = H[0].T @ H[1] + (1.0 if has_bias else 0.0)
    return ((G[0].T @ G[1]) * inputs).numpy()


def contraction_costs(X: torch.Tensor, model: nn.Module) -> list[dict[str, Any]]:
    """Per parametrised layer: ``name``, ``kind`` (``"conv"``/``"dense"``), ``M`` outputs,
    ``D`` patch length (without the bias input), ``P`` positions, the multiply-adds per pair of
    inputs of the features contraction (``M·(D + 1)``) and of the Gram contraction
    (``P²·(M + D + 2)``), the per-input cost of forming the features (``P·M·(D + 1)``) and
    ``method``, the cheaper one, which :mod:`atf_lite.networks.conv_tangent` uses.  ``X``:
    inputs of the model (only the first is used, for the shapes)."""
    check_cnn_inputs(X, model, "X")
    signals = cnn_layer_signals(X[:1], model)
    rows = []
    for (name, module), (H, G, _) in zip(parametrised_layers(model), signals):
        M, D, P = G.shape[1], H.shape[1], H.shape[2]
        rows.append({
            "name": name,
            "kind": "conv" if isinstance(module, nn.Conv2d) else "dense",
            "M": M, "D": D, "P": P,
            "features_per_pair": M * (D + 1),
            "gram_per_pair": P * P * (M + D + 2),
            "features_per_input": P * M * (D + 1),
            "method": "gram" if patch_gram_is_cheaper(P, M, D) else "features",
        })
    return rows


def kronecker_sizes(model: nn.Module) -> list[dict[str, Any]]:
    """Per parametrised layer: ``name``, ``M`` outputs, ``D`` patch length (without the bias
    input), ``bias`` (whether the layer has one), and the numbers in a Kronecker transform
    ``A ⊗ B`` of its ``M × (D + bias)`` parameter matrix (``M² + (D + bias)²``) and in an
    unstructured transform of the same parameters (``(M·(D + bias))²``)."""
    rows = []
    for name, module in parametrised_layers(model):
        M, D = module.weight.shape[0], module.weight[0].numel()
        width = D + (module.bias is not None)
        rows.append({"name": name, "M": M, "D": D, "bias": module.bias is not None,
                     "kronecker": M * M + width * width, "unstructured": (M * width) ** 2})
    return rows


def plot_position_contributions(
    X: torch.Tensor, model: nn.Module, *, layer: int, image_shape: Sequence[int],
    titles: Sequence[str] = ("$x$", "$x'$"),
) -> Figure:
    """Where a convolution's kernel value ``K_l(x, x')`` comes from, for ``x, x' = X[0], X[1]``.

    Top: the two inputs (``image_shape``: their ``(H, W)``).  Bottom left: the ``P × P`` matrix
    ``T[p, q]`` of :func:`position_pair_terms` for layer ``layer``, whose sum is ``K_l(x, x')``;
    bottom right: its row sums ``Σ_q T[p, q]`` laid out on the layer's output grid (the share of
    each position of ``x``).  Colour bars on both.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    check_instance(model, "model", nn.Module, "a torch.nn.Module")
    check_cnn_inputs(X, model, "X")
    if len(X) < 2:
        raise ValueError(f"X must hold two inputs x, x' at least, got shape {tuple(X.shape)}")
    _layer_index(model, layer)
    image_shape = check_int_sequence(image_shape, "image_shape", minimum=1)
    if len(image_shape) != 2 or image_shape[0] * image_shape[1] != X[0].numel():
        raise ValueError(f"image_shape must be the (H, W) of the {X[0].numel()} values of an "
                         f"input, got {image_shape!r}")
    titles = check_sequence(titles, "titles")
    if len(titles) != 2:
        raise ValueError(f"titles must be two titles, got {titles!r}")
    for i, title in enumerate(titles):
        check_text(title, f"titles[{i}]")
    fig, axes = plt.subplots(2, 2, figsize=(7.2, 6.4), constrained_layout=True)
    for ax, x, title in zip(axes[0], X[:2], titles):
        ax.imshow(x.detach().reshape(*image_shape).numpy(), cmap="gray_r")
        ax.set_title(f"input {title}")
    terms = position_pair_terms(X[0], X[1], model, layer=layer)
    P = terms.shape[0]
    side = int(round(P**0.5))
    grid = (side, P // side)
    bound = np.abs(terms).max()
    image = axes[1, 0].imshow(terms, cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[1, 0].set_title(f"$T[p, q]$: {P}×{P} position pairs\nsum $K_l(x, x')$ = {terms.sum():.3g}")
    axes[1, 0].set_xlabel("position $q$ of $x'$")
    axes[1, 0].set_ylabel("position $p$ of $x$")
    fig.colorbar(image, ax=axes[1, 0], shrink=0.8)
    rows = terms.sum(axis=1).reshape(grid)
    bound = np.abs(rows).max()
    image = axes[1, 1].imshow(rows, cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[1, 1].set_title(r"$\sum_q T[p, q]$ on the output grid of $x$")
    fig.colorbar(image, ax=axes[1, 1], shrink=0.8)
    for ax in axes.flat:
        ax.grid(False)
        if ax is not axes[1, 0]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    return fig


_ARCH_COLORS = {"mlp": COLORS["blue"], "cnn": COLORS["orange"]}


def plot_alignment_by_architecture(
    ax: Any, values: Mapping[str, Mapping[str, Sequence[float]]], *, metric: str = "alignment"
) -> None:
    """Paired dot plot on ``ax``: for each architecture (keys of ``values``, e.g. ``"mlp"``,
    ``"cnn"``) the per-seed values of ``metric`` for the regression and the sign task
    (``values[arch][task]``, equal length), a line joining the two tasks of each seed."""
    check_axes(ax)
    values = check_labelled(values, "values", _check_task_values)
    metric = check_text(metric, "metric")
    for offset, (arch, tasks) in enumerate(values.items()):
        regression, sign = tasks["regression"], tasks["sign"]
        x = np.array([0.0, 1.0]) + 2.5 * offset
        for pair in zip(regression, sign):
            ax.plot(x, pair, "-o", color=_ARCH_COLORS.get(arch, COLORS["black"]), ms=5,
                    alpha=0.8)
        ax.plot([], [], "-o", color=_ARCH_COLORS.get(arch, COLORS["black"]), label=arch.upper())
    ax.set_xticks([0, 1, 2.5, 3.5], ["regression", "sign", "regression", "sign"])
    ax.set_xlim(-0.5, 4.0)
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend()


def _check_task_values(tasks: Any, name: str) -> dict[str, np.ndarray]:
    """``{"regression": [seeds], "sign": [seeds]}``: finite values, as many for both tasks."""
    out = {task: check_array(check_key(tasks, task, name), f"{name}[{task!r}]", ndim=1)
           for task in ("regression", "sign")}
    if len(out["regression"]) != len(out["sign"]):
        raise ValueError(f"{name} must hold as many values for both tasks, got "
                         f"{len(out['regression'])} and {len(out['sign'])}")
    return out


_TABLE_KEYS = ("train_loss", "identity_residual", "tangent_norm", "alignment_initial",
               "alignment", "alignment_change")


def _check_summaries(summaries: Any, keys: Sequence[str], tasks: Sequence[str] = ()) -> dict:
    """``{arch: [summary.json dicts]}``, non-empty: each run with ``config.seed`` and tasks
    (at least ``tasks``) whose entries ``keys`` are real numbers; returns ``{arch: [runs]}``."""
    def runs(value: Any, where: str) -> list:
        entries = check_sequence(value, where)
        for i, run in enumerate(entries):
            at = f"{where}[{i}]"
            check_key(check_key(run, "config", at), "seed", f"{at}['config']")
            found = check_mapping(check_key(run, "tasks", at), f"{at}['tasks']", allow_empty=False)
            for task in tasks:
                check_key(found, task, f"{at}['tasks']")
            for task, entry in found.items():
                for key in keys:
                    check_real(check_key(entry, key, f"{at}['tasks'][{task!r}]"),
                               f"{at}['tasks'][{task!r}][{key!r}]", allow_inf=True)
        return list(entries)

    return check_labelled(summaries, "summaries", runs)


def alignment_by_architecture(
    summaries: Mapping[str, Sequence[Mapping[str, Any]]], *, metric: str = "alignment"
) -> dict[str, dict[str, list[float]]]:
    """``values[arch][task]``: the per-seed ``metric`` of the alignment runs' ``summary.json``
    dicts ``summaries[arch]`` (one per seed, in the given order), for the plot of
    :func:`plot_alignment_by_architecture`."""
    summaries = _check_summaries(summaries, (), ("regression", "sign"))
    metric = check_text(metric, "metric")
    for arch, runs in summaries.items():
        for i, run in enumerate(runs):
            for task in ("regression", "sign"):
                if metric not in run["tasks"][task]:
                    raise ValueError(f"metric must be an entry of every task, got {metric!r}, "
                                     f"not in summaries[{arch!r}][{i}]['tasks'][{task!r}]")
    return {arch: {task: [float(s["tasks"][task][metric]) for s in runs]
                   for task in ("regression", "sign")}
            for arch, runs in summaries.items()}


def format_architecture_table(summaries: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """A text table of the alignment runs' ``summary.json`` dicts, ``summaries[arch]`` one per
    seed: per architecture, seed and task the training MSE, the residual of the path identity,
    Theorem 1's difficulty ``‖β̂‖``, and the alignments with ``K_ŷ`` of ``K0``, ``K̄`` and
    ``K̄ − K0``."""
    summaries = _check_summaries(summaries, _TABLE_KEYS)
    # β̂ and K̄ carry a combining accent: one more code point than they show.
    lines = [f"{'arch':<5}{'seed':>5}  {'task':<11}{'train MSE':>10}{'residual':>10}"
             f"{'‖β̂‖':>8}{'cos K0':>8}{'cos K̄':>9}{'cos K̄−K0':>11}"]
    for arch, runs in summaries.items():
        for summary in runs:
            for task, entry in summary["tasks"].items():
                lines.append(
                    f"{arch:<5}{summary['config']['seed']:>5}  {task:<11}"
                    f"{entry['train_loss']:10.0e}{entry['identity_residual']:10.0e}"
                    f"{entry['tangent_norm']:7.2f}{entry['alignment_initial']:8.3f}"
                    f"{entry['alignment']:8.3f}{entry['alignment_change']:10.3f}")
    return "\n".join(lines)
