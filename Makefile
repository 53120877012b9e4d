# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make book   build the executed site into _build/html
#   make test   run the whole test suite (it builds the book too)
#   make lab    open JupyterLab on the book, chapters as notebooks (as on Binder)
# Each creates .venv and installs the pinned requirements the first time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The book's torch is requirements.txt's pin. TORCH=<version> (or TORCH=newest)
# installs another into a venv of its own, so .venv keeps the pinned one:
#   make test-package TORCH=2.14.1   lossutils' own tests on torch 2.14.1
TORCH_PIN := $(shell sed -n 's/^torch==//p' requirements.txt)
TORCH  ?= $(TORCH_PIN)
TORCH_REQ := $(if $(filter newest,$(TORCH)),torch,torch==$(TORCH))
VENV   := $(if $(filter $(TORCH_PIN),$(TORCH)),.venv,.venv-torch-$(TORCH))
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB_FLAGS := -n -W --keep-going
PORT   ?= 8000
# What ruff checks (its rules: pyproject.toml, [tool.ruff]).
LINTED := lossutils tests book_ext benchmarks scripts conftest.py

.PHONY: book test test-package lab serve clean browser axe

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and alone: the CPU build (a local wheel here, PyTorch's CPU
	# index on GitHub: 2.13.0+cpu), and nothing after it may replace it, so the
	# other pins go in without requirements.txt's torch line, beside the torch chosen.
	$(BIN)/python -m pip install --quiet "$(TORCH_REQ)"
	sed '/^torch==/d' requirements.txt > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet "$(TORCH_REQ)" -r $(VENV)/requirements.txt -r requirements-test.txt
	$(BIN)/python -c "import sys, torch; v = torch.__version__; print('torch', v); \
		sys.exit(None if '$(TORCH)' in ('newest', v.split('+')[0]) else f'expected torch $(TORCH), got {v}')"
	touch $(STAMP)

# The pages run in parallel into the jupyter-cache first (scripts/execute_book.py);
# the build then finds their outputs there.
book: $(STAMP)
	$(BIN)/python scripts/execute_book.py
	$(BIN)/jupyter-book build --all $(JB_FLAGS) .
	@echo
	@echo "Built: open file://$(CURDIR)/_build/html/index.html  (or: make serve)"

# Browser tests need Debian's chromium. CI (CI=true, root) installs it where
# missing; elsewhere the browser tests skip with a message saying how.
browser:
	@if [ "$${CI:-}" = "true" ] && [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The accessibility tests run axe-core, from the npm registry, pinned by
# tests/axe/package-lock.json (npm ci checks its sha512), installed into
# tests/axe/node_modules: used only by the tests, never part of the site. CI
# (CI=true, root) installs Debian's npm where missing; elsewhere, without npm,
# the axe tests skip with a message saying how.
AXE_STAMP := tests/axe/node_modules/.installed
$(AXE_STAMP): tests/axe/package.json tests/axe/package-lock.json
	@if [ "$${CI:-}" = "true" ] && ! command -v npm >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
	fi
	@if command -v npm >/dev/null; then \
		(cd tests/axe && npm ci --no-audit --no-fund --ignore-scripts) && touch $@ || { \
		echo "npm ci in tests/axe failed: the accessibility tests will skip"; [ "$${CI:-}" != "true" ]; }; \
	else \
		echo "No npm: axe-core not installed, the accessibility tests will skip (apt-get install npm)"; \
	fi
axe: $(AXE_STAMP)

# Lint first (a finding fails the run), then the docstring examples, then the tests.
test: $(STAMP) browser $(AXE_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/python -m pytest -q --doctest-modules lossutils
	$(BIN)/python -m pytest -n 2

# lossutils' own tests, without the book or a browser: what CI runs on the
# newest torch (make test-package TORCH=2.14.1).
test-package: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not book and not browser"

# JupyterLab on the book. binder/postBuild writes the setting Binder has
# (a chapter's .md opens as a notebook, through jupytext) into this venv, not
# into your home. Options go in LAB_ARGS, e.g. LAB_ARGS="--no-browser --port=8899".
lab: $(STAMP)
	NB_PYTHON_PREFIX="$(abspath $(VENV))" bash binder/postBuild
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

serve:
	@test -f _build/html/index.html || { echo "No site yet: run 'make book' first."; exit 1; }
	@echo "Serving http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean:
	rm -rf _build .pytest_cache .hypothesis test-artifacts
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
