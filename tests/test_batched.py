"""The batched trainer is K ``fast`` runs in one program: the same weights after an update
(to 1e-5), the same generator draws and learning curves over several updates, checkpoints
that ``train_fast`` resumes, and the same store artifacts as separate runs, resuming after
SIGKILL."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

import envs
from crl_merge.models import POLICY_LAYOUTS
from crl_merge.procgen.ppo import PPOConfig, train_run, train_runs_batched
from crl_merge.procgen.ppo.batched import train_fast_batched
from crl_merge.procgen.ppo.checkpointing import TrainingCheckpoint
from crl_merge.procgen.ppo.curve import read_curve
from crl_merge.procgen.ppo.fast import train_fast
from crl_merge.store import RunStore
from tests.test_run_suite import checkpointed, finished_artifacts_are_intact, kill_when, resume_test_suite

TINY = PPOConfig.from_mapping({"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2}, "test")
SEEDS = [(0, 0), (1, 2), (3, 3)]


def max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("layout", POLICY_LAYOUTS)
def test_one_batched_update_equals_separate_runs(layout):
    tasks = [envs.get_task(name) for name in ("starpilot/shoot", "starpilot/dodge", "starpilot/shoot")]
    separate = [train_fast(task, TINY, TINY.rollout_size, init, level, policy_layout=layout)
                for task, (init, level) in zip(tasks, SEEDS)]
    batched = train_fast_batched(tasks, TINY, TINY.rollout_size, SEEDS, policy_layout=layout)
    for one, many in zip(separate, batched):
        assert one.steps == many.steps == TINY.rollout_size
        assert max_difference(one.actor, many.actor) < 1e-5
        assert max_difference(one.critic, many.critic) < 1e-5
    # and they did move: a batched model is not its initial weights
    assert max_difference(batched[0].actor, train_fast(tasks[0], TINY, 0, *SEEDS[0], policy_layout=layout).actor) > 1e-4


def test_batched_learning_curves_equal_separate_runs():
    """Fruitbot episodes end within a few rollouts, so the curves hold real episode statistics."""
    task = envs.get_task("fruitbot/super")
    steps = 4 * TINY.rollout_size
    separate = [train_fast(task, TINY, steps, init, level) for init, level in SEEDS]
    batched = train_fast_batched([task] * len(SEEDS), TINY, steps, SEEDS)
    for one, many in zip(separate, batched):
        assert one.curve.episodes == many.curve.episodes > 0
        for row_one, row_many in zip(one.curve.rows, many.curve.rows, strict=True):
            for column in ("step", "episodes", "rolling_return", "rolling_length"):
                assert row_one[column] == pytest.approx(row_many[column], nan_ok=True), column


def test_a_batched_checkpoint_is_train_fasts_checkpoint(tmp_path):
    """The batched trainer saves each model as ``train_fast`` saves it (same tensors, names,
    generator states and curve), so ``train_fast`` resumes it."""
    task = envs.get_task("starpilot/shoot")
    store = RunStore(tmp_path)
    batched = [TrainingCheckpoint(store.run(f"batched{k}", spec={}), TINY.rollout_size) for k in range(len(SEEDS))]
    train_fast_batched([task] * len(SEEDS), TINY, 2 * TINY.rollout_size, SEEDS, checkpoints=batched)
    for k, (init, level) in enumerate(SEEDS):
        separate = TrainingCheckpoint(store.run(f"separate{k}", spec={}), TINY.rollout_size)
        train_fast(task, TINY, 2 * TINY.rollout_size, init, level, checkpoint=separate)
        (ours, our_meta), (theirs, their_meta) = batched[k].load("cpu"), separate.load("cpu")
        assert sorted(ours) == sorted(theirs) and our_meta.keys() == their_meta.keys()
        assert our_meta["global_step"] == their_meta["global_step"] == TINY.rollout_size
        assert our_meta["optimizer_param_groups"] == their_meta["optimizer_param_groups"]
        assert [r["episodes"] for r in our_meta["curve"]["rows"]] == [r["episodes"] for r in their_meta["curve"]["rows"]]
        for name in ours:
            if name.startswith("rng."):
                assert torch.equal(ours[name], theirs[name]), name  # the same draws were made
            else:
                assert torch.allclose(ours[name], theirs[name], atol=1e-5, rtol=1e-4), name
        resumed = train_fast(task, TINY, 2 * TINY.rollout_size, init, level, checkpoint=batched[k])
        assert [r["step"] for r in resumed.curve.rows] == [TINY.rollout_size, 2 * TINY.rollout_size]


def test_batched_runs_at_different_steps_train_in_separate_batches(tmp_path):
    """A crash between two models' checkpoint saves leaves them at different steps: each
    resumes from its own, and all finish as separate runs would."""
    task = envs.get_task("starpilot/shoot")
    store = RunStore(tmp_path)
    runs = [store.run(f"m{k}", spec={}) for k in range(len(SEEDS))]
    total = 2 * TINY.rollout_size
    train_run(runs[0], task, TINY, total, *SEEDS[0], checkpoint_every=TINY.rollout_size)  # m0 finished
    ahead = TrainingCheckpoint(runs[1], TINY.rollout_size)
    train_fast(task, TINY, total, *SEEDS[1], checkpoint=ahead)  # m1: a checkpoint at step 1 rollout
    assert ahead.saved_step() == TINY.rollout_size and not runs[2].has("resume")
    shutil.copytree(runs[1].path, tmp_path / "copy" / "m1")  # m1's checkpoint, for its reference resume
    trained = train_runs_batched(runs, [task] * 3, TINY, total, SEEDS, checkpoint_every=TINY.rollout_size)
    assert trained == [False, True, True]
    m1_copy = TrainingCheckpoint(RunStore(tmp_path / "copy").run("m1", spec={}), TINY.rollout_size)
    references = [runs[0].load_model("actor")[0], train_fast(task, TINY, total, *SEEDS[1], checkpoint=m1_copy).actor,
                  train_fast(task, TINY, total, *SEEDS[2]).actor]  # finished; resumed alone; uninterrupted
    for run, reference in zip(runs, references):
        assert max_difference(run.load_model("actor")[0], reference) < 1e-5
        assert len(read_curve(run.path / "curve.csv")) == 2
        assert not run.has("resume")


def test_batched_grid_resumes_after_sigkill(tmp_path):
    suite_file = resume_test_suite(tmp_path)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "crl_merge.cli", "run", str(suite_file), "--preset", "quick", "--device", "cpu",
               "--store", str(store), "--results", str(tmp_path / "results"), "--batch", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    train = store / "starpilot" / "quick" / "train"
    runs = [train / "super" / "00", train / "dodge" / "00", train / "shoot" / "01"]

    kill_when(command, env, lambda: all(checkpointed(run) for run in runs), 240)  # all three mid-way, together
    finished_artifacts_are_intact(store)
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("resuming from the checkpoint") == 3
    # 3 models × (actor, critic, curve, 3 evaluations) + the random agent's 3 + one merge's actor and evaluation
    assert finished_artifacts_are_intact(store) == 3 * (3 + 3) + 3 + 2
    assert not list(store.rglob("resume.safetensors"))
    for run in runs:
        assert [row["step"] for row in read_curve(run / "curve.csv")][-1] == 2560


def test_batch_needs_the_fast_trainer(tmp_path, capsys):
    from crl_merge.cli import main

    code = main(["run", "starpilot", "--preset", "smoke", "--store", str(tmp_path), "--trainer", "sb3", "--batch", "2"])
    assert code != 0 and "--batch 2" in capsys.readouterr().err
