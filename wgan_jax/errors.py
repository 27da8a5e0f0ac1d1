"""The one exception type a user sees as a message rather than a traceback, and the argument
parser that reports bad flags the same way."""

import argparse
import sys


class UserError(Exception):
    """Bad input from the user (a flag, a config value, a data file).

    `train.py` prints its message as one line and exits with status 2, so the message must name
    what was wrong and, where it helps, what to do instead.
    """


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line and exit status 2 (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
