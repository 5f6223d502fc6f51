"""Tables, curves and outputs of the sample-complexity experiment (chapter 8).

* :func:`summarize`, :func:`format_summary`, :func:`plot_sample_complexity`: test error against
  training-set size, mean ± sd over seeds;
* :func:`samples_to_reach`, :func:`samples_needed`, :func:`sample_ratio`: samples needed to
  reach an error level, and how many times more one model needs (bootstrap over seeds);
* :func:`sweep_table`, :func:`select_variants`: the settings sweep;
* :func:`effective_rank`: how many directions a weight change uses;
* :func:`write_outputs`: what ``python -m atf_lite sample-complexity`` writes.

Records are the dicts of :func:`atf_lite.experiments.sample_complexity_run.run_one`.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import (
    check_array,
    check_int,
    check_nonnegative_int,
    check_option,
    check_positive_int,
    check_real,
    describe,
)
from ..networks.feature_models import MODEL_KINDS
from ..plotting import COLORS, use_style
from .sample_complexity_run import SampleComplexityResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "sweep_table",
    "select_variants",
    "summarize",
    "samples_to_reach",
    "samples_needed",
    "sample_ratio",
    "format_summary",
    "effective_rank",
    "plot_sample_complexity",
    "write_outputs",
]


def _check_records(records: Any, name: str) -> None:
    """``records`` must be a sequence of dicts."""
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise TypeError(f"{name} must be a sequence of dicts, got {describe(records)}")
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError(f"{name} must hold dicts, got an entry {describe(record)}")


def _check_summary(summary: Any) -> None:
    """``summary`` must be a non-empty :func:`summarize` result."""
    if not isinstance(summary, Mapping):
        raise TypeError(f"summary must be a dict of per-model curves, got {describe(summary)}")
    if not summary:
        raise ValueError("summary must not be empty, got {}")


def _check_out_dir(out_dir: Any, command: Any) -> None:
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(f"out_dir must be a path, got {describe(out_dir)}")
    if command is not None and not isinstance(command, str):
        raise TypeError(f"command must be a string or None, got {describe(command)}")


def _mean_transform_change(record: dict) -> float:
    pairs = record.get("transform_change")
    if not pairs:
        return float("nan")
    return float(np.mean([value for pair in pairs.values() for value in pair]))


def sweep_table(records: Sequence[dict], *, layer: str | None = None) -> list[dict[str, Any]]:
    """One row per (variant, model) of
    :func:`~atf_lite.experiments.sample_complexity_run.settings_sweep` records, averaged over
    seeds.

    Columns: ``variant``, ``model``, ``test_error`` and ``test_sd`` (mean and sample standard
    deviation), ``val_error``, ``best_epoch``, ``relative_change`` (``‖δθ‖ / ‖θ0‖``),
    ``transform_change`` (mean over layers and factors of ``‖M − I‖_F / ‖I‖_F``; NaN except for
    the adaptive model) and ``effective_rank`` of ``δW`` of ``layer`` (90 % of the energy;
    default: the first hidden-to-hidden layer, else the first layer).
    """
    _check_records(records, "records")
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["variant"], record["model"]), []).append(record)
    rows = []
    for (variant, kind), group in groups.items():
        names = list(group[0]["spectra"])
        key = layer if layer is not None else names[1 if len(names) > 2 else 0]
        errors = np.array([r["test_error"] for r in group])
        rows.append(
            {
                "variant": variant,
                "model": kind,
                "test_error": float(errors.mean()),
                "test_sd": float(errors.std(ddof=1)) if len(errors) > 1 else 0.0,
                "val_error": float(np.mean([r["val_error"] for r in group])),
                "best_epoch": float(np.mean([r["best_epoch"] for r in group])),
                "relative_change": float(np.mean([r["relative_change"] for r in group])),
                "transform_change": float(np.mean([_mean_transform_change(r) for r in group])),
                "effective_rank": float(
                    np.mean([effective_rank(r["spectra"][key]) for r in group])
                ),
            }
        )
    return rows


def select_variants(rows: Sequence[dict]) -> dict[str, str]:
    """Per model, the variant of :func:`sweep_table` rows with the lowest mean validation error
    (ties: the earlier row)."""
    _check_records(rows, "rows")
    best: dict[str, dict] = {}
    for row in rows:
        current = best.get(row["model"])
        if current is None or row["val_error"] < current["val_error"]:
            best[row["model"]] = row
    return {kind: row["variant"] for kind, row in best.items()}


def summarize(results: Sequence[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Per model: ``{"n": sizes, "mean": …, "sd": …, "count": …}`` of the test error over seeds.

    ``sd`` is the sample standard deviation (``ddof=1``; zero for a single seed).
    """
    _check_records(results, "results")
    table: dict[str, dict[int, list[float]]] = {}
    for record in results:
        table.setdefault(record["model"], {}).setdefault(record["n_train"], []).append(
            record["test_error"]
        )
    summary = {}
    for kind, by_size in table.items():
        sizes = sorted(by_size)
        errors = [np.asarray(by_size[n]) for n in sizes]
        summary[kind] = {
            "n": np.asarray(sizes),
            "mean": np.array([e.mean() for e in errors]),
            "sd": np.array([e.std(ddof=1) if len(e) > 1 else 0.0 for e in errors]),
            "count": np.array([len(e) for e in errors]),
        }
    return summary


def samples_to_reach(n: Sequence[float], error: Sequence[float], level: float) -> float:
    """Training-set size at which the curve ``error(n)`` first falls to ``level``.

    Linear interpolation of the error in ``log n`` between the two sizes that bracket the first
    crossing.  Returns ``nan`` when the curve never reaches ``level`` and ``n[0]`` when it is
    already there at the smallest size (a bound: fewer samples might do).
    """
    n = check_array(n, "n", ndim=1, column_as_vector=False)
    error = check_array(error, "error", ndim=1, column_as_vector=False)
    level = check_real(level, "level")
    if n.ndim != 1 or n.shape != error.shape or len(n) == 0:
        raise ValueError("n and error must be 1-D arrays of the same non-zero length")
    if np.any(np.diff(n) <= 0) or n[0] <= 0:
        raise ValueError("n must be positive and strictly increasing")
    if not np.isfinite(error).all():
        raise ValueError("error contains NaN or infinite values")
    below = np.flatnonzero(error <= level)
    if len(below) == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(n[0])
    t = (error[i - 1] - level) / (error[i - 1] - error[i])
    return float(np.exp(np.log(n[i - 1]) + t * (np.log(n[i]) - np.log(n[i - 1]))))


def _reach_batch(n: Sequence[float], curves: np.ndarray, level: float) -> np.ndarray:
    """:func:`samples_to_reach` of every row of ``curves`` ``[m, len(n)]`` at once (no checks)."""
    n = np.asarray(n, dtype=float)
    below = curves <= level
    first = np.argmax(below, axis=1)
    previous = np.maximum(first - 1, 0)
    rows = np.arange(len(curves))
    upper, lower = curves[rows, previous], curves[rows, first]
    log_n = np.log(n)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows with first == 0 are replaced
        t = (upper - level) / (upper - lower)
        crossing = np.exp(log_n[previous] + t * (log_n[first] - log_n[previous]))
    out = np.where(first == 0, n[0], crossing)
    return np.where(below.any(axis=1), out, np.nan)


def samples_needed(summary: dict, levels: Sequence[float]) -> dict[str, np.ndarray]:
    """Per model of a :func:`summarize` result, :func:`samples_to_reach` of its mean test-error
    curve for each of ``levels`` (``[len(levels)]``, ``nan`` where a level is never reached)."""
    _check_summary(summary)
    levels = check_array(levels, "levels", ndim=1, column_as_vector=False)
    return {
        kind: np.array([samples_to_reach(row["n"], row["mean"], level) for level in levels])
        for kind, row in summary.items()
    }


def sample_ratio(
    results: Sequence[dict],
    levels: Sequence[float],
    *,
    numerator: str = "fixed",
    denominator: str = "adaptive",
    n_boot: int = 2000,
    confidence: float = 0.9,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """How many times more samples ``numerator`` needs than ``denominator`` at matched error.

    For each error ``level`` the ratio is ``samples_to_reach`` of the numerator's mean test-error
    curve over that of the denominator's (above 1: the denominator model is more sample
    efficient).  Its uncertainty comes from a bootstrap over seeds: the seeds are resampled with
    replacement (the same draw for both models, since a seed fixes the subset and the initial
    network that both share), the mean curves and the ratio are recomputed, and the
    ``confidence`` percentile interval is reported.  Returns ``{"levels", "ratio", "low",
    "high", "reached"}`` (arrays ``[len(levels)]``); ``reached`` is the fraction of bootstrap
    draws in which both curves reach the level (the interval uses those draws only; ``nan``
    where none does).
    """
    _check_records(results, "results")
    levels = check_array(levels, "levels", finite=False, allow_empty=True)
    if levels.ndim != 1 or len(levels) == 0 or not np.isfinite(levels).all():
        raise ValueError(f"levels must be a non-empty 1-D array of finite errors, got {levels!r}")
    check_option(numerator, "numerator", MODEL_KINDS)
    check_option(denominator, "denominator", MODEL_KINDS)
    check_positive_int(n_boot, "n_boot")
    check_real(confidence, "confidence")
    check_int(seed, "seed", minimum=0)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    table: dict[tuple[str, int], dict[int, float]] = {}
    for record in results:
        table.setdefault((record["model"], record["n_train"]), {})[record["seed"]] = record[
            "test_error"
        ]
    sizes = sorted({n for kind, n in table if kind == numerator})
    if not sizes or sorted({n for kind, n in table if kind == denominator}) != sizes:
        raise ValueError(
            f"results must hold {numerator!r} and {denominator!r} runs at the same sizes"
        )
    seeds = sorted(table[(numerator, sizes[0])])
    if any(sorted(table[(kind, n)]) != seeds for kind in (numerator, denominator) for n in sizes):
        raise ValueError("results must hold the same seeds for every model and size")
    # errors[model] is [len(seeds), len(sizes)].
    errors = {
        kind: np.array([[table[(kind, n)][s] for n in sizes] for s in seeds])
        for kind in (numerator, denominator)
    }

    def ratios(rows: np.ndarray) -> np.ndarray:
        # rows: [draws, seeds] indices; returns [draws, levels].
        a, b = (errors[kind][rows].mean(axis=1) for kind in (numerator, denominator))
        return np.stack(
            [_reach_batch(sizes, a, lv) / _reach_batch(sizes, b, lv) for lv in levels], axis=1
        )

    point = ratios(np.arange(len(seeds))[None, :])[0]
    rng = np.random.default_rng(seed)
    draws = ratios(rng.integers(0, len(seeds), (n_boot, len(seeds))))
    finite = np.isfinite(draws)
    tail = 100 * (1 - confidence) / 2
    low, high = np.full(len(levels), np.nan), np.full(len(levels), np.nan)
    for j in range(len(levels)):
        if finite[:, j].any():
            low[j], high[j] = np.percentile(draws[finite[:, j], j], [tail, 100 - tail])
    return {"levels": levels, "ratio": point, "low": low, "high": high,
            "reached": finite.mean(axis=0)}


def format_summary(summary: dict, *, decimals: int = 3) -> str:
    """A text table of a :func:`summarize` result: one line per size, ``mean ± sd`` per model.

    Every model must have been run at the same sizes.
    """
    _check_summary(summary)
    check_nonnegative_int(decimals, "decimals")
    kinds = [kind for kind in MODEL_KINDS if kind in summary]
    if not kinds:
        raise ValueError("summary holds no known model")
    sizes = summary[kinds[0]]["n"]
    if any(not np.array_equal(summary[kind]["n"], sizes) for kind in kinds):
        raise ValueError("summary: the models were run at different sizes")
    width = 2 * decimals + 9
    lines = [f"{'n':>6}" + "".join(f"{kind:>{width}}" for kind in kinds)]
    for i, n in enumerate(sizes):
        cells = [
            f"{summary[kind]['mean'][i]:.{decimals}f} ± {summary[kind]['sd'][i]:.{decimals}f}"
            for kind in kinds
        ]
        lines.append(f"{n:>6}" + "".join(f"{cell:>{width}}" for cell in cells))
    return "\n".join(lines)


def effective_rank(singular_values: Sequence[float] | np.ndarray, *, energy: float = 0.9) -> int:
    """Number of leading singular values that carry a fraction ``energy`` of ``Σ σ_i²``."""
    s = check_array(
        singular_values, "singular_values", ndim=1, finite=False, allow_empty=True,
        column_as_vector=False,
    )
    s = np.sort(s)[::-1]
    check_real(energy, "energy")
    if s.ndim != 1 or len(s) == 0 or np.any(s < 0) or not np.isfinite(s).all():
        raise ValueError("singular_values must be a non-empty 1-D array of finite values ≥ 0")
    if not 0 < energy <= 1:
        raise ValueError(f"energy must lie in (0, 1], got {energy!r}")
    total = np.sum(s**2)
    if total == 0:
        raise ValueError("singular_values are all zero: the matrix did not change")
    cumulative = np.cumsum(s**2) / total
    return int(np.searchsorted(cumulative, energy - 1e-12) + 1)


_LABELS = {"fixed": "fixed tangent features", "adaptive": "adaptive tangent features",
           "full": "full network"}
_COLOR_ROLES = {"fixed": "blue", "adaptive": "orange", "full": "green"}


def plot_sample_complexity(ax: Axes, summary: dict, *, title: str | None = None) -> None:
    """Mean test error ± one standard deviation over seeds against ``n`` (log axis) on ``ax``."""
    if not hasattr(ax, "errorbar"):
        raise TypeError(f"ax must be a matplotlib Axes, got {describe(ax)}")
    _check_summary(summary)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {describe(title)}")
    for kind in MODEL_KINDS:
        if kind not in summary:
            continue
        row = summary[kind]
        ax.errorbar(
            row["n"], row["mean"], yerr=row["sd"], marker="o", markersize=4, capsize=3,
            color=COLORS[_COLOR_ROLES[kind]], label=_LABELS[kind],
        )
    ax.set_xscale("log")
    sizes = sorted({int(n) for kind in summary for n in summary[kind]["n"]})
    if sizes:  # label the measured sizes themselves, not powers of ten
        from matplotlib.ticker import NullLocator

        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("training-set size $n$")
    ax.set_ylabel("test error")
    if title:
        ax.set_title(title)
    ax.legend()


def write_outputs(
    result: SampleComplexityResult, out_dir: str | os.PathLike, *, command: str | None = None
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``sample_complexity.json`` (``config``, with ``command`` when given, and ``results``
    with the fields ``model``,
    ``n_train``, ``seed``, ``test_error``, ``protocol``, ``recipe``, ``distinct_examples``,
    ``distinct_examples_total``, ``epochs``, ``best_epoch``, ``val_error``, ``train_error``) and
    the figure ``sample_complexity.png`` into ``out_dir``; return both paths."""
    # A bare Figure draws without pyplot, so the caller's backend (e.g. inline) is left alone.
    from matplotlib.figure import Figure

    if not isinstance(result, SampleComplexityResult):
        raise TypeError(f"result must be a SampleComplexityResult, got {describe(result)}")
    _check_out_dir(out_dir, command)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = (
        "model", "n_train", "seed", "test_error", "protocol", "recipe", "distinct_examples",
        "distinct_examples_total", "epochs", "best_epoch", "val_error", "train_error",
    )
    config = result.config if command is None else {**result.config, "command": command}
    payload = {
        "config": config,
        "results": [{key: record[key] for key in keys} for record in result.results],
    }
    json_path = out / "sample_complexity.json"
    json_path.write_text(json.dumps(payload, indent=1) + "\n")
    use_style()
    fig = Figure()
    ax = fig.subplots()
    plot_sample_complexity(ax, summarize(result.results), title=result.config["dataset"])
    figure_path = out / "sample_complexity.png"
    fig.savefig(figure_path)
    return json_path, figure_path
