"""Which backups to keep: the newest copy of each of the last N hours, days and weeks (the
"grandfather-father-son" rotation). Pure; the times are the copies' own timestamps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

__all__ = ["backups_to_keep"]

Period = Callable[[datetime], tuple[int, ...]]

_HOUR: Period = lambda t: (t.year, t.month, t.day, t.hour)  # noqa: E731
_DAY: Period = lambda t: (t.year, t.month, t.day)  # noqa: E731
_WEEK: Period = lambda t: tuple(t.isocalendar()[:2])  # noqa: E731


def backups_to_keep(
    taken: Iterable[datetime], *, hourly: int, daily: int, weekly: int
) -> set[datetime]:
    """The times, among ``taken``, of the copies to keep."""
    newest_first = sorted(set(taken), reverse=True)
    keep: set[datetime] = set()
    for count, period in ((hourly, _HOUR), (daily, _DAY), (weekly, _WEEK)):
        periods: set[tuple[int, ...]] = set()
        for when in newest_first:
            key = period(when)
            if key in periods:
                continue  # an older copy of a period already kept
            if len(periods) == count:
                break
            periods.add(key)
            keep.add(when)
    return keep
