"""Decision Transformer training, as the official gym experiment does it: MSE between
predicted and dataset actions on real (unmasked) steps, AdamW (weight decay 1e-4) with a
linear learning-rate warm-up, gradient norm clipped at 0.25.

A model trained on several environments at once (co-training) takes one batch from each
per step and averages their losses. ``frozen`` parameters (a subset, as the merging library
names them) get no updates: that is the "freeze" of Merge-Freeze-Finetune.

Which weights a run keeps follows the paper's code (``experiment.py``, ``--save_mode=best``):
training is evaluated ``evaluations`` times at evenly spaced steps (the official runs: 10
iterations of 10k steps, each followed by rollouts), and ``keep: best`` keeps the weights of
the evaluation with the highest return (the first of equal ones), which is what the paper
merges (``*_best.pt``); ``keep: final`` keeps the last weights.

Training lives in a run of the run store. Every ``checkpoint_every`` steps a resume
checkpoint (weights, AdamW state, step, random-generator states, learning curve, the
evaluations so far and the best weights) replaces the last one, as named tensors plus JSON,
so a killed run continues where it stopped and ends with the same weights as an
uninterrupted one; a finished run keeps only ``model``.
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

RESUME, MODEL, CURVE, START = "resume", "model", "curve", "start"  # START: the weights init_reg pulls to
KEEP = ("best", "final")
BEST = "best."  # prefix of the best weights in a resume checkpoint


@dataclass(frozen=True)
class TrainConfig(Config):
    steps: int = option(100_000, "int", "gradient steps", 0)
    batch_size: int = option(64, "int", "context windows per step", 1)
    learning_rate: float = option(1e-4, "float", "AdamW step size", 0.0, 1.0)
    weight_decay: float = option(1e-4, "float", "AdamW weight decay", 0.0, 1.0)
    warmup_steps: int = option(10_000, "int", "linear learning-rate warm-up", 1)
    grad_clip: float = option(0.25, "float", "global gradient-norm clip", 0.0)
    checkpoint_every: int = option(1_000, "int", "steps between resume checkpoints", 1)
    evaluations: int = option(10, "int", "evaluations during training, at evenly spaced steps (the last at the end)", 0)
    eval_episodes: int = option(100, "int", "rollouts per evaluation during training", 1)
    keep: str = option("best", "str", "which weights the run keeps: of the best evaluation, or the final ones",
                       choices=KEEP)
    init_reg: float = option(0.0, "float", "weight of the L2 pull of the transformer blocks to their start", 0.0)

    def evaluation_steps(self) -> list[int]:
        """The steps after which training is evaluated: ``evaluations`` evenly spaced ones."""
        n = min(self.evaluations, self.steps)
        return [round(self.steps * (i + 1) / n) for i in range(n)]


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


def _pack(model, optimizer, step: int, rng: np.random.Generator, curve: list[dict], evaluations: list[dict],
          best: dict | None) -> tuple[dict, dict]:
    tensors, meta = pack_training_state({"model": model}, optimizer, _generators())
    tensors |= {BEST + k: v for k, v in (best or {}).items()}
    return tensors, {**meta, "step": step, "numpy_rng": rng.bit_generator.state, "curve": curve,
                     "evaluations": evaluations}


def _unpack(tensors, meta, model, optimizer, rng: np.random.Generator) -> tuple[int, list[dict], list[dict], dict]:
    unpack_training_state(tensors, meta, {"model": model}, optimizer, _generators())
    rng.bit_generator.state = meta["numpy_rng"]
    best = {k[len(BEST):]: v for k, v in tensors.items() if k.startswith(BEST)}
    return int(meta["step"]), list(meta["curve"]), list(meta["evaluations"]), best


def best_evaluation(evaluations: list[dict]) -> dict | None:
    """The evaluation with the highest ``metric``; the earliest of equal ones (the paper's
    code replaces its best only on a strictly higher return)."""
    best = None
    for e in evaluations:
        if best is None or e["metric"] > best["metric"]:
            best = e
    return best


def anchor_loss(model: DecisionTransformer, start: dict[str, torch.Tensor]) -> torch.Tensor:
    """``Σ ‖θ − θ_start‖₂`` over the transformer blocks' parameter tensors (each tensor's
    Euclidean norm, not squared): the ``init_reg`` term of the paper's multi-task finetuning
    (``multi_seq_trainer.py``), which keeps each finetuned model near the shared start."""
    return sum(torch.linalg.vector_norm(p - start[n]) for n, p in model.named_parameters()
               if n.startswith("transformer.blocks."))


def train(run: Run, model: DecisionTransformer, samplers: dict[str, SequenceSampler], config: TrainConfig,
          seed: int, frozen=None, device: str = "cpu", progress: Callable[[int], None] | None = None,
          stop: Callable[[int], bool] | None = None,
          evaluate: Callable[[DecisionTransformer], dict] | None = None, **meta) -> DecisionTransformer | None:
    """Train ``model`` in ``run`` (or load it if the run has finished); returns the kept
    model, or None when ``stop(step)`` asked to stop (a resume checkpoint is saved first).
    ``evaluate(model)`` gives ``{"metric": float, ...}`` (higher is better) at each of
    ``config.evaluation_steps()``; it must not use the global random generators. With
    ``config.init_reg`` the loss adds ``init_reg · anchor_loss`` to the weights ``model``
    starts from. ``meta`` goes into the saved model's sidecar."""
    if run.has(MODEL):
        return run.load_model(MODEL, device)[0]
    missing = sorted(set(samplers) - set(model.io))
    if missing:
        raise ValueError(f"the model has no projections for {missing}; it has {sorted(model.io)}")
    if config.evaluation_steps() and evaluate is None:
        raise ValueError(f"{config.evaluations} evaluations during training need an evaluate function")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = model.to(device).train()
    start = {n: p.detach().clone() for n, p in model.named_parameters()} if config.init_reg else None
    frozen_names = set(select(model.state_dict(), frozen)) if frozen is not None else set()
    for name, param in model.named_parameters():
        param.requires_grad_(name not in frozen_names)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    step, curve, evaluations, best = 0, [], [], {}
    if run.has(RESUME):
        if start is not None:  # the start is the weights the run began from, not the checkpoint's
            start = {n: v.to(device) for n, v in run.load_tensors(START, device)[0].items()}
        step, curve, evaluations, best = _unpack(*run.load_tensors(RESUME, device), model, optimizer, rng)
    elif start is not None:
        run.save_tensors(START, start, {})
    eval_steps = set(config.evaluation_steps())
    envs = sorted(samplers)
    started, losses = time.time(), []
    while step < config.steps:
        lr = config.learning_rate * min((step + 1) / config.warmup_steps, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = sum(action_loss(model, env, samplers[env].sample(config.batch_size, rng).to(device)) for env in envs)
        loss = loss / len(envs)
        if start is not None:
            loss = loss + config.init_reg * anchor_loss(model, start)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        step += 1
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step)
        if step in eval_steps:
            result = {"step": step, **evaluate(model)}
            model.train()
            evaluations.append(result)
            if best_evaluation(evaluations) is result:
                best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step % config.checkpoint_every == 0 or step == config.steps:
            curve.append({"step": step, "loss": float(np.mean(losses)), "lr": lr,
                          "steps_per_second": len(losses) / max(time.time() - started, 1e-9)})
            started, losses = time.time(), []
            if step < config.steps:
                run.save_tensors(RESUME, *_pack(model, optimizer, step, rng, curve, evaluations, best))
        if stop is not None and stop(step) and step < config.steps:
            run.save_tensors(RESUME, *_pack(model, optimizer, step, rng, curve, evaluations, best))
            return None
    for param in model.parameters():
        param.requires_grad_(True)
    model.eval()
    kept = best_evaluation(evaluations) if config.keep == "best" else None
    if kept is not None:
        model.load_state_dict(best)
    run.save_json(CURVE, curve)
    run.save_model(MODEL, model, train=asdict(config), seed=seed, frozen=sorted(frozen_names),
                   state_stats=state_stats(samplers), evaluations=evaluations,
                   kept_step=kept["step"] if kept else step, **meta)
    for artifact in (RESUME, START):
        run.forget(artifact)
        for suffix in (".safetensors", ".json"):
            (run.path / f"{artifact}{suffix}").unlink(missing_ok=True)
    return model
