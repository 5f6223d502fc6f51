"""``python -m atf_lite sample-complexity``: the chapter-8 experiment at full scale.

The command builds a :class:`~atf_lite.experiments.sample_complexity_run.SampleComplexitySettings`
from its options (training options override the chosen recipe), runs
:func:`~atf_lite.experiments.sample_complexity_run.sample_complexity` and writes the JSON and the
figure (:func:`~atf_lite.experiments.sample_complexity_report.write_outputs`).
"""

from __future__ import annotations

import argparse

from ..data import DATASETS, PREPROCESSINGS
from ..networks.classifier import OPTIMIZERS
from ..networks.feature_models import MODEL_KINDS
from ..networks.mlp import INITS
from ._checks import check_args, check_parser
from .sample_complexity_report import format_summary, summarize, write_outputs
from .sample_complexity_run import (
    ARCHS,
    PROTOCOLS,
    RECIPES,
    SampleComplexitySettings,
    TrainSettings,
    sample_complexity,
)

__all__ = ["CLI_HELP", "add_arguments", "settings_from_args", "command_line", "run_cli"]

CLI_HELP = "test error against training-set size for fixed, adaptive and full models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m atf_lite sample-complexity``.

    Training options default to ``None``, meaning "the recipe's value"; set, they override it.
    """
    check_parser(parser)
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
    parser.add_argument(
        "--arch", choices=ARCHS, default=None,
        help="mlp (default), or cnn: convolution blocks (3x3, ReLU, 2x2 average pooling) in "
        "front of the --depth hidden dense layers of --width units",
    )
    parser.add_argument(
        "--channels", type=int, nargs="+", default=None,
        help=f"cnn only: channels of the convolution blocks; default: "
        f"{' '.join(map(str, book.channels))}",
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute every run")


def settings_from_args(args: argparse.Namespace) -> SampleComplexitySettings:
    """The :class:`~atf_lite.experiments.sample_complexity_run.SampleComplexitySettings` of
    parsed options: only the training options given on the command line override the recipe."""
    check_args(args)
    names = ("init", "width", "depth", "optimizer", "lr", "momentum", "batch_size", "max_epochs",
             "output_scale", "patience", "arch", "channels")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if "channels" in overrides:
        overrides["channels"] = tuple(overrides["channels"])
    if overrides.get("patience") == 0:
        overrides["patience"] = None  # train every epoch, keep the best
    if "batch_size" in overrides:
        overrides["small_batch"] = None  # an explicit batch size holds at every n
    return SampleComplexitySettings(
        dataset=args.dataset,
        sizes=args.sizes,
        seeds=args.seeds,
        models=args.models,
        recipe=args.recipe,
        protocol=args.protocol,
        preprocessing=args.preprocessing,
        overrides=overrides,
    )


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args`` (explicit values only, in a fixed order)."""
    check_args(args)
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
    check_args(args)
    result = sample_complexity(
        settings_from_args(args), mnist_root=args.mnist_root, use_cache=not args.no_cache
    )
    json_path, figure_path = write_outputs(result, args.out, command=command_line(args))
    print(f"test error, mean ± sd over {len(args.seeds)} seeds:")
    print(format_summary(summarize(result.results), decimals=4))
    print(f"wrote {json_path} and {figure_path}")
    return 0
