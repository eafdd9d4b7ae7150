# The tutorial's commands. Each sets itself up on first use: a virtual
# environment in .venv with the dependencies pinned in pyproject.toml.
#
# The learner's loop, in a workspace of your own (work/, which git ignores):
#   make start                begin the next step (STEP=02: that one), from your own last step
#   make watch                on every save: check the current step, and serve it on :8000
#   make hint                 the next hint for the first task that does not pass yet (DIR=: your copy elsewhere)
#   make check                the current step's checklist, once (V=1: pytest's whole output, and every layer of earlier steps' checks)
#   make progress             every step: done, in progress, not started
#   make reset                start the current step over (your version is kept in work/.backup/)
#   make solution             the diff from your copy of the step to ours
#
# And:
#   make run                  serve the current step (no workspace: the last step) on http://127.0.0.1:8000/chat/
#   make run STEP=02          serve our step 02 (DIR=path: your own copy; PORT=8002: another port)
#   make run STEP=10 STACK=1  serve it as production does: https through nginx, two processes on Redis
#                             (step 11 is served so by default when nginx, PostgreSQL and Redis are
#                             installed; STACK=0: with runserver and its development settings)
#   make check STEP=02        our step 02's checklist (add DIR=path/to/your/copy to check your own)
#   make test                 every step's checks, each step's replay, and the docs build
#   make docs                 serve the docs site on http://127.0.0.1:8001/
#   make generate             re-capture the outputs the docs show (handshake, check runs)
#   make bench                measure steps 04-07, the performance page's levers and a bare server
#                             side by side, three times over (about nine minutes);
#                             writes the table and plot to docs/assets/bench/
#   make bench-watch          how long make watch takes from a save to its verdict, step by step

STEP ?=
PORT ?= 8000
DIR ?=
STACK ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run check test docs generate setup bench bench-setup bench-watch clean start watch hint progress reset solution

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[test,docs]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) -m tutorial run $(STEP) --port $(PORT) $(if $(DIR),--dir $(DIR)) $(if $(filter 1,$(STACK)),--stack)$(if $(filter 0,$(STACK)),--no-stack)

check: setup
	$(PY) -m tutorial check $(STEP) $(if $(DIR),--dir $(DIR)) $(if $(filter 1,$(V)),-v)

start: setup
	$(PY) -m tutorial start $(STEP)

watch: setup
	$(PY) -m tutorial watch --port $(PORT)

hint progress reset solution: setup
	$(PY) -m tutorial $@ $(if $(filter-out progress reset,$@),$(STEP) $(if $(DIR),--dir $(DIR)))

test: setup
	$(PY) -m tutorial test

docs: setup
	TUTORIAL_OWN_BENCH=1 NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

generate: setup
	$(PY) -m tutorial generate

# Only the benchmark draws a plot, so only it installs matplotlib (the "bench" extra).
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --editable '.[test,docs,bench]'
	touch $@

bench-setup: $(VENV)/.bench-installed

bench: bench-setup
	$(PY) -m tutorial bench

bench-watch: setup
	$(PY) -m tutorial bench-watch

clean:
	rm -rf $(VENV) site steps/*/db.sqlite3
