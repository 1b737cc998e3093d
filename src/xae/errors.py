"""The one error type users see: :class:`XaeError`, whose message says what to do."""
from __future__ import annotations


class XaeError(Exception):
    """A user error (bad config, bad data, bad checkpoint, bad path).

    The message always says what went wrong and what to do about it. The command-line tool
    prints it without a traceback and exits with status 2.
    """
