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
