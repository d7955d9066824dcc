"""``level_stream: procgen``: our engine and the real Procgen, made with the same
``rand_seed``, ``num_levels`` and ``start_level``, play the same levels. Both are stepped
with the same actions; every step's rewards, dones and level seeds must agree, every
episode's return and length, and every level's contents (the real game's fresh level
against ours written into it: every entity field but the image themes, StarPilot's spawn
list in the real game's order included) and where the real game's level generator stands
after making it (the number of words drawn, themes included); and every frame is within the
same-state harness's pixel budget (``tests/test_same_state.py``: at most 1% of the lit pixels
differ, at most 48 in any frame). With as many sprites as the real game has themes, the
themes themselves are the real ones too.

The slow check, ``CRL_LEVEL_STREAM_EPISODES=1000`` (episodes per game), plays that many
episodes of each game on 16 environments."""

import os

import numpy as np
import pytest
import torch

import envs
from envs import stdsort
from envs.policies import make_policy
from envs.procgen_ref import ProcgenRef
from envs.procgen_state import frame_differences, generators, level_differences
from envs.schema import ConfigError
from tests.test_mt19937 import state_after

SLOW_EPISODES = int(os.environ.get("CRL_LEVEL_STREAM_EPISODES", "0"))


def play(game, policy, num_envs, episodes, seed, num_levels=0, start_level=0, levels="train"):
    """Plays both engines until ``episodes`` episodes have ended, checking as it goes (see the
    module docstring); returns the levels checked and how many of them (StarPilot) have ships
    spawning in the same step, where the spawn list's order matters, and the frames' lit and
    differing pixel counts."""
    task = envs.get_task(f"{game}/original", {"level_stream": "procgen"})
    kwargs = dict(seed=seed, num_levels=num_levels, start_level=start_level, levels=levels)
    ours, real = envs.make(task, num_envs, **kwargs), ProcgenRef(task, num_envs, **kwargs)
    act = make_policy(policy, num_envs, seed=1)
    obs, real_obs = ours.reset(), real.reset()
    checked = {"levels": 0, "with_ties": 0, "lit": [], "differing": []}

    def check_frames():
        lit, differing = frame_differences(obs, real_obs)
        checked["lit"].append(lit)
        checked["differing"].append(differing)

    def check_levels(envs_started, real_seeds):
        assert torch.equal(ours.level_seed.index_select(0, envs_started), real_seeds.index_select(0, envs_started))
        states = real.env.get_state()
        draws = ours.game.procgen_draws(ours.level_seed)
        for i in envs_started.tolist():
            assert level_differences(states[i], ours.game, ours.state, i) == [], f"environment {i}"
            words, pos = generators(states[i])["rand_gen"]
            expected = state_after(int(ours.level_seed[i]), int(draws[i]))
            assert pos == expected[1] and np.array_equal(words, expected[0]), f"environment {i}: draw count"
            if game == "starpilot":
                spawn = ours.state["sched_t"][i]
                checked["with_ties"] += bool((spawn[1:] == spawn[:-1])[spawn[1:] < 1 << 40].any())
            checked["levels"] += 1

    check_levels(torch.arange(num_envs), torch.tensor([i["level_seed"] for i in real.env.get_info()]))
    check_frames()
    ended_count, step = 0, 0
    while ended_count < episodes:
        action = torch.as_tensor(act(step, obs))
        step += 1
        obs, reward, done, info = ours.step(action)
        real_obs, real_reward, real_done, real_info = real.step(action)
        check_frames()
        assert torch.equal(done, real_done) and torch.equal(reward, real_reward), f"step {step}"
        assert torch.equal(info["prev_level_seed"], real_info["prev_level_seed"])
        ended = done.nonzero().squeeze(1)
        if ended.numel():
            for key in ["episode_return", "episode_length", "prev_level_complete"]:
                assert torch.equal(info[key][ended], real_info[key][ended].to(info[key].dtype)), key
            check_levels(ended, real_info["level_seed"])
            ended_count += ended.numel()
    checked["lit"], checked["differing"] = torch.cat(checked["lit"]), torch.cat(checked["differing"])
    return checked


def assert_within_pixel_budget(checked):
    differing, lit = checked["differing"], checked["lit"]
    assert differing.sum() <= 0.01 * lit.sum(), float(differing.sum() / lit.sum())
    assert differing.max() <= 48


CASES = [("starpilot", "random", 0, 0, 3, "train"), ("starpilot", "up_fire", 10, 100, 4, "train"),
         ("starpilot", "random", 0, 0, 5, "eval"), ("fruitbot", "random", 0, 0, 3, "train"),
         ("fruitbot", "zigzag", 10, 100, 4, "train"), ("fruitbot", "noop", 0, 0, 5, "eval")]


@pytest.mark.parametrize("game, policy, num_levels, start_level, seed, levels", CASES,
                         ids=[f"{g}-{p}-{n}-{lv}" for g, p, n, _, _, lv in CASES])
def test_the_same_levels_as_the_real_game(game, policy, num_levels, start_level, seed, levels):
    checked = play(game, policy, num_envs=4, episodes=24, seed=seed, num_levels=num_levels,
                   start_level=start_level, levels=levels)
    assert checked["levels"] >= 28
    assert_within_pixel_budget(checked)
    if game == "starpilot":
        assert checked["with_ties"] >= 5  # the sort order was really tested


@pytest.mark.skipif(not SLOW_EPISODES, reason="slow: set CRL_LEVEL_STREAM_EPISODES (e.g. 1000 episodes per game)")
@pytest.mark.parametrize("game", ["starpilot", "fruitbot"])
def test_many_episodes_the_same_as_the_real_game(game):
    checked = play(game, "random", num_envs=16, episodes=SLOW_EPISODES, seed=7)
    assert_within_pixel_budget(checked)
    ties = f" ({checked['with_ties']} with ships spawning together)" if game == "starpilot" else ""
    share = float(checked["differing"].sum() / checked["lit"].sum())
    print(f"\n{game}: {checked['levels']} levels identical{ties}; {100 * share:.2f}% of lit pixels differ, "
          f"at most {int(checked['differing'].max())} in a frame, over {len(checked['lit']):,} frames")


def test_std_sort_order_is_a_sorted_permutation_and_small_lists_sort_stably():
    gen = np.random.default_rng(0)
    for n in [0, 1, 5, 16, 17, 40, 200]:
        keys = gen.integers(0, 8, n).tolist()
        order = stdsort.sort_order(keys, lambda a, b: a > b)
        assert sorted(order) == list(range(n))
        assert [keys[i] for i in order] == sorted(keys, reverse=True)
        if n <= stdsort.THRESHOLD:  # insertion sort only
            assert order == sorted(range(n), key=lambda i: -keys[i])


def test_a_bad_level_stream_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"level_stream.*'random'.*\['hash', 'procgen'\]"):
        envs.make("starpilot/original", num_envs=1, overrides={"level_stream": "random"})


@pytest.mark.parametrize("game", ["starpilot", "fruitbot"])
def test_sync_free_generation_makes_the_same_levels(game):
    """Without host reads (all groups drawn, the most words any level can need twisted up
    front) the levels are those of the default CPU path."""
    seeds = torch.arange(16) * 104729 + 11
    made = []
    for sync_ok in [True, False]:
        env = envs.make(f"{game}/original", num_envs=1, overrides={"level_stream": "procgen"})
        env.game.sync_ok = sync_ok
        made.append(env.game.generate(seeds))
    assert all(torch.equal(made[0][k], made[1][k]) for k in made[0])


SHIPS = [f"spaceShips_00{k}.png" for k in range(1, 8)]  # the real game's 7 FLYER themes
ROCKETS = [f"spaceRockets_00{k}.png" for k in range(1, 5)]  # its 4 FINISH_LINE themes


def test_themes_are_the_real_games_with_its_theme_counts():
    """With as many sprites as the real game has themes (StarPilot: 7 ships, 4 rockets;
    FruitBot's thesis tasks: 2 fruits, 2 treats, 3 presents), every theme is the real one."""
    from envs.games import fruitbot as fb
    from envs.games import starpilot as sp
    from envs.procgen_state import FB_BAD, FB_GOOD, FB_PRESENT, ProcgenState

    real = ProcgenRef("starpilot/original", 8, seed=9)
    real.reset()
    ours = envs.make("starpilot/original", 8, seed=9, overrides={"level_stream": "procgen", "enemy_sprites": SHIPS})
    ours.reset()
    for i, data in enumerate(real.env.get_state()):
        live = ours.state["sched_t"][i] < sp.NEVER
        themes = (ours.state["sched"][i, sp.TEX, live] - ours.game.tex_ship).long()
        assert themes.tolist() == ProcgenState(data).spawners["image_theme"][::-1].tolist()

    real = ProcgenRef("fruitbot/original", 8, seed=9)
    real.reset()
    ours = envs.make("fruitbot/super", 8, seed=9, overrides={"level_stream": "procgen"})
    ours.reset()
    game = ours.game
    tex = ours.state["draw"][:, fb.TEXTURE].long()
    first = fb.NUM_CELLS + fb.NUM_TILES
    for i, data in enumerate(real.env.get_state()):
        ents = ProcgenState(data).entities
        assert (tex[i, first:first + 10] - fb.TEX_PRESENT).tolist() == ents["image_theme"][ents["type"] == FB_PRESENT].tolist()
        items = ours.state["boxes"][i, 1, 2 * fb.NUM_ROWS + 10:] > fb.PARK / 2
        ours_items = (tex[i, first + 10:first + 10 + game.num_items] - game.item_tex0)[items]
        real_items = ents["image_theme"][(ents["type"] == FB_GOOD) | (ents["type"] == FB_BAD)]
        assert ours_items.tolist() == real_items.tolist()


def test_the_rocket_theme_is_drawn_after_the_steps_before_the_level_end():
    """The real game draws one word per step and the rocket's theme at the level end (step
    500): its level with the ships taken out, played to step 500, shows our rocket theme."""
    from envs.games import starpilot as sp
    from envs.procgen_state import ProcgenState

    n = 4
    real = ProcgenRef("starpilot/original", n, seed=13)
    real.reset()
    states = []
    for data in real.env.get_state():
        s = ProcgenState(data)
        s.spawners = s.spawners[:0]
        states.append(s.to_bytes())
    real.env.set_state(states)
    for _ in range(sp.ROCKET_TIME):
        _, _, done, _ = real.step(torch.full((n,), 4))
        assert not done.any()
    ours = envs.make("starpilot/original", n, seed=13, overrides={"level_stream": "procgen", "rocket_sprites": ROCKETS})
    ours.reset()
    for i, data in enumerate(real.env.get_state()):
        ents = ProcgenState(data).entities
        rocket = ents["image_theme"][ents["type"] == 9]  # FINISH_LINE
        assert rocket.tolist() == [int(ours.state["tab"][i, sp.TEX, sp.ROCKET]) - ours.game.tex_rocket]


def test_streams_and_episodes_chosen_at_reset_are_the_real_games():
    """``reset(stream=, episode=)`` (the adapters' seeds) with the procgen stream: environment
    i plays environment ``stream[i]``'s levels from its episode ``episode[i]`` on, also past a
    twist of its generator (episode ≥ 624) and back."""
    from envs import randgen

    env = envs.make("fruitbot/original", 3, seed=2, num_levels=50, overrides={"level_stream": "procgen"})
    real_levels = randgen.level_seeds(2, torch.tensor([7, 0, 7, 7]), torch.tensor([0, 0, 700, 1]), 50, 0)
    env.reset(stream=[7, 0, 7], episode=[700, 0, 0])
    assert env.level_seed.tolist() == [real_levels[2], real_levels[1], real_levels[0]]
    env.reset(episode=[1, 0, 700])
    assert env.level_seed.tolist() == [real_levels[3], real_levels[1], real_levels[2]]
    with pytest.raises(ValueError, match="below"):
        env.reset(stream=[2**20, 0, 1])
