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

.PHONY: help venv book test unit notebooks book-check lint execute lab bench clean

help:
	@echo "make book     build the HTML book (executes every chapter, cached) -> _build/html/index.html"
	@echo "make test     lint, unit tests, every notebook under nbval, book build from stored outputs"
	@echo "make execute  re-execute notebooks in place (NB=path for one), saving their outputs"
	@echo "make lab      JupyterLab in the project's environment"
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

lint: venv
	$(BIN)/ruff check atf_lite tests benchmarks book

unit: venv
	$(PY) -m pytest tests

notebooks: venv
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:cacheprovider $(NOTEBOOKS)

# Render the stored outputs (no execution) with warnings as errors: broken references, bad
# directives and missing citations fail.
book-check: venv
	mkdir -p _build/check
	sed 's/^  execute_notebooks: cache$$/  execute_notebooks: "off"/' _config.yml > _build/check/_config.yml
	grep -q 'execute_notebooks: "off"' _build/check/_config.yml
	$(BIN)/jupyter-book build . --config _build/check/_config.yml --path-output _build/check \
		--all -W -n --keep-going

execute: venv
	@for nb in $(NB); do \
		echo "executing $$nb"; \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

lab: venv
	$(BIN)/jupyter lab book

bench: venv
	$(PY) benchmarks/bench_ntk.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
