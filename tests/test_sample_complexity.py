"""The sample-complexity experiment: splits, summaries and an end-to-end run at tiny sizes."""

import argparse
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from atf_lite.experiments.sample_complexity_cli import add_arguments, run_cli
from atf_lite.experiments.sample_complexity_data import (
    default_sizes,
    load_splits,
    stratified_indices,
)
from atf_lite.experiments.sample_complexity_report import (
    effective_rank,
    format_summary,
    sample_ratio,
    samples_needed,
    samples_to_reach,
    select_variants,
    summarize,
    sweep_table,
    write_outputs,
)
from atf_lite.experiments.sample_complexity_run import (
    SampleComplexitySettings,
    TrainSettings,
    recipe_settings,
    run_one,
    sample_complexity,
    settings_sweep,
)
from atf_lite.networks.classifier import fit_classifier
from atf_lite.networks.feature_models import FullNet
from atf_lite.networks.mlp import mlp

# The models here are tiny: a thread pool only adds overhead (and contention).
pytestmark = pytest.mark.usefixtures("one_thread")


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    fraction=st.floats(0.01, 1.0),
    seed=st.integers(0, 1000),
)
def test_stratified_indices_follow_class_proportions(counts, fraction, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    n = max(1, round(fraction * len(labels)))
    index = stratified_indices(labels, n, seed=seed)
    assert len(index) == n == len(np.unique(index))
    assert np.all(np.diff(index) > 0) and index[0] >= 0 and index[-1] < len(labels)
    taken = np.bincount(labels[index], minlength=len(counts))
    quota = n * np.asarray(counts) / len(labels)
    assert np.all(np.abs(taken - quota) < 1.0)
    assert np.array_equal(index, stratified_indices(labels, n, seed=seed))


def test_stratified_indices_reject_bad_sizes():
    with pytest.raises(ValueError, match="n must"):
        stratified_indices(np.arange(5), 6, seed=0)
    with pytest.raises(ValueError, match="n must"):
        stratified_indices(np.arange(5), 0, seed=0)
    with pytest.raises(ValueError, match="labels"):
        stratified_indices(np.zeros((2, 2)), 1, seed=0)


def test_digit_splits_are_fixed_disjoint_and_stratified():
    splits = load_splits("digits")
    assert (splits.pool_size, len(splits.y_val), len(splits.y_test)) == (1006, 252, 539)
    rows = torch.cat([splits.X_pool, splits.X_val, splits.X_test])
    # No image appears in two splits (digits has no exact duplicate rows).
    assert len(torch.unique(rows, dim=0)) == len(rows) == 1797
    for y in (splits.y_pool, splits.y_val, splits.y_test):
        share = np.bincount(y.numpy(), minlength=10) / len(y)
        assert np.all(np.abs(share - 0.1) < 0.015)
    again = load_splits("digits")
    assert torch.equal(again.X_test, splits.X_test) and torch.equal(again.y_pool, splits.y_pool)
    with pytest.raises(ValueError, match="dataset"):
        load_splits("cifar")


def test_mnist_splits(mnist_dir):
    splits = load_splits("mnist", mnist_root=mnist_dir)
    assert (splits.pool_size, len(splits.y_val), len(splits.y_test)) == (5600, 1400, 3000)
    assert splits.X_pool.shape[1] == 784


def test_default_sizes():
    assert default_sizes(1006) == [20, 40, 80, 160, 320, 640, 1006]
    assert default_sizes(5600, smallest=100) == [100, 200, 400, 800, 1600, 3200, 5600]
    # A pool just above a doubling replaces the last size instead of crowding it.
    assert default_sizes(330) == [20, 40, 80, 160, 330]
    assert default_sizes(10) == [10]


def test_samples_to_reach_interpolates_in_log_n():
    n = np.array([10.0, 100.0, 1000.0])
    error = 0.5 - 0.1 * np.log10(n)  # 0.4, 0.3, 0.2
    assert samples_to_reach(n, error, 0.25) == pytest.approx(10**2.5)
    assert samples_to_reach(n, error, 0.3) == pytest.approx(100.0)
    assert samples_to_reach(n, error, 0.45) == 10.0  # already reached: a bound
    assert math.isnan(samples_to_reach(n, error, 0.1))
    # The first crossing counts, even if the curve later rises again.
    assert samples_to_reach(n, [0.4, 0.2, 0.35], 0.3) == pytest.approx(10**1.5)
    with pytest.raises(ValueError, match="increasing"):
        samples_to_reach([10, 5], [0.3, 0.2], 0.25)
    with pytest.raises(ValueError, match="NaN"):
        samples_to_reach([10, 20], [0.3, float("nan")], 0.25)


def test_samples_needed_and_format_summary():
    results = [
        {"model": kind, "n_train": n, "seed": seed, "test_error": error + 0.01 * seed}
        for kind, errors in (("fixed", (0.4, 0.2)), ("full", (0.3, 0.1)))
        for n, error in zip((10, 100), errors)
        for seed in (0, 2)
    ]
    summary = summarize(results)
    # Means over the two seeds: fixed 0.41, 0.21; full 0.31, 0.11.
    needed = samples_needed(summary, [0.32, 0.115])
    assert needed["fixed"][0] == pytest.approx(10**1.45) and math.isnan(needed["fixed"][1])
    assert needed["full"][0] == 10.0 and needed["full"][1] == pytest.approx(10**1.975)
    text = format_summary(summary, decimals=2)
    lines = text.splitlines()
    assert lines[0].split() == ["n", "fixed", "full"] and len(lines) == 3
    assert lines[1].split() == ["10", "0.41", "±", "0.01", "0.31", "±", "0.01"]
    summary["full"]["n"] = np.array([10, 50])
    with pytest.raises(ValueError, match="different sizes"):
        format_summary(summary)


def test_effective_rank():
    assert effective_rank([1.0, 0.0, 0.0]) == 1
    assert effective_rank(np.ones(10), energy=0.9) == 9
    assert effective_rank(np.ones(10), energy=1.0) == 10
    assert effective_rank([3.0, 4.0], energy=0.64) == 1
    with pytest.raises(ValueError, match="zero"):
        effective_rank([0.0, 0.0])
    with pytest.raises(ValueError, match="energy"):
        effective_rank([1.0], energy=0.0)


def test_summarize_mean_and_sd():
    results = [
        {"model": "fixed", "n_train": 20, "seed": s, "test_error": e}
        for s, e in enumerate([0.1, 0.2, 0.3])
    ] + [{"model": "full", "n_train": 40, "seed": 0, "test_error": 0.05}]
    summary = summarize(results)
    assert summary["fixed"]["mean"] == pytest.approx([0.2])
    assert summary["fixed"]["sd"] == pytest.approx([0.1])
    assert summary["full"]["sd"] == pytest.approx([0.0]) and summary["full"]["n"][0] == 40


def test_settings_validation():
    with pytest.raises(ValueError, match="optimizer"):
        TrainSettings(optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr"):
        TrainSettings(lr=-1.0)
    with pytest.raises(ValueError, match="patience"):
        TrainSettings(patience=0)
    with pytest.raises(ValueError, match="output_scale"):
        TrainSettings(output_scale=0.0)


TINY = dict(width=8, depth=1, max_epochs=3, patience=2, batch_size=16)


def test_experiment_end_to_end_tiny(tmp_path):
    settings = SampleComplexitySettings(sizes=[20, 40], seeds=[0, 1], overrides=TINY)
    result = sample_complexity(settings)
    records = result.results
    assert len(records) == 2 * 2 * 3
    assert {(r["model"], r["n_train"], r["seed"]) for r in records} == {
        (m, n, s) for m in ("fixed", "adaptive", "full") for n in (20, 40) for s in (0, 1)
    }
    for r in records:
        assert 0.0 <= r["test_error"] <= 1.0 and 1 <= r["best_epoch"] <= r["epochs"] <= 3
        assert r["test_error"] * 539 == pytest.approx(round(r["test_error"] * 539))
        assert set(r["spectra"]) == {"0", "2"} and r["relative_change"] > 0
    adaptive = [r for r in records if r["model"] == "adaptive"]
    assert all(set(r["transform_change"]) == {"0", "2"} for r in adaptive)
    # Same seed and size: the three models share the training subset and initial network, so
    # a second call is served from the cache and identical.
    again = sample_complexity(settings)
    assert [r["test_error"] for r in again.results] == [r["test_error"] for r in records]
    one = SampleComplexitySettings(sizes=[20], seeds=[1], overrides=TINY)
    recomputed = sample_complexity(one, use_cache=False)
    cached_runs = [r for r in records if r["n_train"] == 20 and r["seed"] == 1]
    for fresh, old in zip(recomputed.results, cached_runs):
        assert fresh["test_error"] == old["test_error"] and fresh["epochs"] == old["epochs"]
    assert result.config["pool_size"] == 1006 and result.config["sizes"] == [20, 40]
    json_path, figure_path = write_outputs(result, tmp_path)
    payload = json.loads(json_path.read_text())
    assert len(payload["results"]) == 12 and figure_path.stat().st_size > 0
    for entry in payload["results"]:
        assert {"model", "n_train", "seed", "test_error", "epochs"} <= set(entry)


def test_per_model_settings_and_sweep():
    result = sample_complexity(
        SampleComplexitySettings(
            sizes=[20], seeds=[0], overrides=TINY, model_overrides={"fixed": {"max_epochs": 1}}
        )
    )
    epochs = {r["model"]: r["epochs"] for r in result.results}
    assert epochs["fixed"] == 1 and epochs["full"] >= 2
    assert result.config["settings"]["fixed"]["max_epochs"] == 1
    assert result.config["settings"]["adaptive"]["max_epochs"] == TINY["max_epochs"]
    with pytest.raises(ValueError, match="model_overrides"):
        SampleComplexitySettings(sizes=[20], model_overrides={"lazy": {}})

    variants = {"slow": {"lr": 1e-4}, "fast": {"optimizer": "adam", "lr": 1e-2}}
    sweep = SampleComplexitySettings(sizes=[40], seeds=[0, 1], overrides=TINY)
    records = settings_sweep(sweep, variants)
    assert len(records) == 2 * 2 * 3 and {r["variant"] for r in records} == set(variants)
    rows = sweep_table(records)
    assert len(rows) == 6
    for row in rows:
        group = [r for r in records if (r["variant"], r["model"]) == (row["variant"], row["model"])]
        assert row["test_error"] == pytest.approx(np.mean([r["test_error"] for r in group]))
        assert row["val_error"] == pytest.approx(np.mean([r["val_error"] for r in group]))
        assert np.isnan(row["transform_change"]) == (row["model"] != "adaptive")
        assert 1 <= row["effective_rank"] <= 8  # TINY: hidden layers of width 8
    chosen = select_variants(rows)
    for kind, variant in chosen.items():
        own = [row for row in rows if row["model"] == kind]
        assert min(own, key=lambda row: row["val_error"])["variant"] == variant
    with pytest.raises(ValueError, match="variants"):
        settings_sweep(SampleComplexitySettings(sizes=[40]), {})


def test_experiment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sizes"):
        sample_complexity(SampleComplexitySettings(sizes=[2000], seeds=[0], overrides=TINY))
    with pytest.raises(ValueError, match="sizes"):
        SampleComplexitySettings(sizes=[0])
    with pytest.raises(ValueError, match="models"):
        SampleComplexitySettings(sizes=[20], seeds=[0], models=["lazy"], overrides=TINY)
    with pytest.raises(ValueError, match="dataset"):
        SampleComplexitySettings(dataset="cifar")
    with pytest.raises(ValueError, match="seeds"):
        SampleComplexitySettings(seeds=[])
    with pytest.raises(TypeError):
        SampleComplexitySettings(sizes=[20], seeds=[0], overrides={"learning_rate": 0.1})
    with pytest.raises(TypeError, match="SampleComplexitySettings"):
        sample_complexity({"dataset": "digits"})


def test_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--sizes", "20", "--seeds", "0", "--models", "fixed", "full", "--width", "8",
         "--depth", "1", "--max-epochs", "2", "--patience", "0", "--out", str(tmp_path)]
    )
    assert run_cli(args) == 0
    payload = json.loads((tmp_path / "sample_complexity.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["fixed", "full"]
    assert all(r["epochs"] == 2 for r in payload["results"])  # patience 0: no early stop
    assert payload["config"]["settings"]["full"]["patience"] is None
    assert (tmp_path / "sample_complexity.png").exists()
    assert "wrote" in capsys.readouterr().out


# --- Recipes and data protocols -------------------------------------------------------------


def test_paper_code_recipe_builds_the_documented_network_and_inputs():
    preprocessing, settings = recipe_settings("paper-code")
    assert preprocessing == "pixel-scale"
    train = TrainSettings(**settings)
    assert (train.depth, train.width, train.optimizer, train.lr, train.momentum) == (
        4, 128, "sgd", 0.01, 0.9
    )
    assert train.init == "lecun" and train.patience == 20
    assert train.batch_size_for(125) == 25 and train.batch_size_for(250) == 50
    assert recipe_settings("book") == ("unit-norm", {})
    # Overrides replace recipe values, including None (no early stopping).
    _, custom = recipe_settings("paper-code", preprocessing="unit-norm", patience=None)
    assert custom["patience"] is None and custom["depth"] == 4
    assert recipe_settings("paper-code", preprocessing="unit-norm")[0] == "unit-norm"
    splits = load_splits("digits", preprocessing=preprocessing)
    assert float(splits.X_pool.min()) == 0.0 and float(splits.X_pool.max()) == 1.0
    unit = load_splits("digits")
    assert torch.equal(splits.y_test, unit.y_test)  # the split does not depend on preprocessing
    assert torch.allclose(unit.X_pool.norm(dim=1), torch.ones(len(unit.y_pool)), atol=1e-5)


def test_recipe_rejects_bad_names_and_combinations():
    with pytest.raises(ValueError, match="recipe"):
        recipe_settings("paper")
    with pytest.raises(ValueError, match="preprocessing"):
        recipe_settings("book", preprocessing="whiten")
    with pytest.raises(TypeError, match="unknown settings"):
        recipe_settings("book", learning_rate=0.1)
    with pytest.raises(ValueError, match="init"):
        recipe_settings("book", init="xavier")
    with pytest.raises(ValueError, match="small_batch"):
        TrainSettings(small_batch=(125, 0))
    with pytest.raises(ValueError, match="protocol"):
        SampleComplexitySettings(sizes=[20], seeds=[0], protocol="fresh", overrides=TINY)
    with pytest.raises(ValueError, match="protocol"):
        run_one(
            load_splits("digits"), TrainSettings(), kind="fixed", n_train=20, seed=0, protocol="x"
        )


def test_fixed_protocol_never_sees_more_than_n_examples():
    result = sample_complexity(SampleComplexitySettings(sizes=[30], seeds=[0], overrides=TINY))
    for record in result.results:
        assert record["protocol"] == "fixed-subset" and record["recipe"] == "book"
        assert record["distinct_examples"] == record["distinct_examples_total"] == 30


def test_fresh_protocol_draws_new_subsets_every_epoch_reproducibly():
    settings = dict(TINY, max_epochs=6, patience=None)
    runs = [
        sample_complexity(
            SampleComplexitySettings(
                sizes=[30], seeds=[0], models=["full"], protocol="fresh-subset-per-epoch",
                overrides=settings,
            ),
            use_cache=False,
        ).results[0]
        for _ in range(2)
    ]
    first, second = runs
    assert first["protocol"] == "fresh-subset-per-epoch" and first["epochs"] == 6
    # Six draws of 30 out of 1006 images overlap little: far more than 30 distinct examples.
    assert 30 < first["distinct_examples"] <= first["distinct_examples_total"] <= 6 * 30
    assert first["distinct_examples_total"] > 150
    assert first["test_error"] == second["test_error"]
    assert first["distinct_examples_total"] == second["distinct_examples_total"]


def test_fit_classifier_epoch_subset_counts_distinct_rows():
    X, y = torch.randn(40, 5), torch.arange(40) % 3
    model = FullNet(mlp(5, 4, 1, d_out=3, seed=0))
    fit = fit_classifier(
        X, y, X[:6], y[:6], model, max_epochs=4, patience=None, epoch_subset=5, batch_size=5
    )
    assert 5 <= fit.distinct_examples <= fit.distinct_examples_total <= 20
    assert fit.epochs_run == 4
    with pytest.raises(ValueError, match="epoch_subset"):
        fit_classifier(X, y, X[:6], y[:6], model, epoch_subset=41)
    with pytest.raises(ValueError, match="epoch_subset"):
        fit_classifier(X, y, X[:6], y[:6], model, epoch_subset=0)


def test_sample_ratio_recovers_a_known_shift_and_brackets_it():
    # The adaptive curve is the fixed curve reached with 4 times fewer samples.
    sizes = [10, 20, 40, 80, 160, 320]
    results = []
    for seed in range(5):
        noise = 0.005 * (seed - 2)
        for n in sizes:
            results.append({"model": "fixed", "n_train": n, "seed": seed,
                            "test_error": 0.5 - 0.1 * np.log2(n / 10) / 2 + noise})
            results.append({"model": "adaptive", "n_train": n, "seed": seed,
                            "test_error": 0.5 - 0.1 * np.log2(4 * n / 10) / 2 + noise})
    out = sample_ratio(results, [0.35, 0.3], n_boot=200)
    assert out["ratio"] == pytest.approx([4.0, 4.0])
    assert np.all(out["low"] <= 4.0 + 1e-9) and np.all(out["high"] >= 4.0 - 1e-9)
    assert np.all(out["reached"] == 1.0)
    unreachable = sample_ratio(results, [0.01], n_boot=50)
    assert np.isnan(unreachable["ratio"][0]) and unreachable["reached"][0] == 0.0
    with pytest.raises(ValueError, match="same sizes"):
        sample_ratio([r for r in results if r["n_train"] != 10 or r["model"] == "fixed"],
                        [0.3])
    with pytest.raises(ValueError, match="levels"):
        sample_ratio(results, [])


def test_lecun_initialisation_is_truncated_with_variance_one_over_fan_in():
    net = mlp(400, 300, 1, d_out=10, seed=0, init="lecun")
    weight = net[0].weight.detach().double()
    std = 1 / np.sqrt(400)
    assert float(weight.std()) == pytest.approx(std, rel=0.02)
    assert float(weight.abs().max()) <= 2 * std / 0.87962566103423978 + 1e-9
    assert float(net[0].bias.detach().abs().max()) == 0.0
    with pytest.raises(ValueError, match="init"):
        mlp(4, 4, 1, init="glorot")


def test_command_line_recipe_protocol_and_overrides(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--recipe", "paper-code", "--protocol", "fresh-subset-per-epoch", "--sizes", "20",
         "--seeds", "0", "--models", "fixed", "--width", "8", "--depth", "1", "--max-epochs",
         "2", "--out", str(tmp_path)]
    )
    assert run_cli(args) == 0
    payload = json.loads((tmp_path / "sample_complexity.json").read_text())
    (row,) = payload["results"]
    assert {"model", "n_train", "seed", "test_error", "protocol", "recipe",
            "distinct_examples"} <= set(row)
    assert (row["protocol"], row["recipe"]) == ("fresh-subset-per-epoch", "paper-code")
    settings = payload["config"]["settings"]["fixed"]
    assert (settings["width"], settings["depth"], settings["lr"], settings["init"]) == (
        8, 1, 0.01, "lecun"
    )
    assert payload["config"]["preprocessing"] == "pixel-scale"
    assert "--recipe paper-code" in payload["config"]["command"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(width=True), "width must be a positive integer, got True"),
        (dict(depth=True), "depth must be a non-negative integer, got True"),
        (dict(batch_size=True), "batch_size must be a positive integer, got True"),
        (dict(max_epochs=True), "max_epochs must be a positive integer, got True"),
        (dict(patience=True), "patience must be an integer or None, got True"),
        (dict(lr=True), "lr must be a real number, got True"),
        (dict(lr="0.5"), "lr must be a real number, got '0.5'"),
        (dict(lr=None), "lr must be a real number, got None"),
        (dict(lr=1j), "lr must be a real number, got 1j"),
        (dict(momentum=None), "momentum must be a real number, got None"),
        (dict(momentum="0.5"), "momentum must be a real number, got '0.5'"),
        (dict(output_scale=True), "output_scale must be a real number, got True"),
        (dict(output_scale=math.nan), "output_scale must be a number, got nan"),
        (dict(small_batch=(True, 4)), "small_batch must be None or a pair"),
    ],
)
def test_train_settings_refuse_bad_values_by_name(change, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(**change)
    if "lr" in change:  # a recipe builds its TrainSettings from the overrides
        with pytest.raises(ValueError, match=message):
            recipe_settings("book", **change)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(sizes=[]), ValueError, "sizes must not be empty"),
        (dict(sizes=[20, True]), ValueError, r"sizes\[1\] must be an integer"),
        (dict(seeds=None), TypeError, "seeds must be a sequence, got None"),
        (dict(seeds="0"), TypeError, "seeds must be a sequence, got '0'"),
        (dict(seeds=[0, -1]), ValueError, r"seeds\[1\] must be at least 0, got -1"),
        (dict(models=None), TypeError, "models must be a sequence, got None"),
        (dict(overrides=None), TypeError, "overrides must be a mapping, got None"),
        (dict(overrides="lr=0.1"), TypeError, "overrides must be a mapping, got 'lr=0.1'"),
        (dict(model_overrides=3), TypeError, "model_overrides must be a mapping, got 3"),
        (dict(model_overrides={"fixed": 3}), TypeError,
         r"model_overrides\['fixed'\] must be a mapping, got 3"),
    ],
)
def test_sample_complexity_settings_refuse_bad_values_by_name(change, error, message):
    with pytest.raises(error, match=message):
        SampleComplexitySettings(**{"sizes": [20], "seeds": [0], **change})


def test_empty_overrides_mean_the_recipe_as_it_is():
    plain = SampleComplexitySettings(sizes=[20], seeds=[0])
    empty = SampleComplexitySettings(sizes=[20], seeds=[0], overrides={}, model_overrides={})
    assert plain.resolve() == empty.resolve()


def test_runs_refuse_bad_arguments_by_name():
    splits = load_splits("digits")
    settings = SampleComplexitySettings(sizes=[20], seeds=[0], models=("fixed",), overrides=TINY)
    for bad in (None, "splits", 3):
        with pytest.raises(TypeError, match="splits must be DataSplits"):
            run_one(bad, TrainSettings(), kind="fixed", n_train=20, seed=0)
        with pytest.raises(TypeError, match="settings must be TrainSettings"):
            run_one(splits, bad, kind="fixed", n_train=20, seed=0)
        with pytest.raises(TypeError, match="settings must be SampleComplexitySettings"):
            settings_sweep(bad, {"a": {"lr": 0.01}})
    with pytest.raises(ValueError, match="n_train must be an integer"):
        run_one(splits, TrainSettings(), kind="fixed", n_train=True, seed=0)
    for bad in ("abc", 3):
        with pytest.raises(TypeError, match="variants must be a mapping"):
            settings_sweep(settings, bad)
    with pytest.raises(TypeError, match=r"variants\['a'\] must be a mapping"):
        settings_sweep(settings, {"a": 0.01})
    for bad in ("no", 2):
        with pytest.raises(ValueError, match="progress must be True or False"):
            sample_complexity(settings, use_cache=False, progress=bad)
        with pytest.raises(ValueError, match="progress must be True or False"):
            settings_sweep(settings, {"a": {"lr": 0.01}}, use_cache=False, progress=bad)
