# The tutorial's commands. Each sets itself up on first use: a virtual
# environment in .venv with the dependencies pinned in pyproject.toml.
#
#   make run                  serve the latest step on http://127.0.0.1:8000/chat/
#   make run STEP=02          serve step 02
#   make run PORT=8002        serve on port 8002, when 8000 is taken (make run says so)
#   make check STEP=02        run step 02's checks (add DIR=path/to/your/copy to check your own)
#   make test                 every step's checks, the before/after proof, and the docs build
#   make docs                 serve the docs site on http://127.0.0.1:8001/
#   make generate             re-capture the outputs the docs show (handshake, check runs)
#   make bench                measure steps 04-06 and a bare server side by side (a few minutes);
#                             writes the table and plot to docs/assets/bench/

STEP ?= latest
PORT ?= 8000
DIR ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run check test docs generate setup bench bench-setup clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[test,docs]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) -m tutorial run $(STEP) --port $(PORT)

check: setup
	$(PY) -m tutorial check $(STEP) $(if $(DIR),--dir $(DIR))

test: setup
	$(PY) -m tutorial test

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

generate: setup
	$(PY) -m tutorial.docs_generate

# Only the benchmark draws a plot, so only it installs matplotlib (the "bench" extra).
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --editable '.[test,docs,bench]'
	touch $@

bench-setup: $(VENV)/.bench-installed

bench: bench-setup
	$(PY) -m tutorial.bench

clean:
	rm -rf $(VENV) site steps/*/db.sqlite3
