"""What a Twitch EventSub notification means to the bot: twitchio's parsed payloads turned into
normalized events (``pixelbot.events``).

The live adapter and ``bot.py replay twitch`` share this: a raw frame (an EventSub WebSocket
``notification`` message exactly as Twitch sends it) is parsed by twitchio's own
``create_event_instance``, then mapped here. So a replayed file goes through the same parsing
as live traffic.

Idempotency: every event's ``id`` is the EventSub ``metadata.message_id`` (Twitch resends a
notification with the same id), except chat messages, whose ``id`` is the chat ``message_id``
(a deleted-message notification names that one). Roles come from chat badges.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twitchio import PartialUser
from twitchio.models import eventsub_ as es

from pixelbot.events import (
    ChatMessage,
    Cheer,
    Event,
    Follow,
    GiftedSubs,
    MessageDeleted,
    Raid,
    RewardRedemption,
    StreamOffline,
    StreamOnline,
    Subscription,
    Viewer,
    ViewerBanned,
)

__all__ = [
    "PLATFORM",
    "FrameError",
    "event_from_frame",
    "event_from_payload",
    "frame_time",
    "plain_chat",
    "roles_from_badges",
]

PLATFORM = "twitch"
ROLE_BADGES = {
    "broadcaster": "broadcaster",
    "moderator": "moderator",
    "vip": "vip",
    "subscriber": "subscriber",
    "founder": "subscriber",  # a founder is a subscriber with a different badge
}


class _StreamOffline(es.StreamOffline):
    """twitchio 3.3 reads an ``id`` that Twitch's documented ``stream.offline`` event does not
    have (only the broadcaster's fields), so every real offline notification failed to parse
    and the stream session never closed. Registering this subclass for the subscription type
    (twitchio keys its parsers by ``subscription_type``) takes the documented shape."""

    subscription_type = "stream.offline"

    def __init__(self, payload: Any, *, http: Any) -> None:
        self.broadcaster = PartialUser(
            payload["broadcaster_user_id"],
            payload["broadcaster_user_login"],
            payload["broadcaster_user_name"],
            http=http,
        )
        self.id = str(payload.get("id", ""))


class FrameError(ValueError):
    """A frame that is not a notification this bot understands (reported, then skipped)."""


def roles_from_badges(set_ids: list[str]) -> frozenset[str]:
    return frozenset(ROLE_BADGES[s] for s in set_ids if s in ROLE_BADGES)


def _viewer(user: PartialUser, roles: frozenset[str] = frozenset()) -> Viewer:
    login = user.name or user.id
    return Viewer(PLATFORM, str(user.id), login, user.display_name or login, roles)


def _tier(tier: str) -> int:
    return {"1000": 1, "2000": 2, "3000": 3}.get(tier, 1)


def _parse_time(stamp: str) -> datetime:
    # Twitch writes nanoseconds ("...51.634234626Z"); Python takes microseconds
    head, _, frac = stamp.rstrip("Z").partition(".")
    text = f"{head}.{(frac + '000000')[:6]}" if frac else head
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _when(metadata: dict[str, Any] | None, fallback: datetime) -> datetime:
    stamp = (metadata or {}).get("message_timestamp")
    return _parse_time(stamp) if stamp else fallback


def frame_time(frame: dict[str, Any]) -> datetime | None:
    """When Twitch sent a frame (``metadata.message_timestamp``), if it says."""
    stamp = (frame.get("metadata") or {}).get("message_timestamp")
    if not stamp:
        return None
    try:
        return _parse_time(str(stamp))
    except ValueError:
        raise FrameError(f"message_timestamp {stamp!r} is not a time") from None


def redemption(payload: object) -> bool:
    """Whether a payload is a channel-point redemption: Twitch has taken the viewer's points,
    so one the bot never handles must still be settled (canceled) there."""
    return isinstance(payload, es.ChannelPointsRedemptionAdd)


def plain_chat(payload: object) -> bool:
    """Whether a payload is a chat line that neither pays nor charges anything on Twitch's side:
    no bits cheered in it, no channel-point reward or Power-up behind it (a highlighted or
    sub-only line, a message effect). Only these may be dropped when the bot falls behind
    (``platforms/inbox.py``). A command in such a line is then never run, so never charged."""
    return (
        isinstance(payload, es.ChatMessage)
        and payload.type in ("text", "user_intro")
        and payload.cheer is None
        and payload.channel_points_id is None
    )


def event_from_payload(payload: object, now: datetime) -> Event | None:
    """The normalized event for one twitchio EventSub payload (None: not one the bot uses)."""
    metadata: dict[str, Any] = getattr(payload, "_metadata", None) or {}
    event_id = str(metadata.get("message_id", ""))
    at = _when(metadata, now)
    common: dict[str, Any] = {"id": event_id, "platform": PLATFORM, "occurred_at": at}
    match payload:
        case es.ChatMessage():
            roles = roles_from_badges([badge.set_id for badge in payload.badges])
            return ChatMessage(
                id=payload.id,
                platform=PLATFORM,
                occurred_at=at,
                viewer=_viewer(payload.chatter, roles),
                text=payload.text,
                channel=payload.broadcaster.name or "",
            )
        case es.ChannelFollow():
            return Follow(**common, viewer=_viewer(payload.user))
        case es.ChannelSubscribe():
            if payload.gift:  # the gifter's event (channel.subscription.gift) pays for it
                return None
            return Subscription(**common, viewer=_viewer(payload.user), tier=_tier(payload.tier))
        case es.ChannelSubscriptionMessage():
            return Subscription(
                **common,
                viewer=_viewer(payload.user),
                tier=_tier(payload.tier),
                months=payload.cumulative_months,
            )
        case es.ChannelSubscriptionGift():
            gifter = None if payload.anonymous or payload.user is None else _viewer(payload.user)
            return GiftedSubs(
                **common, gifter=gifter, count=payload.total, tier=_tier(payload.tier)
            )
        case es.ChannelCheer():
            if payload.user is None:  # anonymous bits: nobody to pay
                return None
            return Cheer(
                **common, viewer=_viewer(payload.user), bits=payload.bits, message=payload.message
            )
        case es.ChannelRaid():
            return Raid(
                **common, viewer=_viewer(payload.from_broadcaster), viewers=payload.viewer_count
            )
        case es.StreamOnline():
            return StreamOnline(**common, channel=payload.broadcaster.name or "")
        case es.StreamOffline():
            return StreamOffline(**common, channel=payload.broadcaster.name or "")
        case es.ChatMessageDelete():
            return MessageDeleted(
                **common, message_id=payload.message_id, author=_viewer(payload.user)
            )
        case es.ChannelBan():
            duration: timedelta | None = None
            if not payload.permanent and payload.ends_at is not None:
                duration = payload.ends_at - payload.banned_at
            return ViewerBanned(**common, viewer=_viewer(payload.user), duration=duration)
        case es.ChannelPointsRedemptionAdd():
            return RewardRedemption(
                **common,
                viewer=_viewer(payload.user),
                reward=payload.reward.id,
                redemption_id=payload.id,
                text=payload.user_input or "",
                channel=payload.broadcaster.name or "",
            )
    return None


def event_from_frame(frame: dict[str, Any], now: datetime) -> Event | None:
    """Parse one raw EventSub WebSocket message. Session messages (welcome, keepalive,
    reconnect, revocation) give None; a malformed notification raises ``FrameError``."""
    try:
        metadata = frame["metadata"]
        if metadata["message_type"] != "notification":
            return None
        sub_type = metadata["subscription_type"]
        payload = es.create_event_instance(sub_type, frame, http=None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FrameError(f"not an EventSub notification: {type(exc).__name__}: {exc}") from None
    return event_from_payload(payload, now)
