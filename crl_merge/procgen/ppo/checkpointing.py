"""Periodic training checkpoints kept in a run of the run store, for resuming after a crash."""

from __future__ import annotations

import torch

from crl_merge.store import Run

ARTIFACT = "resume"


class TrainingCheckpoint:
    """The latest resumable state of one training run (``resume.safetensors`` + sidecar).

    ``every``: environment steps between saves. Each save replaces the last atomically, so
    a crash leaves the previous complete checkpoint or the new one.
    """

    def __init__(self, run: Run, every: int):
        if every < 1:
            raise ValueError(f"checkpoint interval must be ≥ 1 environment step, got {every}")
        self.run, self.every = run, every

    def saved_step(self) -> int | None:
        """The environment step the saved state was taken at, or None if there is none."""
        return self.run.info(ARTIFACT)["global_step"] if self.run.has(ARTIFACT) else None

    def load(self, device) -> tuple[dict[str, torch.Tensor], dict] | None:
        return self.run.load_tensors(ARTIFACT, device) if self.run.has(ARTIFACT) else None

    def save(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.run.save_tensors(ARTIFACT, tensors, meta, global_step=meta["global_step"])

    def discard(self) -> None:
        """Drop the checkpoint once the final artifacts are saved."""
        self.run.forget(ARTIFACT)
        for suffix in (".safetensors", ".json"):
            if (path := self.run.path / f"{ARTIFACT}{suffix}").exists():  # a finished read-only store has none
                path.unlink()
