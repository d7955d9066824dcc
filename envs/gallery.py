"""A picture of tasks: frames of our engine next to the real Procgen's frames of the same game.

The two sides play different levels (level generation is re-implemented, not bit-copied),
so the picture compares how things look — sprites, sizes, orientation, camera — not pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

import envs

ROW_LABEL_WIDTH = 150


def task_frames(env, at_steps: list[int], seed: int = 0) -> list[np.ndarray]:
    """Frames of environment 0 at the given step indices under a seeded random policy."""
    gen = np.random.default_rng(seed)
    frames, obs = [], env.reset()
    for step in range(max(at_steps) + 1):
        if step in at_steps:
            frames.append(obs[0].cpu().numpy())
        obs, *_ = env.step(torch.as_tensor(gen.integers(0, 15, env.num_envs)))
    return frames


def gallery(tasks: list[str], at_steps: list[int], with_reference: bool = True, scale: int = 2) -> Image.Image:
    """One row per task (ours), each stock game followed by a row of the real game."""
    from envs.procgen_ref import ProcgenRef, unsupported_changes

    rows: list[tuple[str, list[np.ndarray]]] = []
    for name in tasks:
        env = envs.make(name, num_envs=1, seed=0)
        rows.append((f"ours: {name}", task_frames(env, at_steps)))
        if with_reference and not unsupported_changes(env.task.config):
            rows.append((f"Procgen: {env.task.game}", task_frames(ProcgenRef(name, num_envs=1, seed=0), at_steps)))
    side, gap = 64 * scale, 4
    image = Image.new("RGB", (ROW_LABEL_WIDTH + len(at_steps) * (side + gap), len(rows) * (side + gap)), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    for r, (label, frames) in enumerate(rows):
        y = r * (side + gap)
        draw.text((6, y + side // 2 - 6), label, fill=(230, 230, 230))
        for c, frame in enumerate(frames):
            tile = Image.fromarray(frame).resize((side, side), Image.Resampling.NEAREST)
            image.paste(tile, (ROW_LABEL_WIDTH + c * (side + gap), y))
    return image
