"""Durations as a streamer writes them (``30s``, ``5m``, ``1h30m``) and as chat shows them.

Units: ``ms``, ``s``, ``m``, ``h``, ``d``; parts may be combined (``1h30m``, ``1h 30m``) and
may be fractional (``1.5s``). A plain number means seconds. Pure, no I/O.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_HINT = "use e.g. 30s, 5m, 1h"
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# [0-9], not \d: \d matches other scripts' digits too, which float() then accepts.
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?:ms|s|m|h|d)\s*)+")


def parse_duration(text: str | int | float) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h30m``, ``250ms``, ``1.5s`` or a number of seconds.

    Raises ``ValueError`` with a short message fit to show a streamer, for example
    ``'5x' is not a duration; use e.g. 30s, 5m, 1h``.
    """
    if isinstance(text, bool):  # bool is an int, but `cooldown: yes` is a mistake
        raise ValueError(f"{text!r} is not a duration; {_HINT}")
    if isinstance(text, int | float):
        return _from_seconds(float(text), repr(text))
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration; {_HINT}")

    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError(f"a duration cannot be empty; {_HINT}")
    if cleaned.startswith("-"):
        raise ValueError(f"a duration cannot be negative (got {text!r})")
    if _NUMBER.fullmatch(cleaned):
        return _from_seconds(float(cleaned), repr(text))
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a duration; {_HINT}")
    seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(cleaned))
    return _from_seconds(seconds, repr(text))


def _from_seconds(seconds: float, shown: str) -> timedelta:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{shown} is not a duration; {_HINT}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative (got {shown})")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{shown} is too long for a duration") from None


def format_duration(td: timedelta) -> str:
    """Compact text for chat: ``1h 5m``, ``12s``, ``250ms``, ``0s``.

    Whole seconds are shown truncated; a duration under one second is shown in milliseconds,
    rounded up so a cooldown that is still running never reads as ``0s``. Negative durations
    get a leading ``-``.
    """
    if td < timedelta(0):
        return "-" + format_duration(-td)
    if timedelta(0) < td < timedelta(seconds=1):
        milliseconds = -(-td // timedelta(milliseconds=1))  # ceiling division
        return f"{milliseconds}ms"
    seconds = td // timedelta(seconds=1)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{value}{unit}"
        for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
        if value
    ]
    return " ".join(parts) or "0s"
