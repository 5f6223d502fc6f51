"""How much does each number a chapter quotes move when the machine changes?

Executes a chapter notebook several times with ``ATF_LITE_PERTURB=k`` (every network built by
atf_lite starts one ulp away, as on another CPU; see ``atf_lite.perturbation``), each time with a
fresh result cache, collects every number the chapter glues into its text (myst-nb ``glue``),
and prints, per glued name, the value stored in the notebook and the largest relative deviation
of the perturbed runs from it.  Use the output to choose the tolerances of a chapter's checks:
a tolerance must exceed the deviation measured here and stay below the error it must catch.

    python tools/perturbation_spread.py book/07_kernel_alignment.ipynb --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

GLUE_PREFIX = "application/papermill.record/"


def glued_numbers(notebook) -> dict[str, float]:
    """Every glued value of ``notebook`` that parses as a finite real number."""
    values = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output.get("data", {})
            text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain"))
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                values[name] = value
    return values


def execute(path: pathlib.Path, seed: int, timeout: int) -> tuple[dict[str, float], float]:
    """Glued numbers of ``path`` executed with perturbation ``seed``; and the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as cache:
        env = {"ATF_LITE_PERTURB": str(seed), "ATF_LITE_CACHE_DIR": cache,
               "ATF_LITE_PROGRESS": "0"}
        previous = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            start = time.perf_counter()
            NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            seconds = time.perf_counter() - start
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return glued_numbers(notebook), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=pathlib.Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if any(seed < 1 for seed in args.seeds):
        parser.error("--seeds must be positive integers (0 means no perturbation)")
    stored = glued_numbers(nbformat.read(args.notebook, as_version=4))
    if not stored:
        print(f"{args.notebook}: no glued numbers in the stored outputs", file=sys.stderr)
        return 1
    runs = {}
    for seed in args.seeds:
        runs[seed], seconds = execute(args.notebook, seed, args.timeout)
        print(f"perturbation seed {seed}: executed in {seconds:.0f} s", file=sys.stderr)
    rows = []
    for name, reference in stored.items():
        values = [runs[seed].get(name, math.nan) for seed in args.seeds]
        scale = abs(reference) if reference != 0 else 1.0
        deviation = max(abs(v - reference) / scale for v in values)
        rows.append((deviation, name, reference, values))
    rows.sort(key=lambda row: (-row[0] if math.isfinite(row[0]) else -math.inf))
    print(f"{'glued name':<40}{'stored':>12}{'max rel. deviation':>20}   perturbed values")
    for deviation, name, reference, values in rows:
        shown = " ".join(f"{v:.6g}" for v in values)
        print(f"{name:<40}{reference:>12.6g}{deviation:>20.2e}   {shown}")
    if args.json:
        args.json.write_text(json.dumps(
            {"notebook": str(args.notebook), "seeds": args.seeds, "stored": stored,
             "perturbed": {str(k): v for k, v in runs.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
