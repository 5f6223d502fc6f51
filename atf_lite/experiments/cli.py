"""Command line for full-scale runs: ``python -m atf_lite <command> --help``.

Each command lives in a module that defines ``CLI_HELP`` (one line),
``add_arguments(parser)`` and ``run_cli(args) -> int``; it is imported only when the parser is
built, so one experiment's dependencies never slow down another.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = {
    "alignment": "atf_lite.experiments.alignment_cli",
    "sample-complexity": "atf_lite.experiments.sample_complexity_cli",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m atf_lite`` parser with one sub-command per entry of ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="python -m atf_lite",
        description="Experiments of the adaptive tangent feature book at full scale.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.CLI_HELP, description=module.CLI_HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run_cli)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit status."""
    if argv is not None and (
        not isinstance(argv, list | tuple) or not all(isinstance(arg, str) for arg in argv)
    ):
        raise TypeError(f"argv must be a list of strings or None, got {argv!r}")
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)
