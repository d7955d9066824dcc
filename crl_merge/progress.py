"""Progress display for long work: rich bars on a terminal, and a plain line per job at most
every ``interval`` seconds otherwise (so logs of ``nohup``/CI runs show progress too)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


@dataclass
class _Job:
    description: str
    total: float
    completed: float = 0
    status: str = ""
    printed: float | None = None  # when a line was last printed
    last_line: str = ""


class LineProgress:
    """The subset of ``rich.progress.Progress`` used here, printing plain lines."""

    def __init__(self, console: Console, interval: float):
        self.console, self.interval = console, interval
        self.tasks: list[_Job] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, description: str, total: float, status: str = "") -> int:
        self.tasks.append(_Job(description, total, status=status))
        return len(self.tasks) - 1

    def reset(self, task_id: int, total: float, description: str, status: str = "") -> None:
        self.tasks[task_id] = _Job(description, total, status=status)

    def update(self, task_id: int, completed: float | None = None, advance: float | None = None,
               status: str | None = None) -> None:
        job = self.tasks[task_id]
        job.completed = completed if completed is not None else job.completed + (advance or 0)
        job.status = status if status is not None else job.status
        now = time.monotonic()
        line = f"{job.description.strip()}: {job.completed:,.0f}/{job.total:,.0f} {job.status}".rstrip()
        due = job.printed is None or now - job.printed >= self.interval or job.completed >= job.total
        if job.description.strip() and due and line != job.last_line:
            job.printed, job.last_line = now, line
            self.console.print(line, highlight=False)


def progress_bars(disable: bool = False, interval: float = 30.0):
    """Bars on a terminal, plain lines elsewhere; nothing at all with ``disable``."""
    console = Console(stderr=True)
    if console.is_terminal or disable:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=console, disable=disable)
    return LineProgress(console, interval)
