"""``python -m atf_lite alignment``: one seed of the kernel-alignment experiment at full scale.

The command builds an :class:`~atf_lite.experiments.alignment_run.AlignmentSettings` from its
options, runs :func:`~atf_lite.experiments.alignment_run.alignment_experiment` and writes
Figures 1 and 3 and ``summary.json`` (:func:`~atf_lite.experiments.alignment_report.write_outputs`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings

import numpy as np

from ..data import DATASETS
from ..networks.path_averaging import PATH_RULES
from ._checks import check_args, check_parser
from .alignment_checks import TasksCoincideWarning
from .alignment_report import write_outputs
from .alignment_run import (
    DEFAULT_EPOCHS,
    DEFAULT_MNIST_N,
    DEFAULT_NODES,
    DEFAULT_RULE,
    TASKS,
    AlignmentSettings,
    alignment_experiment,
)
from .cnn_alignment import add_cnn_arguments, run_cnn_cli

__all__ = ["CLI_HELP", "add_arguments", "settings_from_args", "command_line", "run_cli"]

CLI_HELP = "Kernel alignment of trained MLPs on two digit classes (the paper's Figures 1 and 3)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m atf_lite alignment``."""
    check_parser(parser)
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's 8x8 digits; mnist: the MNIST test split",
    )
    parser.add_argument(
        "--mnist-root",
        default=None,
        metavar="DIR",
        help="directory holding the MNIST IDX files (default: $ATF_LITE_MNIST_DIR)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        type=int,
        default=(2, 3),
        metavar=("A", "B"),
        help="the two digit classes; A is labelled -1 and B +1 (default: 2 3)",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"number of images (default: all for digits, {DEFAULT_MNIST_N} for mnist)",
    )
    parser.add_argument("--width", type=int, default=256, help="hidden width (default: 256)")
    parser.add_argument(
        "--target-width",
        type=int,
        default=None,
        help="width of the random network that defines the targets y (default: --width)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"training epochs (default: {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--rule",
        choices=PATH_RULES,
        default=None,
        help="how the path-averaged kernel is integrated: exact (the default for ReLU MLPs: "
        "the path is split where a ReLU switches and every piece is integrated exactly) or a "
        "quadrature rule with --nodes nodes",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=DEFAULT_NODES,
        help=f"quadrature nodes, for the quadrature rules only (default: {DEFAULT_NODES})",
    )
    parser.add_argument(
        "--out",
        default="alignment-results",
        metavar="DIR",
        help="output directory (default: ./alignment-results)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="recompute even when a cached result exists"
    )
    add_cnn_arguments(parser)


def _rule(args: argparse.Namespace) -> str:
    # Exact integration is the default for the ReLU MLPs this command trains.
    return DEFAULT_RULE if args.rule is None else args.rule


def settings_from_args(args: argparse.Namespace) -> AlignmentSettings:
    """The :class:`~atf_lite.experiments.alignment_run.AlignmentSettings` of parsed options
    (``--n`` defaults to all images for digits and to 500 for MNIST)."""
    check_args(args)
    n = args.n if args.n is not None else (DEFAULT_MNIST_N if args.dataset == "mnist" else None)
    return AlignmentSettings(
        dataset=args.dataset,
        pair=tuple(args.pair),
        n=n,
        width=args.width,
        seed=args.seed,
        epochs=args.epochs,
        nodes=args.nodes,
        rule=_rule(args),
        target_width=args.target_width,
    )


def command_line(args: argparse.Namespace) -> str:
    """The shell command that reproduces ``args`` (recorded in ``summary.json``)."""
    check_args(args)
    parts = ["python", "-m", "atf_lite", "alignment", "--dataset", args.dataset]
    if args.mnist_root is not None:
        parts += ["--mnist-root", str(args.mnist_root)]
    parts += ["--pair", str(args.pair[0]), str(args.pair[1])]
    if args.n is not None:
        parts += ["--n", str(args.n)]
    parts += ["--width", str(args.width), "--seed", str(args.seed)]
    if args.target_width is not None:
        parts += ["--target-width", str(args.target_width)]
    if args.epochs != DEFAULT_EPOCHS:
        parts += ["--epochs", str(args.epochs)]
    # The rule is always recorded: its default has changed once (Gauss–Legendre before exact).
    parts += ["--rule", _rule(args)]
    if _rule(args) != "exact" and args.nodes != DEFAULT_NODES:
        parts += ["--nodes", str(args.nodes)]
    parts += ["--out", str(args.out)]
    return shlex.join(parts)


def run_cli(args: argparse.Namespace) -> int:
    """Run one seed of the experiment, write figures and ``summary.json``, print a summary (and
    a warning on standard error when the two tasks nearly coincide; the JSON records it)."""
    check_args(args)
    if getattr(args, "arch", "mlp") == "cnn":
        return run_cnn_cli(args)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TasksCoincideWarning)
            result = alignment_experiment(
                settings_from_args(args), mnist_root=args.mnist_root, use_cache=not args.no_cache
            )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in caught:
        if issubclass(warning.category, TasksCoincideWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    written = write_outputs(result, args.out, command=command_line(args))
    elapsed = time.perf_counter() - start
    print(
        f"{args.dataset} {args.pair[0]} vs {args.pair[1]}: n = {result.X.shape[0]}, "
        f"width {args.width}, seed {args.seed} ({elapsed:.0f} s)"
    )
    for task in TASKS:
        res = result.tasks[task]
        print(
            f"  {task:<10} alignment {res.alignment:.3f}  alignment_change "
            f"{res.alignment_change:.3f}  identity residual {res.identity_residual:.1e}  "
            f"train loss {res.train_loss:.1e}"
        )
        if res.pieces is not None:
            print(
                f"  {'':<10} pieces per input: median {np.median(res.pieces):.0f}, "
                f"max {np.max(res.pieces)}"
            )
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
