# molesyn: two entry points for a fresh machine.
#   make book   create the venv, install, execute every chapter (smoke profile) and build the HTML book
#   make test   create the venv if missing and run the test suite
# Other targets: make venv, make book-standard (the reference run, at most 2 h on 2 CPU cores, then published),
# make book-published (render published/standard without executing), make book-full (full profile, for a GPU box),
# make lab (JupyterLab), make bench.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= smoke
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: book book-standard book-published book-full test test-all venv lab bench clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 -c constraints.txt
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -c "from molesyn_lib.models import smollm2_path; print('SmolLM2 checkpoint:', smollm2_path())"
	touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	$(BIN)/molesyn book --profile $(PROFILE)

book-standard: $(STAMP)
	$(BIN)/molesyn book run --profile standard
	$(BIN)/molesyn book publish --profile standard
	$(BIN)/molesyn book build --published standard

book-published: $(STAMP)
	$(BIN)/molesyn book build --published standard

book-full:
	$(MAKE) book PROFILE=full

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=20

lab: $(STAMP)
	$(BIN)/jupyter lab --allow-root --no-browser notebooks/

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf book/_build book/chapters book/status.md
