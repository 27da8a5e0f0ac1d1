"""One training run per workdir: an exclusive lock held for the whole run.

Two processes writing one workdir (a second terminal, a scheduler restarting a job whose old
process still runs) would collide in their checkpoint writes. The lock is `fcntl.flock` on a
file in the workdir, which the kernel releases when its process ends in any way, SIGKILL
included, so a lock left by a dead process never blocks the next resume. The file holds the
holder's pid, host and start time, for the refusal to name. Reading a workdir (sample,
evaluate) takes no lock.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
from pathlib import Path

from wgan_jax.errors import UserError


NAME = ".wgan_jax.lock"


class WorkdirLock:
    """The exclusive lock on `workdir`: `acquire` or a one-line UserError naming the holder;
    `release` (also on exit from a `with` block) gives it back."""

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UserError(f"cannot create the lock file {self.path}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(f"workdir {self.path.parent} is in use by another training run "
                            f"({describe(holder(self.path.parent))}); wait for it to end or stop "
                            f"it, or choose another --workdir") from None
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": stamp}).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "WorkdirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder(workdir: Path) -> dict | None:
    """Who holds (or last held) `workdir`'s lock, from its file; None if it says nothing."""
    try:
        return json.loads((Path(workdir) / NAME).read_text() or "null")
    except (OSError, ValueError):
        return None


def describe(who: dict | None) -> str:
    if not who:
        return "a process that has not yet said who it is"
    return f"pid {who.get('pid')} on {who.get('host')}, since {who.get('since')}"
