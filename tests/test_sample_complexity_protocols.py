"""The data protocols and recipes of the sample-complexity experiment, observed from inside the
training loop: which rows each epoch trains on, the network a recipe builds, bad combinations."""

import argparse

import pytest
import torch
from torch import nn

from atf_lite.experiments.sample_complexity_cli import add_arguments, settings_from_args
from atf_lite.experiments.sample_complexity_data import load_splits
from atf_lite.experiments.sample_complexity_run import (
    SampleComplexitySettings,
    TrainSettings,
    recipe_settings,
    run_one,
    sample_complexity,
)
from atf_lite.networks.classifier import fit_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


class RowRecorder(nn.Module):
    """A linear classifier that records the row ids (column 0 of X) of every epoch.

    Training forwards run with gradients on; the validation pass that closes each epoch runs
    without, which marks the boundary between epochs.
    """

    def __init__(self, classes: int):
        super().__init__()
        self.linear = nn.Linear(3, classes)
        self.epochs: list[list[int]] = []
        self.current: list[int] = []

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.current.extend(int(i) for i in X[:, 0])
        elif self.current:
            self.epochs.append(sorted(self.current))
            self.current = []
        return self.linear(X[:, 1:])


def record_epochs(rows: int, *, epoch_subset, seed: int, epochs: int = 5) -> list[list[int]]:
    """The sorted row ids that each of ``epochs`` epochs of :func:`fit_classifier` trains on."""
    noise = torch.randn(rows, 3, generator=torch.Generator().manual_seed(123))
    X = torch.cat([torch.arange(rows, dtype=torch.float32)[:, None], noise], dim=1)
    y = torch.arange(rows) % 3
    model = RowRecorder(3)
    fit_classifier(X, y, X[:6], y[:6], model, max_epochs=epochs, patience=None, seed=seed,
                   batch_size=4, epoch_subset=epoch_subset)
    return model.epochs


def test_fixed_training_set_is_every_row_every_epoch():
    epochs = record_epochs(12, epoch_subset=None, seed=0)
    assert len(epochs) == 5
    assert all(ids == list(range(12)) for ids in epochs)


def test_fresh_protocol_draws_a_new_subset_every_epoch_from_the_seed():
    epochs = record_epochs(40, epoch_subset=8, seed=0)
    assert len(epochs) == 5
    for ids in epochs:
        assert len(ids) == 8 and len(set(ids)) == 8  # m distinct rows, each once per epoch
    assert len({tuple(ids) for ids in epochs}) == 5  # five different subsets
    assert record_epochs(40, epoch_subset=8, seed=0) == epochs  # reproducible from the seed
    assert record_epochs(40, epoch_subset=8, seed=1) != epochs  # and a new seed draws others


def test_paper_code_recipe_builds_four_hidden_layers_of_128_on_pixels():
    preprocessing, settings = recipe_settings("paper-code", max_epochs=1)
    splits = load_splits("digits", preprocessing=preprocessing)
    record = run_one(splits, TrainSettings(**settings), kind="full", n_train=125, seed=0)
    # Singular values of each dense layer's change: their count is min(fan_out, fan_in).
    lengths = [len(record["spectra"][name]) for name in sorted(record["spectra"], key=int)]
    assert lengths == [64, 128, 128, 128, 10]  # 64 inputs → 4 × 128 → 10 classes
    assert float(splits.X_pool.max()) == 1.0 and float(splits.X_pool.min()) == 0.0
    assert TrainSettings(**settings).batch_size_for(125) == 25


def test_command_line_overrides_of_the_paper_code_recipe():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--recipe", "paper-code", "--batch-size", "40", "--patience", "0",
                              "--preprocessing", "unit-norm"])
    settings = settings_from_args(args)
    preprocessing, per_model = settings.resolve()
    fixed = per_model["fixed"]
    assert preprocessing == "unit-norm"
    assert (fixed.batch_size, fixed.small_batch, fixed.patience) == (40, None, None)
    assert (fixed.depth, fixed.init, fixed.optimizer) == (4, "lecun", "sgd")  # recipe kept


def test_bad_protocol_and_recipe_combinations_are_named():
    with pytest.raises(ValueError, match="sizes"):
        sample_complexity(SampleComplexitySettings(
            sizes=[1007], seeds=[0], protocol="fresh-subset-per-epoch", recipe="paper-code"))
    with pytest.raises(ValueError, match="small_batch"):
        recipe_settings("paper-code", small_batch=(125,))
    with pytest.raises(ValueError, match="recipe"):
        SampleComplexitySettings(recipe="paper_code")
    with pytest.raises(ValueError, match="n_train"):
        run_one(load_splits("digits"), TrainSettings(), kind="full", n_train=0, seed=0,
                protocol="fresh-subset-per-epoch")
