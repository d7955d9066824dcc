"""K PPO models trained in one program: the ``fast`` trainer's algorithm (see ``fast.py``, the
reference) with the K models' parameters stacked along a leading axis and every network pass
``torch.func.vmap``-ed over it, so that one kernel launch serves all K models (what keeps a GPU
busy; on a CPU it gains nothing over separate runs).

Each model keeps everything a separate run has: its own initial weights, environments and
level stream, action sampler and minibatch shuffler (its own ``torch.Generator``s, drawn in
the same order as ``train_fast`` draws them), advantage normalisation and gradient-norm
clipping over its own parameters only, and its own Adam state. One Adam over the stacked
tensors is K Adams: Adam is elementwise and all K models step together, so each element's
moments and step count are those of its own model's Adam. Hence the same weights as K
separate ``train_fast`` runs, up to floating-point summation order (tested).

Checkpoints are written per model in ``train_fast``'s own format, so a run started batched
can be resumed by ``train_fast`` and the other way round.
"""

from __future__ import annotations

import time

import torch
from torch.func import functional_call, stack_module_state, vmap

import envs
from crl_merge.models import make_actor_critic
from crl_merge.procgen.ppo.checkpointing import TrainingCheckpoint
from crl_merge.procgen.ppo.config import PPOConfig
from crl_merge.procgen.ppo.curve import LearningCurve
from crl_merge.procgen.ppo.fast import TrainResult, gae_advantages, ppo_loss
from crl_merge.training_state import pack_training_state, unpack_training_state


class ModelState:
    """One model's own objects as ``train_fast`` would hold them: a policy module, an Adam over
    its parameters, its two generators and its learning curve. They carry state between the
    stacked program and the model's checkpoint (and make its final actor and critic)."""

    def __init__(self, layout: str, ppo: PPOConfig, init_seed: int, device, tensorboard_dir=None,
                 checkpoint: TrainingCheckpoint | None = None):
        self.policy = make_actor_critic(layout, init_seed).to(device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=ppo.learning_rate, eps=ppo.adam_eps)
        self.generators = {"sampler": torch.Generator(device=device).manual_seed(init_seed),
                           "shuffler": torch.Generator(device=device).manual_seed(init_seed + 1)}
        self.checkpoint, self.global_step, curve_state = checkpoint, 0, {}
        if checkpoint is not None and (saved := checkpoint.load(device)) is not None:
            tensors, meta = saved
            unpack_training_state(tensors, meta, {"policy": self.policy}, self.optimizer, self.generators)
            self.global_step, curve_state = meta["global_step"], meta["curve"]
        self.curve = LearningCurve(tensorboard_dir, **curve_state)

    def save_checkpoint(self) -> None:
        tensors, meta = pack_training_state({"policy": self.policy}, self.optimizer, self.generators)
        self.checkpoint.save(tensors, {**meta, "global_step": self.global_step, "curve": self.curve.state()})


class StackedTraining:
    """The K models' parameters and Adam moments stacked along axis 0, with one Adam over them."""

    def __init__(self, models: list[ModelState], ppo: PPOConfig):
        self.models = models
        params, _ = stack_module_state([m.policy for m in models])
        self.names = list(params)
        self.params = {name: torch.nn.Parameter(value.detach()) for name, value in params.items()}
        self.optimizer = torch.optim.Adam(self.params.values(), lr=ppo.learning_rate, eps=ppo.adam_eps)
        self._stack_optimizer_state()
        self.template = make_actor_critic(models[0].policy.layout).to("meta")  # the shape; weights come in

    def _stack_optimizer_state(self) -> None:
        per_model = [[m.optimizer.state.get(p) for p in m.policy.parameters()] for m in self.models]
        for i, name in enumerate(self.names):
            states = [states[i] for states in per_model]
            if any(state is None for state in states):
                continue  # no update yet
            steps = {float(state["step"]) for state in states}
            if len(steps) > 1:
                raise ValueError(f"models at different Adam steps {sorted(steps)} cannot be trained as one batch")
            self.optimizer.state[self.params[name]] = {
                "step": states[0]["step"].clone(),
                **{key: torch.stack([state[key] for state in states]) for key in ("exp_avg", "exp_avg_sq")}}

    def forward(self, obs: torch.Tensor, params=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [K, N, 15], values [K, N])`` for ``obs [K, N, 64, 64, 3]``."""
        return vmap(lambda p, o: functional_call(self.template, p, (o,)))(params or self.params, obs)

    def losses(self, obs, actions, old_logp, advantages, returns, ppo: PPOConfig):
        """Each model's PPO loss on its own minibatch: ``(losses [K], stats [K, 4])``."""
        def one_model(p, *batch):
            return ppo_loss(lambda o: functional_call(self.template, p, (o,)), *batch, ppo)
        return vmap(one_model)(self.params, obs, actions, old_logp, advantages, returns)

    def clip_grad_norms(self, max_norm: float) -> None:
        """``clip_grad_norm_`` per model: each model's gradients scaled by its own global norm."""
        grads = [self.params[name].grad for name in self.names]
        norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)
        total = torch.linalg.vector_norm(norms, dim=1)
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))

    def unstack(self) -> None:
        """Copy the stacked weights and Adam moments back into each model's own objects."""
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for name, target in zip(self.names, model.policy.parameters()):
                    target.copy_(self.params[name][k])
                    if (state := self.optimizer.state.get(self.params[name])):
                        model.optimizer.state[target] = {"step": state["step"].clone(),
                                                         "exp_avg": state["exp_avg"][k].clone(),
                                                         "exp_avg_sq": state["exp_avg_sq"][k].clone()}


def train_fast_batched(tasks: list, ppo: PPOConfig, total_steps: int, seeds: list[tuple[int, int]], device="cpu",
                       checkpoints: list[TrainingCheckpoint] | None = None, tensorboard_dirs=None, progress=None,
                       policy_layout: str = "shared") -> list[TrainResult]:
    """``train_fast`` of ``tasks[k]`` from ``seeds[k] = (init_seed, level_seed)`` for every k, as
    one program (the tasks may differ: each model steps its own games).

    ``checkpoints`` (one per model) resume and save each model as ``train_fast`` would; the
    models must stand at the same step (:func:`crl_merge.procgen.ppo.train_runs` groups them).
    ``progress(step, rows)`` is called after every update with the K learning-curve rows.
    """
    device = torch.device(device)
    count = len(seeds)
    checkpoints = checkpoints or [None] * count
    tensorboard_dirs = tensorboard_dirs or [None] * count
    models = [ModelState(policy_layout, ppo, init_seed, device, tb, ck)
              for (init_seed, _), tb, ck in zip(seeds, tensorboard_dirs, checkpoints)]
    if len({m.global_step for m in models}) > 1:
        raise ValueError(f"models at different steps {[m.global_step for m in models]} cannot be trained as one batch")
    global_step = models[0].global_step
    stacked = StackedTraining(models, ppo)
    games = [envs.make(task, num_envs=ppo.n_envs, seed=level_seed, device=str(device))
             for task, (_, level_seed) in zip(tasks, seeds)]
    samplers = [m.generators["sampler"] for m in models]
    shufflers = [m.generators["shuffler"] for m in models]

    n, steps = ppo.n_envs, ppo.n_steps
    obs_buf = torch.zeros((count, steps, n, 64, 64, 3), dtype=torch.uint8, device=device)
    action_buf = torch.zeros((count, steps, n), dtype=torch.long, device=device)
    logp_buf, value_buf, reward_buf, done_buf, ep_return_buf, ep_length_buf = (
        torch.zeros((count, steps, n), device=device) for _ in range(6))

    obs = torch.stack([game.reset() for game in games])
    last_checkpoint = global_step
    while global_step < total_steps:
        started = time.perf_counter()
        # -- rollout: one stacked forward, then each model samples and steps its own games --
        with torch.no_grad():
            for t in range(steps):
                logits, value_buf[:, t] = stacked.forward(obs)
                log_probs = torch.log_softmax(logits, dim=2)
                action = torch.stack([torch.multinomial(log_probs[k].exp(), 1, generator=samplers[k]).squeeze(1)
                                      for k in range(count)])
                obs_buf[:, t], action_buf[:, t] = obs, action
                logp_buf[:, t] = log_probs.gather(2, action[..., None]).squeeze(2)
                results = [game.step(action[k], validate=False) for k, game in enumerate(games)]
                obs = torch.stack([o for o, _, _, _ in results])
                reward_buf[:, t] = torch.stack([r for _, r, _, _ in results])
                done_buf[:, t] = torch.stack([d for _, _, d, _ in results]).float()
                ep_return_buf[:, t] = torch.stack([i["episode_return"] for _, _, _, i in results])
                ep_length_buf[:, t] = torch.stack([i["episode_length"] for _, _, _, i in results]).float()
            # gae_advantages runs along axis 0: hand it [steps, K, n] views
            advantages = gae_advantages(reward_buf.transpose(0, 1), value_buf.transpose(0, 1), done_buf.transpose(0, 1),
                                        stacked.forward(obs)[1], ppo.gamma, ppo.gae_lambda).transpose(0, 1)
            returns = advantages + value_buf
        global_step += steps * n

        # -- update: model k's minibatches in model k's order ---------------------------------
        b_obs, b_actions = obs_buf.reshape(count, -1, 64, 64, 3), action_buf.reshape(count, -1)
        b_logp, b_adv, b_returns = logp_buf.reshape(count, -1), advantages.reshape(count, -1), returns.reshape(count, -1)
        rows_of = torch.arange(count, device=device)[:, None]
        stats = torch.zeros(count, 4, device=device)
        minibatches = 0
        for _ in range(ppo.n_epochs):
            order = torch.stack([torch.randperm(b_obs.shape[1], device=device, generator=g) for g in shufflers])
            for start in range(0, b_obs.shape[1], ppo.batch_size):
                idx = order[:, start:start + ppo.batch_size]
                losses, minibatch_stats = stacked.losses(b_obs[rows_of, idx], b_actions[rows_of, idx],
                                                         b_logp[rows_of, idx], b_adv[rows_of, idx],
                                                         b_returns[rows_of, idx], ppo)
                stacked.optimizer.zero_grad()
                losses.sum().backward()  # the models share no parameter: each gets its own loss's gradient
                stacked.clip_grad_norms(ppo.max_grad_norm)
                stacked.optimizer.step()
                stats += minibatch_stats
                minibatches += 1

        # -- logging: one host transfer per update; checkpoints per model ----------------------
        finished = done_buf.transpose(1, 2).bool().cpu()  # [K, n, steps]: each env's episodes in order
        returns_cpu, lengths_cpu = ep_return_buf.transpose(1, 2).cpu(), ep_length_buf.transpose(1, 2).cpu()
        rate = steps * n / (time.perf_counter() - started)  # each model's, as in a separate run's curve
        rows = []
        for k, model in enumerate(models):
            model.global_step = global_step
            model.curve.add_episodes(returns_cpu[k][finished[k]].tolist(), lengths_cpu[k][finished[k]].tolist())
            policy_loss, value_loss, entropy, clip_fraction = (stats[k] / minibatches).tolist()
            rows.append(model.curve.log(global_step, rate, **{
                "train/policy_gradient_loss": policy_loss, "train/value_loss": value_loss,
                "train/entropy": entropy, "train/clip_fraction": clip_fraction}))
        if progress:
            progress(global_step, rows)
        if checkpoints[0] is not None and global_step - last_checkpoint >= checkpoints[0].every \
                and global_step < total_steps:
            stacked.unstack()
            for model in models:
                model.save_checkpoint()
            last_checkpoint = global_step
    stacked.unstack()
    return [TrainResult(m.policy.eval().actor, m.policy.critic_network(), m.curve, global_step) for m in models]
