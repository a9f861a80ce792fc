# reclib: the two commands are `make notebooks` and `make test`; each sets up what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
SETUP  := $(VENV)/.reclib-setup
DATA   := data/cache/.fetched
export PYTHONHASHSEED := 0
# PyTorch's AVX2 kernels on every x86-64 CPU: its AVX-512 ones round differently (reclib.same_cpu_kernels)
ifeq ($(shell uname -m),x86_64)
export ATEN_CPU_CAPABILITY ?= avx2
endif

LOCK   := requirements.lock
PIP    := $(PY) -m pip --disable-pip-version-check
# where the CPU build of torch comes from when re-locking; e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: setup lock data notebooks book book-check readme smoke test unit bench bench-train bench-peers bench-gpu stage-device tune lab clean distclean

setup: $(SETUP)

# the venv with the exact versions of requirements.lock (torch is the CPU wheel: no nvidia-* packages)
$(SETUP): $(LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r $(LOCK)
	$(PIP) install --quiet --no-deps -e .
	$(PIP) check
	$(PY) -m reclib.cf.compile
	@touch $@

# re-resolve requirements.lock from pyproject.toml (Python 3.11, Linux x86-64), then run `make test`
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "uv==0.13.9"
	@# start from the current pins (uv keeps them unless pyproject.toml needs others; delete the
	@# lock to re-resolve everything), torch as its CPU build
	@if [ -f $(LOCK) ]; then sed -E 's/^(torch==[0-9.]+)$$/\1+cpu/' $(LOCK) > $(LOCK).new; fi
	$(VENV)/bin/uv pip compile pyproject.toml --extra all --extra test --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match --no-header --quiet \
	    $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS)) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
	    -o $(LOCK).new
	@if grep -q '^nvidia-' $(LOCK).new; then rm $(LOCK).new; \
	    echo "the lock resolved a CUDA torch (nvidia-* packages): set TORCH_INDEX to the CPU wheel index"; exit 1; fi
	@{ echo "# Exact versions that 'make setup' installs (Python 3.11, Linux x86-64). Regenerate with"; \
	   echo "# 'make lock' after changing pyproject.toml. torch is its CPU build (2.13.0+cpu)."; \
	   sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/' $(LOCK).new; } > $(LOCK) && rm $(LOCK).new

data: $(DATA)

$(DATA): $(SETUP)
	$(PY) -m reclib.data.fetch
	@touch $@

# the main job: every notebook at its default parameters into build/, then build/summary.{md,json}
notebooks: $(DATA)
	$(PY) -m reclib.run_notebooks --output-dir build/notebooks --summary-dir build

# the executed notebooks of `make notebooks`, the README and the API reference as a website
# (Sphinx + MyST-NB, outputs as stored, never re-executed) -> build/book/index.html
book: $(SETUP)
	$(PY) -m book.build --notebooks build/notebooks --output build/book

# the built book opened page by page in headless Chromium (the system's, e.g. Debian's chromium
# package): console errors, links, images, search, phone width -> build/book-check/
book-check: $(SETUP)
	$(PY) -m book.check --site build/book --screenshots build/book-check

# README.md's result tables (between <!-- results:NAME --> markers) from build/summary.json;
# rows of notebooks missing from the summary keep their values
readme:
	$(PY) -m experiments.readme_numbers --summary build/summary.json --readme README.md

# every notebook at small parameters, without the tests
smoke: $(DATA)
	$(PY) -m reclib.run_notebooks --smoke --output-dir build/smoke --summary-dir build/smoke

# unit tests plus a smoke run of every notebook asserting its recorded metrics
test: $(DATA)
	$(PY) -m pytest

unit: $(DATA)
	$(PY) -m pytest -m "not notebook and not slow"

bench: $(DATA)
	$(PIP) install --quiet -c $(LOCK) -e ".[test,bench]"
	$(PY) -m experiments.bench --output build/bench.json

# training speed on this machine only (DCN-V2: eager vs graph vs XLA, precision, batch sizes, rows;
# one process vs two on JAX) -> build/bench_train.json
bench-train: $(DATA)
	$(PY) -m experiments.bench --only train processes --output build/bench_train.json

# reclib's ALS/BPR/EASE fits next to implicit and Cornac (extra "peers") -> build/bench_peers.{json,md,png}
bench-peers: $(DATA)
	$(PIP) install --quiet -c $(LOCK) -e ".[peers]"
	$(PY) -m experiments.bench_peers $(BENCH_ARGS)

# the kit's training paths on a GPU (DCN-V2 in NVIDIA's shape on JAX and PyTorch, the MovieLens models)
# -> build/bench_gpu/bench_gpu.{json,md}; `--tiny` rehearses it on the CPU (make test does)
bench-gpu: $(DATA)
	$(PY) -m experiments.bench_gpu --output build/bench_gpu $(BENCH_ARGS)

# what a GPU machine without network needs (wheels for Python 3.12, data and encoder caches) -> .stage/
stage-device: $(DATA)
	$(PY) -m experiments.stage_device

# hyper-parameter searches on validation carve-outs of the training data -> build/tuning/
tune: $(DATA)
	$(PY) -m experiments.tune

lab: $(DATA)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV) data/cache
