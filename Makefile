# reclib: the two commands are `make notebooks` and `make test`; each sets up what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
SETUP  := $(VENV)/.reclib-setup
DATA   := data/cache/.fetched
export PYTHONHASHSEED := 0

.PHONY: setup data notebooks smoke test unit bench tune lab clean distclean

setup: $(SETUP)

# the venv with torch pinned first (a CPU wheel: an unpinned torch pulls gigabytes of CUDA)
$(SETUP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $@

data: $(DATA)

$(DATA): $(SETUP)
	$(PY) -m reclib.data.fetch
	@touch $@

# the main job: every notebook at its default parameters into build/, then build/summary.{md,json}
notebooks: $(DATA)
	$(PY) -m reclib.run_notebooks --output-dir build/notebooks --summary-dir build

# every notebook at small parameters, without the tests
smoke: $(DATA)
	$(PY) -m reclib.run_notebooks --smoke --output-dir build/smoke --summary-dir build/smoke

# unit tests plus a smoke run of every notebook asserting its recorded metrics
test: $(DATA)
	$(PY) -m pytest

unit: $(DATA)
	$(PY) -m pytest -m "not notebook"

bench: $(DATA)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,bench]"
	$(PY) -m reclib.bench --output build/bench.json

# hyper-parameter searches on validation carve-outs of the training data -> build/tuning/
tune: $(DATA)
	$(PY) -m reclib.evaluation.tuning

lab: $(DATA)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV) data/cache
