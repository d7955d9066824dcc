"""Behaviour policies for the offline datasets: SAC (stable-baselines3), as D4RL used, or
TD3, cheaper per update on a CPU, with an actor snapshot every ``snapshot_every`` steps,
each evaluated on the spot.

``train_behaviour`` writes a training folder (not committed)::

    <out>/training.json                                task, seed, snapshot and algorithm settings
    <out>/snapshots/step_0010000.safetensors + .json   actor weights, eval return in the sidecar
    <out>/curve.csv                                    step, training and evaluation returns, speed
    <out>/resume/model.zip, replay_buffer.pkl          the networks, optimisers, step count and
                                                       replay buffer, every ``checkpoint_every``
                                                       steps and at the end

Calling it again on the same folder continues from the last resume checkpoint, up to the new
``total_steps`` (a larger one extends a finished run): the curve rows and snapshots after the
checkpoint, which a crash left behind, are dropped and made again. A resumed run is the same
algorithm, not the same numbers as an uninterrupted one: the episode in progress at the
checkpoint is cut short, the buffer lacks that step's own transition (SB3 calls back before
storing it), and the random streams are seeded again from the seed and the step. ``publish`` then picks
the expert and medium snapshots and copies what the datasets need into
``crl_merge/dt/policies/<task>/``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from crl_merge.files import atomic_path, atomic_write_json
from crl_merge.store import spec_differences
from crl_merge.dt.behaviour_actor import (BehaviourActor, NoisyDeterministicActor, SquashedGaussianActor,
                                         load_actor, save_actor)
from envs.mujoco.collect import collect
from envs.mujoco.datasets import DatasetError
from envs.mujoco.tasks import MujocoTask

CURVE_COLUMNS = ("step", "train_return", "eval_return", "eval_score", "eval_length", "steps_per_second", "elapsed_s")


@dataclass(frozen=True)
class OffPolicyConfig:
    """The settings SAC and TD3 share, and how a stable-baselines3 model is made and loaded
    from them; each algorithm adds its own through ``_extra_kwargs``."""

    name: ClassVar[str]
    label: ClassVar[str]
    actor_kind: ClassVar[str]
    sb3_class: ClassVar[str]
    learning_rate: float = 3e-4
    buffer_size: int = 1_000_000
    learning_starts: int = 10_000
    batch_size: int = 256
    tau: float = 0.005
    gamma: float = 0.99
    hidden: tuple[int, ...] = (256, 256)

    def _algorithm(self):
        import stable_baselines3

        return getattr(stable_baselines3, self.sb3_class)

    def _extra_kwargs(self, env) -> dict:
        return {}

    def model(self, env, seed: int, device: str):
        return self._algorithm()("MlpPolicy", env, learning_rate=self.learning_rate, buffer_size=self.buffer_size,
                                 learning_starts=self.learning_starts, batch_size=self.batch_size, tau=self.tau,
                                 gamma=self.gamma, policy_kwargs={"net_arch": list(self.hidden)}, seed=seed,
                                 device=device, verbose=0, **self._extra_kwargs(env))

    def load(self, path: Path, env, device: str):
        return self._algorithm().load(path, env=env, device=device)


@dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """stable-baselines3's SAC defaults, with the RL Zoo's 10k random warm-up steps for MuJoCo,
    except for the size of the updates: 64×64 networks and batches of 128 rather than 256×256
    and 256, the settings of the committed policies. They were trained on a shared 2-core CPU
    where this session's processes ran at the lowest priority: SB3's default updates ran at
    about 9 steps per second there (compute-bound), these at about 50. They learn HalfCheetah
    well but leave Hopper and Walker2d weak within 140k steps; with CPU to spare, train with
    ``--hidden 256 256 --batch-size 256`` for 1M steps as D4RL did."""

    name: ClassVar[str] = "sac"
    label: ClassVar[str] = "SAC (stable-baselines3)"
    actor_kind: ClassVar[str] = SquashedGaussianActor.kind
    sb3_class: ClassVar[str] = "SAC"
    batch_size: int = 128
    hidden: tuple[int, ...] = (64, 64)

    def actor(self, model) -> SquashedGaussianActor:
        return SquashedGaussianActor.from_sb3(model.actor, model.action_space)


@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 (stable-baselines3) with the RL Zoo's MuJoCo settings (10k random warm-up steps,
    Gaussian exploration noise 0.1, learning rate 1e-3, batch 256) on Fujimoto's current
    256×256 networks. Chosen for its cost on a CPU: with the actor updated every other step
    and no entropy term, one 256×256 update costs 0.6 of SAC's (measured: 162 against 97
    updates/s on one core). Its snapshots act with the exploration noise, as TD3 collects."""

    name: ClassVar[str] = "td3"
    label: ClassVar[str] = "TD3 (stable-baselines3)"
    actor_kind: ClassVar[str] = NoisyDeterministicActor.kind
    sb3_class: ClassVar[str] = "TD3"
    learning_rate: float = 1e-3
    action_noise: float = 0.1
    policy_delay: int = 2
    target_policy_noise: float = 0.2
    target_noise_clip: float = 0.5

    def _extra_kwargs(self, env) -> dict:
        from stable_baselines3.common.noise import NormalActionNoise

        dims = env.action_space.shape
        return {"action_noise": NormalActionNoise(np.zeros(dims), self.action_noise * np.ones(dims)),
                "policy_delay": self.policy_delay, "target_policy_noise": self.target_policy_noise,
                "target_noise_clip": self.target_noise_clip}

    def actor(self, model) -> NoisyDeterministicActor:
        return NoisyDeterministicActor.from_sb3(model.actor, model.action_space, self.action_noise)


BehaviourConfig = SACConfig | TD3Config
ALGORITHMS: dict[str, type[BehaviourConfig]] = {cls.name: cls for cls in (SACConfig, TD3Config)}


def snapshot_name(step: int) -> str:
    return f"step_{step:07d}"


def evaluate_actor(task: MujocoTask, actor: BehaviourActor, episodes: int, seed: int) -> tuple[float, float]:
    """Mean return and length of ``episodes`` episodes acting as the datasets do (sampled actions)."""
    data = collect(task, actor, episodes=episodes, num_envs=episodes, seed=seed)
    lengths = np.diff(np.concatenate([[0], data.episode_ends()]))
    return float(data.episode_returns().mean()), float(lengths.mean())


TRAINING_RECORD = "training.json"
RESUME = "resume"


class BehaviourTrainingError(ValueError):
    """A training folder that cannot be continued with the settings asked for."""


def _training_record(task: MujocoTask, seed: int, snapshot_every: int, eval_episodes: int,
                     config: BehaviourConfig) -> dict:
    """The settings a folder is trained with; the algorithm's settings sit under its name."""
    return {"task": task.name, "seed": seed, "snapshot_every": snapshot_every, "eval_episodes": eval_episodes,
            config.name: {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}}


def _check_record(out: Path, record: dict) -> None:
    """Refuse to continue a folder trained with other settings, naming each one that differs."""
    path = out / TRAINING_RECORD
    if not path.is_file():
        atomic_write_json(path, record)
        return
    differ = spec_differences(json.loads(path.read_text()), record, was="in the folder", now="asked for")
    if differ:
        raise BehaviourTrainingError(f"{out} was trained with other settings ({'; '.join(differ)}); "
                                     "continue it with its own settings or train into another --training-dir")


def _save_resume(out: Path, model) -> None:
    """The algorithm's whole state, each file replaced atomically; the buffer first, so that a model
    file always has a buffer at least as new beside it."""
    folder = out / RESUME
    with atomic_path(folder / "replay_buffer.pkl") as tmp:
        model.save_replay_buffer(tmp)
    with atomic_path(folder / "model.zip") as tmp:
        model.save(tmp)


def _drop_after(out: Path, step: int) -> list[dict]:
    """The curve rows up to ``step`` (rewritten without the later ones) and no snapshot after it."""
    rows = []
    curve = out / "curve.csv"
    if curve.is_file():
        with open(curve, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    for path in (out / "snapshots").glob("step_*"):
        if int(path.name.split(".")[0][len("step_"):]) > step:
            path.unlink()
    return rows


def train_behaviour(task: MujocoTask, out: str | Path, total_steps: int, seed: int = 0, snapshot_every: int = 10_000,
                    eval_episodes: int = 10, config: BehaviourConfig = SACConfig(), checkpoint_every: int = 50_000,
                    device: str = "cpu", log=print) -> Path:
    """Train ``config``'s algorithm on ``task`` up to ``total_steps`` environment steps,
    continuing the folder's last resume checkpoint if it has one; returns the folder."""
    from stable_baselines3.common.callbacks import BaseCallback

    if checkpoint_every % snapshot_every:
        raise ValueError(f"checkpoint_every ({checkpoint_every}) must be a multiple of snapshot_every ({snapshot_every})")
    out = Path(out)
    resume = out / RESUME / "model.zip"
    if not resume.is_file() and any((out / "snapshots").glob("step_*")):
        raise BehaviourTrainingError(f"{out} has snapshots but no resume checkpoint (it stopped before its first "
                                     f"one, or an earlier version trained it); publish it with --publish-only, or "
                                     f"train into another --training-dir")
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    _check_record(out, _training_record(task, seed, snapshot_every, eval_episodes, config))
    torch.set_num_threads(1)
    if resume.is_file():
        model = config.load(resume, task.make(), device)
        model.load_replay_buffer(out / RESUME / "replay_buffer.pkl")
        model.set_random_seed(seed + model.num_timesteps)
        log(f"{task.name}: continuing {out} from step {model.num_timesteps:,}")
    else:
        model = config.model(task.make(), seed, device)
    done = model.num_timesteps
    kept = _drop_after(out, done)
    if done >= total_steps:
        log(f"{task.name}: {out} already has {done:,} steps (asked for {total_steps:,})")
        return out
    elapsed_before = float(kept[-1]["elapsed_s"]) if kept else 0.0
    with atomic_path(out / "curve.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    curve_file = open(out / "curve.csv", "a", newline="")
    curve = csv.DictWriter(curve_file, fieldnames=CURVE_COLUMNS)
    start = time.time()

    class Snapshots(BaseCallback):
        def _on_step(self) -> bool:
            step = self.num_timesteps
            if step % snapshot_every:
                return True
            actor = config.actor(self.model)
            eval_return, eval_length = evaluate_actor(task, actor, eval_episodes, seed=10_000 + step)
            recent = [e["r"] for e in self.model.ep_info_buffer]
            elapsed = time.time() - start
            row = {"step": step, "train_return": round(float(np.mean(recent)), 2) if recent else "",
                   "eval_return": round(eval_return, 2), "eval_score": round(float(task.normalized_score(eval_return)), 2),
                   "eval_length": round(eval_length, 1), "elapsed_s": round(elapsed_before + elapsed, 1),
                   "steps_per_second": round((step - done) / elapsed, 1)}
            save_actor(out / "snapshots" / snapshot_name(step), actor, task=task.name, step=step, seed=seed,
                       eval_return=eval_return, eval_length=eval_length, eval_episodes=eval_episodes,
                       **{config.name: asdict(config)})
            curve.writerow(row)
            curve_file.flush()
            os.fsync(curve_file.fileno())
            if step % checkpoint_every == 0 or step >= total_steps:
                _save_resume(out, self.model)
            log(f"{task.name} step {step:,}/{total_steps:,}: eval return {eval_return:.0f} (score {row['eval_score']}), "
                f"train return {row['train_return']}, {row['steps_per_second']} steps/s")
            return True

    try:
        model.learn(total_steps - done, callback=Snapshots(), reset_num_timesteps=False)
        if model.num_timesteps % snapshot_every:  # a total that is not a whole number of snapshots
            _save_resume(out, model)
    finally:
        curve_file.close()
    return out


def read_snapshots(folder: str | Path) -> list[dict]:
    """Every snapshot's sidecar record of a training folder, by step."""
    folder = Path(folder) / "snapshots"
    records = []
    for sidecar in sorted(folder.glob("step_*.json")):
        _, meta = load_actor(sidecar)
        records.append({"name": sidecar.stem, **{k: meta[k] for k in ("step", "eval_return", "eval_length")}})
    return records


# -- the committed policy set ----------------------------------------------------------

POLICY_SET = "policies.json"


@dataclass
class PolicySet:
    """One task's behaviour policies as committed: expert, medium, and the snapshots that
    replay the medium policy's training (for ``medium-replay``)."""

    task: str
    folder: Path
    record: dict

    def actor(self, name: str) -> BehaviourActor:
        return load_actor(self.folder / name)[0]

    @property
    def expert(self) -> BehaviourActor:
        return self.actor(self.record["expert"]["name"])

    @property
    def medium(self) -> BehaviourActor:
        return self.actor(self.record["medium"]["name"])

    def replay_schedule(self) -> list[tuple[int, BehaviourActor | None]]:
        """``(from_step, actor)``: uniform random actions for the warm-up, then each
        snapshot for the steps until the next one, up to the medium snapshot."""
        return [(start, None if name is None else self.actor(name)) for start, name in self.record["replay_schedule"]]

    @property
    def replay_steps(self) -> int:
        return int(self.record["medium"]["step"])


def load_policy_set(policies_dir: str | Path, task: str) -> PolicySet:
    folder = Path(policies_dir) / task
    path = folder / POLICY_SET
    if not path.is_file():
        raise DatasetError(f"{path}: no behaviour policies for {task!r}; train and publish them with "
                           f"`crl-merge dt-policies {task}`")
    return PolicySet(task, folder, json.loads(path.read_text()))


def medium_target(task: MujocoTask, expert_score: float) -> float:
    """The D4RL score a medium policy should have: D4RL's medium data's, or, when our expert
    falls short of D4RL's, the same fraction of our expert as D4RL's medium is of its expert
    (D4RL's "about a third of the expert" came out at 0.41-0.58 of it)."""
    ratio = task.d4rl_medium_score / task.d4rl_expert_score
    return min(task.d4rl_medium_score, ratio * expert_score)


def choose_snapshots(task: MujocoTask, snapshots: list[dict], medium_score: float | None = None
                     ) -> tuple[dict, dict, float]:
    """``(expert, medium, target)``: the expert is the best-evaluated snapshot; the medium one
    the earlier snapshot evaluated nearest ``medium_score`` (default :func:`medium_target`)."""
    if not snapshots:
        raise ValueError("no snapshots to choose from; train the behaviour policy first")
    expert = max(snapshots, key=lambda s: s["eval_return"])
    if medium_score is None:
        medium_score = medium_target(task, float(task.normalized_score(expert["eval_return"])))
    earlier = [s for s in snapshots if s["step"] < expert["step"]] or [expert]
    medium = min(earlier, key=lambda s: abs(float(task.normalized_score(s["eval_return"])) - medium_score))
    return expert, medium, medium_score


def publish(task: MujocoTask, training_dir: str | Path, policies_dir: str | Path, medium_score: float | None = None,
            learning_starts: int = SACConfig.learning_starts) -> Path:
    """Copy the expert, the medium snapshot and the snapshots before it into
    ``<policies_dir>/<task>/`` with a ``policies.json`` describing them."""
    snapshots = read_snapshots(training_dir)
    expert, medium, medium_score = choose_snapshots(task, snapshots, medium_score)
    replay = [s for s in snapshots if learning_starts <= s["step"] < medium["step"]]
    schedule = [[0, None]] + [[s["step"], s["name"]] for s in replay]
    folder = Path(policies_dir) / task.name
    folder.mkdir(parents=True, exist_ok=True)
    keep = {expert["name"], medium["name"], *(s["name"] for s in replay)}
    for name in sorted(keep):
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(Path(training_dir) / "snapshots" / f"{name}{suffix}", folder / f"{name}{suffix}")
    for stale in folder.glob("step_*"):
        if stale.with_suffix("").name not in keep:
            stale.unlink()
    score = lambda s: round(float(task.normalized_score(s["eval_return"])), 2)  # noqa: E731
    kind = load_actor(Path(training_dir) / "snapshots" / expert["name"])[0].kind
    algorithm = next(cls.label for cls in ALGORITHMS.values() if cls.actor_kind == kind)
    record = {"task": task.name, "gym_id": task.gym_id, "algorithm": algorithm,
              "expert": {**expert, "eval_score": score(expert)}, "medium": {**medium, "eval_score": score(medium)},
              "medium_target_score": medium_score, "replay_schedule": schedule,
              "trained_steps": max(s["step"] for s in snapshots)}
    atomic_write_json(folder / POLICY_SET, record)
    return folder
