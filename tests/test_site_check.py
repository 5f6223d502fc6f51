"""The pure-Python parts of the book's site tooling: the browser check's text rules, the Colab
set-up cell, and the bibliography's author-year labels."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def _load(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


site_check = _load("site_check", REPO / "tools" / "site_check.py")
colab_cell = _load("colab_cell", REPO / "tools" / "colab_cell.py")


@pytest.mark.parametrize(
    "text",
    [r"the kernel \(K_0\) grows", r"\[ x \]", r"$$x$$", r"value \frac{1}{2}", r"\begin{align}"],
)
def test_raw_tex_is_found(text):
    assert site_check.raw_tex_snippets(text)


@pytest.mark.parametrize("text", ["plain prose, 3 < 4", "a price Ω(Γ)", "C:/path", "50 $ fee"])
def test_prose_is_not_raw_tex(text):
    assert site_check.raw_tex_snippets(text) == []


def test_raw_citations():
    text = "cosine {Cristianini et al., 2001}; centred {Cortes et al., 2012}. Sets {1, 2}."
    assert site_check.raw_citations(text) == ["{Cristianini et al., 2001}", "{Cortes et al., 2012}"]
    assert site_check.raw_citations("[Cortes et al., 2012] and {x, 2012}") == []


def test_local_target(tmp_path):
    (tmp_path / "book").mkdir()
    base = "http://127.0.0.1:8000/"
    assert site_check.local_target(tmp_path, base, base + "book/a%20b.html#sec") == (
        tmp_path / "book" / "a b.html", "sec")
    assert site_check.local_target(tmp_path, base, base + "book/")[0] == (
        tmp_path / "book" / "index.html")
    assert site_check.local_target(tmp_path, base, "https://arxiv.org/abs/2308.15478") is None
    assert site_check.local_target(tmp_path, base, "mailto:someone@example.org") is None


def test_html_ids_and_redirects(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<div id="proof-1"></div><a name="old"></a><span id=\'x\'>', encoding="utf-8")
    assert site_check.html_ids(page) == {"proof-1", "old", "x"}
    redirect = tmp_path / "index.html"
    redirect.write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    assert site_check.is_redirect(redirect) and not site_check.is_redirect(page)


def _notebook(tmp_path) -> pathlib.Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("import numpy as np", metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_code_cell("print(np.pi)"),
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)
    return path


def test_colab_cell_is_inserted_once_and_updated_in_place(tmp_path):
    path = _notebook(tmp_path)
    assert colab_cell.main([str(path)]) == 0
    first = path.read_bytes()
    cells = nbformat.read(path, as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "code", "code"]
    assert cells[1].source.startswith(colab_cell.MARKER)
    assert cells[1].metadata["tags"] == ["remove-cell", "nbval-skip"]
    assert 'repository = ""' in cells[1].source

    assert colab_cell.main([str(path)]) == 0
    assert path.read_bytes() == first  # idempotent: nothing rewritten
    assert colab_cell.main(["--check", str(path)]) == 0

    url = "https://github.com/someone/atf-lite"
    assert colab_cell.main(["--check", "--repository", url, str(path)]) == 1
    assert colab_cell.main(["--repository", url, str(path)]) == 0
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) == 4 and cells[1].id == nbformat.reads(first.decode(), 4).cells[1].id
    assert f'repository = "{url}"' in cells[1].source
    compile(cells[1].source, "colab cell", "exec")


def test_colab_cell_does_nothing_off_colab(tmp_path):
    source = colab_cell.cell_source("https://github.com/someone/atf-lite", "main")
    namespace: dict = {}
    exec(compile(source, "colab cell", "exec"), namespace)  # no google.colab here: a no-op
    assert "repository" not in namespace


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/owner/name.git", "https://github.com/owner/name"),
        ("git@github.com:owner/name.git", "https://github.com/owner/name"),
        ("ssh://git@gitlab.com/owner/name", "https://gitlab.com/owner/name"),
        ("/work/main", None),
        ("https://github.com/owner", None),
    ],
)
def test_https_url(remote, url):
    assert colab_cell.https_url(remote) == url


def test_bibliography_labels_read_like_the_citations():
    pybtex_database = pytest.importorskip("pybtex.database")
    atf_book = _load("atf_book", REPO / "book" / "_ext" / "atf_book.py")
    data = pybtex_database.parse_string(
        r"""
        @article{one, author = {Tibshirani, Robert}, title = {T}, year = {1996}}
        @article{two, author = {Lions, P.-L. and Mercier, Bertrand}, title = {T}, year = {1979}}
        @article{three, author = {Cand{\`e}s, E. and Romberg, J. and Tao, T.}, title = {T},
                 year = {2006}}
        @article{four, author = {Cand{\`e}s, E. and Romberg, J. and Tao, T.}, title = {U},
                 year = {2006}}
        """,
        "bibtex",
    )
    entries = [data.entries[k] for k in ("one", "two", "three", "four")]
    labels = list(atf_book.AuthorYearLabelStyle().format_labels(entries))
    assert labels == ["Tibshirani, 1996", "Lions and Mercier, 1979",
                      "Candès et al., 2006a", "Candès et al., 2006b"]
