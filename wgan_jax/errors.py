"""What a user sees when something goes wrong: the two exceptions every command prints as one
line (bad input, a failed write), the exit status each maps to (`run_command`, the body of every
command's `main`), the check of an output folder before any work, and the argument parser that
reports bad flags the same way."""

import argparse
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """Bad input from the user (a flag, a config value, a data file).

    Every command prints its message as one line and exits with status 2 (`run_command`), so the
    message must name what was wrong and, where it helps, what to do instead.
    """


class WriteFailed(Exception):
    """A file of the run could not be written: a full disk, a lost mount, a permission.
    Every command prints its message as one line and exits with status EXIT_WRITE_FAILED."""


# sysexits.h's EX_IOERR: an input/output error, told apart from bad input (2).
EXIT_WRITE_FAILED = 74


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type's name if it has none), cut to `limit`
    characters: what a one-line error quotes of a library's multi-line message."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


def write_failed(what: str, err: BaseException) -> WriteFailed:
    """The one-line WriteFailed for `what` (a path or a description), with the OS's reason
    (tensorstore, under orbax, gives it as os_error_code='28' at the end of a long message)."""
    code = re.search(r"os_error_code='?(\d+)", str(err))
    if isinstance(err, OSError) and err.strerror:
        reason = err.strerror
    else:
        reason = os.strerror(int(code.group(1))) if code else first_line(err)
    return WriteFailed(f"cannot write {what}: {reason}")


def writable_folder(folder: Path, name: str) -> None:
    """Creates `folder` if needed and proves it writable, or raises a UserError naming it. The
    probe file is per host and process (several may share the folder); asking JAX for the
    process index would start its backend before a multi-process run is joined."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{socket.gethostname()}-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else err.strerror or err
        raise UserError(f"cannot write to {name} {folder}: {reason}") from None


def run_command(body: Callable[[], int | None]) -> int:
    """Runs a command-line program's body and returns its exit status: a UserError is one
    `error:` line and 2, a failed write (WriteFailed, or an OSError no layer below turned into
    one) one line and EXIT_WRITE_FAILED; `body` returns its own status, or None for success.
    The libraries' logging is quieted first (terminal.quiet_libraries)."""
    from wgan_jax.terminal import quiet_libraries  # rich, only for a command

    quiet_libraries()
    try:
        return body() or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except WriteFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or first_line(err)}", file=sys.stderr)
        return EXIT_WRITE_FAILED


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line and exit status 2 (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
