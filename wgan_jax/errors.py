"""The one exception type a user sees as a message rather than a traceback."""


class UserError(Exception):
    """Bad input from the user (a flag, a config value, a data file).

    `train.py` prints its message as one line and exits with status 2, so the message must name
    what was wrong and, where it helps, what to do instead.
    """
