"""Sample complexity of fixed, adaptive and full tangent-feature models (chapter 7).

For each training-set size ``n``, seed and model kind (``"fixed"``:
:class:`atf_lite.models.LinearizedNet`, ``"adaptive"``: :class:`atf_lite.models.AdaptiveNet`,
``"full"``: :class:`atf_lite.models.FullNet`) a classifier over the ten digit classes is trained
with :func:`atf_lite.models.fit_classifier` and its error measured on a fixed test split.

Data protocol (the same for every model, size and seed):

* the data set is split once, stratified by class and with a fixed seed, into a *test split*
  (``TEST_FRACTION`` of the images), a *validation split* (``VAL_FRACTION`` of the rest) and the
  *training pool* (everything else);
* a training set of size ``n`` is a stratified random subset of the pool drawn with the run's
  seed, so ``n = len(pool)`` uses the whole pool;
* early stopping looks only at the validation split, which is disjoint from every training set
  and from the test split.  Its labels are not counted in ``n``; they are the same for all
  three models.

With ``protocol="fresh-subset-per-epoch"`` the training set is instead redrawn every epoch: a
fresh uniformly random subset of ``n`` pool images per epoch, as the authors' ``tf.data``
pipeline does (``shuffle`` reshuffles on every pass, so ``take(n)`` after it picks other images
each epoch).  ``n`` then counts examples per epoch, not distinct examples; every record reports
``distinct_examples``, how many different pool images the kept model was trained on.

Two *recipes* name complete settings: ``"book"`` (the book's own: centred unit-norm inputs, He
initialisation, three hidden layers, Adam) and ``"paper-code"`` (the settings of the authors'
MNIST configuration files: pixels / 255, LeCun-normal initialisation, four hidden layers of
width 128, SGD 0.01 with momentum 0.9, batch 50, 25 at ``n ≤ 125``).  Individual settings
override the recipe.

The seed of a run fixes its training subset, the initial network (shared by the three models)
and the minibatch order.  Every run is cached on disk (:func:`atf_lite.cache.cached`) and
executed with one CPU thread, which makes its result independent of the machine's core count.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from ..cache import cached
from ..data import PREPROCESSINGS, load_digits_multiclass, load_mnist_multiclass
from ..models import (
    INITS,
    MODEL_KINDS,
    OPTIMIZERS,
    AdaptiveNet,
    evaluate_classifier,
    feature_model,
    fit_classifier,
    mlp,
)
from ..progress import progress_bar

__all__ = [
    "DATASETS",
    "PROTOCOLS",
    "RECIPES",
    "recipe_settings",
    "TEST_FRACTION",
    "VAL_FRACTION",
    "SPLIT_SEED",
    "TrainSettings",
    "DataSplits",
    "stratified_indices",
    "split_dataset",
    "load_splits",
    "default_sizes",
    "run_one",
    "sample_complexity",
    "settings_sweep",
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
    "CLI_HELP",
    "add_arguments",
    "run_cli",
]

DATASETS = ("digits", "mnist")
PROTOCOLS = ("fixed-subset", "fresh-subset-per-epoch")
TEST_FRACTION = 0.3
VAL_FRACTION = 0.2
SPLIT_SEED = 0
N_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Network and optimisation settings shared by the three models of one experiment.

    ``width``/``depth``: the MLP (``depth`` hidden layers, see :func:`atf_lite.models.mlp`);
    ``optimizer`` ``"sgd"`` (with ``momentum``) or ``"adam"``, constant learning rate ``lr``
    (the defaults, Adam at ``1e-2``, are the setting that chapter 7's sweep selects on the digits
    by validation error for all three models);
    ``batch_size``; ``max_epochs`` and early-stopping ``patience`` (epochs without a better
    validation error; ``None`` trains all ``max_epochs`` and keeps the best epoch);
    ``output_scale``: factor on the network's outputs (small: rich regime, large: lazy);
    ``init``: the initial weights (``"he"`` or ``"lecun"``, see :func:`atf_lite.models.mlp`);
    ``small_batch``: ``(n_max, batch)`` uses minibatches of ``batch`` when ``n_train ≤ n_max``
    (``None``: always ``batch_size``; see :meth:`batch_size_for`).
    """

    width: int = 128
    depth: int = 3
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 50
    max_epochs: int = 100
    patience: int | None = 20
    output_scale: float = 1.0
    init: str = "he"
    small_batch: tuple[int, int] | None = None

    def batch_size_for(self, n_train: int) -> int:
        """The minibatch size used at training-set size ``n_train``."""
        if self.small_batch is not None and n_train <= self.small_batch[0]:
            return int(self.small_batch[1])
        return int(self.batch_size)

    def __post_init__(self):
        for name in ("width", "batch_size", "max_epochs"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.depth, (int, np.integer)) or self.depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {self.depth!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.patience is not None and (
            not isinstance(self.patience, (int, np.integer)) or self.patience < 1
        ):
            raise ValueError(f"patience must be a positive integer or None, got {self.patience!r}")
        if not (math.isfinite(self.output_scale) and self.output_scale > 0):
            raise ValueError(f"output_scale must be positive, got {self.output_scale!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.small_batch is not None:
            pair = tuple(self.small_batch)
            if len(pair) != 2 or not all(
                isinstance(v, (int, np.integer)) and v >= 1 for v in pair
            ):
                raise ValueError(
                    f"small_batch must be None or a pair of positive integers (n_max, batch), "
                    f"got {self.small_batch!r}"
                )
            object.__setattr__(self, "small_batch", (int(pair[0]), int(pair[1])))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# Complete settings by name.  "preprocessing" is a property of the data, shared by all models;
# the other keys are TrainSettings fields.  The paper-code epoch cap is the one of chapter 7's
# measurement: with it, every fixed-feature run ends by early stopping, not by the cap.
RECIPES: dict[str, dict] = {
    "book": {"preprocessing": "unit-norm"},
    "paper-code": {
        "preprocessing": "pixel-scale",
        "init": "lecun",
        "depth": 4,
        "width": 128,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "batch_size": 50,
        "small_batch": (125, 25),
        "max_epochs": 1000,
        "patience": 20,
    },
}


def recipe_settings(
    recipe: str, *, preprocessing: str | None = None, **overrides
) -> tuple[str, dict]:
    """``(preprocessing, settings)`` of the named ``recipe`` with ``overrides`` applied.

    ``settings`` are :class:`TrainSettings` fields (validated by building one); ``overrides``
    replace the recipe's values (``None`` is a value here, e.g. ``patience=None``);
    ``preprocessing=None`` keeps the recipe's preprocessing.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {tuple(RECIPES)}, got {recipe!r}")
    merged = {**RECIPES[recipe], **overrides}
    if preprocessing is not None:
        merged["preprocessing"] = preprocessing
    preprocessing = merged.pop("preprocessing")
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}, got {preprocessing!r}")
    unknown = sorted(set(merged) - {f.name for f in dataclasses.fields(TrainSettings)})
    if unknown:
        raise TypeError(f"unknown settings {unknown}: not fields of TrainSettings")
    TrainSettings(**merged)
    return preprocessing, merged


@dataclasses.dataclass
class DataSplits:
    """The fixed splits of one data set: training pool, validation and test (``X`` ``[n, d]``)."""

    X_pool: torch.Tensor
    y_pool: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def pool_size(self) -> int:
        return len(self.y_pool)


def stratified_indices(labels, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a random subset of size ``n`` with class proportions as in ``labels``.

    Each class gets ``n`` times its frequency, rounded by the largest-remainder rule (so the
    counts add up to ``n``); members are drawn uniformly without replacement with ``seed``.
    ``labels``: integer array ``[N]``; ``1 ≤ n ≤ N``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= len(labels):
        raise ValueError(f"n must be an integer in [1, {len(labels)}], got {n!r}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = n * counts / len(labels)
    take = np.floor(quota).astype(int)
    # Largest remainders first; ties go to the larger class, then the smaller label.
    order = np.lexsort((classes, -counts, -(quota - take)))
    take[order[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
        for c, k in zip(classes, take)
    ]
    return np.sort(np.concatenate(chosen))


def split_dataset(
    X: torch.Tensor,
    y: torch.Tensor,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> DataSplits:
    """Stratified split of ``(X, y)`` into test (``test_fraction``), validation (``val_fraction``
    of the remainder) and the training pool (the rest)."""
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be [n, d] and y [n]; got {tuple(X.shape)} and {tuple(y.shape)}")
    labels = y.numpy()
    test = stratified_indices(labels, max(1, round(test_fraction * len(y))), seed)
    rest = np.setdiff1d(np.arange(len(y)), test)
    val = rest[stratified_indices(labels[rest], max(1, round(val_fraction * len(rest))), seed + 1)]
    pool = np.setdiff1d(rest, val)
    if len(pool) == 0:
        raise ValueError("the fractions leave no training pool")
    pool, val, test = (torch.from_numpy(index) for index in (pool, val, test))
    return DataSplits(X[pool], y[pool], X[val], y[val], X[test], y[test])


def load_splits(
    dataset: str = "digits",
    mnist_root: str | os.PathLike | None = None,
    preprocessing: str = "unit-norm",
) -> DataSplits:
    """The fixed splits of ``dataset``.

    ``"digits"``: scikit-learn's 1 797 digits (8×8) → 1 006 pool / 252 validation / 539 test.
    ``"mnist"``: the 10 000-image MNIST test file (the only split this project assumes
    available; read from ``mnist_root`` or ``$ATF_LITE_MNIST_DIR``) → 5 600 pool /
    1 400 validation / 3 000 test.  ``preprocessing``: ``"unit-norm"`` (the paper's: centred,
    unit norm) or ``"pixel-scale"`` (pixels scaled to [0, 1]).  The split itself does not
    depend on the preprocessing.
    """
    if dataset == "digits":
        X, y = load_digits_multiclass(preprocessing=preprocessing)
    elif dataset == "mnist":
        X, y = load_mnist_multiclass(root=mnist_root, split="test", preprocessing=preprocessing)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return split_dataset(X, y)


def default_sizes(pool_size: int, smallest: int = 20) -> list[int]:
    """Training-set sizes ``smallest, 2·smallest, 4·smallest, …`` below ``pool_size``, then the
    whole pool."""
    if not isinstance(pool_size, (int, np.integer)) or pool_size < 1:
        raise ValueError(f"pool_size must be a positive integer, got {pool_size!r}")
    sizes, n = [], int(smallest)
    while n < pool_size:
        sizes.append(n)
        n *= 2
    if not sizes or pool_size > sizes[-1] * 1.25:
        sizes.append(int(pool_size))
    else:
        sizes[-1] = int(pool_size)
    return sizes


@contextlib.contextmanager
def _one_thread():
    # Tiny matrix products gain nothing from threads, and a fixed thread count makes the
    # floating-point reductions, hence the whole training trajectory, reproducible.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _weight_spectra(model) -> dict[str, np.ndarray]:
    """Singular values (descending, float64) of every weight matrix's change ``δW``."""
    spectra = {}
    for name, change in model.parameter_change().items():
        if name.endswith(".weight") and change.ndim == 2:
            values = torch.linalg.svdvals(change.to(torch.float64))
            spectra[name.removesuffix(".weight")] = values.numpy()
    return spectra


def run_one(
    kind: str,
    n_train: int,
    seed: int,
    splits: DataSplits,
    settings: TrainSettings,
    *,
    protocol: str = "fixed-subset",
) -> dict:
    """Train model ``kind`` on ``n_train`` pool images per epoch; return a record.

    ``protocol="fixed-subset"``: one stratified subset of ``n_train`` pool images, drawn with
    ``seed``, for every epoch.  ``"fresh-subset-per-epoch"``: every epoch a new uniformly random
    subset of ``n_train`` pool images (see ``epoch_subset`` of
    :func:`atf_lite.models.fit_classifier`).

    The record holds ``model``, ``n_train``, ``seed``, ``protocol``, ``test_error``, ``epochs``
    (epochs trained), ``best_epoch`` (the epoch kept by early stopping), ``val_error``,
    ``train_error`` (on the first epoch's subset), ``distinct_examples`` (different pool images
    the kept model was trained on) and ``distinct_examples_total`` (up to the last epoch),
    ``relative_change`` (``‖δθ‖ / ‖θ0‖``), ``spectra`` (singular values of each layer's ``δW``)
    and, for the adaptive model, ``transform_change`` (per layer ``‖M − I‖_F / ‖I‖_F`` of ``M1``
    and ``M2``).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    if not isinstance(n_train, (int, np.integer)) or not 1 <= n_train <= splits.pool_size:
        raise ValueError(f"n_train must be an integer in [1, {splits.pool_size}], got {n_train!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    with _one_thread():
        index = torch.from_numpy(stratified_indices(splits.y_pool.numpy(), int(n_train), seed))
        X, y = splits.X_pool[index], splits.y_pool[index]
        base = mlp(
            X.shape[1], settings.width, settings.depth, d_out=N_CLASSES, seed=seed,
            init=settings.init,
        )
        model = feature_model(kind, base, settings.output_scale)
        fresh = protocol == "fresh-subset-per-epoch"
        fit = fit_classifier(
            model,
            splits.X_pool if fresh else X,
            splits.y_pool if fresh else y,
            splits.X_val,
            splits.y_val,
            optimizer=settings.optimizer,
            lr=settings.lr,
            momentum=settings.momentum,
            batch_size=settings.batch_size_for(int(n_train)),
            max_epochs=settings.max_epochs,
            patience=settings.patience,
            seed=seed,
            epoch_subset=int(n_train) if fresh else None,
            progress=False,
        )
        test_error, _ = evaluate_classifier(model, splits.X_test, splits.y_test)
        train_error, _ = evaluate_classifier(model, X, y)
        change = model.parameter_change()
        theta0 = model.initial_params
        relative = float(
            torch.sqrt(sum((v.double() ** 2).sum() for v in change.values()))
            / torch.sqrt(sum((v.double() ** 2).sum() for v in theta0.values()))
        )
        record = {
            "model": kind,
            "n_train": int(n_train),
            "seed": int(seed),
            "protocol": protocol,
            "test_error": float(test_error),
            "epochs": int(fit.epochs_run),
            "best_epoch": int(fit.best_epoch),
            "val_error": float(fit.best_val_error),
            "train_error": float(train_error),
            "distinct_examples": int(fit.distinct_examples),
            "distinct_examples_total": int(fit.distinct_examples_total),
            "relative_change": relative,
            "spectra": _weight_spectra(model),
        }
        if isinstance(model, AdaptiveNet):
            record["transform_change"] = model.transform_change()
    return record


def sample_complexity(
    dataset: str = "digits",
    sizes: Sequence[int] | None = None,
    seeds: Iterable[int] = (0, 1, 2),
    models: Sequence[str] = MODEL_KINDS,
    *,
    recipe: str = "book",
    protocol: str = "fixed-subset",
    preprocessing: str | None = None,
    model_settings: Mapping[str, Mapping] | None = None,
    mnist_root: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool | None = None,
    **settings,
) -> dict:
    """Test error of each model kind for each training-set size and seed.

    ``sizes`` default to :func:`default_sizes` of the training pool (20, 40, … and the whole
    pool).  ``recipe`` (a key of :data:`RECIPES`) gives the preprocessing and the
    :class:`TrainSettings` shared by all models; ``preprocessing`` and ``settings`` (fields of
    :class:`TrainSettings`) override it, and ``model_settings`` maps a model kind to fields
    that override them for that model only.  ``protocol``: ``"fixed-subset"`` or
    ``"fresh-subset-per-epoch"`` (see :func:`run_one`).
    Returns ``{"config": {...}, "results": [record, ...]}`` with one :func:`run_one` record per
    (model, size, seed), each with ``recipe`` added and cached on disk under its own
    configuration; ``config["settings"]`` holds each model's :class:`TrainSettings` as a dict.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    preprocessing, settings = recipe_settings(recipe, preprocessing=preprocessing, **settings)
    models = tuple(models)
    for kind in models:
        if kind not in MODEL_KINDS:
            raise ValueError(f"models must be drawn from {MODEL_KINDS}, got {kind!r}")
    model_settings = dict(model_settings or {})
    unknown = sorted(set(model_settings) - set(MODEL_KINDS))
    if unknown:
        raise ValueError(f"model_settings has unknown model kinds {unknown}")
    per_model = {
        kind: TrainSettings(**{**settings, **model_settings.get(kind, {})}) for kind in models
    }
    seeds = [int(s) for s in seeds]
    if not seeds or not models:
        raise ValueError("seeds and models must not be empty")
    splits = load_splits(dataset, mnist_root, preprocessing)
    sizes = default_sizes(splits.pool_size) if sizes is None else [int(n) for n in sizes]
    for n in sizes:
        if not 1 <= n <= splits.pool_size:
            raise ValueError(f"sizes must lie in [1, {splits.pool_size}] (the pool), got {n}")
    jobs = [(kind, n, seed) for n in sizes for seed in seeds for kind in models]
    results = []
    for kind, n, seed in progress_bar(jobs, desc="sample complexity", enabled=progress):
        config = {
            "dataset": dataset,
            "split": [TEST_FRACTION, VAL_FRACTION, SPLIT_SEED],
            "preprocessing": preprocessing,
            "protocol": protocol,
            "model": kind,
            "n_train": n,
            "seed": seed,
            **per_model[kind].as_dict(),
        }
        record = cached(
            "sample-complexity-run",
            config,
            lambda kind=kind, n=n, seed=seed: run_one(
                kind, n, seed, splits, per_model[kind], protocol=protocol
            ),
            use_cache=use_cache,
        )
        results.append({**record, "recipe": recipe})
    config = {
        "dataset": dataset,
        "recipe": recipe,
        "protocol": protocol,
        "preprocessing": preprocessing,
        "pool_size": splits.pool_size,
        "val_size": len(splits.y_val),
        "test_size": len(splits.y_test),
        "sizes": sizes,
        "seeds": seeds,
        "models": list(models),
        "settings": {kind: per_model[kind].as_dict() for kind in models},
    }
    return {"config": config, "results": results}


def settings_sweep(
    variants: Mapping[str, Mapping],
    n_train: int,
    seeds: Iterable[int] = (0, 1, 2),
    models: Sequence[str] = MODEL_KINDS,
    dataset: str = "digits",
    *,
    base: Mapping | None = None,
    mnist_root: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool | None = None,
) -> list[dict]:
    """Run every model at one training-set size under each named variant of the settings.

    ``variants`` maps a name to :class:`TrainSettings` fields that override ``base``.  Returns
    the :func:`run_one` records of all variants, each with an added ``"variant"`` key.  Runs are
    cached individually, so a variant equal to another experiment's settings costs nothing.
    """
    if not variants:
        raise ValueError("variants must name at least one setting")
    seeds = list(seeds)
    records = []
    for name, overrides in variants.items():
        result = sample_complexity(
            dataset, sizes=[n_train], seeds=seeds, models=models, mnist_root=mnist_root,
            use_cache=use_cache, progress=progress, **{**(base or {}), **overrides},
        )
        records.extend({**record, "variant": name} for record in result["results"])
    return records


def _mean_transform_change(record: dict) -> float:
    pairs = record.get("transform_change")
    if not pairs:
        return float("nan")
    return float(np.mean([value for pair in pairs.values() for value in pair]))


def sweep_table(records: Sequence[dict], layer: str | None = None) -> list[dict]:
    """One row per (variant, model) of :func:`settings_sweep` records, averaged over seeds.

    Columns: ``variant``, ``model``, ``test_error`` and ``test_sd`` (mean and sample standard
    deviation), ``val_error``, ``best_epoch``, ``relative_change`` (``‖δθ‖ / ‖θ0‖``),
    ``transform_change`` (mean over layers and factors of ``‖M − I‖_F / ‖I‖_F``; NaN except for
    the adaptive model) and ``effective_rank`` of ``δW`` of ``layer`` (90 % of the energy;
    default: the first hidden-to-hidden layer, else the first layer).
    """
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


def samples_to_reach(n, error, level: float) -> float:
    """Training-set size at which the curve ``error(n)`` first falls to ``level``.

    Linear interpolation of the error in ``log n`` between the two sizes that bracket the first
    crossing.  Returns ``nan`` when the curve never reaches ``level`` and ``n[0]`` when it is
    already there at the smallest size (a bound: fewer samples might do).
    """
    n = np.asarray(n, dtype=float)
    error = np.asarray(error, dtype=float)
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


def samples_needed(summary: dict, levels: Sequence[float]) -> dict[str, np.ndarray]:
    """Per model of a :func:`summarize` result, :func:`samples_to_reach` of its mean test-error
    curve for each of ``levels`` (``[len(levels)]``, ``nan`` where a level is never reached)."""
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
    levels = np.asarray(levels, dtype=float)
    if levels.ndim != 1 or len(levels) == 0 or not np.isfinite(levels).all():
        raise ValueError(f"levels must be a non-empty 1-D array of finite errors, got {levels!r}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
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

    def ratios(rows) -> np.ndarray:
        a, b = (errors[kind][rows].mean(axis=0) for kind in (numerator, denominator))
        return np.array(
            [samples_to_reach(sizes, a, lv) / samples_to_reach(sizes, b, lv) for lv in levels]
        )

    point = ratios(np.arange(len(seeds)))
    rng = np.random.default_rng(seed)
    draws = np.array([ratios(rng.integers(0, len(seeds), len(seeds))) for _ in range(n_boot)])
    finite = np.isfinite(draws)
    tail = 100 * (1 - confidence) / 2
    low, high = np.full(len(levels), np.nan), np.full(len(levels), np.nan)
    for j in range(len(levels)):
        if finite[:, j].any():
            low[j], high[j] = np.percentile(draws[finite[:, j], j], [tail, 100 - tail])
    return {"levels": levels, "ratio": point, "low": low, "high": high,
            "reached": finite.mean(axis=0)}


def format_summary(summary: dict, decimals: int = 3) -> str:
    """A text table of a :func:`summarize` result: one line per size, ``mean ± sd`` per model.

    Every model must have been run at the same sizes.
    """
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


def effective_rank(singular_values, energy: float = 0.9) -> int:
    """Number of leading singular values that carry a fraction ``energy`` of ``Σ σ_i²``."""
    s = np.sort(np.asarray(singular_values, dtype=float))[::-1]
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


def plot_sample_complexity(ax, summary: dict, *, title: str | None = None) -> None:
    """Mean test error ± one standard deviation over seeds against ``n`` (log axis) on ``ax``."""
    from ..plotting import COLORS

    for kind in MODEL_KINDS:
        if kind not in summary:
            continue
        row = summary[kind]
        ax.errorbar(
            row["n"], row["mean"], yerr=row["sd"], marker="o", markersize=4, capsize=3,
            color=COLORS[_COLOR_ROLES[kind]], label=_LABELS[kind],
        )
    ax.set_xscale("log")
    ax.set_xlabel("training-set size $n$")
    ax.set_ylabel("test error")
    if title:
        ax.set_title(title)
    ax.legend()


def write_outputs(result: dict, out_dir: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``sample_complexity.json`` (``config`` and ``results`` with the fields ``model``,
    ``n_train``, ``seed``, ``test_error``, ``protocol``, ``recipe``, ``distinct_examples``,
    ``distinct_examples_total``, ``epochs``, ``best_epoch``, ``val_error``, ``train_error``) and
    the figure ``sample_complexity.png`` into ``out_dir``; return both paths."""
    # A bare Figure draws without pyplot, so the caller's backend (e.g. inline) is left alone.
    from matplotlib.figure import Figure

    from ..plotting import use_style

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = (
        "model", "n_train", "seed", "test_error", "protocol", "recipe", "distinct_examples",
        "distinct_examples_total", "epochs", "best_epoch", "val_error", "train_error",
    )
    payload = {
        "config": result["config"],
        "results": [{key: record[key] for key in keys} for record in result["results"]],
    }
    json_path = out / "sample_complexity.json"
    json_path.write_text(json.dumps(payload, indent=1) + "\n")
    use_style()
    fig = Figure()
    ax = fig.subplots()
    plot_sample_complexity(ax, summarize(result["results"]), title=result["config"]["dataset"])
    figure_path = out / "sample_complexity.png"
    fig.savefig(figure_path)
    return json_path, figure_path


CLI_HELP = "test error against training-set size for fixed, adaptive and full models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m atf_lite sample-complexity``.

    Training options default to ``None``, meaning "the recipe's value"; set, they override it.
    """
    book = TrainSettings()
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument(
        "--mnist-root", default=None,
        help="directory with the MNIST IDX files (default: $ATF_LITE_MNIST_DIR)",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None,
        help="training-set sizes (default: 20, 40, 80, ... and the whole training pool)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", choices=MODEL_KINDS, default=list(MODEL_KINDS))
    parser.add_argument("--out", default="sample_complexity_out", help="output directory")
    parser.add_argument(
        "--recipe", choices=tuple(RECIPES), default="book",
        help="complete settings: the book's own, or those of the authors' MNIST configuration "
        "(pixels / 255, LeCun-normal init, depth 4, SGD 0.01, batch 50)",
    )
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="fixed-subset",
        help="one fixed training subset of size n, or a fresh subset of size n every epoch",
    )
    parser.add_argument("--preprocessing", choices=PREPROCESSINGS, default=None)
    parser.add_argument("--init", choices=INITS, default=None)
    parser.add_argument("--width", type=int, default=None, help=f"book: {book.width}")
    parser.add_argument(
        "--depth", type=int, default=None, help=f"hidden layers; book: {book.depth}"
    )
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    parser.add_argument("--lr", type=float, default=None, help=f"book: {book.lr}")
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help=f"book: {book.batch_size}")
    parser.add_argument("--max-epochs", type=int, default=None, help=f"book: {book.max_epochs}")
    parser.add_argument(
        "--patience", type=int, default=None,
        help=f"early-stopping patience in epochs (0: train all epochs, keep the best); "
        f"book: {book.patience}",
    )
    parser.add_argument("--output-scale", type=float, default=None)
    parser.add_argument("--no-cache", action="store_true", help="recompute every run")


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args`` (explicit values only, in a fixed order)."""
    parts = ["python -m atf_lite sample-complexity"]
    for name, value in vars(args).items():
        if name in {"run", "command", "no_cache", "mnist_root"} or value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, (list, tuple)):
            parts.append(f"{flag} {' '.join(str(v) for v in value)}")
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def run_cli(args: argparse.Namespace) -> int:
    """Run the experiment with the parsed ``args``, write JSON and figure, print a summary."""
    # Only the options given on the command line override the recipe.
    names = ("init", "width", "depth", "optimizer", "lr", "momentum", "batch_size", "max_epochs",
             "output_scale", "patience")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if overrides.get("patience") == 0:
        overrides["patience"] = None  # train every epoch, keep the best
    if "batch_size" in overrides:
        overrides["small_batch"] = None  # an explicit batch size holds at every n
    result = sample_complexity(
        args.dataset,
        sizes=args.sizes,
        seeds=args.seeds,
        models=args.models,
        recipe=args.recipe,
        protocol=args.protocol,
        preprocessing=args.preprocessing,
        mnist_root=args.mnist_root,
        use_cache=not args.no_cache,
        **overrides,
    )
    result["config"]["command"] = _command_line(args)
    json_path, figure_path = write_outputs(result, args.out)
    print(f"test error, mean ± sd over {len(args.seeds)} seeds:")
    print(format_summary(summarize(result["results"]), decimals=4))
    print(f"wrote {json_path} and {figure_path}")
    return 0
