"""What a Joystick.tv gateway frame means to the bot: ActionCable frames turned into normalized
events (``pixelbot.events``).

The live adapter and ``bot.py replay joystick`` share this, so a replayed file goes through the
same parsing as live traffic.

Frame shapes (ActionCable, subprotocol ``actioncable-v1-json``):

- control frames carry a ``type``: ``welcome``, ``ping`` (``message`` = unix time),
  ``confirm_subscription``, ``reject_subscription``, ``disconnect``;
- data frames carry the subscription's ``identifier`` and a ``message`` object whose ``event``
  names the kind (``ChatMessage``, ``UserPresence``, ``StreamEvent``) and ``type`` the sub-kind.

Identity: Joystick names chatters by username only (no stable user id in these frames), so a
viewer's ``platform_user_id`` is their lower-cased username; a rename is a new identity (that
``!link`` can join). Roles come from the author's ``isStreamer`` / ``isModerator`` /
``isSubscriber`` flags.

Idempotency: a chat line's id is its ``messageId``; a stream event or presence uses the frame's
own ``id`` where it has one, otherwise a digest of the message's content, so the same frame
delivered twice (a reconnect replays it) is the same event.

Tolerance: Joystick's public page and the clients seen in the wild disagree on a few names
(``StreamStarted``/``Started``, ``how_much``/``howMuch``); both spellings are read. Unknown
fields are ignored; unknown kinds give None; a frame that is not what it says raises
``FrameError`` (the adapter logs and skips it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pixelbot.events import (
    ChatMessage,
    Event,
    Follow,
    GiftedSubs,
    MessageDeleted,
    Presence,
    PresenceLeft,
    StreamOffline,
    StreamOnline,
    Subscription,
    Tip,
    Viewer,
)

__all__ = [
    "GATEWAY_IDENTIFIER",
    "PLATFORM",
    "Control",
    "FrameError",
    "control_of",
    "event_from_frame",
    "frame_time",
    "parse_frame",
]

PLATFORM = "joystick"
# The subscription identifier is itself a JSON string (ActionCable's convention).
GATEWAY_IDENTIFIER = json.dumps({"channel": "GatewayChannel"}, separators=(",", ":"))
TIP_CURRENCY = "tokens"  # Joystick tips are in its tokens; economy.earn.tip pays per token

_STARTED = {"StreamStarted", "Started"}
_ENDED = {"StreamEnded", "Ended"}
_ROLE_FLAGS = {
    "isStreamer": "broadcaster",
    "isModerator": "moderator",
    "isSubscriber": "subscriber",
}


class FrameError(ValueError):
    """A frame that is not a gateway frame this bot understands (logged, then skipped)."""


@dataclass(frozen=True)
class Control:
    """An ActionCable control frame: ``kind`` is its ``type``."""

    kind: str
    reason: str = ""
    reconnect: bool = True


def parse_frame(text: str | bytes) -> dict[str, Any]:
    """One raw WebSocket text frame as a JSON object (``FrameError`` otherwise)."""
    try:
        frame = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise FrameError("not a JSON object")
    return frame


def control_of(frame: dict[str, Any]) -> Control | None:
    """The control frame this is, or None for a data frame."""
    kind = frame.get("type")
    if kind is None or isinstance(frame.get("message"), dict):
        return None
    return Control(
        str(kind),
        reason=str(frame.get("reason") or ""),
        reconnect=bool(frame.get("reconnect", True)),
    )


def _parse_time(stamp: object) -> datetime:
    text = str(stamp).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise FrameError(f"createdAt {stamp!r} is not a time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def frame_time(frame: dict[str, Any]) -> datetime | None:
    """When Joystick says a data frame's event happened (``createdAt``), if it says."""
    message = frame.get("message")
    if not isinstance(message, dict) or not message.get("createdAt"):
        return None
    return _parse_time(message["createdAt"])


def _viewer(
    username: object, display: object = None, roles: frozenset[str] = frozenset()
) -> Viewer:
    name = str(username or "").strip()
    if not name:
        raise FrameError("the event names no user")
    shown = str(display or "").strip() or name
    return Viewer(PLATFORM, name.lower(), name, shown, roles)


def _digest(message: dict[str, Any]) -> str:
    """A stable id for a message that carries none: the same content gives the same id."""
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)
    return "h" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _metadata(message: dict[str, Any]) -> dict[str, Any]:
    raw = message.get("metadata")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):  # tolerated: the documented form is a JSON string
        return raw
    if not isinstance(raw, str):
        raise FrameError("metadata is neither a JSON string nor an object")
    try:
        found = json.loads(raw)
    except ValueError:
        raise FrameError("metadata is not valid JSON") from None
    if not isinstance(found, dict):
        raise FrameError("metadata is not a JSON object")
    return found


def _pick(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _whole(value: Any, what: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FrameError(f"{what} {value!r} is not a whole number") from None


def event_from_frame(frame: dict[str, Any], now: datetime) -> Event | None:
    """The normalized event for one gateway frame (None: a control frame, or a kind the bot
    does not use). ``FrameError`` for a data frame that is malformed."""
    message = frame.get("message")
    if not isinstance(message, dict):
        return None  # control frames (welcome, ping, confirm, ...)
    try:
        return _event(message, now)
    except FrameError:
        raise
    except (KeyError, TypeError, AttributeError) as exc:
        raise FrameError(f"malformed {message.get('event')}: {type(exc).__name__}: {exc}") from None


def _event(message: dict[str, Any], now: datetime) -> Event | None:
    kind = message.get("event")
    sub = str(message.get("type") or "")
    at = _parse_time(message["createdAt"]) if message.get("createdAt") else now
    channel = str(message.get("channelId") or "")
    common: dict[str, Any] = {"platform": PLATFORM, "occurred_at": at}
    match kind:
        case "ChatMessage":
            if sub == "message_deleted":
                return MessageDeleted(
                    id=str(message.get("id") or _digest(message)),
                    message_id=str(message["messageId"]),
                    **common,
                )
            if sub != "new_message":
                return None  # mutes, blocks, ...: nothing the bot acts on
            if message.get("visibility", "public") != "public":
                return None  # a whisper to the bot is not channel chat
            author = message["author"]
            roles = frozenset(role for flag, role in _ROLE_FLAGS.items() if author.get(flag))
            message_id = message.get("messageId") or message.get("id")
            if not message_id:
                raise FrameError("a chat message without a messageId")
            text = message.get("text")
            if not isinstance(text, str):
                raise FrameError("a chat message without text")
            return ChatMessage(
                id=str(message_id),
                viewer=_viewer(author["username"], author.get("displayNameWithFlair"), roles),
                text=text,
                channel=channel,
                **common,
            )
        case "UserPresence":
            event_id = str(message.get("id") or _digest(message))
            if sub == "enter_stream":
                return Presence(id=event_id, viewer=_viewer(message.get("text")), **common)
            if sub == "leave_stream":
                return PresenceLeft(id=event_id, viewer=_viewer(message.get("text")), **common)
            return None
        case "StreamEvent":
            return _stream_event(message, sub, channel, common)
    return None


def _stream_event(
    message: dict[str, Any], sub: str, channel: str, common: dict[str, Any]
) -> Event | None:
    meta = _metadata(message)
    event_id = str(message.get("id") or _digest(message))
    who = _pick(meta, "who", "username")
    if sub in _STARTED:
        return StreamOnline(id=event_id, channel=channel, **common)
    if sub in _ENDED:
        return StreamOffline(id=event_id, channel=channel, **common)
    if sub == "Followed":
        return Follow(id=event_id, viewer=_viewer(who), **common)
    if sub in ("Subscribed", "Resubscribed"):
        months = _whole(_pick(meta, "months", "number_of_months", "numberOfMonths"), "months", 1)
        return Subscription(id=event_id, viewer=_viewer(who), months=max(1, months), **common)
    if sub in ("GiftedSubscriptions", "SubscriptionGifted"):
        count = _whole(_pick(meta, "how_much", "howMuch", "number_of_subscriptions"), "count", 1)
        gifter = None if who is None else _viewer(who)
        return GiftedSubs(id=event_id, gifter=gifter, count=max(1, count), **common)
    if sub == "Tipped":
        raw = _pick(meta, "how_much", "howMuch", "amount")
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            raise FrameError(f"a tip of {raw!r} tokens") from None
        if not amount.is_finite() or amount < 0:
            raise FrameError(f"a tip of {raw!r} tokens")
        note = _pick(meta, "tip_menu_item", "tipMenuItem", "message") or ""
        return Tip(
            id=event_id,
            viewer=_viewer(who),
            amount=amount,
            currency=TIP_CURRENCY,
            message=str(note),
            **common,
        )
    return None  # wheel spins, counters, settings, ...: nothing the bot pays for
