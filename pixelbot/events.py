"""Normalized events: what every platform adapter turns its payloads into.

Nothing here does I/O. An event carries the platform's own id for it (``id``), which becomes the
idempotency key (``ref``) of everything it causes: the same event delivered twice (a reconnect,
a webhook retry) changes nothing the second time.

People are identified by ``(platform, platform_user_id)``, never by name: a viewer who renames
keeps their wallet.

Text from a platform is clipped here, as the event is built, before anything else sees it:
names to 64 characters, messages to 500 (``domain/limits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from pixelbot.domain.limits import MESSAGE_MAX_CHARS, NAME_MAX_CHARS, clip

__all__ = [
    "ChatMessage",
    "Cheer",
    "Event",
    "Follow",
    "GiftedSubs",
    "MessageDeleted",
    "Presence",
    "PresenceLeft",
    "Raid",
    "RewardRedemption",
    "StreamOffline",
    "StreamOnline",
    "Subscription",
    "Tip",
    "Viewer",
    "ViewerBanned",
]


@dataclass(frozen=True, slots=True)
class Viewer:
    """A person on one platform, as one event saw them. Equality and hashing ignore the roles
    but include the names, which change on a rename: to ask whether two are the same person,
    compare ``key`` (platform and platform user id)."""

    platform: str
    platform_user_id: str
    login: str
    display_name: str
    roles: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        # Built once per chat line: the usual short ASCII names skip the three clip calls.
        uid, login, name = self.platform_user_id, self.login, self.display_name
        if (
            len(uid) <= NAME_MAX_CHARS
            and len(login) <= NAME_MAX_CHARS
            and len(name) <= NAME_MAX_CHARS
            and (names := uid + login + name).isascii()
            and "\x00" not in names
        ):
            return
        _clip_fields(self, NAME_MAX_CHARS, "platform_user_id", "login", "display_name")

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.platform_user_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened on a platform. ``id`` is the platform's id for the event."""

    kind: ClassVar[str] = "event"

    id: str
    platform: str
    occurred_at: datetime

    @property
    def ref(self) -> str:
        """The idempotency key of this event, unique across platforms and kinds."""
        return f"{self.platform}:{self.kind}:{self.id}"

    @property
    def actor(self) -> Viewer | None:
        """The viewer who earns from this event, if any."""
        return None

    def payload(self) -> dict[str, object]:
        """What the event log stores about this event (beyond kind, platform and viewer)."""
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage(Event):
    kind: ClassVar[str] = "chat"

    viewer: Viewer
    text: str
    channel: str = ""

    def __post_init__(self) -> None:
        text = self.text
        if len(text) > MESSAGE_MAX_CHARS or not text.isascii() or "\x00" in text:
            _clip_fields(self, MESSAGE_MAX_CHARS, "text")

    @property
    def actor(self) -> Viewer:
        return self.viewer

    def payload(self) -> dict[str, object]:
        return {"text": self.text, "channel": self.channel}


@dataclass(frozen=True, slots=True, kw_only=True)
class Follow(Event):
    kind: ClassVar[str] = "follow"

    viewer: Viewer

    @property
    def actor(self) -> Viewer:
        return self.viewer


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription(Event):
    """A subscription or resubscription. ``months`` is the cumulative month count."""

    kind: ClassVar[str] = "sub"

    viewer: Viewer
    tier: int = 1
    months: int = 1
    gifted: bool = False

    @property
    def actor(self) -> Viewer:
        return self.viewer

    def payload(self) -> dict[str, object]:
        return {"tier": self.tier, "months": self.months, "gifted": self.gifted}


@dataclass(frozen=True, slots=True, kw_only=True)
class GiftedSubs(Event):
    """Subscriptions gifted to others. The gifter earns; ``gifter`` is None when anonymous."""

    kind: ClassVar[str] = "gift"

    gifter: Viewer | None
    count: int
    tier: int = 1

    @property
    def actor(self) -> Viewer | None:
        return self.gifter

    def payload(self) -> dict[str, object]:
        return {"count": self.count, "tier": self.tier}


@dataclass(frozen=True, slots=True, kw_only=True)
class Tip(Event):
    kind: ClassVar[str] = "tip"

    viewer: Viewer
    amount: Decimal
    currency: str = "USD"
    message: str = ""

    def __post_init__(self) -> None:
        _clip_fields(self, MESSAGE_MAX_CHARS, "message")

    @property
    def actor(self) -> Viewer:
        return self.viewer

    def payload(self) -> dict[str, object]:
        return {"amount": str(self.amount), "currency": self.currency, "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class Cheer(Event):
    kind: ClassVar[str] = "cheer"

    viewer: Viewer
    bits: int
    message: str = ""

    def __post_init__(self) -> None:
        _clip_fields(self, MESSAGE_MAX_CHARS, "message")

    @property
    def actor(self) -> Viewer:
        return self.viewer

    def payload(self) -> dict[str, object]:
        return {"bits": self.bits, "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class Raid(Event):
    """Another channel raided this one; ``viewer`` is the raiding broadcaster."""

    kind: ClassVar[str] = "raid"

    viewer: Viewer
    viewers: int

    @property
    def actor(self) -> Viewer:
        return self.viewer

    def payload(self) -> dict[str, object]:
        return {"viewers": self.viewers}


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence(Event):
    """A viewer showed up (joined the channel, said hello): the drop-in reward."""

    kind: ClassVar[str] = "presence"

    viewer: Viewer

    @property
    def actor(self) -> Viewer:
        return self.viewer


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeleted(Event):
    """A moderator deleted a chat message. A TTS redeem it asked for must not be spoken."""

    kind: ClassVar[str] = "message_deleted"

    message_id: str  # the platform's id of the deleted message (ChatMessage.id)
    author: Viewer | None = None  # who wrote it, when the platform says

    def payload(self) -> dict[str, object]:
        author = None if self.author is None else self.author.platform_user_id
        return {"message_id": self.message_id, "author": author}


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewerBanned(Event):
    """A viewer was banned, or timed out for ``duration``. Their waiting TTS is cancelled."""

    kind: ClassVar[str] = "ban"

    viewer: Viewer  # the one banned (not an actor: nobody earns from this)
    duration: timedelta | None = None  # None: a ban; otherwise a timeout

    def payload(self) -> dict[str, object]:
        seconds = None if self.duration is None else self.duration.total_seconds()
        return {
            "user": self.viewer.platform_user_id,
            "login": self.viewer.login,
            "seconds": seconds,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceLeft(Event):
    """A viewer left (the channel, the stream page, a voice channel): they stop watching."""

    kind: ClassVar[str] = "presence_left"

    viewer: Viewer  # not an actor: leaving earns nothing


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOnline(Event):
    """The channel went live: a stream session opens (per-stream limits count from here)."""

    kind: ClassVar[str] = "stream_online"

    channel: str

    def payload(self) -> dict[str, object]:
        return {"channel": self.channel}


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOffline(Event):
    """The channel went offline: the open stream session closes."""

    kind: ClassVar[str] = "stream_offline"

    channel: str

    def payload(self) -> dict[str, object]:
        return {"channel": self.channel}


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardRedemption(Event):
    """A platform-native reward was redeemed (Twitch channel points). The platform already
    took its own currency; ``redemption_id`` is the platform's id, used to refund or fulfil
    it there. ``reward`` names the redeem in ``config.yaml`` it maps to."""

    kind: ClassVar[str] = "reward_redemption"

    viewer: Viewer
    reward: str
    redemption_id: str
    text: str = ""
    channel: str = ""

    def __post_init__(self) -> None:
        _clip_fields(self, MESSAGE_MAX_CHARS, "text")

    def payload(self) -> dict[str, object]:
        return {
            "reward": self.reward,
            "redemption_id": self.redemption_id,
            "text": self.text,
            "channel": self.channel,
        }


def _clip_fields(event: object, limit: int, *names: str) -> None:
    """Clip text fields of a frozen dataclass in place, while it is being built."""
    for name in names:
        value = getattr(event, name)
        clipped = clip(value, limit)
        if clipped is not value:
            object.__setattr__(event, name, clipped)
