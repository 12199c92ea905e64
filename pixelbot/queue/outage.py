"""An outage of what a queue needs (OBS for effects, the AI service for AI replies): one
state, from the first failure until it is reachable again and what it left changed has been
put back.

The worker that owns it begins and ends it; the runner reads it to decide what the queue does
meanwhile (``obs.when_down``):

- ``hold``: claim nothing until the outage ends, or until ``hold_limit`` has passed; then what
  still waits is refunded, as in ``refund``;
- ``refund``: refund everything that waits, at once, with one summary line in chat.

Times are on the real (monotonic) clock: an outage happens in real time, also in a scripted
console run whose stream clock is simulated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Literal

__all__ = ["Nouns", "Outage", "WhenDown", "summary_lines"]

Nouns = tuple[str, str]  # one item, many items: ("effect", "effects")

NAMES_SHOWN = 5  # a summary names this many viewers, then "and N more"

WhenDown = Literal["hold", "refund"]


class Outage:
    def __init__(
        self,
        service: str,
        *,
        when_down: WhenDown,
        hold_limit: float,
        items: Nouns = ("effect", "effects"),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service  # "OBS", for the words chat sees
        self.items = items  # what it holds or refunds, one and many ("AI reply", "AI replies")
        self.when_down: WhenDown = when_down
        self.hold_limit = hold_limit
        self._monotonic = monotonic
        self.since: float | None = None
        self.reason = ""
        self.listeners: list[Callable[[], None]] = []  # told when it begins and ends

    @property
    def down(self) -> bool:
        return self.since is not None

    def holding(self) -> bool:
        """Down, in ``hold`` mode, and not held longer than ``hold_limit`` yet."""
        return self.down and self.when_down == "hold" and self.hold_left() > 0

    def refunding(self) -> bool:
        """Down, and what waits is refunded (``refund`` mode, or the hold ran out)."""
        return self.down and not self.holding()

    def hold_left(self) -> float:
        if self.since is None:
            return 0.0
        return max(0.0, self.since + self.hold_limit - self._monotonic())

    def begin(self, reason: str) -> bool:
        """Mark it down; False if it was down already (still the same outage)."""
        if self.since is not None:
            return False
        self.since, self.reason = self._monotonic(), reason
        self._tell()
        return True

    def end(self) -> float | None:
        """Mark it up again; how long it was down (None if it was not)."""
        if self.since is None:
            return None
        seconds = self._monotonic() - self.since
        self.since, self.reason = None, ""
        self._tell()
        return seconds

    def _tell(self) -> None:
        for listener in list(self.listeners):
            listener()


def summary_lines(
    payloads: list[dict[str, object]], template: str, items: Nouns = ("effect", "effects")
) -> Iterator[tuple[dict[str, object], str]]:
    """One chat line per channel for many items: ``template`` with ``{count}`` and ``{items}``
    (``items``, one or many: ``Outage.items``) filled in, then the viewers it concerns. Yields
    (a payload of that channel, line): the payload says where to say it."""
    one, many = items
    channels: dict[tuple[object, object], list[dict[str, object]]] = {}
    for payload in payloads:
        viewer = payload.get("viewer")
        platform = viewer.get("platform") if isinstance(viewer, dict) else None
        channels.setdefault((platform, payload.get("channel")), []).append(payload)
    for group in channels.values():
        names = list(dict.fromkeys(_name(payload) for payload in group))
        shown = ", ".join(f"@{name}" for name in names[:NAMES_SHOWN])
        if len(names) > NAMES_SHOWN:
            shown += f" and {len(names) - NAMES_SHOWN} more"
        count = len(group)
        line = template.format(count=count, items=one if count == 1 else many)
        yield group[0], f"{line} ({shown})."


def _name(payload: dict[str, object]) -> str:
    viewer = payload.get("viewer")
    return str(viewer.get("name") or "someone") if isinstance(viewer, dict) else "someone"
