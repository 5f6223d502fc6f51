"""The stored sample-complexity study: reading it, levels and ratios, the epoch cap, distinct
examples, tables and figures."""

import json

import matplotlib
import numpy as np
import pytest

from atf_lite.experiments.sample_complexity_report import (
    sample_ratio,
    samples_to_reach,
    summarize,
)
from atf_lite.experiments.sample_complexity_study import (
    STUDY_COMBINATIONS,
    common_levels,
    distinct_examples_table,
    epoch_cap_table,
    expected_distinct_examples,
    fit_summary,
    format_epoch_cap_table,
    format_fit_table,
    format_ratio_table,
    format_study_table,
    load_study,
    plot_distinct_examples,
    plot_ratios,
    plot_spectra,
    plot_study_grid,
    study_directory,
    study_ratios,
)

matplotlib.use("Agg")

SIZES = [10, 20, 40, 80, 160]


def curve_records(protocol="fixed-subset", shift=4.0, seeds=5, cap=100):
    """Synthetic records: the adaptive curve is the fixed one reached with ``shift`` times
    fewer samples; the full curve lies 0.1 below the fixed one."""
    records = []
    for seed in range(seeds):
        noise = 0.004 * (seed - (seeds - 1) / 2)
        for n in SIZES:
            for kind, error in (("fixed", 0.6 - 0.05 * np.log2(n)),
                                ("adaptive", 0.6 - 0.05 * np.log2(shift * n)),
                                ("full", 0.5 - 0.05 * np.log2(n))):
                fresh = protocol == "fresh-subset-per-epoch"
                records.append({
                    "model": kind, "n_train": n, "seed": seed, "test_error": error + noise,
                    "protocol": protocol, "recipe": "book",
                    "distinct_examples": 300 if fresh else n, "distinct_examples_total": 300,
                    "epochs": cap if (kind, seed) == ("fixed", 0) else 30,
                    "best_epoch": 10, "val_error": error, "train_error": 0.0,
                })
    return records


def write_combination(root, dataset, recipe, protocol, records, *, cap=100):
    config = {
        "dataset": dataset, "recipe": recipe, "protocol": protocol, "pool_size": 300,
        "sizes": SIZES, "seeds": sorted({r["seed"] for r in records}),
        "settings": {kind: {"max_epochs": cap, "patience": 20}
                     for kind in ("fixed", "adaptive", "full")},
        "command": "python -m atf_lite sample-complexity ...",
    }
    directory = root / study_directory(dataset, recipe, protocol)
    directory.mkdir(parents=True)
    (directory / "sample_complexity.json").write_text(
        json.dumps({"config": config, "results": records})
    )


@pytest.fixture
def study_root(tmp_path):
    write_combination(tmp_path, "mnist", "book", "fixed-subset", curve_records())
    write_combination(tmp_path, "mnist", "paper-code", "fresh-subset-per-epoch",
                      curve_records("fresh-subset-per-epoch", shift=0.5))
    return tmp_path


def test_study_directories_and_loading(study_root):
    assert study_directory("mnist", "paper-code", "fresh-subset-per-epoch") == (
        "mnist-paper-code-fresh")
    assert len(STUDY_COMBINATIONS) == 8 and len(set(STUDY_COMBINATIONS)) == 8
    study = load_study(study_root)
    # Keys in the canonical order, whatever order the directories were written in.
    assert list(study) == [("mnist", "paper-code", "fresh-subset-per-epoch"),
                           ("mnist", "book", "fixed-subset")]
    assert study[("mnist", "book", "fixed-subset")].config["command"].startswith("python -m")
    with pytest.raises(ValueError, match="dataset"):
        study_directory("cifar", "book", "fixed-subset")
    with pytest.raises(ValueError, match="root"):
        load_study(study_root / "missing")
    # A file in the wrong directory is refused.
    wrong = study_root / "digits-book-fixed"
    wrong.mkdir()
    (wrong / "sample_complexity.json").write_text(
        (study_root / "mnist-book-fixed" / "sample_complexity.json").read_text())
    with pytest.raises(ValueError, match="combination"):
        load_study(study_root)


def test_expected_distinct_examples_matches_a_simulation():
    pool, n, epochs = 600, 25, 40
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(200):
        seen = np.zeros(pool, dtype=bool)
        for _ in range(epochs):
            seen[rng.permutation(pool)[:n]] = True
        counts.append(seen.sum())
    (expected,) = expected_distinct_examples(pool, n, [epochs])
    assert float(expected) == pytest.approx(np.mean(counts), rel=0.01)
    assert expected_distinct_examples(pool, n, [0, 1]) == pytest.approx([0, n])
    assert expected_distinct_examples(pool, pool, [3]) == pytest.approx([pool])
    for bad in (dict(pool=0, n=1, epochs=[1]), dict(pool=5, n=6, epochs=[1]),
                dict(pool=5, n=1, epochs=[-1]), dict(pool=5, n=1.5, epochs=[1]),
                dict(pool=5, n=True, epochs=[1]), dict(pool=5, n=1, epochs=3),
                dict(pool=5, n=1, epochs=[]), dict(pool=5, n=1, epochs=[1j])):
        with pytest.raises(ValueError):
            expected_distinct_examples(**bad)


def test_common_levels_lie_inside_every_curve():
    summary = summarize(curve_records())
    levels = common_levels(summary, count=3)
    fixed, adaptive = summary["fixed"]["mean"], summary["adaptive"]["mean"]
    low, high = max(fixed.min(), adaptive.min()), min(fixed[0], adaptive[0])
    assert len(levels) == 3 and np.all(np.diff(levels) < 0)
    assert np.all((levels >= low) & (levels < high))
    assert np.allclose(levels, np.round(levels, 3))
    # Curves that share no error range give no level.
    disjoint = {"fixed": {"mean": np.array([0.9, 0.8])}, "adaptive": {"mean": np.array([0.3, 0.2])}}
    assert len(common_levels(disjoint)) == 0
    with pytest.raises(ValueError, match="count"):
        common_levels(summary, count=0)
    with pytest.raises(ValueError, match="lacks"):
        common_levels(summary, models=("fixed", "lazy"))


def test_study_ratios_recover_known_shifts(study_root):
    rows = study_ratios(load_study(study_root), n_boot=200)
    by_protocol = {row["protocol"]: row for row in rows}
    fresh, fixed = by_protocol["fresh-subset-per-epoch"], by_protocol["fixed-subset"]
    assert fixed["ratio"] == pytest.approx(np.full(3, 4.0))
    assert fresh["ratio"] == pytest.approx(np.full(3, 0.5))
    for row in rows:
        assert np.all(row["low"] <= row["ratio"] + 1e-9)
        assert np.all(row["high"] >= row["ratio"] - 1e-9)
    table = format_ratio_table(rows)
    assert "MNIST, book, fixed subset" in table and "4.00" in table and "0.50" in table


def test_sample_ratio_point_estimate_is_the_ratio_of_the_mean_curves():
    # Noisy, non-monotone curves: the vectorised crossing must match samples_to_reach.
    rng = np.random.default_rng(3)
    records = [{"model": kind, "n_train": n, "seed": seed,
                "test_error": float(0.5 - 0.04 * np.log2(n) + rng.normal(0, 0.05))}
               for kind in ("fixed", "adaptive") for n in SIZES for seed in range(4)]
    summary = summarize(records)
    levels = [0.45, 0.4, 0.35, 0.3, 0.25, 0.0]
    out = sample_ratio(records, levels, n_boot=50)
    for j, level in enumerate(levels):
        expected = (samples_to_reach(SIZES, summary["fixed"]["mean"], level)
                    / samples_to_reach(SIZES, summary["adaptive"]["mean"], level))
        assert out["ratio"][j] == pytest.approx(expected, rel=1e-12, nan_ok=True)
    assert np.isnan(out["ratio"][-1]) and out["reached"][-1] == 0.0


def test_epoch_cap_and_distinct_tables(study_root):
    study = load_study(study_root)
    rows = epoch_cap_table(study)
    assert len(rows) == 2 * 3
    fixed = next(r for r in rows if r["model"] == "fixed" and r["protocol"] == "fixed-subset")
    # Seed 0 of the fixed model trained all 100 epochs at each of the five sizes.
    assert (fixed["runs"], fixed["cap"], fixed["longest"], fixed["at_cap"]) == (25, 100, 100, 5)
    full = next(r for r in rows if r["model"] == "full" and r["protocol"] == "fixed-subset")
    assert (full["longest"], full["at_cap"], full["median_best_epoch"]) == (30, 0, 10.0)
    text = format_epoch_cap_table(rows)
    assert "100 / 5" in text and "30 / 0" in text
    table = distinct_examples_table(study[("mnist", "book", "fixed-subset")])
    assert table == {n: (n, float(n), n) for n in SIZES}
    fresh = distinct_examples_table(study[("mnist", "paper-code", "fresh-subset-per-epoch")])
    assert set(fresh.values()) == {(300, 300.0, 300)}
    text = format_study_table(study)
    assert text.count("mean ± sd over 5 seeds") == 2


def test_figures_draw(study_root):
    import matplotlib.pyplot as plt

    study = load_study(study_root)
    fig = plot_study_grid(study)
    assert len(fig.axes) == 8 and fig.legends
    plt.close(fig)
    fig, ax = plt.subplots()
    plot_ratios(ax, study_ratios(study, n_boot=20))
    assert len(ax.get_yticklabels()) == 2
    plt.close(fig)
    fig, ax = plt.subplots()
    epochs = np.arange(1, 11)
    plot_distinct_examples(ax, epochs, {600: expected_distinct_examples(600, 25, epochs)}, n=25)
    assert len(ax.lines) == 3
    plt.close(fig)
    fig, ax = plt.subplots()
    spectrum = {"spectra": {"1": np.array([3.0, 2.0, 1.0])}}
    plot_spectra(ax, {"fixed": spectrum, "adaptive": spectrum}, layer="1", count=2)
    assert [len(line.get_xdata()) for line in ax.lines] == [2, 2]
    plt.close(fig)


def _bad_calls(root):
    """``(function, kwargs, argument named)``: one bad argument each, the others valid."""
    import matplotlib.pyplot as plt

    study = load_study(root)
    result = study[("mnist", "book", "fixed-subset")]
    summary = summarize(result.results)
    rows = study_ratios(study, n_boot=20)
    ax = plt.subplots()[1]
    spectrum = {"fixed": {"spectra": {"1": np.array([3.0, 2.0, 1.0])}}}
    epochs = np.arange(1, 4)
    return [
        (load_study, dict(root=None), "root"),
        (common_levels, dict(summary="abc"), "summary"),
        (common_levels, dict(summary=summary, models="fixed"), "models"),
        (common_levels, dict(summary=summary, count=True), "count"),
        (common_levels, dict(summary={**summary, "fixed": {"mean": [np.nan]}}), "summary"),
        (study_ratios, dict(study={}), "study"),
        (study_ratios, dict(study={("mnist", "book", "nope"): result}), "study"),
        (study_ratios, dict(study={("mnist", "book", "fixed-subset"): "result"}), "study"),
        (study_ratios, dict(study=study, n_boot=0), "n_boot"),
        (study_ratios, dict(study=study, confidence=1.5), "confidence"),
        (format_ratio_table, dict(rows="abc"), "rows"),
        (format_ratio_table, dict(rows=[{**rows[0], "ratio": rows[0]["ratio"][:1]}]), "rows"),
        (format_ratio_table, dict(rows=[{"dataset": "mnist"}]), "rows"),
        (epoch_cap_table, dict(study=None), "study"),
        (format_epoch_cap_table, dict(rows=[{**epoch_cap_table(study)[0], "model": "lazy"}]),
         "rows"),
        (distinct_examples_table, dict(result=study), "result"),
        (fit_summary, dict(result=result, n_train=2.5), "n_train"),
        (format_fit_table, dict(study=study, dataset="cifar", recipe="book", n_train=10),
         "dataset"),
        (format_fit_table, dict(study=study, dataset="digits", recipe="book", n_train=10),
         "study"),
        (format_study_table, dict(study=study, decimals=-1), "decimals"),
        (plot_study_grid, dict(study=3), "study"),
        (plot_ratios, dict(ax="ax", rows=rows), "ax"),
        (plot_ratios, dict(ax=ax, rows=rows, claim=0.0), "claim"),
        (plot_distinct_examples, dict(ax=ax, epochs=epochs, simulated={}, n=2), "simulated"),
        (plot_distinct_examples, dict(ax=ax, epochs=epochs, simulated={1: epochs}, n=2),
         "simulated"),
        (plot_distinct_examples, dict(ax=ax, epochs=epochs[None], simulated={9: epochs}, n=2),
         "epochs"),
        (plot_spectra, dict(ax=ax, records=spectrum, layer="2"), "layer"),
        (plot_spectra, dict(ax=ax, records={"lazy": spectrum["fixed"]}, layer="1"), "records"),
        (plot_spectra, dict(ax=ax, records=spectrum, layer="1", count=0), "count"),
    ]


@pytest.mark.parametrize("case", range(29))
def test_bad_arguments_are_refused_by_name(study_root, case):
    import matplotlib.pyplot as plt

    function, kwargs, name = _bad_calls(study_root)[case]
    with pytest.raises((TypeError, ValueError), match=rf"(?<![\w]){name}(?![\w])"):
        function(**kwargs)
    plt.close("all")


def test_the_bad_argument_cases_are_all_run(study_root):
    assert len(_bad_calls(study_root)) == 29
