# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need: Python packages into .venv and, when missing,
# the Debian packages (Xvfb, xdotool, PostgreSQL) with apt-get.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_PACKAGES := xvfb xdotool x11-utils postgresql

.PHONY: demo test deps venv bench clean help

help:
	@echo "make demo   record a scripted one-minute session on a virtual display and show what was stored"
	@echo "make test   run the whole test suite"
	@echo "make bench  run the benchmarks (see BENCHMARKS.md)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

deps: venv
	@bash scripts/install-system-deps.sh $(DEB_PACKAGES)

demo: deps
	$(BIN)/python -m tracework.demo

test: deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: deps
	$(BIN)/pip install --quiet -e '.[bench]'
	bash benchmarks/run_all.sh

clean:
	rm -rf $(VENV) .tracework-demo
