"""Sphinx extension with the book's own rendering rules.

* ``prf:proof`` takes an optional title (``:::{prf:proof} Proof of {prf:ref}`thm-x```), sets it
  off above the text and gives every proof its own HTML id (sphinx-proof gives them all
  ``id="proof"``, and every theorem body ``id="proof-content"``).
* The bibliography style ``atf_author_year`` labels entries "LeJeune and Alemohammad, 2024",
  exactly as ``bibtex_reference_style = author_year`` cites them in the text, sorts them by
  author and year, and links their DOI, arXiv id or URL.
* A citation written as plain text in a docstring, ``{Cristianini et al., 2001}``, is turned into
  a citation of the one bibliography entry with that first author and year.
* Repository, issue, edit and launch (Binder, Colab) buttons appear only when the build is told
  where the repository lives: ``ATF_BOOK_REPOSITORY_URL`` (e.g. ``https://github.com/owner/name``,
  set by the publishing workflow) and optionally ``ATF_BOOK_BRANCH`` (default ``main``).
* Each script is emitted once per page, and sphinx-thebe's assets only when live code (thebe)
  is switched on: it is off, and its configuration script was included twice, an error.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

REPOSITORY_ENV = "ATF_BOOK_REPOSITORY_URL"
BRANCH_ENV = "ATF_BOOK_BRANCH"
BINDER_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"


# --- bibliography -----------------------------------------------------------------------------


def _plain(rich_parts) -> str:
    return " ".join(part.render_as("text") for part in rich_parts)


def author_year_label(entry) -> str:
    """``"Last, YEAR"``, ``"Last and Other, YEAR"`` or ``"Last et al., YEAR"`` for a pybtex entry.

    The same rule as sphinxcontrib-bibtex's ``author_year`` in-text citations, so that the
    bibliography's labels read exactly like the citations that point at them.
    """
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    surnames = [_plain(p.rich_prelast_names + p.rich_last_names) for p in persons]
    if not surnames:
        who = entry.fields.get("title", entry.key)
    elif len(surnames) == 1:
        who = surnames[0]
    elif len(surnames) == 2:
        who = f"{surnames[0]} and {surnames[1]}"
    else:
        who = f"{surnames[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Author–year labels; equal labels get a, b, … after the year, in sorted order."""

    def format_labels(self, sorted_entries):
        labels = [author_year_label(entry) for entry in sorted_entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``unsrt`` entries (with DOI, arXiv and URL links), author–year labels and order."""

    default_label_style = "atf_author_year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "atf_author_year", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "atf_author_year", AuthorYearStyle)


# Plain-text citations in docstrings: {Surname et al., 2001}, {Surname and Other, 2001}.
PLAIN_CITATION = re.compile(
    r"\{(?P<surname>[^\W\d_][\w'\- ]*?)(?: et al\.| and [^\W\d_][\w'\- ]*?)?, (?P<year>\d{4})\}"
)


def _bibliography_index(app: Sphinx) -> dict[tuple[str, str], list[str]]:
    """``(first-author surname, year) -> [keys]`` over the configured ``.bib`` files."""
    from pybtex.database import parse_file

    index: dict[tuple[str, str], list[str]] = {}
    for bibfile in app.config.bibtex_bibfiles:
        data = parse_file(str(Path(app.srcdir) / bibfile), bib_format="bibtex")
        for key, entry in data.entries.items():
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            if persons:
                surname = _plain(persons[0].rich_prelast_names + persons[0].rich_last_names)
                index.setdefault((surname, entry.fields.get("year", "")), []).append(key)
    return index


def link_plain_citations(app, what, name, obj, options, lines):
    """``autodoc-process-docstring``: turn ``{Surname et al., YEAR}`` into ``:cite:p:`key```."""
    index = None

    def replace(match):
        nonlocal index
        if index is None:
            index = _bibliography_index(app)
        keys = index.get((match["surname"], match["year"]), [])
        if len(keys) != 1:
            logger.warning(
                "plain-text citation %s in the docstring of %s matches %d bibliography entries",
                match[0], name, len(keys), location=name,
            )
            return match[0]
        return f":cite:p:`{keys[0]}`"

    lines[:] = [PLAIN_CITATION.sub(replace, line) for line in lines]


# --- proofs -------------------------------------------------------------------------------------


class ProofDirective(SphinxDirective):
    """``prf:proof`` with an optional title and a unique id per proof."""

    has_content = True
    required_arguments = 0
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = {"class": directives.class_option}

    def run(self) -> list[nodes.Node]:
        from sphinx_proof.nodes import proof_node

        serial = self.env.new_serialno("atf-proof") + 1
        admonition = nodes.admonition(
            classes=["proof", "prf-proof", *self.options.get("class", [])],
            ids=[f"proof-{serial}"],
        )
        # The title is set off above the text, like an admonition's.
        title = nodes.paragraph(classes=["admonition-title", "prf-proof-title"])
        if self.arguments:
            text_nodes, messages = self.state.inline_text(self.arguments[0], self.lineno)
            title += text_nodes
            admonition += messages
        else:
            title += nodes.Text("Proof")
        admonition += title
        self.state.nested_parse(self.content, self.content_offset, admonition)
        node = proof_node()
        node += admonition
        return [node]


# Body sections that sphinx-proof and sphinx-exercise give one fixed id on every page.
_SHARED_BODY_IDS = ("proof-content", "exercise-content", "solution-content")


def unique_theorem_body_ids(app: Sphinx, doctree: nodes.document) -> None:
    """Theorem, exercise and solution bodies all share an id per kind (``proof-content``,
    ``exercise-content``, ``solution-content``): derive a unique one from the enclosing box."""
    for kind in _SHARED_BODY_IDS:
        stem = kind.removesuffix("-content")
        sections = [s for s in doctree.findall(nodes.section) if s["ids"] == [kind]]
        for serial, section in enumerate(sections, start=1):
            parent_ids = section.parent.get("ids", []) if section.parent is not None else []
            section["ids"] = [f"{parent_ids[0]}-content" if parent_ids else f"{stem}-{serial}"]


def unique_element_ids(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Citations inside autodoc docstrings are numbered per docstring (``id1``, ``id2``, ...), so
    one API page can repeat an id; every later repeat gets a numeric suffix. Nothing links to
    these citation anchors, so no reference needs to follow the new name."""
    seen: set[str] = set()
    for node in doctree.findall(nodes.Element):
        ids = node.get("ids", [])
        for position, element_id in enumerate(ids):
            if element_id in seen:
                serial = 2
                while f"{element_id}-{serial}" in seen:
                    serial += 1
                element_id = ids[position] = f"{element_id}-{serial}"
            seen.add(element_id)


# --- repository and launch buttons --------------------------------------------------------------


def theme_options(app: Sphinx, config) -> None:
    """Show repository, issue, edit and launch buttons when the repository's URL is known."""
    options = config.html_theme_options
    # The logo stands beside the book's title, not instead of it.
    options.setdefault("logo", {}).setdefault("text", config.html_title)
    url = os.environ.get(REPOSITORY_ENV, "").strip().rstrip("/")
    if not url:
        # A local build names no repository (Jupyter Book's default names its own).
        options["repository_url"] = ""
        for button in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
            options[button] = False
        options["launch_buttons"] = {}
        return
    if not re.fullmatch(r"https://[\w.\-]+(:\d+)?/[\w.\-]+/[\w.\-]+", url):
        raise ValueError(f"{REPOSITORY_ENV} must look like https://host/owner/name, got {url!r}")
    options.update(
        repository_url=url,
        repository_branch=os.environ.get(BRANCH_ENV, "").strip() or "main",
        path_to_docs="",
        use_repository_button=True,
        use_issues_button=True,
        use_edit_page_button=True,
    )
    # Binder builds any public git repository; Colab opens notebooks from GitHub only.
    launch = {"notebook_interface": "jupyterlab", "binderhub_url": BINDER_URL}
    if url.startswith("https://github.com/"):
        launch["colab_url"] = COLAB_URL
    options["launch_buttons"] = launch


# --- page assets --------------------------------------------------------------------------------


def _thebe_enabled(app: Sphinx) -> bool:
    return bool(app.config.html_theme_options.get("launch_buttons", {}).get("thebe"))


def _is_thebe_asset(asset) -> bool:
    name = str(getattr(asset, "filename", asset) or "")
    body = getattr(asset, "attributes", {}).get("body", "")
    return "thebe" in name.rsplit("/", 1)[-1] or body.startswith("const THEBE_JS_URL")


def page_assets(app, pagename, templatename, context, doctree) -> None:
    """Each script once, and none of sphinx-thebe's assets while live code (thebe) is off.

    Sphinx 7.4 keeps an inline script added after the builder started twice (once with the
    file name ``None`` and once with ``""``), and sphinx-thebe's ``const THEBE_JS_URL`` declared
    twice is a JavaScript error on every page.
    """
    thebe = _thebe_enabled(app)
    seen, scripts = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", script) or "",
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen and (thebe or not _is_thebe_asset(script)):
            seen.add(key)
            scripts.append(script)
    context["script_files"] = scripts
    if not thebe:
        context["css_files"] = [c for c in context.get("css_files", []) if not _is_thebe_asset(c)]


def drop_thebe_config(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """sphinx-thebe writes a configuration naming a default Binder repository into every page."""
    if _thebe_enabled(app):
        return
    for raw in list(doctree.findall(nodes.raw)):
        if "text/x-thebe-config" in raw.astext():
            raw.parent.remove(raw)


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx_proof")
    app.setup_extension("sphinx.ext.autodoc")
    app.add_directive_to_domain("prf", "proof", ProofDirective, override=True)
    app.connect("doctree-read", unique_theorem_body_ids)
    app.connect("config-inited", theme_options)
    app.connect("autodoc-process-docstring", link_plain_citations)
    app.connect("html-page-context", page_assets, priority=900)
    app.connect("doctree-resolved", drop_thebe_config, priority=900)
    app.connect("doctree-resolved", unique_element_ids, priority=950)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
