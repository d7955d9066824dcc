"""Progress bars of the protocol's jobs: an overall bar per job kind and one for the job at hand."""

from __future__ import annotations


class Bars:
    """An overall bar and one bar for the current job, on a rich ``Progress`` (or nothing)."""

    def __init__(self, progress, title: str, jobs: int):
        self.progress = progress
        if progress:
            self.overall = progress.add_task(title, total=jobs, status="")
            self.current = progress.add_task("", total=1, status="")

    def start(self, description: str, total: int) -> None:
        if self.progress:
            self.progress.reset(self.current, total=total, description=f"  {description}", status="")

    def update(self, completed: int, status: str = "") -> None:
        if self.progress:
            self.progress.update(self.current, completed=completed, status=status)

    def finish(self, status: str = "") -> None:
        """Complete the current job; an empty ``status`` keeps the last one shown."""
        if self.progress:
            self.progress.update(self.current, completed=self.progress.tasks[self.current].total,
                                 **({"status": status} if status else {}))
            self.progress.update(self.overall, advance=1)
