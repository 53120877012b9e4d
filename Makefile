# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make book   build the executed site into _build/html
#   make test   run the whole test suite (it builds the book too)
# Both create .venv and install the pinned requirements the first time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB_FLAGS := -n -W --keep-going
PORT   ?= 8000
# What ruff checks (its rules: pyproject.toml, [tool.ruff]).
LINTED := lossutils tests book_ext benchmarks scripts conftest.py

.PHONY: book test serve clean browser

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 first and alone: it is the CPU build, and nothing after it
	# may replace it (see requirements.txt).
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build --all $(JB_FLAGS) .
	@echo
	@echo "Built: open file://$(CURDIR)/_build/html/index.html  (or: make serve)"

# Browser tests need Debian's chromium. CI (CI=true, root) installs it where
# missing; elsewhere the browser tests skip with a message saying how.
browser:
	@if [ "$${CI:-}" = "true" ] && [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# Lint first (a finding fails the run), then the docstring examples, then the tests.
test: $(STAMP) browser
	$(BIN)/ruff check $(LINTED)
	$(BIN)/python -m pytest -q --doctest-modules lossutils
	$(BIN)/python -m pytest -n 2

serve:
	@test -f _build/html/index.html || { echo "No site yet: run 'make book' first."; exit 1; }
	@echo "Serving http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean:
	rm -rf _build .pytest_cache .hypothesis test-artifacts
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
