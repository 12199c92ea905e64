"""What a platform adapter is, and what the rest of the bot may know about one.

An adapter is the only code that speaks its platform's protocol. It turns the platform's
payloads into ``pixelbot.events`` and pushes them into the ``EventSink`` given to ``start``;
it says things with ``send`` (a channel) or ``reply`` (threaded under a viewer's message,
where the platform has threads; elsewhere the same as ``send``). Everything the bot needs to
know about the platform's limits is declared in ``capabilities``, so no code above this layer
guesses by the platform's name.

Life cycle: ``start(sink)`` returns once the adapter is connected (or raises
``PlatformError`` with a line the streamer can act on); events flow until ``stop()``, which
lets the events already taken finish before it disconnects (the assembly stops the queue and
the economy writer only after every platform has stopped).
``status()`` is read at any time (``bot.py status``, the dashboard).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from pixelbot.config.redeems import RedeemSettings
from pixelbot.domain.command_specs import CommandCatalog
from pixelbot.events import ChatMessage, Event, Viewer

__all__ = [
    "Capabilities",
    "EventSink",
    "Platform",
    "PlatformStatus",
    "SyncsRedeems",
    "UsesCommands",
    "mention",
    "split_message",
]

EventSink = Callable[[Event], Awaitable[object]]
MentionStyle = Literal["at_name", "user_id_tag"]


@dataclass(frozen=True)
class Capabilities:
    """What a platform allows, read by the chat delivery and the commands."""

    max_message_length: int = 500  # characters in one chat message
    long_messages: Literal["split", "cut"] = "split"  # what to do with a longer one
    mention_style: MentionStyle = "at_name"  # "@alice" or "<@1234>" (Discord)
    native_rewards: bool = False  # rewards the platform refunds itself (Twitch channel points)
    messages_per_window: int = 20  # outgoing rate limit: this many messages ...
    rate_window: timedelta = timedelta(seconds=30)  # ... per this window, per channel
    threads_replies: bool = False  # ``reply`` shows as a threaded reply


@dataclass(frozen=True)
class PlatformStatus:
    connected: bool
    retrying_since: datetime | None = None  # set while reconnecting
    last_event_at: datetime | None = None
    detail: str = ""  # e.g. the reason of the last disconnect


class Platform(Protocol):
    name: str  # "console", "twitch", ...: the ``platform`` of every event it emits
    default_channel: str  # where announcements about non-chat events (a follow) go
    capabilities: Capabilities

    async def start(self, sink: EventSink) -> None:
        """Connect and begin pushing normalized events into ``sink``."""
        ...

    async def stop(self) -> None:
        """Take no new events, let those already taken finish (within a grace: see
        ``platforms/stopping.py``; cancelling ``stop`` ends the grace), then disconnect.
        Called once; never raises (but ``CancelledError``)."""
        ...

    async def send(self, channel: str, text: str) -> None:
        """Say ``text`` in ``channel`` (already rate-limited and fitted to the length limit)."""
        ...

    async def reply(self, to: ChatMessage, text: str) -> None:
        """Answer a viewer's message (threaded where the platform can)."""
        ...

    def status(self) -> PlatformStatus: ...


@runtime_checkable
class SyncsRedeems(Protocol):
    """A platform that mirrors the configured redeems on its side (Twitch's channel-point
    rewards). ``!reload`` hands it the new redeems once they are applied."""

    async def redeems_changed(self, redeems: Mapping[str, RedeemSettings]) -> list[str]:
        """Mirror ``redeems``; returns problems for the operator (never raises)."""
        ...


@runtime_checkable
class UsesCommands(Protocol):
    """A platform that lists the bot's commands natively (Discord's slash commands). The app
    hands it the command catalog before ``start``."""

    def use_commands(self, catalog: CommandCatalog) -> None: ...

    async def commands_changed(self) -> None:
        """The commands were reloaded (``!reload``): bring the platform's list up to date."""
        ...


def mention(viewer: Viewer, style: MentionStyle) -> str:
    """How a platform addresses a viewer in chat."""
    if style == "user_id_tag":
        return f"<@{viewer.platform_user_id}>"
    return f"@{viewer.display_name}"


def split_message(text: str, capabilities: Capabilities) -> list[str]:
    """``text`` fitted to the platform's message length: split at word boundaries into
    several messages, or cut with an ellipsis, as the platform declares."""
    limit = capabilities.max_message_length
    if len(text) <= limit:
        return [text]
    if capabilities.long_messages == "cut":
        cut = text.rfind(" ", 0, limit)
        return [text[: cut if cut > 0 else limit - 1].rstrip() + "…"]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:  # one word longer than a message: cut it hard
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
