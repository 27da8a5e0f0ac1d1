"""The console every command prints its notices and progress through, and the progress bars of
its long phases."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


def console(**options) -> Console:
    """A rich Console on standard error that prints text verbatim: rich's markup would read
    `[fid]` in `pip install -e '.[fid]'`, or a workdir named `runs/[exp1]`, as a style tag and
    drop it, and its highlighter would recolour numbers and paths. Lines are not wrapped at the
    terminal's width (a path or command split over two lines cannot be copied)."""
    return Console(**{"stderr": True, "markup": False, "highlight": False, "soft_wrap": True,
                      **options})


class Phases:
    """Progress bars with ETA for a command's long phases (sampling, classifier and Inception
    features), one line each, on `console`; a context manager around them. Where the console is
    no terminal (a log file, a pipe), each phase is one plain line when it ends instead."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=console)

    def __enter__(self) -> "Phases":
        return self

    def __exit__(self, *exc) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def track(self, description: str, total: int) -> Callable[[int], None]:
        """A new bar (the first one starts the display); returns the function that advances it
        by a count."""
        if not self.console.is_terminal:
            return self._line(description, total)
        if not self.progress.live.is_started:
            self.progress.start()
        task = self.progress.add_task(description, total=total)
        return lambda count: self.progress.advance(task, count)

    def _line(self, description: str, total: int) -> Callable[[int], None]:
        start, done = time.perf_counter(), 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if done >= total:
                self.console.print(f"{description}: {total} in "
                                   f"{time.perf_counter() - start:.1f} s")
        return advance
