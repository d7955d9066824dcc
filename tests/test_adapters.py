"""The three adapters, driven by the real libraries: SB3's PPO trains on ours, gymnasium's
vector API and gym3's observe/act work, and ProcgenGym3Env code runs unchanged."""

import numpy as np
import pytest
from stable_baselines3 import PPO

import envs
from envs.adapters.gym3_env import ProcgenGym3Env
from envs.adapters.gymnasium_vector import GymnasiumVectorEnv
from envs.adapters.sb3 import SB3VecEnv


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
