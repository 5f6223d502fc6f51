"""Write (or check) the API page's table of which chapter uses which public function.

    python tools/api_usage.py           # rewrite the table in book/api.md
    python tools/api_usage.py --check   # exit 1 if the table is out of date

A chapter uses a public name of ``atf_lite`` when one of its code cells calls ``atf.NAME``, imports
``NAME`` from ``atf_lite`` (or one of its modules), or spells ``atf_lite.<module>.NAME``. Only
functions and classes are listed (type aliases and constants are documented in the tables
above). The table sits between two HTML comments in ``book/api.md``, so the rest of the page is
written by hand.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "book" / "api.md"
START = "<!-- chapter usage: written by tools/api_usage.py -->"
END = "<!-- end of chapter usage -->"

_ATTRIBUTE = re.compile(r"\batf\.([A-Za-z_]\w*)")
_DOTTED = re.compile(r"\batf_lite(?:\.\w+)*\.([A-Za-z_]\w*)")
_IMPORT = re.compile(r"from\s+atf_lite(?:\.[\w.]+)?\s+import\s+(\([^)]*\)|[^\n]+)")


def public_callables() -> dict[str, str]:
    """Public name → ``module.name`` for every function and class that ``atf_lite`` exports."""
    sys.path.insert(0, str(ROOT))
    import atf_lite

    found = {}
    for name in atf_lite.__all__:
        obj = getattr(atf_lite, name, None)
        if inspect.isfunction(inspect.unwrap(obj)) or inspect.isclass(obj):
            found[name] = f"{obj.__module__}.{name}"
    return found


def names_used(notebook: Path) -> set[str]:
    """Every identifier a notebook's code cells take from ``atf_lite``."""
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    names = set(_ATTRIBUTE.findall(code)) | set(_DOTTED.findall(code))
    for group in _IMPORT.findall(code):
        for part in group.strip("()").replace("\n", " ").split(","):
            if part.strip():
                names.add(part.split(" as ")[0].strip())
    return names


def chapter_title(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            first = "".join(cell["source"]).lstrip().splitlines()[0]
            if first.startswith("# "):
                return first[2:].strip()
    return notebook.stem


def usage_table() -> str:
    public = public_callables()
    rows = ["| Chapter | Functions and classes it calls |", "|---|---|"]
    for notebook in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        used = sorted(names_used(notebook) & set(public), key=str.lower)
        links = ", ".join(f"{{py:obj}}`~{public[name]}`" for name in used)
        rows.append(f"| {{doc}}`{notebook.stem}` | {links or '—'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is current")
    args = parser.parse_args(argv)
    page = API_PAGE.read_text()
    if START not in page or END not in page:
        print(f"{API_PAGE}: the markers {START!r} and {END!r} are missing", file=sys.stderr)
        return 1
    before, rest = page.split(START, 1)
    _, after = rest.split(END, 1)
    updated = f"{before}{START}\n{usage_table()}\n{END}{after}"
    if args.check:
        if updated != page:
            print("book/api.md: the chapter-usage table is out of date; run "
                  "python tools/api_usage.py", file=sys.stderr)
            return 1
        return 0
    if updated != page:
        API_PAGE.write_text(updated)
        print(f"rewrote the chapter-usage table of {API_PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
