"""User-facing errors: the CLI prints these as one line (no traceback) and exits non-zero."""


class MoveError(Exception):
    """A problem with the user's input or environment that the message explains how to fix."""
