# The two commands of the README: `make demo` and `make test`. Both start from
# nothing but python3 (3.11+) and build what they need in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
export COFRE_HOME ?= $(CURDIR)/var

.PHONY: demo test test-multinode venv wheel wheelhouse install lint system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

# Dependencies from the lock (constraints.txt), then cofre itself from a wheel built
# here: tests run against the installed copy, not the source tree.
venv: $(BIN)/python
	$(PIP) install --quiet -c constraints.txt -r requirements-dev.txt

# The build's chatter goes to a log, shown only when the build fails.
wheel: venv
	rm -rf dist && $(BIN)/python -m build --wheel --no-isolation --outdir dist . \
		>$(VENV)/wheel-build.log 2>&1 || { cat $(VENV)/wheel-build.log; exit 1; }

# cofre's wheel and every dependency pinned by constraints.txt, for hosts without
# PyPI: the Ansible role's `cofre_wheelhouse` and the container image's build context.
wheelhouse: wheel
	rm -rf dist/wheelhouse && mkdir -p dist/wheelhouse && cp dist/cofre-*.whl dist/wheelhouse/
	$(PIP) download --quiet --only-binary=:all: -c constraints.txt -d dist/wheelhouse dist/wheelhouse/cofre-*.whl

install: wheel
	$(PIP) install --quiet --force-reinstall --no-deps dist/cofre-*.whl

demo: install
	$(BIN)/cofre init
	$(BIN)/cofre demo
	@echo "Create a key to call the demo models:  $(BIN)/cofre keys create --name me --role predictor"
	$(BIN)/cofre serve --bind 127.0.0.1:8000

system-deps:
	./scripts/system-deps.sh

lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check server governance backups tests wsgi.py
	$(BIN)/mypy

test: install system-deps lint
	COFRE_TEST_INSTALLED=1 $(BIN)/pytest -m "not multinode"

# The multi-node layout on four hosts of its own (tests/ansible/test_multinode.py):
# longer than the rest of the suite allows, so run on its own.
test-multinode: install system-deps
	COFRE_TEST_INSTALLED=1 $(BIN)/pytest -m multinode tests/ansible/test_multinode.py

clean:
	rm -rf $(VENV) dist build *.egg-info var
