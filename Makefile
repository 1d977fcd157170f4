# The two commands of the README. Both create .venv if missing and install geo into it.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA    ?= embedded
PROFILE ?= quick
# torch is installed first, pinned, so that pip does not pull a larger build than needed;
# override with e.g. TORCH='torch==2.13.0 --index-url ...' for a CUDA build.
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.geo-installed

.PHONY: reproduce test setup clean benchmarks

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/python -m geo reproduce --data $(DATA) --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/render.py
	$(BIN)/python benchmarks/train_generator.py

clean:
	rm -rf runs $(VENV)
