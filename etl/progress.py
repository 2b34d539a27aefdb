"""A progress bar for long loads: on stderr when it is a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO


class LoadProgress:
    """``with LoadProgress(name) as progress: load_file(..., progress=progress)``.

    Shows the stage, a bar of the rows upserted (stages without a count spin), the count and
    the elapsed time, and clears itself at the end; silent when ``stream`` (stderr) is not a
    terminal (cron, the drop folder, pipes), so logs hold only the summary.
    """

    def __init__(self, name: str, stream: IO[str] | None = None) -> None:
        self.name, self.stream = name, stream or sys.stderr
        self.bar = self.task = None

    def __enter__(self) -> Callable[..., None]:
        if not self.stream.isatty():
            return lambda *_a: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.name, total=None)
        return self.update

    def update(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        self.bar.update(self.task, description=f"{self.name}: {stage}", total=total, completed=done or 0)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
