"""Kernel alignment of trained convolutional networks: the experiment of Figure 1 for CNNs.

The protocol of :mod:`atf_lite.experiments.alignment_run`, with the network replaced by the
book's convolutional network (:func:`atf_lite.networks.cnn.cnn`):

1. the same data: two classes of digits or MNIST, rows centred and scaled to unit norm, drawn
   with the seed;
2. the same targets ``y``: the ridge fit of the ``±1`` labels on the last hidden layer of an
   independent random ReLU *MLP* (:func:`~atf_lite.experiments.alignment_run.random_feature_targets`
   with the MLP run's defaults), so that for equal seeds both architectures learn identical
   targets and their alignments can be compared point by point;
3. one CNN initialisation (He, biases zero), trained twice by SGD with momentum and a cosine
   schedule on the mean squared error, on ``y`` and on ``sign(y)``;
4. the kernels ``K0``, ``K_final``, ``K̄`` (path-averaged, assembled from the per-layer factors
   of :mod:`atf_lite.networks.conv_tangent`) and ``K_ŷ``, with the same measures.

The result is an :class:`~atf_lite.experiments.alignment_run.AlignmentResult` (its
``model()`` builds the CNN), so the tables, figures and the JSON summary of
:mod:`atf_lite.experiments.alignment_report` apply unchanged; ``summary.json`` gains
``"arch": "cnn"``.  ``python -m atf_lite alignment --arch cnn`` runs one seed
(:func:`run_cnn_cli`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import pathlib
import shlex
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._threads import limit_threads
from .._validation import (
    check_nonnegative_int,
    check_positive_int,
    check_real,
    describe,
    is_integer,
    to_numpy,
)
from ..cache import cached
from ..data import DATASETS, load_digits_pair, load_mnist_pair
from ..networks.cnn import POOLINGS, cnn, image_shape_for
from ..networks.conv_path_averaging import cnn_path_averaged_features
from ..networks.functional import model_output
from ..networks.path_averaging import QUADRATURE_RULES
from ..networks.tangent import tangent_kernel
from ..networks.training import train
from ..progress import progress_bar
from .alignment_report import write_outputs
from .alignment_run import (
    DEFAULT_MNIST_N,
    DEFAULT_NODES,
    MNIST_SPLIT,
    SCHEDULE,
    TARGET_SEED_OFFSET,
    TASKS,
    AlignmentResult,
    TaskResult,
    random_feature_targets,
)

__all__ = [
    "ARCHS",
    "CNNAlignmentSettings",
    "CNNAlignmentResult",
    "cnn_alignment_experiment",
    "cnn_alignment_experiment_seeds",
    "add_cnn_arguments",
    "cnn_settings_from_args",
    "run_cnn_cli",
]

#: Architectures of ``python -m atf_lite alignment --arch``.
ARCHS = ("mlp", "cnn")
DEFAULT_CHANNELS = (8, 16)
# SGD with the MLP run's momentum, batch and schedule.  At the MLP's step size 0.1 (and at 0.03)
# the CNN's ReLUs die early in training and its output freezes at a constant; 0.01 fits both
# tasks of the MNIST pair to a training MSE below 1e-2.
DEFAULT_LR = 0.01
DEFAULT_EPOCHS = 200
DEFAULT_HIDDEN = (128,)


@dataclass(frozen=True)
class CNNAlignmentSettings:
    """Everything that determines one run of the CNN alignment experiment (the cache key).

    As :class:`~atf_lite.experiments.alignment_run.AlignmentSettings`, with the MLP's
    ``width``/``depth`` replaced by the CNN's ``channels`` (one 3×3 convolution block per entry,
    each followed by a ReLU and 2×2 ``pooling``) and ``hidden`` (the dense layers between the
    convolutions and the output, each followed by a ReLU), and the targets' random MLP given
    explicitly (``target_width`` units in ``target_depth`` hidden layers: by default the MLP
    run's, so equal seeds give equal targets).
    """

    dataset: str = "digits"
    pair: tuple[int, int] = (2, 3)
    n: int | None = None
    channels: tuple[int, ...] = DEFAULT_CHANNELS
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    pooling: str = "avg"
    seed: int = 0
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    momentum: float = 0.9
    batch_size: int | None = 32
    nodes: int = DEFAULT_NODES
    rule: str = "gauss-legendre"
    ridge: float = 1e-3
    target_width: int = 256
    target_depth: int = 2

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        pair = self.pair
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (tuple, list)) or len(pair) != 2 \
                or not all(is_integer(c) and 0 <= c <= 9 for c in pair):
            raise ValueError(f"pair must be two digit classes (a, b), got {describe(pair)}")
        if self.n is not None:
            check_positive_int(self.n, "n")
        for name in ("channels", "hidden"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not isinstance(values, (tuple, list)):
                raise ValueError(f"{name} must be a sequence of positive integers, got "
                                 f"{describe(values)}")
            for value in values:
                check_positive_int(value, name)
        if not self.channels:
            raise ValueError("channels must name at least one convolution block")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("epochs", "nodes", "target_width", "target_depth"):
            check_positive_int(getattr(self, name), name)
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        check_nonnegative_int(self.seed, "seed")
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_real(self.ridge, "ridge", low=0.0)
        if self.rule not in QUADRATURE_RULES:
            raise ValueError(f"rule must be one of {QUADRATURE_RULES}, got {self.rule!r}")
        fix = object.__setattr__
        fix(self, "pair", (int(self.pair[0]), int(self.pair[1])))
        fix(self, "channels", tuple(int(c) for c in self.channels))
        fix(self, "hidden", tuple(int(c) for c in self.hidden))
        for name in ("seed", "epochs", "nodes", "target_width", "target_depth"):
            fix(self, name, int(getattr(self, name)))
        for name in ("n", "batch_size"):
            value = getattr(self, name)
            fix(self, name, None if value is None else int(value))
        for name in ("lr", "momentum", "ridge"):
            fix(self, name, float(getattr(self, name)))

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict, with ``"arch": "cnn"``, the schedule and
        the MNIST split."""
        out = {"arch": "cnn", **dataclasses.asdict(self)}
        out["pair"], out["channels"] = list(self.pair), list(self.channels)
        out["hidden"] = list(self.hidden)
        out["schedule"] = SCHEDULE
        out["mnist_split"] = MNIST_SPLIT
        return out


@dataclass(frozen=True)
class CNNAlignmentResult(AlignmentResult):
    """An :class:`~atf_lite.experiments.alignment_run.AlignmentResult` whose ``settings`` are a
    :class:`CNNAlignmentSettings` and whose ``model()`` is the CNN."""

    def model(self) -> torch.nn.Sequential:
        """A fresh CNN of the experiment's architecture (load ``params0``/``params1`` into it)."""
        return _network(self.settings, self.X.shape[1])


def _network(settings: CNNAlignmentSettings, d: int) -> torch.nn.Sequential:
    return cnn(image_shape_for(d), settings.channels, hidden=settings.hidden,
               pooling=settings.pooling, seed=settings.seed, flat_input=True)


def _run_task(
    X: torch.Tensor,
    target: torch.Tensor,
    base: torch.nn.Module,
    K0: np.ndarray,
    settings: CNNAlignmentSettings,
    progress: bool | None,
) -> TaskResult:
    model = copy.deepcopy(base)
    start = time.perf_counter()
    run = train(X, target, model, epochs=settings.epochs, lr=settings.lr,
                momentum=settings.momentum, batch_size=settings.batch_size, schedule=SCHEDULE,
                seed=settings.seed, progress=progress)
    trained = time.perf_counter()
    output0 = to_numpy(model_output(X, model, run.params0))
    output1 = to_numpy(model_output(X, model, run.params1))
    path = cnn_path_averaged_features(X, model, run.params0, run.params1, nodes=settings.nodes,
                                      rule=settings.rule)
    K_bar = to_numpy(path.Phi_bar @ path.Phi_bar.T)
    K_final = to_numpy(tangent_kernel(X, model, run.params1))
    seconds = {"training": trained - start, "kernels": time.perf_counter() - trained}
    return TaskResult.from_kernels(target, run, output0, output1, K0, K_final, K_bar,
                                   identity_residual=path.residual, seconds=seconds)


def _experiment(
    settings: CNNAlignmentSettings,
    mnist_root: str | os.PathLike | None,
    device: torch.device,
    progress: bool | None,
) -> CNNAlignmentResult:
    a, b = settings.pair
    if settings.dataset == "digits":
        X, labels = load_digits_pair(a, b, n=settings.n, seed=settings.seed)
    else:
        X, labels = load_mnist_pair(a, b, n=settings.n, root=mnist_root, split=MNIST_SPLIT,
                                    seed=settings.seed)
    y = random_feature_targets(X, labels, width=settings.target_width,
                               depth=settings.target_depth,
                               seed=TARGET_SEED_OFFSET + settings.seed, ridge=settings.ridge)
    X_device = X.to(device)
    base = _network(settings, X.shape[1]).to(device)
    K0 = to_numpy(tangent_kernel(X_device, base))
    targets = {"regression": y, "sign": torch.sign(y)}
    tasks = {name: _run_task(X_device, targets[name].to(device), base, K0, settings, progress)
             for name in TASKS}
    return CNNAlignmentResult(settings=settings, X=X, labels=to_numpy(labels), y=to_numpy(y),
                              K0=K0, tasks=tasks)


def cnn_alignment_experiment(
    settings: CNNAlignmentSettings,
    *,
    mnist_root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    progress: bool | None = None,
    threads: int | None = 1,
) -> CNNAlignmentResult:
    """Run (or load from the cache) the CNN kernel-alignment experiment for one seed.

    Options as in :func:`~atf_lite.experiments.alignment_run.alignment_experiment`.
    """
    if not isinstance(settings, CNNAlignmentSettings):
        raise TypeError(
            f"settings must be a CNNAlignmentSettings, got {type(settings).__name__}"
        )
    if threads is not None:
        check_positive_int(threads, "threads")

    def compute() -> CNNAlignmentResult:
        with limit_threads(threads):
            return _experiment(settings, mnist_root, torch.device(device), progress)

    return cached("cnn-kernel-alignment", settings.as_dict(), compute, use_cache=use_cache)


def cnn_alignment_experiment_seeds(
    settings: CNNAlignmentSettings, seeds: Iterable[int], **options: Any
) -> list[CNNAlignmentResult]:
    """:func:`cnn_alignment_experiment` for each of ``seeds`` in place of ``settings.seed``."""
    if not isinstance(settings, CNNAlignmentSettings):
        raise TypeError(f"settings must be a CNNAlignmentSettings, got {describe(settings)}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be an iterable of integers, got {describe(seeds)}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    for seed in seeds:
        if not is_integer(seed) or seed < 0:
            raise ValueError(f"seeds must be non-negative integers, got {describe(seed)}")
    return [
        cnn_alignment_experiment(dataclasses.replace(settings, seed=seed), **options)
        for seed in progress_bar(seeds, desc="seeds", enabled=options.get("progress"))
    ]


def add_cnn_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--arch``, ``--channels`` and ``--hidden`` options of ``python -m atf_lite
    alignment`` (``--width`` is the MLP's only)."""
    if not isinstance(parser, argparse.ArgumentParser):
        raise TypeError(f"parser must be an argparse.ArgumentParser, got {describe(parser)}")
    parser.add_argument(
        "--arch", choices=ARCHS, default="mlp",
        help="mlp: the paper's MLP (default); cnn: the book's convolutional network "
        f"(3x3 convolutions, ReLU, 2x2 average pooling, dense layers; SGD lr {DEFAULT_LR})",
    )
    parser.add_argument(
        "--channels", type=int, nargs="+", default=None, metavar="C",
        help=f"cnn only: channels of the convolution blocks (default: "
        f"{' '.join(map(str, DEFAULT_CHANNELS))})",
    )
    parser.add_argument(
        "--hidden", type=int, nargs="*", default=None, metavar="H",
        help=f"cnn only: hidden dense layers after the convolutions (default: "
        f"{' '.join(map(str, DEFAULT_HIDDEN))})",
    )


def cnn_settings_from_args(args: argparse.Namespace) -> CNNAlignmentSettings:
    """The :class:`CNNAlignmentSettings` of parsed ``alignment`` options (``--n`` defaults to
    all images for digits and to 500 for MNIST, ``--target-width`` to the MLP run's 256)."""
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"args must be an argparse.Namespace, got {describe(args)}")
    n = args.n if args.n is not None else (DEFAULT_MNIST_N if args.dataset == "mnist" else None)
    return CNNAlignmentSettings(
        dataset=args.dataset,
        pair=tuple(args.pair),
        n=n,
        channels=tuple(args.channels or DEFAULT_CHANNELS),
        hidden=DEFAULT_HIDDEN if args.hidden is None else tuple(args.hidden),
        seed=args.seed,
        epochs=args.epochs,
        nodes=args.nodes,
        rule="gauss-legendre" if args.rule is None else args.rule,  # no exact rule for CNNs
        target_width=args.target_width if args.target_width is not None else 256,
    )


def _command(args: argparse.Namespace, settings: CNNAlignmentSettings) -> str:
    parts = ["python", "-m", "atf_lite", "alignment", "--arch", "cnn", "--dataset", args.dataset]
    if args.mnist_root is not None:
        parts += ["--mnist-root", str(args.mnist_root)]
    parts += ["--pair", str(args.pair[0]), str(args.pair[1])]
    if args.n is not None:
        parts += ["--n", str(args.n)]
    parts += ["--channels", *map(str, settings.channels), "--hidden", *map(str, settings.hidden)]
    parts += ["--seed", str(args.seed)]
    if args.target_width is not None:
        parts += ["--target-width", str(args.target_width)]
    if settings.epochs != DEFAULT_EPOCHS:
        parts += ["--epochs", str(settings.epochs)]
    if settings.nodes != DEFAULT_NODES:
        parts += ["--nodes", str(settings.nodes)]
    if settings.rule != "gauss-legendre":
        parts += ["--rule", settings.rule]
    return shlex.join(parts + ["--out", str(args.out)])


def run_cnn_cli(args: argparse.Namespace) -> int:
    """``python -m atf_lite alignment --arch cnn``: one seed, Figures 1 and 3 and
    ``summary.json`` (the MLP run's schema plus ``"arch": "cnn"``), and a printed summary."""
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"args must be an argparse.Namespace, got {describe(args)}")
    start = time.perf_counter()
    try:
        settings = cnn_settings_from_args(args)
        result = cnn_alignment_experiment(settings, mnist_root=args.mnist_root,
                                          use_cache=not args.no_cache)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_outputs(result, args.out, command=_command(args, settings))
    path = pathlib.Path(args.out) / "summary.json"
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({"command": payload.pop("command"), "arch": "cnn", **payload},
                               indent=2) + "\n")
    print(f"cnn {args.dataset} {args.pair[0]} vs {args.pair[1]}: n = {result.X.shape[0]}, "
          f"channels {list(settings.channels)}, hidden {list(settings.hidden)}, seed {args.seed} "
          f"({time.perf_counter() - start:.0f} s)")
    for task in TASKS:
        res = result.tasks[task]
        print(f"  {task:<10} alignment {res.alignment:.3f}  alignment_change "
              f"{res.alignment_change:.3f}  identity residual {res.identity_residual:.1e}  "
              f"train loss {res.train_loss:.1e}")
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
