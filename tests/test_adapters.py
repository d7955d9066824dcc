"""The adapters, driven by the real libraries: SB3's PPO trains on ours, gymnasium's vector
API and gym3's observe/act work, ProcgenGym3Env code runs unchanged, the single-environment
gymnasium Env passes both libraries' checkers, and seeds mean what the libraries say."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.adapters.gym3_env import ProcgenGym3Env
from envs.adapters.gymnasium_env import GymnasiumEnv
from envs.adapters.gymnasium_vector import GymnasiumVectorEnv
from envs.adapters.sb3 import SB3VecEnv

TASK = "fruitbot/fruits"  # its first frames differ from level to level


def test_sb3_ppo_trains_on_our_vecenv():
    venv = SB3VecEnv(envs.make("starpilot/shoot", num_envs=4, seed=0))
    model = PPO("CnnPolicy", venv, n_steps=64, batch_size=128, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"normalize_images": True})
    model.learn(total_timesteps=512)
    assert model.num_timesteps >= 512
    assert len(model.ep_info_buffer) > 0  # episodes were reported like SB3's Monitor does
    actions, _ = model.predict(venv.reset())
    assert actions.shape == (4,)


def test_gymnasium_vector_api():
    env = GymnasiumVectorEnv(envs.make("fruitbot/fruits", num_envs=3, seed=0))
    obs, info = env.reset(seed=4)
    assert obs.shape == (3, 64, 64, 3) and env.single_action_space.n == 15
    ended = 0
    for _ in range(500):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.dtype == np.uint8 and reward.shape == (3,) and not truncated.any()
        ended += terminated.sum()
        assert (info["episode_length"][terminated] > 0).all()
    assert ended > 0


def procgen_style_loop(env, steps):
    """Code written for procgen.ProcgenGym3Env (observe/act/get_info)."""
    total, episodes = 0.0, 0
    for _ in range(steps):
        rew, ob, first = env.observe()
        assert ob["rgb"].shape == (env.num, 64, 64, 3)
        total += rew.sum()
        episodes += first.sum()
        env.act(np.random.default_rng(0).integers(0, 15, env.num))
        assert {"level_seed", "prev_level_seed", "prev_level_complete"} <= set(env.get_info()[0])
    return total, episodes


def test_gym3_drop_in_for_procgen():
    env = ProcgenGym3Env(num=4, env_name="starpilot", distribution_mode="easy", rand_seed=0, use_backgrounds=False)
    assert env.ac_space.eltype.n == 15
    _, episodes = procgen_style_loop(env, 200)
    assert episodes > 4  # the first observation counts, then auto-resets
    dodge = ProcgenGym3Env(num=2, env_name="starpilot/dodge", distribution_mode="easy", rand_seed=0)
    procgen_style_loop(dodge, 5)


def test_gym3_drop_in_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="only 'easy'"):
        ProcgenGym3Env(num=1, env_name="starpilot", distribution_mode="hard")
    with pytest.raises(ValueError, match="use_backgrounds=True is not supported"):
        ProcgenGym3Env(num=1, env_name="starpilot", use_backgrounds=True)
    with pytest.raises(TypeError, match="unknown option 'use_turbo'"):
        ProcgenGym3Env(num=1, env_name="starpilot", use_turbo=True)


def test_gym3_restrict_themes_as_procgen():
    """restrict_themes=False (procgen's default, and what the thesis ran): every entity picks its
    sprite among its type's whole list; True: the first sprite of each list (Procgen's theme 0)."""
    stock = ProcgenGym3Env(num=1, env_name="starpilot", rand_seed=0).game.task.config
    assert stock.enemy_sprites == tuple(f"spaceShips_00{i}.png" for i in range(1, 8))
    assert len(stock.rocket_sprites) == 4
    assert ProcgenGym3Env(num=1, env_name="starpilot", rand_seed=0, restrict_themes=True).game.task.config \
        == envs.get_task("starpilot/original").config
    fruit = ProcgenGym3Env(num=1, env_name="fruitbot", rand_seed=0).game.task.config
    assert (fruit.fruit_sprites, fruit.treat_sprites) == (("fruit1.png", "fruit2.png"), ("food1.png", "food2.png"))
    assert len(fruit.present_sprites) == 3
    # a task keeps its lists, or keeps the first sprite of each with restrict_themes=True
    thesis = ProcgenGym3Env(num=1, env_name="fruitbot/super", rand_seed=0).game.task.config
    assert thesis == envs.get_task("fruitbot/super").config
    first = ProcgenGym3Env(num=1, env_name="fruitbot/super", rand_seed=0, restrict_themes=True).game.task.config
    assert (first.fruit_sprites, first.treat_sprites, first.present_sprites) == (("fruit3.png",), ("food1.png",), ("present1.png",))
    assert first.with_overrides({"fruit_sprites": list(thesis.fruit_sprites), "treat_sprites": list(thesis.treat_sprites),
                                 "present_sprites": list(thesis.present_sprites)}) == thesis
    ship = ProcgenGym3Env(num=1, env_name="starpilot/dodge", rand_seed=0, restrict_themes=True).game.task.config
    assert ship.enemy_sprites == ("spaceShips_002.png",) and ship.level_end_step == 200


def test_gym3_center_agent():
    # Starpilot's real game ignores it (it sets center_agent = false itself); Fruitbot's camera
    # follows the agent here, so the whole-level view is refused by name
    ProcgenGym3Env(num=1, env_name="starpilot/super", rand_seed=0, center_agent=False)
    ProcgenGym3Env(num=1, env_name="fruitbot", rand_seed=0, center_agent=True)
    with pytest.raises(ValueError, match="center_agent=False is not supported for fruitbot"):
        ProcgenGym3Env(num=1, env_name="fruitbot/fruits", center_agent=False)
    with pytest.raises(ValueError, match="paint_vel_info=True is not supported"):
        ProcgenGym3Env(num=1, env_name="fruitbot", paint_vel_info=True)
    with pytest.raises(TypeError, match="restrict_themes must be true or false"):
        ProcgenGym3Env(num=1, env_name="fruitbot", restrict_themes="yes")


def test_gymnasium_vector_seeds_as_gymnasium():
    """Environment i with seed s plays environment s's levels of the game's family; an int
    seed s gives environment i seed s + i, so seed 0 is the game's own levels."""
    own = envs.make(TASK, num_envs=5, seed=3).reset().numpy()
    env = GymnasiumVectorEnv(envs.make(TASK, num_envs=3, seed=3))
    first, _ = env.reset()
    assert (first == own[:3]).all()
    assert (env.reset(seed=0)[0] == own[:3]).all()
    one, info = env.reset(seed=1)
    assert (one == own[1:4]).all()
    listed, listed_info = env.reset(seed=[1, 2, 3])  # the same as seed=1
    assert (listed == one).all() and (listed_info["level_seed"] == info["level_seed"]).all()
    assert not (env.reset(seed=2)[0] == one).all()  # different seeds, different levels
    same, _ = env.reset(seed=[2, 2, None])  # equal seeds, equal levels; None: not reseeded (not played yet: stays)
    assert (same[0] == own[2]).all() and (same[1] == own[2]).all() and (same[2] == own[4]).all()
    played = env.reset(seed=0)[1]["level_seed"]
    env.step(np.zeros(3, dtype=np.int64))
    moved, moved_info = env.reset(seed=[None, 1, None])  # played levels are not replayed
    assert (moved[1] == own[1]).all()
    assert (moved_info["level_seed"] != played)[[0, 2]].all()


def test_gymnasium_vector_refuses_bad_seeds_by_name():
    env = GymnasiumVectorEnv(envs.make(TASK, num_envs=3, seed=0))
    with pytest.raises(ValueError, match=r"seed: a list of seeds needs one per environment \(3\), got 2"):
        env.reset(seed=[1, 2])
    with pytest.raises(TypeError, match=r"seed\[1\] must be an integer in \[0, 2\*\*32\) or None, got float 2.5"):
        env.reset(seed=[1, 2.5, None])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32 - 3\]"):
        env.reset(seed=-1)
    with pytest.raises(TypeError, match="seed must be None, an integer, or a list of 3 integers or None"):
        env.reset(seed="42")
    with pytest.raises(ValueError, match="takes no options"):
        env.reset(options={"reset_mask": np.ones(3, dtype=bool)})


def test_sb3_seed_takes_effect_on_the_next_reset():
    venv = SB3VecEnv(envs.make(TASK, num_envs=2, seed=3))
    assert venv.seed(1) == [1, 2]  # what SB3 returns: seed + i
    seeded = venv.reset()
    assert (seeded == GymnasiumVectorEnv(envs.make(TASK, num_envs=2, seed=3)).reset(seed=1)[0]).all()
    assert (seeded == envs.make(TASK, num_envs=3, seed=3).reset().numpy()[1:]).all()
    assert venv.reset_infos[0]["level_seed"] != venv.reset_infos[1]["level_seed"]
    venv.step(np.zeros(2, dtype=np.int64))
    assert not (venv.reset() == seeded).all()  # seeds are used once: this reset moves on to new levels
    drawn = venv.seed()
    assert len(drawn) == 2 and drawn[1] == drawn[0] + 1
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32 - 2\]"):
        venv.seed(2**32 - 1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        venv.seed(1.0)


def test_single_env_passes_both_checkers():
    env = GymnasiumEnv(TASK, seed=0, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not having a spec")  # nothing is registered
        gymnasium_check_env(env.unwrapped)
    sb3_check_env(env)
    assert env.render().shape == (64, 64, 3)


def test_single_env_seeds_terminations_and_truncations():
    vector = GymnasiumVectorEnv(envs.make(TASK, num_envs=3, seed=3))
    expected, expected_info = vector.reset(seed=[9, 0, 9])
    env = GymnasiumEnv(TASK, seed=3)
    assert (env.reset()[0] == expected[1]).all()  # the first reset: envs.make(task, 1, seed=3)'s levels
    obs, info = env.reset(seed=9)  # the levels of any environment seeded 9 in the same family
    assert (obs == expected[0]).all() and info["level_seed"] == expected_info["level_seed"][0]
    assert not (env.reset(seed=10)[0] == obs).all()
    for step in range(1, 200):  # a crash into a wall ends this episode: termination
        obs, reward, terminated, truncated, info = env.step(4)
        if terminated or truncated:
            break
    assert terminated and not truncated and step < 200
    after = env.reset()  # the level loaded at the episode's end, not yet played
    assert (after[0] == obs).all()
    env.step(4)
    assert env.reset()[1]["level_seed"] != after[1]["level_seed"]  # a played level is left
    short = GymnasiumEnv(TASK, seed=3, overrides={"timeout": 4})
    short.reset(seed=9)
    ends = [short.step(4)[2:4] for _ in range(4)]
    assert ends == [(False, False)] * 3 + [(False, True)]  # the timeout truncates
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32 - 1\]"):
        env.reset(seed=2**32)
    with pytest.raises(ValueError, match="takes no options"):
        env.reset(options={"level": 3})
    with pytest.raises(ValueError, match="render_mode='human'"):
        GymnasiumEnv(TASK, render_mode="human")
