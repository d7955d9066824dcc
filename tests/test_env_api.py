"""The batched environment's contract, for both games: shapes, auto-reset, info, level
seeds, determinism and the errors for bad actions."""

import subprocess
import sys

import pytest
import torch

import envs

GAMES = ["starpilot/original", "fruitbot/original"]


def rollout(task, steps, seed=0, num_envs=8, **kw):
    env = envs.make(task, num_envs=num_envs, seed=seed, **kw)
    gen = torch.Generator().manual_seed(123)
    frames, rewards, dones = [env.reset()], [], []
    for _ in range(steps):
        obs, reward, done, _ = env.step(torch.randint(0, 15, (num_envs,), generator=gen))
        frames.append(obs)
        rewards.append(reward)
        dones.append(done)
    return torch.stack(frames), torch.stack(rewards), torch.stack(dones)


@pytest.mark.parametrize("task", envs.builtin_tasks())
def test_every_task_steps_with_the_documented_shapes(task):
    env = envs.make(task, num_envs=4, seed=1)
    obs = env.reset()
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == torch.uint8
    obs, reward, done, info = env.step(torch.full((4,), 4))
    assert obs.shape == (4, 64, 64, 3) and reward.dtype == torch.float32 and done.dtype == torch.bool
    assert set(info) == {"level_seed", "prev_level_seed", "prev_level_complete", "episode_return", "episode_length"}
    assert obs.float().mean() > 0  # something is drawn


@pytest.mark.parametrize("task", GAMES)
def test_same_seed_gives_bit_identical_streams(task):
    a, b, c = rollout(task, 150), rollout(task, 150), rollout(task, 150, seed=1)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    assert a[2].any(), "no episode ended in 150 random steps"


@pytest.mark.parametrize("task", GAMES)
def test_auto_reset_moves_to_a_new_level_and_reports_the_episode(task):
    env = envs.make(task, num_envs=16, seed=3)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    returns = torch.zeros(16)
    lengths = torch.zeros(16, dtype=torch.int64)
    for _ in range(400):
        seeds_before = env.level_seed.clone()
        _, reward, done, info = env.step(torch.randint(0, 15, (16,), generator=gen))
        returns += reward
        lengths += 1
        assert torch.equal(info["prev_level_seed"], seeds_before)
        assert torch.equal(info["level_seed"] != seeds_before, done)
        assert torch.allclose(info["episode_return"][done], returns[done])
        assert torch.equal(info["episode_length"][done], lengths[done])
        assert (env.state["t"][done] == 0).all()
        returns[done], lengths[done] = 0, 0


def test_num_levels_and_start_level_bound_the_level_seeds():
    env = envs.make("starpilot/original", num_envs=32, seed=0, num_levels=3, start_level=50)
    env.reset()
    seen = set(env.level_seed.tolist())
    for _ in range(200):
        _, _, _, info = env.step(torch.randint(0, 15, (32,)))
        seen |= set(info["level_seed"].tolist())
    assert seen == {50, 51, 52}


def test_the_same_level_seed_gives_the_same_level():
    a = envs.make("fruitbot/original", num_envs=4, seed=0, num_levels=1, start_level=7)
    b = envs.make("fruitbot/original", num_envs=4, seed=9, num_levels=1, start_level=7)
    assert torch.equal(a.reset(), b.reset())


def test_evaluation_levels_differ_from_training_levels():
    train = envs.make("starpilot/original", num_envs=64, seed=5)
    held_out = envs.make("starpilot/original", num_envs=64, seed=5, levels="eval")
    train.reset()
    held_out.reset()
    assert not set(train.level_seed.tolist()) & set(held_out.level_seed.tolist())


@pytest.mark.parametrize("action, error, message", [
    (torch.tensor([0, 1, 2, 15]), ValueError, r"actions must be in 0..14; got \[15\]"),
    (torch.tensor([0, -1, 2, 3]), ValueError, r"got \[-1\]"),
    (torch.tensor([0, 1, 2]), ValueError, r"shape \(4,\)"),
    (torch.zeros(4, 1, dtype=torch.int64), ValueError, r"shape \(4,\)"),
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "must be integers"),
])
def test_bad_actions_are_errors_not_clipped(action, error, message):
    env = envs.make("starpilot/original", num_envs=4)
    env.reset()
    with pytest.raises(error, match=message):
        env.step(action)


def test_bad_constructor_arguments_are_named():
    with pytest.raises(ValueError, match="num_envs"):
        envs.make("starpilot/original", num_envs=0)
    with pytest.raises(ValueError, match="levels must be one of"):
        envs.make("starpilot/original", num_envs=2, levels="test")
    with pytest.raises(envs.ConfigError, match="unknown task"):
        envs.make("starpilot/hard", num_envs=2)


def test_monochrome_fallback_draws_flat_colours():
    env = envs.make("starpilot/original", num_envs=2, monochrome=True)
    obs = env.reset()
    colours = {tuple(p) for p in obs.reshape(-1, 3).tolist()}
    assert (127, 255, 127) in colours  # the agent's monochrome colour
    assert len(colours) <= 8


def test_trusted_callers_can_skip_the_range_check():
    env = envs.make("starpilot/original", num_envs=4)
    env.reset()
    env.step(torch.tensor([0, 5, 9, 14]), validate=False)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.step(torch.tensor([0, 1, 2]), validate=False)  # shape and dtype are still checked
    with pytest.raises(TypeError, match="must be integers"):
        env.step(torch.zeros(4), validate=False)
    with pytest.raises(ValueError, match="0..14"):
        env.step(torch.tensor([0, 1, 2, 15]))  # checked by default


def streams(env, steps, seed=5):
    gen = torch.Generator().manual_seed(seed)
    out = [env.reset().clone()]
    for _ in range(steps):
        obs, reward, done, info = env.step(torch.randint(0, 15, (env.num_envs,), generator=gen))
        out += [obs.clone(), reward, done] + [info[k] for k in sorted(info)]
    return out


@pytest.mark.parametrize("task, overrides", [("starpilot/original", {}), ("fruitbot/original", {}),
                                             ("starpilot/super", {"timeout": 3}), ("fruitbot/treats", {"timeout": 2})])
def test_the_sync_free_step_gives_the_same_streams(task, overrides):
    """The path used on GPUs (no host synchronisation: where-based auto-reset, next levels
    generated in fixed-size batches, every sprite slot drawn) against the CPU default;
    tiny timeouts make every environment finish every few steps."""
    t = envs.get_task(task, overrides)
    fast = envs.VecGame(t, num_envs=6, seed=2)
    free = envs.VecGame(t, num_envs=6, seed=2, sync_free=True)
    assert free.sync_free and not fast.sync_free
    for a, b in zip(streams(fast, 120), streams(free, 120)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("task", GAMES)
def test_the_in_place_step_matches_the_pure_one(task):
    env = envs.make(task, num_envs=8, seed=4)
    env.reset()
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        action = torch.randint(0, 15, (8,), generator=gen)
        before = {k: v.clone() for k, v in env.state.items()}
        pure = env.game.step(before, action)
        kept = {k: v.clone() for k, v in before.items()}
        inplace = env.game.step({k: v.clone() for k, v in before.items()}, action, inplace=True)
        assert all(torch.equal(before[k], kept[k]) for k in before)  # the pure step left its input alone
        for x, y in zip(pure[1:], inplace[1:]):
            assert torch.equal(x, y)
        assert all(torch.equal(pure[0][k], inplace[0][k]) for k in pure[0])
        env.step(action)


def test_steps_run_on_one_thread_and_restore_the_setting():
    torch.set_num_threads(2)
    env = envs.make("fruitbot/original", num_envs=4)
    env.reset()
    seen = []
    step = env.game.step
    env.game.step = lambda *a, **k: (seen.append(torch.get_num_threads()), step(*a, **k))[1]
    env.step(torch.full((4,), 4))
    assert env.threads == 1 and seen == [1] and torch.get_num_threads() == 2


def test_what_a_step_returns_is_an_ordinary_tensor():
    """The engine works in inference mode; its outputs must not carry that restriction."""
    env = envs.make("starpilot/original", num_envs=4)
    first = env.reset()
    obs, reward, done, info = env.step(torch.full((4,), 4))
    for t in (first, obs, reward, done, *info.values()):
        assert not t.is_inference()
    reward.mul_(2.0)  # in place
    info["level_seed"].add_(1)
    w = torch.ones(3, requires_grad=True)
    (obs.float().mean((0, 1, 2)) * w).sum().backward()  # as a network input
    assert w.grad is not None


@pytest.mark.parametrize("task", GAMES)
def test_the_sync_free_step_never_waits_for_the_device(task):
    """No operation in a sync-free step reads tensor data on the host (on a GPU each would
    wait for the device): checked on the CPU by making those operations fail."""
    env = envs.VecGame(envs.get_task(task, {"timeout": 5}), num_envs=4, seed=0, sync_free=True)
    env.reset()
    actions = torch.randint(0, 15, (30, 4), generator=torch.Generator().manual_seed(0))
    env.step(actions[0], validate=False)  # first step: views and render plans are made

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation in a sync-free step")

    patched = {(torch.Tensor, name): getattr(torch.Tensor, name)
               for name in ("__bool__", "item", "tolist", "nonzero", "__int__", "__float__", "masked_select", "unique")}
    patched[(torch, "nonzero")] = torch.nonzero
    try:
        for owner, name in patched:
            setattr(owner, name, forbidden)
        for a in actions[1:]:  # timeouts every 5 steps: resets and level generation included
            env.step(a, validate=False)
    finally:
        for (owner, name), f in patched.items():
            setattr(owner, name, f)


PAGE_FAULTS_PER_STEP = """
import resource, torch, envs
from crl_merge.host_memory import keep_freed_memory
assert keep_freed_memory()
env = envs.make("starpilot/original", num_envs=64, seed=0)
obs = env.reset()
actions = torch.randint(0, 15, (64,), generator=torch.Generator().manual_seed(0))
for _ in range(30):
    obs = env.step(actions)[0]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    obs = env.step(actions)[0]  # the last frames held while the next are drawn, as a trainer does
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 100)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and minor page faults")
def test_with_freed_memory_kept_a_cpu_step_does_not_page_fault():
    """Each step hands out fresh frames (the CPU kernel's 0.8 MB; the torch renderer's canvas,
    2.2 MB). With glibc's default settings and the last frames still held, that memory was
    often (not always: it depends on the heap's history) page-faulted in anew every step:
    with the torch renderer about 340 faults per Starpilot step, at half the speed.
    In a process that keeps freed memory, as ``crl-merge`` and ``make bench-envs`` are, steps
    do not fault. A fresh process: the setting is process-wide."""
    done = subprocess.run([sys.executable, "-c", PAGE_FAULTS_PER_STEP], capture_output=True, text=True,
                          timeout=300, check=True)
    faults = float(done.stdout.split()[-1])
    assert faults < 20, f"{faults} page faults per step with freed memory kept"
