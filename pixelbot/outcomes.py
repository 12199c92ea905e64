"""Outcomes and the bus they travel on.

Whatever the bot does that someone should hear about is published here once, as a typed
value: a line to say in chat (``Say``), an operator note (``Notice``), a queue item's life
(``ItemQueued``, ``ItemStarted``, ``ItemSettled``), a wheel spin (``WheelSpinning`` with the
full record for the wheel overlay, then ``WheelSpun``), TTS audio to play on the overlay
(``TtsPlaying``), an alert for a follow or a tip (``Alert``), the stream going live or offline
(``StreamChanged``).

Subscribers pick the types they care about: the chat delivery sends ``Say`` to the right
platform, the console prints ``[kind]`` lines, and an overlay or dashboard can follow the
queue. A publisher never knows who listens. Subscribers run one after the other, in the
order they subscribed, so what a transcript shows has a stable order; one that fails is
logged and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pixelbot.events import ChatMessage, Viewer

__all__ = [
    "Alert",
    "ItemQueued",
    "ItemSettled",
    "ItemStarted",
    "Notice",
    "Outcome",
    "OutcomeBus",
    "Say",
    "StreamChanged",
    "TtsPlaying",
    "WheelSpinning",
    "WheelSpun",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Say:
    """A chat line on ``platform`` in ``channel``. With ``mention`` it addresses that viewer
    (``@alice`` or ``<@id>``, as the platform writes it); with ``reply_to`` it answers that
    message (threaded where the platform can)."""

    platform: str
    channel: str
    text: str
    mention: Viewer | None = None
    reply_to: ChatMessage | None = None


@dataclass(frozen=True)
class Notice:
    """A line for the operator, tagged by what it is about (``[tts] ...``, ``[queue] ...``)."""

    kind: str
    text: str


@dataclass(frozen=True)
class ItemQueued:
    kind: str
    item_id: int
    title: str
    viewer_name: str
    text: str | None = None


@dataclass(frozen=True)
class ItemStarted:
    kind: str
    item_id: int
    title: str
    viewer_name: str


@dataclass(frozen=True)
class ItemSettled:
    """An item ended: ``done``, ``failed`` or ``cancelled`` (the last two refunded)."""

    kind: str
    item_id: int
    status: str
    title: str
    viewer_name: str
    summary: str  # one line for the operator: "#4 alice won 50 Points"
    refunded: int = 0
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WheelSpun:
    item_id: int
    wheel: str
    prize: str
    prize_index: int
    roll: float
    viewer_name: str


@dataclass(frozen=True)
class WheelSpinning:
    """A spin's full record, sent before its prize is told: the wheel overlay animates it and
    lands on ``prize_index``. ``prizes`` are the slices on the wheel for this spin (name,
    weight), in order clockwise from the pointer; ``roll`` (in [0, 1)) is where it lands, as
    a share of the total weight (``pixelbot.domain.wheel.draw``)."""

    item_id: int
    wheel: str
    prizes: tuple[tuple[str, float], ...]
    prize_index: int
    roll: float
    viewer_name: str
    spin_seconds: float


@dataclass(frozen=True)
class TtsPlaying:
    """A TTS item's audio is ready (``tts.output: overlay``): the TTS overlay plays it."""

    item_id: int
    viewer_name: str
    text: str
    seconds: float
    file: str  # the WAV file (served to the overlay by item id, never by this path)


@dataclass(frozen=True)
class Alert:
    """A follow, sub, gift, tip, cheer or raid came in (for the alerts overlay). ``text`` is
    the thank-you line said in chat; ``details`` the event's figures (``amount``,
    ``currency``, ``bits``, ``viewers``, ``months``, ``tier``, ``count``, ``message``)."""

    kind: str
    viewer_name: str
    points: int
    text: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamChanged:
    """The stream went live or offline. ``changed`` is False when it already was."""

    platform: str
    channel: str
    live: bool
    changed: bool = True


Outcome = (
    Say
    | Notice
    | ItemQueued
    | ItemStarted
    | ItemSettled
    | WheelSpinning
    | WheelSpun
    | TtsPlaying
    | Alert
    | StreamChanged
)
OutcomeT = TypeVar("OutcomeT", bound=Outcome)
Handler = Callable[[Any], Awaitable[None]]


class OutcomeBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[tuple[type, ...], Handler]] = []

    def subscribe(
        self, handler: Callable[[OutcomeT], Awaitable[None]], *types: type[OutcomeT]
    ) -> None:
        """Call ``handler`` for every published outcome of these types (all, if none given)."""
        self._subscribers.append((types, handler))

    def unsubscribe(self, handler: Handler) -> None:
        self._subscribers = [(t, h) for t, h in self._subscribers if h != handler]

    async def publish(self, outcome: Outcome) -> None:
        for types, handler in list(self._subscribers):
            if types and not isinstance(outcome, types):
                continue
            try:
                await handler(outcome)
            except Exception:  # one listener must never silence the others
                log.exception("a subscriber failed on %s", type(outcome).__name__)
