"""The learning curve: the rolling mean of the last 100 episode returns (and lengths)
against environment steps, as the thesis plots it; written as CSV and to TensorBoard."""

from __future__ import annotations

import csv
import io
from collections import deque
from pathlib import Path

import numpy as np

WINDOW = 100
COLUMNS = ("step", "episodes", "rolling_return", "rolling_length", "steps_per_second")


class LearningCurve:
    def __init__(self, tensorboard_dir: Path | None = None, rows: list[dict] | None = None,
                 recent: list[tuple[float, int]] | None = None, episodes: int = 0):
        self.rows = list(rows or [])
        self.recent: deque[tuple[float, int]] = deque(recent or [], maxlen=WINDOW)
        self.episodes = episodes
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run wrote after its last checkpoint
            self.writer = SummaryWriter(str(tensorboard_dir), purge_step=self.rows[-1]["step"] + 1 if self.rows else None)

    def add_episodes(self, returns, lengths) -> None:
        for r, n in zip(returns, lengths):
            self.recent.append((float(r), int(n)))
        self.episodes += len(returns)

    def log(self, step: int, steps_per_second: float, **scalars: float) -> dict:
        """Append a row for ``step``; ``scalars`` (losses etc.) go to TensorBoard only."""
        returns = [r for r, _ in self.recent]
        row = {"step": step, "episodes": self.episodes,
               "rolling_return": float(np.mean(returns)) if returns else float("nan"),
               "rolling_length": float(np.mean([n for _, n in self.recent])) if returns else float("nan"),
               "steps_per_second": steps_per_second}
        self.rows.append(row)
        if self.writer is not None:
            self.writer.add_scalar("rollout/ep_rew_mean", row["rolling_return"], step)
            self.writer.add_scalar("rollout/ep_len_mean", row["rolling_length"], step)
            self.writer.add_scalar("time/fps", steps_per_second, step)
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, step)
        return row

    def state(self) -> dict:
        """What a resume checkpoint needs to continue this curve."""
        return {"rows": self.rows, "recent": list(self.recent), "episodes": self.episodes}

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_curve(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
