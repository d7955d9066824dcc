"""Rules of envs/games/starpilot.py (spec §1, §2, §5.1-5.3), on hand-built states."""

import math

import pytest
import torch

import envs
from envs.config import StarpilotConfig
from envs.games import starpilot as sp
from envs.games.starpilot import Starpilot

CPU = torch.device("cpu")

NOOP, RIGHT, RIGHT_UP, FIRE_RIGHT, FIRE_LEFT = 4, 7, 8, 9, 10


def config(task: str) -> StarpilotConfig:
    return envs.get_task(task).config


def blank(game: Starpilot, agent=(8.0, 8.0), t=0, n=1):
    """A fresh level with no scheduled ships and the agent at rest at ``agent``."""
    st = game.generate(torch.arange(n))
    st["sched_t"] = torch.full_like(st["sched_t"], sp.NEVER)
    st["tab"][:, sp.X, sp.A], st["tab"][:, sp.Y, sp.A] = agent
    st["t"] = torch.full_like(st["t"], t)
    return st


def add_ship(st, slot, x, y, vx=0.0, vy=0.0, fire_at=-1.0, spawn=0):
    col = sp.SH0 + slot
    tab = st["tab"]
    for row, v in [(sp.X, x), (sp.Y, y), (sp.VX, vx), (sp.VY, vy), (sp.ALIVE, 1.0), (sp.BORN, spawn),
                   (sp.SUB, sp.SUB_RELEASE), (sp.COS, sp.QUARTER_COS), (sp.SIN, sp.QUARTER_SIN), (sp.TEX, 3.0),
                   (sp.FIRE, fire_at), (sp.RANK, 4 * spawn), (sp.GEN, 0.0), (sp.HP, 2.0)]:
        tab[:, row, col] = v


def run(game, st, actions):
    rewards, dones, completes = [], [], []
    for a in actions:
        st, r, d, c = game.step(st, torch.tensor([a]))
        rewards.append(float(r[0]))
        dones.append(bool(d[0]))
        completes.append(bool(c[0]))
    return st, rewards, dones, completes


def alive_cols(st, cols):
    return int((st["tab"][0, sp.ALIVE, cols] > 0).sum())


def test_velocity_update_numbers():
    game = Starpilot(StarpilotConfig(), CPU)
    st = blank(game)
    st, *_ = run(game, st, [RIGHT_UP])
    v1 = 0.45 * 0.75  # v ← 0.9·(0.5·v + 0.5·maxspeed·a) from rest
    assert st["tab"][0, sp.VX, sp.A].item() == pytest.approx(v1, abs=1e-6)
    assert st["tab"][0, sp.VY, sp.A].item() == pytest.approx(v1, abs=1e-6)
    assert st["tab"][0, sp.X, sp.A].item() == pytest.approx(8 + v1, abs=1e-5)
    assert st["tab"][0, sp.Y, sp.A].item() == pytest.approx(8 + v1, abs=1e-5)
    st, *_ = run(game, st, [RIGHT])
    v2 = 0.45 * v1 + v1
    assert st["tab"][0, sp.VX, sp.A].item() == pytest.approx(v2, abs=1e-6)
    assert st["tab"][0, sp.VY, sp.A].item() == pytest.approx(0.45 * v1, abs=1e-6)  # no input: ×0.45
    st, *_ = run(game, st, [FIRE_RIGHT])  # a special action means zero movement input
    assert st["tab"][0, sp.VX, sp.A].item() == pytest.approx(0.45 * v2, abs=1e-6)


def test_agent_clamps_at_borders_and_loses_blocked_velocity():
    game = Starpilot(StarpilotConfig(), CPU)
    st = blank(game, agent=(15.5, 0.5))
    st, *_ = run(game, st, [6])  # right + down: one free sub-step on x, none on y… then the wall
    x, y = st["tab"][0, sp.X, sp.A].item(), st["tab"][0, sp.Y, sp.A].item()
    assert x == pytest.approx(15.6, abs=1e-6) and y == pytest.approx(0.4, abs=1e-6)
    v = 0.45 * 0.75
    assert st["tab"][0, sp.VX, sp.A].item() == pytest.approx(v * 1 / 4, abs=1e-6)  # 1 of 4 sub-steps free
    st, *_ = run(game, st, [6] * 5)
    assert st["tab"][0, sp.X, sp.A].item() == pytest.approx(15.6, abs=1e-6)
    assert st["tab"][0, sp.Y, sp.A].item() == pytest.approx(0.4, abs=1e-6)
    assert st["tab"][0, sp.VX, sp.A].item() == 0.0 and st["tab"][0, sp.VY, sp.A].item() == 0.0
    st = blank(game, agent=(0.4, 15.6))
    st, *_ = run(game, st, [2] * 10)  # left + up
    assert st["tab"][0, sp.X, sp.A].item() == pytest.approx(0.4, abs=1e-6)
    assert st["tab"][0, sp.Y, sp.A].item() == pytest.approx(15.6, abs=1e-6)


def dense(game: Starpilot) -> Starpilot:
    """The same game taking the sync-free code paths (what other devices run) on the CPU."""
    game.sync_ok = False
    return game


@pytest.mark.parametrize("sync_free", [False, True])
@pytest.mark.parametrize("task", ["starpilot/original", "starpilot/shoot"])
def test_ships_fire_exactly_once_and_only_when_enemies_fire(task, sync_free):
    game = Starpilot(config(task), CPU)
    game = dense(game) if sync_free else game
    st = blank(game, agent=(2.0, 8.0))
    add_ship(st, 0, 12.0, 11.0, fire_at=5.0)
    counts = []
    for _ in range(12):
        st, _, done, _ = game.step(st, torch.tensor([NOOP]))
        assert not done[0]
        counts.append(alive_cols(st, sp.EB))
        if st["t"][0] == 5 and game.config.enemies_fire:
            col = sp.EB0 + int((st["tab"][0, sp.ALIVE, sp.EB] > 0).nonzero()[0, 0])
            vx, vy = st["tab"][0, sp.VX, col].item(), st["tab"][0, sp.VY, col].item()
            assert math.hypot(vx, vy) == pytest.approx(0.5, abs=1e-6)  # aimed at the agent, speed 0.5
            assert vy / vx == pytest.approx((8.0 - 11.0) / (2.0 - 12.0), abs=1e-5) and vx < 0
            assert st["tab"][0, sp.X, col].item() == 12.0 and st["tab"][0, sp.Y, col].item() == 11.0
    expected = [0] * 4 + [1] * 8 if game.config.enemies_fire else [0] * 12
    assert counts == expected


def test_generated_fire_steps_follow_the_config():
    for task, fires in [("starpilot/original", True), ("starpilot/shoot", False)]:
        game = Starpilot(config(task), CPU)
        st = game.generate(torch.arange(16))
        live = st["sched_t"] < sp.NEVER
        fire = st["sched"][:, sp.FIRE][live]
        delay = fire - st["sched_t"][live].float()
        if fires:
            assert delay.min() >= 10 and delay.max() <= 99
        else:
            assert (fire == -1).all()


@pytest.mark.parametrize("sync_free", [False, True])
def test_bullets_kill_a_ship_in_two_hits_for_one_reward(sync_free):
    game = Starpilot(StarpilotConfig(), CPU)
    game = dense(game) if sync_free else game
    st = blank(game, agent=(2.0, 8.0))
    add_ship(st, 3, 8.0, 8.0)
    st, rewards, dones, _ = run(game, st, [FIRE_RIGHT] * 7)
    # bullet k (fired at step k from x = 2.4) overlaps the ship (|x − 8| < 0.9) at step k + 6
    assert rewards == [0.0] * 7 and not any(dones)
    assert st["tab"][0, sp.HP, sp.SH0 + 3].item() == 1.0
    assert alive_cols(st, sp.PB) == 6  # the first bullet is spent
    st, rewards, dones, _ = run(game, st, [FIRE_RIGHT])
    assert rewards == [1.0]
    assert st["tab"][0, sp.ALIVE, sp.SH0 + 3].item() == 2.0  # dying: drawn this frame, removed next step
    boom = sp.SH0 + 3 + sp.EXPLODE  # its death explosion: created now, at the ship, for 5 frames
    assert st["tab"][0, sp.BORN, boom].item() == 8.0 and st["tab"][0, sp.ALIVE, boom].item() == 1.0
    assert st["tab"][0, sp.X, boom].item() == st["tab"][0, sp.X, sp.SH0 + 3].item()
    sparks = st["tab"][0, sp.ALIVE, sp.SX]
    assert sparks.sum().item() == 2.0  # the two hits of steps 7 and 8: sparks last 5 frames
    st, rewards, dones, _ = run(game, st, [FIRE_RIGHT] * 20)
    assert sum(rewards) == 0.0 and not any(dones)
    assert st["tab"][0, sp.ALIVE, sp.SH0 + 3].item() == 0.0
    assert st["tab"][0, sp.ALIVE, sp.EXPL].sum().item() == 0.0  # every explosion is over
    # bullets 3.. passed through the dying ship; those fired at steps ≤ 10 have left the world
    # (x = 2.4 + 0.8·moves > 16.4 after 18 moves)
    assert alive_cols(st, sp.PB) == 18


@pytest.mark.parametrize("sync_free", [False, True])
def test_a_bullet_hits_only_the_newest_of_two_overlapping_ships(sync_free):
    game = Starpilot(StarpilotConfig(), CPU)
    game = dense(game) if sync_free else game
    st = blank(game, agent=(2.0, 8.0))
    add_ship(st, 0, 8.0, 8.0, spawn=0)
    add_ship(st, 5, 8.0, 8.2, spawn=0)
    st["tab"][0, sp.RANK, sp.SH0 + 5] = 1.0  # released after slot 0 in the same step: newer
    st, *_ = run(game, st, [FIRE_RIGHT] + [NOOP] * 6)
    assert st["tab"][0, sp.HP, sp.SH0].item() == 2.0
    assert st["tab"][0, sp.HP, sp.SH0 + 5].item() == 1.0


def test_dodge_fire_actions_are_noops():
    game = Starpilot(config("starpilot/dodge"), CPU)
    st = blank(game)
    st["tab"][0, sp.VX, sp.A] = 0.3
    a, *_ = run(game, dict(st), [FIRE_RIGHT, FIRE_LEFT, 14])
    b, *_ = run(game, dict(st), [NOOP] * 3)
    assert alive_cols(a, sp.PB) == 0
    assert torch.equal(a["tab"], b["tab"])


@pytest.mark.parametrize("on_death", [True, False])
def test_survival_bonus_accounting(on_death):
    # the thesis's super-task pays it on every step, the death step included; without
    # survival_bonus_on_death the step that kills the agent pays nothing
    game = Starpilot(config("starpilot/super").with_overrides({"survival_bonus_on_death": on_death}), CPU)
    st = blank(game, agent=(2.0, 8.0))
    st, rewards, dones, _ = run(game, st, [NOOP] * 3)
    assert rewards == pytest.approx([0.01] * 3) and not any(dones)
    add_ship(st, 0, 2.5, 8.0)  # touching the agent: death
    _, rewards, dones, completes = run(game, st, [NOOP])
    assert rewards == pytest.approx([0.01 if on_death else 0.0]) and dones == [True] and completes == [False]


def rocket_state(game, agent_x, rocket_px=(122, 374)):
    end = game.config.level_end_step
    st = blank(game, agent=(agent_x, 3.0), t=end - 1)
    st, rewards, dones, _ = run(game, st, [NOOP])  # the level end: the rocket enters, not yet touching
    assert st["tab"][0, sp.ALIVE, sp.ROCKET].item() == 1.0 and not dones[0]
    assert st["tab"][0, sp.X, sp.ROCKET].item() == pytest.approx(16.0 + 8.0 * rocket_px[0] / rocket_px[1])
    return st


def test_level_completion_at_the_rocket():
    game = Starpilot(StarpilotConfig(), CPU)
    st = rocket_state(game, 15.6)
    st, rewards, dones, completes = run(game, st, [NOOP])  # step 501: left edge at 15.8
    assert rewards == [10.0] and dones == [True] and completes == [True]
    st = rocket_state(game, 0.4)  # from the left wall it takes until step 577
    st, rewards, dones, completes = run(game, st, [NOOP] * 77)
    assert dones == [False] * 76 + [True] and completes[-1] and rewards[-1] == 10.0
    assert st["t"][0] == 577


@pytest.mark.parametrize("on_death", [True, False])
def test_completion_with_bonus_and_with_death_in_the_same_step(on_death):
    game = Starpilot(config("starpilot/super").with_overrides({"survival_bonus_on_death": on_death}), CPU)
    st = rocket_state(game, 15.6, rocket_px=(118, 315))  # the thesis's rocket: spaceRockets_003
    _, rewards, _, completes = run(game, dict(st), [NOOP])
    assert rewards == pytest.approx([10.01]) and completes == [True]
    add_ship(st, 0, 15.0, 3.0)
    _, rewards, dones, completes = run(game, st, [NOOP])
    assert rewards == pytest.approx([10.01 if on_death else 10.0]) and dones == [True] and completes == [True]


def test_dodge_level_ends_at_step_200():
    """starpilot_dodge.cpp: SHOOTER_WIN_TIME = 200, so groups start at t ≤ 200 and the rocket enters at 200."""
    game = Starpilot(config("starpilot/dodge"), CPU)
    assert game.min_episode_length == 12
    st = rocket_state(game, 15.6, rocket_px=(118, 315))
    assert st["t"][0] == 200
    _, rewards, dones, completes = run(game, st, [NOOP])
    assert rewards == pytest.approx([10.1]) and dones == [True] and completes == [True]
    levels = game.generate(torch.arange(256))
    t, live = levels["sched_t"], levels["sched_t"] < sp.NEVER
    assert t[live].max() <= 200 + 20 and t[live].max() > 200  # a group starting at ≤ 200 spawns on for 20 steps
    assert 20 < live.sum(1).float().mean() < 40  # about 10 groups × 3 ships
    stock = Starpilot(StarpilotConfig(), CPU).generate(torch.arange(256))
    # the same seeds draw the same groups: dodge keeps those starting by step 200
    early = stock["sched_t"] <= 200
    assert torch.equal(stock["sched_t"][early], t[t <= 200])


def test_level_end_after_500_schedules_more_groups():
    game = Starpilot(StarpilotConfig(level_end_step=1000, timeout=2000), CPU)
    assert game.schedule == 512 and game.max_groups == 99
    st = game.generate(torch.arange(64))
    t, live = st["sched_t"], st["sched_t"] < sp.NEVER
    assert t.shape == (64, 512) and t[live].max() > 900 and t[live].max() <= 1020
    assert (t[:, 1:] >= t[:, :-1]).all()
    assert 120 < live.sum(1).float().mean() < 180  # about 50 groups × 3 ships


def test_no_enemies_means_an_empty_schedule():
    game = Starpilot(config("starpilot/super").with_overrides({"spawn_enemies": False}), CPU)
    st = game.generate(torch.arange(16))
    assert (st["sched_t"] == sp.NEVER).all()
    st, rewards, dones, _ = run(game, {k: v[:1] for k, v in st.items()}, [NOOP] * 400)
    assert not any(dones) and rewards == pytest.approx([0.01] * 400)
    assert alive_cols(st, sp.SH) == 0 and alive_cols(st, sp.EB) == 0


def test_thesis_sprites_one_ship_sprite_per_group_and_one_rocket():
    game = Starpilot(config("starpilot/super"), CPU)
    files = [tex.file for tex in game.textures]
    st = game.generate(torch.arange(64))
    live = st["sched_t"] < sp.NEVER
    tex = st["sched"][:, sp.TEX][live].long()
    assert {files[i] for i in tex.tolist()} == {"spaceShips_002.png", "spaceShips_007.png"}
    assert 0.4 < (tex == tex.min()).float().mean() < 0.6
    assert {files[int(i)] for i in st["tab"][:, sp.TEX, sp.ROCKET].tolist()} == {"spaceRockets_003.png"}
    assert torch.allclose(st["tab"][:, sp.RANK, sp.ROCKET], torch.tensor(16.0 + 8.0 * 118 / 315))


def test_step_does_not_modify_its_input():
    game = Starpilot(StarpilotConfig(), CPU)
    st = game.generate(torch.arange(8))
    for _ in range(40):
        before = {k: v.clone() for k, v in st.items()}
        new, *_ = game.step(st, torch.randint(0, 15, (8,)))
        assert all(torch.equal(before[k], st[k]) for k in st)
        assert torch.equal(new["t"], st["t"] + 1)
        st = new


def test_generate_is_deterministic_in_the_level_seed():
    game = Starpilot(config("starpilot/super"), CPU)
    seeds = torch.tensor([3, 17, 2**31 - 2, 3])
    a, b = game.generate(seeds), game.generate(seeds)
    for k in a:
        assert torch.equal(a[k], b[k])
        assert torch.equal(a[k][0], a[k][3])
    assert not torch.equal(a["sched_t"][0], a["sched_t"][1])
    assert (a["t"] == 0).all()


def test_schedule_follows_the_spec():
    game = Starpilot(StarpilotConfig(), CPU)
    st = game.generate(torch.arange(256))
    t = st["sched_t"]
    assert (t[:, 1:] >= t[:, :-1]).all()  # sorted
    live = t < sp.NEVER
    first = t[:, 0]
    assert first.min() >= 11 and first.max() <= 30
    assert t[live].max() <= 500 + 20
    count = live.sum(1).float()
    assert 60 < count.mean() < 90  # about 25 groups × 3 ships
    sched = st["sched"]
    y = sched[:, sp.Y][live]
    assert y.min() >= 0.5 and y.max() <= 15.5
    speed = torch.hypot(sched[:, sp.VX][live], sched[:, sp.VY][live])
    assert torch.allclose(speed, torch.full_like(speed, 0.3))
    straight = (sched[:, sp.VY][live] == 0).float().mean()
    assert 0.45 < straight < 0.55
    assert (sched[:, sp.VX][live] < 0).all()
    agent = st["tab"][:, sp.X:sp.Y + 1, sp.A]
    assert agent.min() >= 0.4 and agent.max() <= 15.6


def test_same_seed_gives_identical_streams():
    def stream(seed):
        env = envs.make("starpilot/original", num_envs=8, seed=seed)
        frames = [env.reset()]
        g = torch.Generator().manual_seed(0)
        rewards = []
        for _ in range(150):
            obs, r, d, info = env.step(torch.randint(0, 15, (8,), generator=g))
            frames.append(obs)
            rewards.append(r)
        return torch.stack(frames), torch.stack(rewards)

    (fa, ra), (fb, rb), (fc, _) = stream(1), stream(1), stream(2)
    assert torch.equal(fa, fb) and torch.equal(ra, rb)
    assert not torch.equal(fa, fc)
    assert fa.shape == (151, 8, 64, 64, 3) and fa.dtype == torch.uint8


def test_frames_show_the_agent_and_ships():
    env = envs.make("starpilot/original", num_envs=4, seed=0, monochrome=True)
    env.reset()
    for _ in range(40):
        obs, *_ = env.step(torch.full((4,), NOOP))
    agent = torch.tensor([127, 255, 127], dtype=torch.uint8)  # monochrome colours, spec Appendix A
    ship = torch.tensor([127, 63, 127], dtype=torch.uint8)
    has = lambda c: (obs == c).all(-1).flatten(1).sum(1)  # noqa: E731
    assert (has(agent) >= 9).all()  # a 3.2-px box covers 9-16 pixels
    assert (has(ship) > 0).any()
