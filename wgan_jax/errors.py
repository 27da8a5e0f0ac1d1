"""The one exception type a user sees as a message rather than a traceback, and the argument
parser that reports bad flags the same way."""

import argparse
import os
import re
import sys


class UserError(Exception):
    """Bad input from the user (a flag, a config value, a data file).

    `train.py` prints its message as one line and exits with status 2, so the message must name
    what was wrong and, where it helps, what to do instead.
    """


class WriteFailed(Exception):
    """A file of the run could not be written: a full disk, a lost mount, a permission.
    `train.py` prints its message as one line and exits with status EXIT_WRITE_FAILED."""


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


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line and exit status 2 (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
