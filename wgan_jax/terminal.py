"""The console every command prints its notices and progress through, the progress bars of its
long phases, and the libraries' logging a command quiets."""

from __future__ import annotations

import logging
import sys
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


def quiet_libraries() -> None:
    """What a command-line program sets up around orbax (the library changes no global logging
    or hook itself). orbax logs every save at INFO through absl: a run's own progress bar says
    enough. A failed background save it logs at ERROR with its traceback, and raises to the
    caller too, where the loop reports it in one line (errors.WriteFailed)."""
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    _quiet_closed_loop()


def _closed_loop(exc: BaseException | None) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def _quiet_closed_loop() -> None:
    """Drops one traceback: when a write of an asynchronous save fails (a full disk), orbax
    closes the event loop awaiting the save while the save's other tensorstore writes are in
    flight; each that ends later calls back into the closed loop from a tensorstore thread, and
    Python prints that callback's RuntimeError (through sys.excepthook, or as unraisable). The
    failure itself is reported in one line (WriteFailed); nothing else is hidden."""
    if getattr(sys.excepthook, "quiet_closed_loop", False):
        return
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook

    def except_hook(kind, value, traceback) -> None:
        if not _closed_loop(value):
            excepthook(kind, value, traceback)

    def unraisable_hook(unraisable) -> None:
        if not _closed_loop(unraisable.exc_value):
            unraisablehook(unraisable)

    except_hook.quiet_closed_loop = True
    sys.excepthook, sys.unraisablehook = except_hook, unraisable_hook
