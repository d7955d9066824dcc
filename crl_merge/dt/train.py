"""Decision Transformer training, as the official gym experiment does it: MSE between
predicted and dataset actions on real (unmasked) steps, AdamW (weight decay 1e-4) with a
linear learning-rate warm-up, gradient norm clipped at 0.25.

A model trained on several environments at once (co-training) takes one batch from each
per step and averages their losses. ``frozen`` parameters (a subset, as the merging library
names them) get no updates: that is the "freeze" of Merge-Freeze-Finetune.

Training lives in a run of the run store. Every ``checkpoint_every`` steps a resume
checkpoint (weights, AdamW state, step, random-generator states, learning curve) replaces
the last one, as named tensors plus JSON, so a killed run continues where it stopped and
ends with the same weights as an uninterrupted one; a finished run keeps only ``model``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from crl_merge.dt.data import SequenceSampler
from crl_merge.merge import select
from crl_merge.models import DecisionTransformer
from crl_merge.store import Run
from crl_merge.training_state import pack_training_state, unpack_training_state
from envs.schema import Config, option

RESUME, MODEL, CURVE = "resume", "model", "curve"


@dataclass(frozen=True)
class TrainConfig(Config):
    steps: int = option(100_000, "int", "gradient steps", 0)
    batch_size: int = option(64, "int", "context windows per step", 1)
    learning_rate: float = option(1e-4, "float", "AdamW step size", 0.0, 1.0)
    weight_decay: float = option(1e-4, "float", "AdamW weight decay", 0.0, 1.0)
    warmup_steps: int = option(10_000, "int", "linear learning-rate warm-up", 1)
    grad_clip: float = option(0.25, "float", "global gradient-norm clip", 0.0)
    checkpoint_every: int = option(1_000, "int", "steps between resume checkpoints", 1)


def action_loss(model: DecisionTransformer, env: str, batch) -> torch.Tensor:
    """Mean squared error of the predicted actions over the real steps of the batch."""
    pred = model(env, batch.states, batch.actions, batch.returns_to_go, batch.timesteps, batch.mask)
    err = (pred - batch.actions).square().mean(-1)
    return (err * batch.mask).sum() / batch.mask.sum()


def state_stats(samplers: dict[str, SequenceSampler]) -> dict[str, dict]:
    """What evaluation needs from the data: each environment's state mean and std."""
    return {env: {"mean": s.state_mean.tolist(), "std": s.state_std.tolist()} for env, s in samplers.items()}


def _generators() -> dict[str, torch.Generator]:
    """The global torch generators dropout draws from (CPU, and the GPU's when there is one)."""
    gens = {"torch": torch.default_generator}
    if torch.cuda.is_available():
        gens["cuda"] = torch.cuda.default_generators[torch.cuda.current_device()]
    return gens


def _pack(model, optimizer, step: int, rng: np.random.Generator, curve: list[dict]) -> tuple[dict, dict]:
    tensors, meta = pack_training_state({"model": model}, optimizer, _generators())
    return tensors, {**meta, "step": step, "numpy_rng": rng.bit_generator.state, "curve": curve}


def _unpack(tensors, meta, model, optimizer, rng: np.random.Generator) -> tuple[int, list[dict]]:
    unpack_training_state(tensors, meta, {"model": model}, optimizer, _generators())
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["step"]), list(meta["curve"])


def train(run: Run, model: DecisionTransformer, samplers: dict[str, SequenceSampler], config: TrainConfig,
          seed: int, frozen=None, device: str = "cpu", progress: Callable[[int], None] | None = None,
          stop: Callable[[int], bool] | None = None, **meta) -> DecisionTransformer | None:
    """Train ``model`` in ``run`` (or load it if the run has finished); returns the trained
    model, or None when ``stop(step)`` asked to stop (a resume checkpoint is saved first).
    ``meta`` goes into the saved model's sidecar."""
    if run.has(MODEL):
        return run.load_model(MODEL, device)[0]
    missing = sorted(set(samplers) - set(model.io))
    if missing:
        raise ValueError(f"the model has no projections for {missing}; it has {sorted(model.io)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = model.to(device).train()
    frozen_names = set(select(model.state_dict(), frozen)) if frozen is not None else set()
    for name, param in model.named_parameters():
        param.requires_grad_(name not in frozen_names)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    step, curve = 0, []
    if run.has(RESUME):
        step, curve = _unpack(*run.load_tensors(RESUME, device), model, optimizer, rng)
    envs = sorted(samplers)
    started, losses = time.time(), []
    while step < config.steps:
        lr = config.learning_rate * min((step + 1) / config.warmup_steps, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = sum(action_loss(model, env, samplers[env].sample(config.batch_size, rng).to(device)) for env in envs)
        loss = loss / len(envs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        step += 1
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step)
        if step % config.checkpoint_every == 0 or step == config.steps:
            curve.append({"step": step, "loss": float(np.mean(losses)), "lr": lr,
                          "steps_per_second": len(losses) / max(time.time() - started, 1e-9)})
            started, losses = time.time(), []
            if step < config.steps:
                run.save_tensors(RESUME, *_pack(model, optimizer, step, rng, curve))
        if stop is not None and stop(step) and step < config.steps:
            run.save_tensors(RESUME, *_pack(model, optimizer, step, rng, curve))
            return None
    for param in model.parameters():
        param.requires_grad_(True)
    model.eval()
    run.save_json(CURVE, curve)
    run.save_model(MODEL, model, train=asdict(config), seed=seed, frozen=sorted(frozen_names),
                   state_stats=state_stats(samplers), **meta)
    run.forget(RESUME)
    for suffix in (".safetensors", ".json"):
        (run.path / f"{RESUME}{suffix}").unlink(missing_ok=True)
    return model
