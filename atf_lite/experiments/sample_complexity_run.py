"""Sample complexity of fixed, adaptive and full tangent-feature models (chapter 8).

For each training-set size ``n``, seed and model kind (``"fixed"``:
:class:`~atf_lite.networks.feature_models.LinearizedNet`, ``"adaptive"``:
:class:`~atf_lite.networks.feature_models.AdaptiveNet`, ``"full"``:
:class:`~atf_lite.networks.feature_models.FullNet`) a classifier over the ten digit classes is
trained with :func:`~atf_lite.networks.classifier.fit_classifier` and its error measured on a
fixed test split.  The experiment is configured by a :class:`SampleComplexitySettings` and run
by :func:`sample_complexity`; tables and figures are in
:mod:`atf_lite.experiments.sample_complexity_report`.

Data protocol (the same for every model, size and seed; see
:mod:`atf_lite.experiments.sample_complexity_data`):

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
and the minibatch order.  Every run is cached on disk (:func:`~atf_lite.cache.cached`) and
executed with one CPU thread, which makes its result independent of the machine's core count.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._threads import limit_threads
from .._validation import (
    check_bool,
    check_instance,
    check_int,
    check_int_sequence,
    check_mapping,
    check_nonnegative_int,
    check_positive_int,
    check_real,
    check_sequence,
    is_integer,
)
from ..cache import cached
from ..data import DATASETS, PREPROCESSINGS
from ..networks.classifier import OPTIMIZERS, evaluate_classifier, fit_classifier
from ..networks.cnn import cnn, image_shape_for
from ..networks.feature_models import MODEL_KINDS, AdaptiveNet, FeatureModel, feature_model
from ..networks.mlp import INITS, mlp
from ..progress import progress_bar
from ._checks import check_pair
from .sample_complexity_data import (
    SPLIT_SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    DataSplits,
    default_sizes,
    load_splits,
    stratified_indices,
)

__all__ = [
    "PROTOCOLS",
    "RECIPES",
    "recipe_settings",
    "TrainSettings",
    "SampleComplexitySettings",
    "SampleComplexityResult",
    "run_one",
    "sample_complexity",
    "settings_sweep",
]

PROTOCOLS = ("fixed-subset", "fresh-subset-per-epoch")
N_CLASSES = 10
#: Network families: the MLP, or convolution blocks in front of the same dense layers.
ARCHS = ("mlp", "cnn")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Network and optimisation settings shared by the three models of one experiment.

    ``width``/``depth``: the MLP (``depth`` hidden layers, see :func:`~atf_lite.networks.mlp.mlp`);
    ``optimizer`` ``"sgd"`` (with ``momentum``) or ``"adam"``, constant learning rate ``lr``
    (the defaults, Adam at ``1e-2``, are the setting that chapter 8's sweep selects on the digits
    by validation error for all three models);
    ``batch_size``; ``max_epochs`` and early-stopping ``patience`` (epochs without a better
    validation error; ``None`` trains all ``max_epochs`` and keeps the best epoch);
    ``output_scale``: factor on the network's outputs (small: rich regime, large: lazy);
    ``init``: the initial weights (``"he"`` or ``"lecun"``, see :func:`~atf_lite.networks.mlp.mlp`);
    ``small_batch``: ``(n_max, batch)`` uses minibatches of ``batch`` when ``n_train ≤ n_max``
    (``None``: always ``batch_size``; see :meth:`batch_size_for`).
    ``arch``: ``"mlp"``, or ``"cnn"`` for the convolutional network of
    :func:`~atf_lite.networks.cnn.cnn`: one block (3×3 convolution, ReLU, 2×2 average pooling)
    per entry of ``channels``, then the MLP's ``depth`` hidden dense layers of ``width`` units;
    inputs are the flattened square images.  ``channels`` is ignored for the MLP, whose
    :meth:`as_dict` leaves ``arch`` and ``channels`` out (so MLP settings read as before).
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
    arch: str = "mlp"
    channels: tuple[int, ...] = (8, 16)

    def batch_size_for(self, n_train: int) -> int:
        """The minibatch size used at training-set size ``n_train``."""
        if self.small_batch is not None and n_train <= self.small_batch[0]:
            return int(self.small_batch[1])
        return int(self.batch_size)

    def __post_init__(self) -> None:
        # Values are checked, not converted (but small_batch and channels): a NumPy integer
        # stays one, so as_dict, and with it every cache key, is what it was.
        for name in ("width", "batch_size", "max_epochs"):
            check_positive_int(getattr(self, name), name)
        check_nonnegative_int(self.depth, "depth")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check_real(self.lr, "lr", low=0, low_open=True)
        check_real(self.momentum, "momentum", low=0, high=1, high_open=True)
        check_int(self.patience, "patience", minimum=1, allow_none=True)
        check_real(self.output_scale, "output_scale", low=0, low_open=True)
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.small_batch is not None:
            pair = check_pair(self.small_batch, "small_batch", minimum=1,
                              what="None or a pair of positive integers (n_max, batch)")
            object.__setattr__(self, "small_batch", pair)
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        channels = tuple(self.channels)
        if not channels or not all(isinstance(c, (int, np.integer)) and c >= 1 for c in channels):
            raise ValueError(f"channels must be positive integers, got {self.channels!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in channels))

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (for an MLP without ``arch``/``channels``)."""
        out = dataclasses.asdict(self)
        if self.arch == "mlp":
            del out["arch"], out["channels"]
        else:
            out["channels"] = list(self.channels)
        return out

    def network(self, d_in: int, *, seed: int) -> torch.nn.Sequential:
        """The initial network for inputs of ``d_in`` features and ``N_CLASSES`` outputs."""
        if self.arch == "cnn":
            return cnn(image_shape_for(d_in), self.channels, hidden=(self.width,) * self.depth,
                       d_out=N_CLASSES, seed=seed, init=self.init, flat_input=True)
        return mlp(d_in, self.width, self.depth, d_out=N_CLASSES, seed=seed, init=self.init)


#: Complete settings by name.  ``"preprocessing"`` is a property of the data, shared by all
#: models; the other keys are :class:`TrainSettings` fields.  The paper-code epoch cap is the one
#: of chapter 8's measurement: with it, every fixed-feature run ends by early stopping, not by
#: the cap.
RECIPES: dict[str, dict[str, Any]] = {
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
    recipe: str, *, preprocessing: str | None = None, **overrides: Any
) -> tuple[str, dict[str, Any]]:
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


def _weight_spectra(model: FeatureModel) -> dict[str, np.ndarray]:
    """Singular values (descending, float64) of every weight matrix's change ``δW`` (a
    convolution's as ``[c_out, c_in·k_h·k_w]``)."""
    spectra = {}
    for name, change in model.parameter_change().items():
        if name.endswith(".weight") and change.ndim in (2, 4):
            values = torch.linalg.svdvals(change.reshape(len(change), -1).to(torch.float64))
            spectra[name.removesuffix(".weight")] = values.numpy()
    return spectra


def run_one(
    splits: DataSplits,
    settings: TrainSettings,
    *,
    kind: str,
    n_train: int,
    seed: int,
    protocol: str = "fixed-subset",
) -> dict[str, Any]:
    """Train model ``kind`` on ``n_train`` pool images per epoch; return a record.

    ``protocol="fixed-subset"``: one stratified subset of ``n_train`` pool images, drawn with
    ``seed``, for every epoch.  ``"fresh-subset-per-epoch"``: every epoch a new uniformly random
    subset of ``n_train`` pool images (see ``epoch_subset`` of
    :func:`~atf_lite.networks.classifier.fit_classifier`).

    The record holds ``model``, ``n_train``, ``seed``, ``protocol``, ``test_error``, ``epochs``
    (epochs trained), ``best_epoch`` (the epoch kept by early stopping), ``val_error``,
    ``train_error`` (on the first epoch's subset), ``distinct_examples`` (different pool images
    the kept model was trained on) and ``distinct_examples_total`` (up to the last epoch),
    ``relative_change`` (``‖δθ‖ / ‖θ0‖``), ``spectra`` (singular values of each layer's ``δW``)
    and, for the adaptive model, ``transform_change`` (per layer ``‖M − I‖_F / ‖I‖_F`` of ``M1``
    and ``M2``).
    """
    check_instance(splits, "splits", DataSplits)
    check_instance(settings, "settings", TrainSettings)
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    if not is_integer(n_train) or not 1 <= n_train <= splits.pool_size:
        raise ValueError(f"n_train must be an integer in [1, {splits.pool_size}], got {n_train!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    with limit_threads(1):
        index = torch.from_numpy(
            stratified_indices(splits.y_pool.numpy(), int(n_train), seed=seed)
        )
        X, y = splits.X_pool[index], splits.y_pool[index]
        base = settings.network(X.shape[1], seed=seed)
        model = feature_model(kind, base, output_scale=settings.output_scale)
        fresh = protocol == "fresh-subset-per-epoch"
        fit = fit_classifier(
            splits.X_pool if fresh else X,
            splits.y_pool if fresh else y,
            splits.X_val,
            splits.y_val,
            model,
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
        test_error = evaluate_classifier(splits.X_test, splits.y_test, model).error
        train_error = evaluate_classifier(X, y, model).error
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


@dataclasses.dataclass(frozen=True)
class SampleComplexitySettings:
    """Everything that determines one sample-complexity experiment.

    ``dataset``: ``"digits"`` or ``"mnist"``; ``sizes``: training-set sizes (``None``:
    :func:`~atf_lite.experiments.sample_complexity_data.default_sizes` of the training pool,
    20, 40, … and the whole pool); ``seeds``; ``models``: kinds drawn from ``MODEL_KINDS``.
    ``recipe`` (a key of :data:`RECIPES`) gives the preprocessing and the
    :class:`TrainSettings` shared by all models; ``preprocessing`` (``None``: the recipe's) and
    ``overrides`` (fields of :class:`TrainSettings`) override it, and ``model_overrides`` maps a
    model kind to fields that override them for that model only (either mapping may be empty,
    the default: no overrides).  ``protocol``:
    ``"fixed-subset"`` or ``"fresh-subset-per-epoch"`` (see :func:`run_one`).
    """

    dataset: str = "digits"
    sizes: Sequence[int] | None = None
    seeds: Sequence[int] = (0, 1, 2)
    models: Sequence[str] = MODEL_KINDS
    recipe: str = "book"
    protocol: str = "fixed-subset"
    preprocessing: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        fix = object.__setattr__
        fix(self, "models", check_sequence(self.models, "models"))
        fix(self, "seeds", check_int_sequence(self.seeds, "seeds", minimum=0))
        if self.sizes is not None:  # None, not an empty list, asks for the default sizes
            fix(self, "sizes", check_int_sequence(self.sizes, "sizes", minimum=1))
        for kind in self.models:
            if kind not in MODEL_KINDS:
                raise ValueError(f"models must be drawn from {MODEL_KINDS}, got {kind!r}")
        # Empty override mappings are valid (and the default): the recipe as it is.
        fix(self, "overrides", check_mapping(self.overrides, "overrides"))
        per_model = check_mapping(self.model_overrides, "model_overrides")
        unknown = sorted(set(per_model) - set(MODEL_KINDS), key=repr)
        if unknown:
            raise ValueError(f"model_overrides has unknown model kinds {unknown}")
        fix(self, "model_overrides",
            {k: check_mapping(v, f"model_overrides[{k!r}]") for k, v in per_model.items()})
        self.resolve()  # validates the recipe, the preprocessing and every override

    def resolve(self) -> tuple[str, dict[str, TrainSettings]]:
        """``(preprocessing, {model kind: TrainSettings})`` after applying every override."""
        preprocessing, shared = recipe_settings(
            self.recipe, preprocessing=self.preprocessing, **self.overrides
        )
        per_model = {
            kind: TrainSettings(**{**shared, **self.model_overrides.get(kind, {})})
            for kind in self.models
        }
        return preprocessing, per_model


@dataclasses.dataclass(frozen=True)
class SampleComplexityResult:
    """Result of :func:`sample_complexity`.

    ``config``: JSON-serialisable description (dataset, recipe, protocol, preprocessing, pool,
    validation and test sizes, sizes, seeds, models, and ``settings``: each model's
    :class:`TrainSettings` as a dict); ``results``: one :func:`run_one` record per (model, size,
    seed), each with ``recipe`` added.
    """

    config: dict[str, Any]
    results: list[dict[str, Any]]


def sample_complexity(
    settings: SampleComplexitySettings,
    *,
    mnist_root: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool | None = None,
) -> SampleComplexityResult:
    """Test error of each model kind for each training-set size and seed.

    ``settings``: a :class:`SampleComplexitySettings`.  Options that do not change the result:
    ``mnist_root`` (default ``$ATF_LITE_MNIST_DIR``), ``use_cache`` and ``progress``.  Every
    (model, size, seed) run is cached on disk under its own configuration.
    """
    if not isinstance(settings, SampleComplexitySettings):
        raise TypeError(
            f"settings must be a SampleComplexitySettings, got {type(settings).__name__}"
        )
    if progress is not None:
        check_bool(progress, "progress")
    preprocessing, per_model = settings.resolve()
    splits = load_splits(settings.dataset, mnist_root=mnist_root, preprocessing=preprocessing)
    sizes = default_sizes(splits.pool_size) if settings.sizes is None else list(settings.sizes)
    for n in sizes:
        if not 1 <= n <= splits.pool_size:
            raise ValueError(f"sizes must lie in [1, {splits.pool_size}] (the pool), got {n}")
    protocol = settings.protocol
    jobs = [(kind, n, seed) for n in sizes for seed in settings.seeds for kind in settings.models]
    results = []
    for kind, n, seed in progress_bar(jobs, desc="sample complexity", enabled=progress):
        config = {
            "dataset": settings.dataset,
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
                splits, per_model[kind], kind=kind, n_train=n, seed=seed, protocol=protocol
            ),
            use_cache=use_cache,
        )
        results.append({**record, "recipe": settings.recipe})
    config = {
        "dataset": settings.dataset,
        "recipe": settings.recipe,
        "protocol": protocol,
        "preprocessing": preprocessing,
        "pool_size": splits.pool_size,
        "val_size": len(splits.y_val),
        "test_size": len(splits.y_test),
        "sizes": sizes,
        "seeds": list(settings.seeds),
        "models": list(settings.models),
        "settings": {kind: per_model[kind].as_dict() for kind in settings.models},
    }
    return SampleComplexityResult(config=config, results=results)


def settings_sweep(
    settings: SampleComplexitySettings,
    variants: Mapping[str, Mapping[str, Any]],
    *,
    mnist_root: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Run ``settings`` once per named variant: ``variants`` maps a name to
    :class:`TrainSettings` fields that override ``settings.overrides``.

    Returns the :func:`run_one` records of all variants, each with an added ``"variant"`` key.
    Runs are cached individually, so a variant equal to another experiment's settings costs
    nothing.
    """
    check_instance(settings, "settings", SampleComplexitySettings)
    variants = check_mapping(variants, "variants", allow_empty=False)
    for name, overrides in variants.items():
        check_mapping(overrides, f"variants[{name!r}]")
    if progress is not None:
        check_bool(progress, "progress")
    records = []
    for name, overrides in variants.items():
        variant = dataclasses.replace(settings, overrides={**settings.overrides, **overrides})
        result = sample_complexity(
            variant, mnist_root=mnist_root, use_cache=use_cache, progress=progress
        )
        records.extend({**record, "variant": name} for record in result.results)
    return records
