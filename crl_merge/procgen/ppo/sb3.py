"""The reference trainer: stable-baselines3's ``PPO("CnnPolicy")`` on our SB3 adapter, with
the thesis's hyperparameters, in either policy layout: SB3's default shared features
extractor (``shared``, the thesis's model) or ``share_features_extractor=False``.

The SB3 policy starts from the same weights as the fast trainer for the same init seed, and
its actor and critic are written in the same checkpoint format (``NatureCNN`` names), so the
two trainers' outputs are interchangeable.
"""

from __future__ import annotations

import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import envs
from crl_merge.models import make_actor_critic
from crl_merge.models.nature_cnn import SB3_LAYERS, SeparateActorCritic, SharedActorCritic
from crl_merge.procgen.ppo.checkpointing import TrainingCheckpoint
from crl_merge.procgen.ppo.config import PPOConfig
from crl_merge.procgen.ppo.curve import LearningCurve
from crl_merge.procgen.ppo.fast import TrainResult
from crl_merge.training_state import pack_training_state, unpack_training_state
from envs.adapters.sb3 import SB3VecEnv


def _layer_pairs(sb3_policy, ours: SharedActorCritic | SeparateActorCritic) -> list[tuple]:
    """``(SB3 module, our module)`` for every layer of the policy."""
    def trunk(extractor, network):
        modules = dict(extractor.named_modules())
        return [(modules[SB3_LAYERS[name]], getattr(network, name)) for name in SB3_LAYERS]

    pairs = trunk(sb3_policy.pi_features_extractor, ours.actor) + [(sb3_policy.action_net, ours.actor.head)]
    if ours.layout == "shared":
        return pairs + [(sb3_policy.value_net, ours.value_net)]
    return pairs + trunk(sb3_policy.vf_features_extractor, ours.critic) + [(sb3_policy.value_net, ours.critic.head)]


@torch.no_grad()
def copy_into_policy(sb3_policy, ours: SharedActorCritic | SeparateActorCritic) -> None:
    for theirs, mine in _layer_pairs(sb3_policy, ours):
        theirs.weight.copy_(mine.weight)
        theirs.bias.copy_(mine.bias)


@torch.no_grad()
def actor_critic_from_policy(sb3_policy, layout: str) -> SharedActorCritic | SeparateActorCritic:
    ours = make_actor_critic(layout)
    for theirs, mine in _layer_pairs(sb3_policy, ours):
        mine.weight.copy_(theirs.weight.cpu())
        mine.bias.copy_(theirs.bias.cpu())
    return ours.eval()


class _CurveAndCheckpoints(BaseCallback):
    """Feeds finished episodes to the curve, logs a row after every update, saves checkpoints."""

    def __init__(self, curve: LearningCurve, checkpoint: TrainingCheckpoint | None, generators, total_steps, progress):
        super().__init__()
        self.curve, self.checkpoint, self.generators = curve, checkpoint, generators
        self.total_steps, self.progress = total_steps, progress
        self.last_checkpoint = self.logged_step = None
        self.started = time.perf_counter()

    def _on_training_start(self) -> None:
        self.last_checkpoint = self.logged_step = self.model.num_timesteps

    def _on_step(self) -> bool:
        episodes = [info["episode"] for info in self.locals["infos"] if "episode" in info]
        if episodes:
            self.curve.add_episodes([e["r"] for e in episodes], [e["l"] for e in episodes])
        return True

    def _log_update(self) -> None:
        step = self.model.num_timesteps
        if step == self.logged_step:
            return
        now = time.perf_counter()
        row = self.curve.log(step, (step - self.logged_step) / (now - self.started))
        self.logged_step, self.started = step, now
        if self.progress:
            self.progress(step, row)
        if self.checkpoint is not None and step - self.last_checkpoint >= self.checkpoint.every and step < self.total_steps:
            tensors, meta = pack_training_state({"policy": self.model.policy}, self.model.policy.optimizer, self.generators)
            self.checkpoint.save(tensors, {**meta, "global_step": step, "curve": self.curve.state()})
            self.last_checkpoint = step

    def _on_rollout_start(self) -> None:  # i.e. after the previous update
        self._log_update()

    def _on_training_end(self) -> None:
        self._log_update()


def train_sb3(task, ppo: PPOConfig, total_steps: int, init_seed: int, level_seed: int, device="cpu",
              checkpoint: TrainingCheckpoint | None = None, tensorboard_dir=None, progress=None,
              policy_layout: str = "shared") -> TrainResult:
    """Same contract as :func:`crl_merge.procgen.ppo.fast.train_fast`."""
    device = torch.device(device)
    venv = SB3VecEnv(envs.make(task, num_envs=ppo.n_envs, seed=level_seed))
    model = PPO("CnnPolicy", venv, learning_rate=ppo.learning_rate, n_steps=ppo.n_steps, batch_size=ppo.batch_size,
                n_epochs=ppo.n_epochs, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda, clip_range=ppo.clip_range,
                clip_range_vf=None, normalize_advantage=ppo.normalize_advantage, ent_coef=ppo.ent_coef,
                vf_coef=ppo.vf_coef, max_grad_norm=ppo.max_grad_norm, seed=init_seed, device=device, verbose=0,
                policy_kwargs={"share_features_extractor": policy_layout == "shared",
                               "optimizer_kwargs": {"eps": ppo.adam_eps}})
    copy_into_policy(model.policy, make_actor_critic(policy_layout, init_seed).to(device))
    venv.seed(0)  # SB3 seeded the envs with init_seed on building PPO; the levels are level_seed's alone
    generators = {"torch": torch.default_generator}
    if device.type == "cuda":
        generators["cuda"] = torch.cuda.default_generators[device.index or 0]
    curve_state = {}
    if checkpoint is not None and (saved := checkpoint.load(device)) is not None:
        tensors, meta = saved
        unpack_training_state(tensors, meta, {"policy": model.policy}, model.policy.optimizer, generators)
        model.num_timesteps, curve_state = meta["global_step"], meta["curve"]
    curve = LearningCurve(tensorboard_dir, **curve_state)
    remaining = total_steps - model.num_timesteps
    if remaining > 0:
        callback = _CurveAndCheckpoints(curve, checkpoint, generators, total_steps, progress)
        model.learn(total_timesteps=remaining, reset_num_timesteps=False, callback=callback)
    ours = actor_critic_from_policy(model.policy, policy_layout)
    return TrainResult(ours.actor, ours.critic_network(), curve, model.num_timesteps)
