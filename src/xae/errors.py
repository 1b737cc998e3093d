"""The one error type users see: :class:`XaeError`, whose message says what to do."""
from __future__ import annotations


class XaeError(Exception):
    """A user error (bad config, bad data, bad checkpoint, bad path).

    The message always says what went wrong and what to do about it. The command-line tool
    prints it without a traceback and exits with status 2.
    """


def positive_int(value: object, key: str, context: str = "") -> int:
    """``value`` if it is a positive integer (not a bool), else an error naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise XaeError(f"{key} must be a positive integer{context}, got {value!r}")
    return value
