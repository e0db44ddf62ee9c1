# Everything a fresh machine needs: only Python 3.11+ is assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint typecheck bench clean container-check lock tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/thothbot run

# The real bot against a local Discord (the sandbox): no token, no network.
demo: $(STAMP)
	$(BIN)/thothbot demo

test: $(STAMP) tools
	$(BIN)/ruff check thothbot tests bench
	$(BIN)/ruff format --check thothbot tests bench
	$(BIN)/mypy
	scripts/container-check
	$(BIN)/pytest

# The README's examples (tests/test_readme.py) call curl and openssl as a reader would.
tools:
	@missing=; for tool in curl openssl; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi

# Builds the Dockerfile's image with podman and runs it (demo, a key on a volume, the ingress,
# a signed event, a SIGTERM stop, a restart). Needs root on Debian: it installs podman if missing.
container-check:
	scripts/container-check

# Pins the runtime dependencies that the container image installs (requirements.lock).
lock: $(STAMP)
	PYTHON=$(BIN)/python scripts/lock

# Presidio (the redaction baseline) is heavy, so only the benchmarks install it.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
