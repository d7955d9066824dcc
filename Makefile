# crl-merge: `make install`, then `make test`. PYTHON is the interpreter the venv is made from.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: install test bench-envs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is installed first and pinned: the pinned CPU build is what CI and the dev machines
# have locally; an unpinned torch would pull a multi-GB CUDA build. Override with TORCH=...
install: $(PY)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"

test:
	$(PY) -m pytest -q

# Frames per second of our engine vs the real Procgen, 64 envs, CPU (and GPU if present).
bench-envs:
	$(PY) benchmarks/bench_envs.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
