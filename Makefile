# Two commands for a fresh clone:  `make book`  and  `make test`.
# Both create the virtual environment .venv (python3 -m venv) and install requirements.txt first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
# `make execute NB=book/03_theorem1.ipynb` re-executes a single chapter.
NB ?= $(NOTEBOOKS)
# Rendered pages and stored outputs carry no progress-bar noise.
export ATF_LITE_PROGRESS ?= 0

.PHONY: help venv book test test-fast test-perturbed unit notebooks book-check site-check lint \
	execute lab bench clean

help:
	@echo "make book     build the HTML book (executes every chapter, cached) -> _build/html/index.html"
	@echo "make test     lint, unit tests, every notebook under nbval, book build from stored outputs"
	@echo "make test-fast  lint and unit tests only (the edit loop)"
	@echo "make test-perturbed  every notebook under nbval as another CPU would run it (one-ulp weights)"
	@echo "make execute  re-execute notebooks in place (NB=path for one), saving their outputs"
	@echo "make lab      JupyterLab in the project's environment"
	@echo "make site-check  the built pages in headless Chromium (needs chromium, chromium-driver)"
	@echo "make bench    run the benchmarks"

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

book: venv
	$(BIN)/jupyter-book build . --builder html
	@echo "Book written to _build/html/index.html"

test: venv lint unit notebooks book-check
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		$(MAKE) site-check; \
	else echo "site-check skipped: chromium and chromium-driver are not installed"; fi

test-fast: venv lint unit

# The chapters once more as another machine would run them: every network atf_lite builds starts
# one ulp away (ATF_LITE_PERTURB, see atf_lite/perturbation.py) and every result is recomputed in
# an empty cache. Each chapter's checks must still hold, and verbatim-checked outputs still match.
test-perturbed: venv
	@cache=$$(mktemp -d); \
	ATF_LITE_PERTURB=$${ATF_LITE_PERTURB:-1} ATF_LITE_CACHE_DIR=$$cache $(PY) -m pytest --nbval-lax \
		--nbval-current-env --nbval-cell-timeout=1800 -p no:cacheprovider $(NOTEBOOKS); \
	status=$$?; rm -rf $$cache; exit $$status

lint: venv
	$(BIN)/ruff check atf_lite tests benchmarks book tools

unit: venv
	$(PY) -m pytest tests

notebooks: venv
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:cacheprovider $(NOTEBOOKS)

# Render the stored outputs (no execution) with warnings as errors: broken references, bad
# directives and missing citations fail.
# The copied configuration lives in _build/check, so the local extension's folder is made absolute.
book-check: venv
	mkdir -p _build/check
	sed -e 's/^  execute_notebooks: cache$$/  execute_notebooks: "off"/' \
		-e 's|^    atf_book: book/_ext$$|    atf_book: $(CURDIR)/book/_ext|' _config.yml > _build/check/_config.yml
	grep -q 'execute_notebooks: "off"' _build/check/_config.yml
	grep -q 'atf_book: /' _build/check/_config.yml
	$(BIN)/jupyter-book build . --config _build/check/_config.yml --path-output _build/check \
		--all -W -n --keep-going

# The rendered pages in a real browser (Debian's chromium + chromium-driver, network blocked):
# MathJax errors or raw TeX, unresolved references, broken local links and images, JavaScript
# errors, outputs or equations wider than the column at 1400 px, phone navigation at 390 px.
SITE := _build/check/_build/html
site-check: venv
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "site-check: needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"; \
		exit 1; }
	test -f $(SITE)/book/intro.html || $(MAKE) book-check
	$(PY) tools/site_check.py $(SITE)

execute: venv
	@for nb in $(NB); do \
		echo "executing $$nb"; \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

# JupyterLab refuses to run as root unless told to (containers, CI machines).
lab: venv
	$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) book

bench: venv
	$(PY) benchmarks/bench_ntk.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
