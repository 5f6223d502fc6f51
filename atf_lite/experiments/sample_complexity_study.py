"""The stored sample-complexity study: both data protocols, both recipes, two data sets (chapter 8).

The study runs ``python -m atf_lite sample-complexity`` once per combination of data set
(``"mnist"``, ``"digits"``), recipe (``"paper-code"``, ``"book"``) and data protocol
(``"fixed-subset"``, ``"fresh-subset-per-epoch"``) and stores each output under
``ROOT/{dataset}-{recipe}-{fixed|fresh}/sample_complexity.json``.  This module reads those files
and turns them into the chapter's tables and figures:

* :func:`load_study`: the stored results, keyed by ``(dataset, recipe, protocol)``;
* :func:`common_levels`, :func:`study_ratios`, :func:`format_ratio_table`,
  :func:`plot_ratios`: the sample-size ratio of fixed to adaptive features at matched error,
  with its bootstrap interval over seeds;
* :func:`epoch_cap_table`, :func:`format_epoch_cap_table`: did runs end by early stopping or at
  the epoch cap;
* :func:`expected_distinct_examples`, :func:`distinct_examples_table`,
  :func:`plot_distinct_examples`: how many different images a protocol trains on;
* :func:`format_study_table`, :func:`plot_study_grid`: the learning curves side by side;
* :func:`fit_summary`, :func:`format_fit_table`: training against test error, epochs and images
  processed, per protocol;
* :func:`plot_spectra`: singular values of the learned weight changes.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import (
    check_int,
    check_mapping,
    check_nonnegative_int,
    check_option,
    check_positive_int,
    check_real,
    check_sequence,
    describe,
)
from ..networks.feature_models import MODEL_KINDS
from ..plotting import COLORS
from ._study_checks import (
    check_axes,
    check_cap_rows,
    check_mean_curves,
    check_ratio_rows,
    check_result,
    check_simulated,
    check_spectra,
    check_study,
)
from .sample_complexity_report import (
    format_summary,
    plot_sample_complexity,
    sample_ratio,
    summarize,
)
from .sample_complexity_run import PROTOCOLS, RECIPES, SampleComplexityResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "STUDY_DATASETS",
    "STUDY_COMBINATIONS",
    "study_directory",
    "load_study",
    "expected_distinct_examples",
    "common_levels",
    "study_ratios",
    "format_ratio_table",
    "epoch_cap_table",
    "format_epoch_cap_table",
    "distinct_examples_table",
    "fit_summary",
    "format_fit_table",
    "format_study_table",
    "plot_study_grid",
    "plot_ratios",
    "plot_distinct_examples",
    "plot_spectra",
]

STUDY_DATASETS = ("mnist", "digits")
#: Every ``(dataset, recipe, protocol)`` of the study, in the order the chapter shows them.
STUDY_COMBINATIONS = tuple(
    (dataset, recipe, protocol)
    for dataset in STUDY_DATASETS
    for recipe in ("paper-code", "book")
    for protocol in PROTOCOLS
)
_SHORT = {"fixed-subset": "fixed", "fresh-subset-per-epoch": "fresh"}
_PROTOCOL_NAMES = {"fixed-subset": "fixed subset", "fresh-subset-per-epoch": "fresh subsets"}
_DATASET_NAMES = {"mnist": "MNIST", "digits": "digits"}
_PROTOCOL_COLORS = {"fixed-subset": "blue", "fresh-subset-per-epoch": "orange"}
_X_LABELS = {"fixed-subset": "training-set size $n$",
             "fresh-subset-per-epoch": "images per epoch $n$"}
_MODEL_COLORS = {"fixed": "blue", "adaptive": "orange", "full": "green"}
_CURVE_KEYS = ("model", "n_train", "seed", "test_error")  # what summarize and sample_ratio read

Key = tuple[str, str, str]


def _check_combination(dataset: str, recipe: str, protocol: str) -> None:
    if dataset not in STUDY_DATASETS:
        raise ValueError(f"dataset must be one of {STUDY_DATASETS}, got {dataset!r}")
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {tuple(RECIPES)}, got {recipe!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def study_directory(dataset: str, recipe: str, protocol: str) -> str:
    """Directory name of one combination, e.g. ``"mnist-paper-code-fresh"``."""
    _check_combination(dataset, recipe, protocol)
    return f"{dataset}-{recipe}-{_SHORT[protocol]}"


def _label(key: Key) -> str:
    dataset, recipe, protocol = key
    return f"{_DATASET_NAMES[dataset]}, {recipe}, {_PROTOCOL_NAMES[protocol]}"


def load_study(root: str | os.PathLike) -> dict[Key, SampleComplexityResult]:
    """The stored results under ``root``, keyed by ``(dataset, recipe, protocol)``.

    Combinations without a ``sample_complexity.json`` are left out; the keys follow the order
    of :data:`STUDY_COMBINATIONS`.  Raises ``ValueError`` if a file's configuration does not
    match its directory.
    """
    if not isinstance(root, str | os.PathLike):
        raise TypeError(f"root must be a path, got {describe(root)}")
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"root must be an existing directory, got {str(root)!r}")
    study = {}
    for key in STUDY_COMBINATIONS:
        path = root / study_directory(*key) / "sample_complexity.json"
        if not path.exists():
            continue
        payload = json.loads(path.read_text())
        config = payload["config"]
        found = (config["dataset"], config["recipe"], config["protocol"])
        if found != key:
            raise ValueError(f"{path} holds the combination {found}, expected {key}")
        study[key] = SampleComplexityResult(config=config, results=payload["results"])
    return study


def expected_distinct_examples(pool: int, n: int, epochs: Any) -> np.ndarray:
    """Expected number of different pool items after ``epochs`` fresh draws of ``n`` of ``pool``.

    Each epoch takes ``n`` of the ``pool`` items uniformly without replacement, independently
    of the other epochs, so an item is missed by one epoch with probability ``1 − n/pool`` and
    the expected count is ``pool · (1 − (1 − n/pool)^epochs)``.  ``epochs``: a non-empty 1-D
    sequence of epoch counts ``≥ 0`` (real numbers); returns float64 of shape ``[len(epochs)]``.
    """
    for name, value in (("pool", pool), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n > pool:
        raise ValueError(f"n must not exceed pool ({pool}), got {n}")
    raw = np.asarray(epochs)
    if raw.ndim != 1 or raw.size == 0 or raw.dtype.kind not in "iuf":
        raise ValueError("epochs must be a non-empty 1-D sequence of real numbers, got "
                         f"shape {raw.shape} and dtype {raw.dtype}")
    counts = raw.astype(float)
    if not np.isfinite(counts).all() or np.any(counts < 0):
        raise ValueError("epochs must be finite and non-negative")
    return pool * (1.0 - (1.0 - n / pool) ** counts)


def common_levels(
    summary: Mapping[str, Mapping[str, np.ndarray]],
    *,
    models: Sequence[str] = ("fixed", "adaptive"),
    count: int = 3,
) -> np.ndarray:
    """Error levels that every mean curve of ``models`` crosses inside the measured sizes.

    A level must lie below each curve's value at the smallest size (so that its crossing is
    measured, not extrapolated) and at or above each curve's lowest value (so that it is
    reached).  The ``count`` levels split that range evenly (at 1/(count+1), 2/(count+1), …),
    rounded to 0.001, highest first; empty when the curves share no such range.
    ``summary``: a :func:`~atf_lite.experiments.sample_complexity_report.summarize` result.
    """
    summary = check_mapping(summary, "summary", allow_empty=False)
    models = check_sequence(models, "models")
    check_positive_int(count, "count")
    means = check_mean_curves(summary, "summary", models, "models")
    low = max(float(np.min(means[kind])) for kind in models)
    high = min(float(means[kind][0]) for kind in models)
    levels = np.round(low + (high - low) * np.arange(count, 0, -1) / (count + 1), 3)
    return np.unique(levels[(levels >= low) & (levels < high)])[::-1]


def study_ratios(
    study: Mapping[Key, SampleComplexityResult],
    *,
    count: int = 3,
    n_boot: int = 2000,
    confidence: float = 0.9,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per combination, the fixed/adaptive sample ratio at :func:`common_levels`.

    One row per combination: ``dataset``, ``recipe``, ``protocol`` and the arrays of
    :func:`~atf_lite.experiments.sample_complexity_report.sample_ratio` (``levels``, ``ratio``,
    ``low``, ``high``, ``reached``; a ratio above 1 means that the adaptive model reaches the
    level with fewer samples).  The arrays are empty where the curves share no level.
    """
    study = check_study(study, STUDY_COMBINATIONS, keys=_CURVE_KEYS)
    check_positive_int(count, "count")
    check_positive_int(n_boot, "n_boot")
    if not 0 < check_real(confidence, "confidence") < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    check_int(seed, "seed", minimum=0)
    rows = []
    for key, result in study.items():
        levels = common_levels(summarize(result.results), count=count)
        row: dict[str, Any] = dict(zip(("dataset", "recipe", "protocol"), key))
        if len(levels) == 0:
            empty = np.array([])
            row.update(levels=empty, ratio=empty, low=empty, high=empty, reached=empty)
        else:
            row.update(sample_ratio(result.results, levels, n_boot=n_boot,
                                    confidence=confidence, seed=seed))
        rows.append(row)
    return rows


def format_ratio_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A text table of :func:`study_ratios` rows: one line per combination and level."""
    rows = check_ratio_rows(rows, "rows", STUDY_COMBINATIONS)
    lines = [f"{'data, recipe, protocol':<34}{'error':>7}{'ratio':>8}{'90 % interval':>16}"]
    for row in rows:
        name = _label((row["dataset"], row["recipe"], row["protocol"]))
        if len(row["levels"]) == 0:
            lines.append(f"{name:<34}{'no common error level':>31}")
        for j, level in enumerate(row["levels"]):
            interval = f"[{row['low'][j]:.2f}, {row['high'][j]:.2f}]"
            lines.append(f"{name if j == 0 else '':<34}{level:>7.3f}{row['ratio'][j]:>8.2f}"
                         f"{interval:>16}")
    return "\n".join(lines)


def epoch_cap_table(study: Mapping[Key, SampleComplexityResult]) -> list[dict[str, Any]]:
    """How each combination's runs ended: one row per (combination, model).

    Columns: ``dataset``, ``recipe``, ``protocol``, ``model``, ``runs``, ``cap`` (the epoch cap,
    ``max_epochs``), ``patience``, ``longest`` (most epochs any run trained), ``at_cap`` (runs
    that trained all ``cap`` epochs, i.e. did not stop early) and ``median_best_epoch``.
    """
    study = check_study(study, STUDY_COMBINATIONS, keys=("model", "epochs", "best_epoch"))
    rows = []
    for key, result in study.items():
        for kind in MODEL_KINDS:
            runs = [r for r in result.results if r["model"] == kind]
            if not runs:
                continue
            settings = result.config["settings"][kind]
            epochs = np.array([r["epochs"] for r in runs])
            rows.append({
                **dict(zip(("dataset", "recipe", "protocol"), key)),
                "model": kind,
                "runs": len(runs),
                "cap": int(settings["max_epochs"]),
                "patience": settings["patience"],
                "longest": int(epochs.max()),
                "at_cap": int(np.sum(epochs >= settings["max_epochs"])),
                "median_best_epoch": float(np.median([r["best_epoch"] for r in runs])),
            })
    return rows


def format_epoch_cap_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A text table of :func:`epoch_cap_table` rows, one line per combination (models side by
    side: ``longest run / runs at the cap``)."""
    rows = check_cap_rows(rows, "rows", STUDY_COMBINATIONS)
    groups: dict[Key, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["recipe"], row["protocol"]), {})[row["model"]] = row
    lines = [f"{'data, recipe, protocol':<34}{'cap':>5}"
             + "".join(f"{kind:>12}" for kind in MODEL_KINDS)]
    for key, by_model in groups.items():
        cap = next(iter(by_model.values()))["cap"]
        cells = [f"{by_model[k]['longest']} / {by_model[k]['at_cap']}" if k in by_model else "–"
                 for k in MODEL_KINDS]
        lines.append(f"{_label(key):<34}{cap:>5}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def distinct_examples_table(result: SampleComplexityResult) -> dict[int, tuple[int, float, int]]:
    """Per training size ``n``: ``(min, mean, max)`` of ``distinct_examples`` over all runs."""
    check_result(result, "result", ("n_train", "distinct_examples"))
    by_size: dict[int, list[int]] = {}
    for record in result.results:
        by_size.setdefault(record["n_train"], []).append(record["distinct_examples"])
    return {n: (int(min(v)), float(np.mean(v)), int(max(v))) for n, v in sorted(by_size.items())}


def fit_summary(result: SampleComplexityResult, *, n_train: int) -> dict[str, dict[str, float]]:
    """Per model, means over seeds at size ``n_train``: ``test_error``, ``train_error`` (on the
    run's stratified subset of ``n_train`` pool images), ``best_epoch``, ``processed`` (images
    passed through the model up to the kept epoch, ``best_epoch · n_train``) and
    ``distinct_examples``."""
    check_result(result, "result", (*_CURVE_KEYS, "train_error", "best_epoch",
                                    "distinct_examples"))
    n_train = check_positive_int(n_train, "n_train")
    runs = [r for r in result.results if r["n_train"] == n_train]
    if not runs:
        raise ValueError(f"n_train={n_train!r} was not run; sizes: {result.config['sizes']}")
    summary = {}
    for kind in MODEL_KINDS:
        own = [r for r in runs if r["model"] == kind]
        if own:
            summary[kind] = {
                key: float(np.mean([r[key] for r in own]))
                for key in ("test_error", "train_error", "best_epoch", "distinct_examples")
            }
            summary[kind]["processed"] = summary[kind]["best_epoch"] * n_train
    return summary


def format_fit_table(
    study: Mapping[Key, SampleComplexityResult], *, dataset: str, recipe: str, n_train: int
) -> str:
    """Both protocols of one data set and recipe at size ``n_train``, one line per model:
    :func:`fit_summary`'s test and training error, kept epoch, images processed and distinct
    images."""
    study = check_study(study, STUDY_COMBINATIONS)
    check_option(dataset, "dataset", STUDY_DATASETS)
    check_option(recipe, "recipe", tuple(RECIPES))
    check_positive_int(n_train, "n_train")
    if not any((dataset, recipe, protocol) in study for protocol in PROTOCOLS):
        raise ValueError(f"study holds no combination of dataset {dataset!r} and recipe "
                         f"{recipe!r}; it holds {list(study)}")
    lines = [f"{'protocol':<15}{'model':>9}{'test err':>10}{'train err':>10}{'epoch':>7}"
             f"{'processed':>11}{'distinct':>10}"]
    for protocol in PROTOCOLS:
        key = (dataset, recipe, protocol)
        if key not in study:
            continue
        for kind, row in fit_summary(study[key], n_train=n_train).items():
            lines.append(
                f"{_PROTOCOL_NAMES[protocol]:<15}{kind:>9}{row['test_error']:>10.3f}"
                f"{row['train_error']:>10.3f}{row['best_epoch']:>7.0f}{row['processed']:>11,.0f}"
                f"{row['distinct_examples']:>10,.0f}"
            )
    return "\n".join(lines)


def format_study_table(study: Mapping[Key, SampleComplexityResult], *, decimals: int = 3) -> str:
    """Test error, mean ± sd over seeds, of every combination: a header line, then the
    :func:`~atf_lite.experiments.sample_complexity_report.format_summary` table."""
    study = check_study(study, STUDY_COMBINATIONS, keys=_CURVE_KEYS)
    check_nonnegative_int(decimals, "decimals")
    blocks = []
    for key, result in study.items():
        seeds = len(result.config["seeds"])
        blocks.append(f"{_label(key)}: test error, mean ± sd over {seeds} seeds\n"
                      + format_summary(summarize(result.results), decimals=decimals))
    return "\n\n".join(blocks)


def plot_study_grid(study: Mapping[Key, SampleComplexityResult]) -> Figure:
    """Learning curves of every combination: one row per (data set, recipe), one column per
    protocol; rows share their error axis.  Missing combinations are marked.  Returns the
    figure."""
    import matplotlib.pyplot as plt

    study = check_study(study, STUDY_COMBINATIONS, keys=_CURVE_KEYS)

    pairs = [(d, r) for d in STUDY_DATASETS for r in ("paper-code", "book")]
    fig, axes = plt.subplots(len(pairs), len(PROTOCOLS), figsize=(6.4, 2.3 * len(pairs) + 0.6),
                             sharey="row", constrained_layout=True)
    for row, (dataset, recipe) in zip(axes, pairs):
        for ax, protocol in zip(row, PROTOCOLS):
            key = (dataset, recipe, protocol)
            ax.set_title(_label(key))
            if key not in study:
                ax.text(0.5, 0.5, "not stored", ha="center", va="center",
                        transform=ax.transAxes)
                ax.set_xticks([])
                continue
            plot_sample_complexity(ax, summarize(study[key].results))
            ax.get_legend().remove()
            ax.set_xlabel(_X_LABELS[protocol])
            if protocol != PROTOCOLS[0]:
                ax.set_ylabel("")
    handles, labels = next(
        (ax.get_legend_handles_labels() for ax in axes.flat if ax.lines), ([], [])
    )
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncol=3)
    return fig


def plot_ratios(ax: Axes, rows: Sequence[Mapping[str, Any]], *, claim: float = 10.0) -> None:
    """The :func:`study_ratios` rows on ``ax``: each level's ratio (dot) and interval (bar) on
    a log axis, one line per combination (levels from the highest error down), coloured by
    protocol; reference lines at 1 (equal samples) and at ``claim`` (the preprint's order of
    magnitude)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    check_axes(ax)
    rows = check_ratio_rows(rows, "rows", STUDY_COMBINATIONS)
    check_real(claim, "claim", low=0.0, low_open=True)
    names, labelled = [], set()
    for i, row in enumerate(rows):
        names.append(_label((row["dataset"], row["recipe"], row["protocol"])))
        count = len(row["levels"])
        offsets = np.linspace(-0.25, 0.25, count) if count > 1 else np.zeros(count)
        ratio, low, high = (np.asarray(row[k], dtype=float) for k in ("ratio", "low", "high"))
        protocol = row["protocol"]
        label = None if protocol in labelled else _PROTOCOL_NAMES[protocol]
        labelled.add(protocol)
        ax.errorbar(ratio, i + offsets, xerr=[ratio - low, high - ratio], fmt="o",
                    markersize=4, capsize=2, color=COLORS[_PROTOCOL_COLORS[protocol]],
                    label=label)
    ax.axvline(1.0, color=COLORS["black"], linewidth=1)
    ax.axvline(claim, color=COLORS["red"], linestyle="--", linewidth=1,
               label=f"preprint's claim (×{claim:g})")
    ax.set_xscale("log")
    left, right = ax.get_xlim()
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if left <= t <= right]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(False, axis="y")
    ax.set_xlabel("samples needed by fixed / by adaptive features\n(at matched test error)")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3)


def plot_distinct_examples(
    ax: Axes, epochs: Sequence[int] | np.ndarray, simulated: Mapping[int, np.ndarray], *, n: int
) -> None:
    """Distinct items seen against epochs on ``ax``: ``simulated[pool]`` (solid) beside
    :func:`expected_distinct_examples` (dotted) for each pool size, and the fixed subset
    (always ``n``); at most four pools."""
    check_axes(ax)
    simulated = check_simulated(simulated, "simulated", epochs, n, most=4)
    epochs = np.asarray(epochs)
    colors = [COLORS[c] for c in ("purple", "orange", "green", "sky")]
    for color, (pool, counts) in zip(colors, simulated.items()):
        ax.plot(epochs, counts, color=color, label=f"fresh subsets from a pool of {pool:,}")
        ax.plot(epochs, expected_distinct_examples(pool, n, epochs), ":", color=COLORS["black"],
                linewidth=1)
    ax.plot(epochs, np.full(len(epochs), n), color=COLORS["blue"], label="one fixed subset")
    ax.set_yscale("log")
    ax.set_xlabel("epochs")
    ax.set_ylabel(f"distinct images seen (n = {n} per epoch)")
    ax.legend()


def plot_spectra(
    ax: Axes, records: Mapping[str, Mapping[str, Any]], *, layer: str, count: int = 40
) -> None:
    """Normalised singular values ``σ_i(δW) / σ_1(δW)`` of ``layer``'s weight change, the first
    ``count`` of them, for each model's record (``records[kind]``: a
    :func:`~atf_lite.experiments.sample_complexity_run.run_one` record)."""
    check_axes(ax)
    records = check_spectra(records, "records", layer)
    check_positive_int(count, "count")
    for kind in MODEL_KINDS:
        if kind not in records:
            continue
        s = np.asarray(records[kind]["spectra"][layer], dtype=float)[:count]
        ax.semilogy(np.arange(1, len(s) + 1), s / s[0], marker="o", markersize=3,
                    color=COLORS[_MODEL_COLORS[kind]], label=kind)
    ax.set_xlabel("index $i$ of the singular value")
    ax.set_ylabel(r"$\sigma_i(\delta W)\,/\,\sigma_1(\delta W)$")
    ax.legend()
