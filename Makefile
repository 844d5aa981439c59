# dualtune: `make run` runs the main job, `make test` the tests; both create/refresh the venv first.
# The venv target is idempotent: it reinstalls only when requirements.txt or pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= disabled

.PHONY: venv run test test-all base clean-venv

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

# Build the embedded default base model into $$DUALTUNE_CACHE once (a no-op when it is cached).
base: venv
	$(PY) prepare.py

run: venv
	$(PY) train.py

# The test suite (what .ci/run runs): the default base model is built first, at its own timed step.
test: base
	$(PY) -m pytest -m "not slow" -q --durations=15

test-all: base
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
