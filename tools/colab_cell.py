"""Insert (or update) the Colab set-up cell of every chapter notebook.

    python tools/colab_cell.py [--repository URL] [--branch NAME] [--check] [NOTEBOOK ...]

A chapter opened on Colab (the book's launch button) runs in a bare Python with neither the
``atf_lite`` package nor the results that chapters read from files beside them. This script puts
one code cell before the first code cell of each notebook (``book/*.ipynb`` by default) that, on
Colab only (``"google.colab" in sys.modules``), clones the book's repository, pip-installs
``atf_lite`` from the clone and moves into its ``book/`` folder; anywhere else it does nothing.
The cell is tagged ``remove-cell`` (not shown on the site) and ``nbval-skip`` (not run by the
tests). Running the script again updates the cell in place: it is found by its first line, keeps
its cell id, and a notebook whose cell is already up to date is not rewritten.

Where the repository's address comes from, in this order:

1. ``--repository URL``;
2. ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY``, which GitHub Actions sets: the publishing workflow
   (``.github/workflows/book.yml``) runs this script before building, so the notebooks that the
   published site offers for download name the repository the workflow ran in;
3. ``git remote get-url origin``, as an ``https://`` address;
4. none: the cell then stops on Colab with a message asking for a clone and ``pip install``.

Limits. Colab opens a chapter from the *committed* notebook on GitHub, not from the published
copy, so the committed cell must already carry the address: run this script (with the repository
pushed to its public home, or with ``--repository``) and commit the notebooks. A fork that does
not rerun it installs the original repository's package. The clone is shallow, of the default
branch unless ``--branch`` is given, so a chapter opened from another branch runs against the
default branch's package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

MARKER = "# Colab set-up (tools/colab_cell.py). On Colab only: clone the book's repository,"
TAGS = ["remove-cell", "nbval-skip"]
CLONE = "/content/atf-lite"

TEMPLATE = """{marker}
# install its package atf_lite and run from its book/ folder. Elsewhere this does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    repository = {repository}
    clone = {clone}
    if not repository:
        raise RuntimeError(
            "This copy of the chapter does not name its repository: clone the repository, "
            "`pip install` the clone and start the notebook from its book/ folder."
        )
    if not os.path.isdir(clone):
        command = ["git", "clone", "--depth", "1", {branch}repository, clone]
        subprocess.run(command, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", clone], check=True)
    os.chdir(os.path.join(clone, "book"))"""


def cell_source(repository: str, branch: str | None = None) -> str:
    branch_args = f'"--branch", {json.dumps(branch)}, ' if branch else ""
    return TEMPLATE.format(marker=MARKER, repository=json.dumps(repository),
                           clone=json.dumps(CLONE), branch=branch_args)


def https_url(remote: str) -> str | None:
    """``https://host/owner/name`` for a git remote (https or ssh form), or None."""
    remote = remote.strip()
    match = (re.fullmatch(r"https://([^/\s]+)/([\w.\-]+)/([\w.\-]+?)(?:\.git)?/?", remote)
             or re.fullmatch(r"(?:ssh://)?git@([^:/\s]+)[:/]([\w.\-]+)/([\w.\-]+?)(?:\.git)?",
                             remote))
    if not match:
        return None
    host, owner, name = match.groups()
    return f"https://{host}/{owner}/{name}"


def find_repository(root: Path) -> str:
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server.rstrip('/')}/{repository}"
    try:
        remote = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    return https_url(remote) or ""


def update_notebook(notebook: nbformat.NotebookNode, source: str) -> bool:
    """Put the set-up cell before the first other code cell; True if the notebook changed."""
    cells = notebook.cells
    existing = [i for i, c in enumerate(cells)
                if c.cell_type == "code" and c.source.startswith(MARKER)]
    cell = cells.pop(existing[0]) if existing else None
    for extra in reversed(existing[1:]):
        cells.pop(extra - 1)
    if cell is None:
        cell = nbformat.v4.new_code_cell(source)
    before = (cell.source, list(cell.metadata.get("tags", [])))
    cell.source = source
    cell.metadata["tags"] = TAGS + [t for t in cell.metadata.get("tags", []) if t not in TAGS]
    cell.outputs, cell.execution_count = [], None
    position = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells.insert(position, cell)
    moved = not existing or existing[0] != position or len(existing) > 1
    return moved or before != (cell.source, list(cell.metadata["tags"]))


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to update (default: book/*.ipynb)")
    parser.add_argument("--repository", help="the repository's https address")
    parser.add_argument("--branch", help="the branch to clone on Colab (default: the default)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook is not up to date")
    args = parser.parse_args(argv)

    repository = args.repository if args.repository is not None else find_repository(root)
    if repository and not https_url(repository):
        parser.error(f"--repository must be an https://host/owner/name address, got {repository!r}")
    source = cell_source(https_url(repository) or "", args.branch)
    notebooks = args.notebooks or sorted((root / "book").glob("*.ipynb"))
    stale = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        if update_notebook(notebook, source):
            stale.append(path)
            if not args.check:
                nbformat.write(notebook, path)
    verb = "would update" if args.check else "updated"
    print(f"colab cell ({repository or 'no repository address'}): {verb} {len(stale)} of "
          f"{len(notebooks)} notebooks" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
