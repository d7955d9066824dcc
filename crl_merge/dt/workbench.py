"""What the experiments share: the suite's datasets, its trained Decision Transformers
(trained on first use, from the run store afterwards) and cached evaluations.

Store layout (under ``<store>/dt/<preset>/``)::

    model/<env>-<dataset>/seed<k>      a single-task DT (``model`` artifact when finished)
    cotrain/<dataset>/seed<k>          one DT with every env's projections, trained on all at once
    finetune/<tag>/<env>               a DT finetuned from given weights, some of them frozen
    experiment/<name>                  one experiment: every evaluation it made, then its ``rows``

Each run's spec holds the settings it depends on, so changed settings train anew and
unchanged ones are never trained twice; a killed run resumes from its checkpoint. Every
training keeps the weights its ``train.keep`` names (by default those of its best
evaluation, as the paper's code saves ``*_best.pt``), and those are what gets merged.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from crl_merge.dt.data import SequenceSampler
from crl_merge.dt.evaluate import evaluate
from crl_merge.dt.suite import Suite
from crl_merge.dt.train import TrainConfig, train
from crl_merge.models import DecisionTransformer
from crl_merge.store import Run, RunStore
from envs.mujoco.datasets import OfflineDataset, load_d4rl_hdf5, read_metadata
from crl_merge.dt.datasets import ensure_dataset
from envs.mujoco.tasks import get_task

StateDict = dict[str, torch.Tensor]
ANCHORED_FROZEN = (r"^transformer\.ln_f\.", r"^io\.[^.]+\.embed_timestep\.")  # frozen in the paper's per-task finetune


def weights_digest(state_dict: StateDict) -> str:
    """SHA-256 over names and values: identifies the weights a finetune starts from."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def single_env(state_dict: StateDict, env: str) -> StateDict:
    """The transformer and ``env``'s own projections only (drops other environments' ``io``)."""
    return {k: v for k, v in state_dict.items() if not k.startswith("io.") or k.startswith(f"io.{env}.")}


class Workbench:
    def __init__(self, suite: Suite, store: RunStore, device: str = "cpu", progress=None):
        self.suite, self.store, self.device, self.progress = suite, store, device, progress
        self._data: dict[tuple[str, str], OfflineDataset] = {}
        self._recipes: dict[tuple[str, str], dict] = {}
        self._samplers: dict[tuple[str, str], SequenceSampler] = {}
        self._models: dict[tuple, StateDict] = {}

    # -- progress ----------------------------------------------------------------------
    @contextmanager
    def job(self, description: str, total: int):
        """An ``update(completed)`` callable shown as a bar while the block runs (rich bars are
        dropped when done; :func:`crl_merge.progress.progress_bars`' line printer has none to drop)."""
        if self.progress is None:
            yield lambda completed: None
            return
        task = self.progress.add_task(description, total=total, status="")
        try:
            yield lambda completed: self.progress.update(task, completed=completed)
        finally:
            if hasattr(self.progress, "remove_task"):
                self.progress.remove_task(task)

    # -- data --------------------------------------------------------------------------
    def dataset_path(self, env: str, kind: str):
        cfg = self.suite.config["datasets"]
        with self.job(f"dataset {env}-{kind}", cfg["rows"]) as update:
            return ensure_dataset(cfg["root"], env, kind, cfg["rows"], cfg["seed"], cfg["policies"],
                                  progress=lambda n, total: update(n))

    def dataset(self, env: str, kind: str) -> OfflineDataset:
        if (env, kind) not in self._data:
            self._data[env, kind] = load_d4rl_hdf5(self.dataset_path(env, kind))
        return self._data[env, kind]

    def dataset_recipe(self, env: str, kind: str) -> dict:
        """What a run records of its data; read once per workbench (every model and experiment
        run asks, and making sure of the file hashes the behaviour policies)."""
        if (env, kind) not in self._recipes:
            recipe = read_metadata(self.dataset_path(env, kind))
            self._recipes[env, kind] = {k: recipe[k] for k in ("task", "kind", "rows", "seed", "policies_sha256")}
        return self._recipes[env, kind]

    def sampler(self, env: str, kind: str) -> SequenceSampler:
        if (env, kind) not in self._samplers:
            model = self.suite.config["model"]
            self._samplers[env, kind] = SequenceSampler(self.dataset(env, kind), model["context"],
                                                        self.suite.config["train"]["reward_scale"], model["max_ep_len"])
        return self._samplers[env, kind]

    def state_stats(self, env: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        s = self.sampler(env, kind)
        return s.state_mean, s.state_std

    # -- models ------------------------------------------------------------------------
    def _train(self, parts: tuple, spec: dict, model: DecisionTransformer, samplers: dict[str, SequenceSampler],
               config: TrainConfig, seed: int, frozen=None, description: str = "") -> StateDict:
        run = self.store.run("dt", self.suite.preset, *parts, spec=spec)
        measure = self._selection(samplers, config.eval_episodes)
        with self.job(f"train {description or '/'.join(parts)}", config.steps) as update:
            trained = train(run, model, samplers, config, seed, frozen=frozen, device=self.device, progress=update,
                            evaluate=measure)
        return {k: v.detach().cpu() for k, v in trained.state_dict().items()}

    def _selection(self, envs: dict[str, SequenceSampler], episodes: int):
        """What training's evaluations measure, as the paper's code does: the mean return at
        the conditioning target (several envs: the mean of return / target over them), with
        each env's state statistics of the data being trained on."""
        def measure(model: DecisionTransformer) -> dict:
            returns, fractions = {}, []
            for env, sampler in envs.items():
                result = self._rollouts(model, env, sampler.state_mean, sampler.state_std, episodes)
                returns[env] = float(result.returns.mean())
                fractions.append(returns[env] / self._target(env))
            return {"metric": float(np.mean(fractions)), "returns": returns}

        return measure

    def _target(self, env: str) -> float:
        return get_task(env).dt_target_returns[self.suite.config["evaluation"]["target"]]

    def _rollouts(self, model: DecisionTransformer, env: str, mean, std, episodes: int, progress=None):
        """``episodes`` rollouts of ``model`` on ``env`` with the suite's evaluation settings."""
        eval_cfg = self.suite.config["evaluation"]
        return evaluate(model, env, get_task(env), mean, std, episodes, self._target(env), seed=eval_cfg["seed"],
                        reward_scale=self.suite.config["train"]["reward_scale"], device=self.device,
                        max_steps=eval_cfg["max_episode_steps"], progress=progress)

    def _spec(self, **extra) -> dict:
        cfg = self.suite.config
        selection = {k: cfg["evaluation"][k] for k in ("target", "seed", "max_episode_steps")}
        return {"model": cfg["model"], "reward_scale": cfg["train"]["reward_scale"], "selection": selection, **extra}

    def single(self, env: str, kind: str, init: str = "independent") -> StateDict:
        """A DT trained on one dataset from its env's init seed (``independent``) or from the
        suite's shared seed (``shared_seed``: the same transformer initialisation for all)."""
        seed = self.suite.init_seed(env) if init == "independent" else self.suite.config["seeds"]["shared_init"]
        key = ("single", env, kind, seed)
        if key not in self._models:
            config = self.suite.train_config()
            spec = self._spec(data=self.dataset_recipe(env, kind), train=vars(config), seed=seed)
            torch.manual_seed(seed)
            model = DecisionTransformer(self.suite.dt_config([env]))
            self._models[key] = self._train(("model", f"{env}-{kind}", f"seed{seed}"), spec, model,
                                            {env: self.sampler(env, kind)}, config, seed)
        return self._models[key]

    def cotrained(self, env: str, kind: str) -> StateDict:
        """The shared pre-trained model of the paper's co-training recipe, our substitute for its
        language-pretrained init: one DT trained on every env's dataset at once, then finetuned
        on ``env``'s alone; returned with ``env``'s projections only.

        The finetune is the paper's (``experiment_multi.py`` with ``--freeze_subset ln_f wpe
        embed_timestep --init_reg 1e-4``) when ``multitask.cotrained_finetune`` is
        ``anchored``: the final LayerNorm and the timestep embedding frozen, the blocks pulled
        to the co-trained weights by ``init_reg · Σ‖θ − θ_start‖`` (our DT has no position
        embedding ``wpe``); ``free``: every weight free, no pull."""
        seed = self.suite.config["seeds"]["shared_init"]
        envs = self.suite.envs
        key = ("cotrained", env, kind, seed)
        if key not in self._models:
            config = self.suite.train_config()
            if ("multi", kind, seed) not in self._models:
                spec = self._spec(data=[self.dataset_recipe(e, kind) for e in envs], train=vars(config), seed=seed)
                torch.manual_seed(seed)
                model = DecisionTransformer(self.suite.dt_config(envs))
                self._models["multi", kind, seed] = self._train(("cotrain", kind, f"seed{seed}"), spec, model,
                                                                {e: self.sampler(e, kind) for e in envs}, config, seed)
            start = single_env(self._models["multi", kind, seed], env)
            tune = self.suite.experiment("multitask")
            config, frozen = self.suite.train_config(finetune=True), None
            if tune["cotrained_finetune"] == "anchored":
                config = replace(config, init_reg=tune["init_reg"])
                frozen = list(ANCHORED_FROZEN)
            self._models[key] = self.finetune(f"cotrained-{kind}-seed{seed}-{tune['cotrained_finetune']}", env, kind,
                                              start, frozen=frozen,
                                              config=config)
        return self._models[key]

    def finetune(self, tag: str, env: str, kind: str, start: StateDict, frozen, config: TrainConfig | None = None
                 ) -> StateDict:
        """``start`` (with ``env``'s projections) trained further on ``env``'s data with the
        ``frozen`` subset fixed: the finetuning of Merge-Freeze-Finetune."""
        config = config or self.suite.train_config(finetune=True)
        start = single_env(start, env)
        spec = self._spec(data=self.dataset_recipe(env, kind), train=vars(config), frozen=frozen,
                          start=weights_digest(start))
        model = DecisionTransformer(self.suite.dt_config([env]))
        model.load_state_dict(start)
        seed = self.suite.init_seed(env)
        return self._train(("finetune", _safe(tag), env), spec, model, {env: self.sampler(env, kind)}, config, seed,
                           frozen=frozen, description=f"finetune {tag} {env}")

    # -- evaluation --------------------------------------------------------------------
    def experiment_run(self, name: str) -> Run:
        """The run that holds experiment ``name``'s evaluations and rows. Its spec names the
        recipes of the datasets it trains on, so that data rolled out from other behaviour
        policies (at the same path) is not served rows measured on the old data."""
        cfg = self.suite.config
        spec = {k: cfg[k] for k in ("envs", "datasets", "model", "train", "finetune", "evaluation", "seeds")}
        data = {f"{env}-{kind}": self.dataset_recipe(env, kind) for env, kind in sorted(self.suite.experiment_datasets(name))}
        return self.store.run("dt", self.suite.preset, "experiment", name,
                              spec={**spec, "experiment": cfg["experiments"][name], "data": data})

    def evaluate(self, run: Run, key: str, env: str, kind: str, state_dict: StateDict, episodes: int) -> dict:
        """Mean return and D4RL score of ``state_dict`` on ``env`` (with the state statistics of
        ``env``'s ``kind`` data), cached in ``run`` as ``eval.<key>``."""
        artifact = "eval." + _safe(key)
        if run.has(artifact):
            return run.load_json(artifact)
        model = DecisionTransformer(self.suite.dt_config([env]))
        model.load_state_dict(single_env(state_dict, env))
        mean, std = self.state_stats(env, kind)
        with self.job(f"evaluate {key}", get_task(env).max_episode_steps) as update:
            result = self._rollouts(model, env, mean, std, episodes, progress=update)
        summary = result.summary()
        run.save_json(artifact, summary)
        return summary


def _safe(text: str) -> str:
    """A store-safe artifact/run name for a descriptive key."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
