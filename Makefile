# crl-merge: `make install`, then `make test`. PYTHON is the interpreter the venv is made from.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# The benchmark's knobs: `make benchmark PRESET=paper DEVICE=cuda`
SUITE   ?= starpilot
PRESET  ?= quick
TRAINER ?= fast
DEVICE  ?= auto
STORE   ?= runs
RUN     := $(VENV)/bin/crl-merge

.PHONY: install test demo benchmark benchmark-starpilot benchmark-fruitbot leaderboard compare-trainers \
        benchmark-dt dt-datasets bench-envs bench-train bench-merge bench-dt bench-gpu gpu-wheels clean

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

# A first look, about a minute on a CPU: the Starpilot suite at the smoke preset (6 tiny models,
# their merges, a leaderboard), written under $(DEMO) rather than into runs/ and results/.
DEMO ?= /tmp/crl-merge-demo
demo:
	$(RUN) run starpilot --preset smoke --device cpu --store $(DEMO)/runs --results $(DEMO)/results

# Train the grid, evaluate, merge, write results/<suite>/<preset>/ and print the leaderboard.
# Finished work is skipped and interrupted training resumes, so re-running is cheap.
benchmark:
	$(RUN) run $(SUITE) --preset $(PRESET) --trainer $(TRAINER) --device $(DEVICE) --store $(STORE)

benchmark-starpilot:
	$(MAKE) benchmark SUITE=starpilot

benchmark-fruitbot:
	$(MAKE) benchmark SUITE=fruitbot

# The Decision Transformer track (MuJoCo): generate the datasets if missing, train, run the
# paper's experiments, write results/dt/<preset>/. Resumable like `make benchmark`.
benchmark-dt:
	$(RUN) dt-run benchmarks/mujoco_dt.yaml --preset $(PRESET) --device $(DEVICE) --store $(STORE)

# D4RL-style datasets from the committed behaviour policies (1M rows per expert/medium set).
dt-datasets:
	$(RUN) dt-datasets

# The leaderboard of a finished (or partly finished) run, from the run store.
leaderboard:
	$(RUN) report $(SUITE) --preset $(PRESET) --store $(STORE)

# The two PPO trainers on the same task, budget and seeds: learning curves side by side.
compare-trainers:
	$(PY) benchmarks/compare_trainers.py --device $(DEVICE) --store $(STORE)

# Speed: frames/s of our engine vs the real Procgen, 64 envs, CPU (and GPU if present).
bench-envs:
	$(PY) benchmarks/bench_envs.py

# Speed: environment steps/s of end-to-end PPO training, fast vs stable-baselines3.
bench-train:
	$(PY) benchmarks/bench_train.py

# Speed: weight matching of two NatureCNN actors and of two Decision Transformers.
bench-merge:
	$(PY) benchmarks/bench_merge.py

# Speed: Decision Transformer training steps/s and evaluation episodes/s (CPU, and GPU if present).
bench-dt:
	$(PY) benchmarks/bench_dt.py

# Everything only a GPU shows, in one command of a few minutes: results/gpu/bench.json and
# summary.md. It refuses to run without CUDA; `python benchmarks/bench_gpu.py --cpu-check`
# runs the same code at tiny sizes here. On a bare GPU machine (torch there, no network):
# `make gpu-wheels` here, carry .whl/, and there run
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   PYTHONPATH=/tmp/site:. python3 benchmarks/bench_gpu.py
bench-gpu:
	$(PY) benchmarks/bench_gpu.py

# Python 3.12 wheels of what bench-gpu imports and the GPU image lacks (it has torch, numpy,
# scipy, pandas, rich, pyyaml, safetensors, h5py, tensorboard, matplotlib, cloudpickle).
GPU_WHEELS ?= stable-baselines3==2.9.2 gymnasium==1.4.0 farama-notifications==0.0.6 mujoco==4.0.0 \
              mujoco-core==4.0.0 mujoco-studio==4.0.0 glfw==1.12.0 pyopengl==3.1.10
gpu-wheels:
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
	    --platform manylinux2014_x86_64 --platform any -d .whl $(GPU_WHEELS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
