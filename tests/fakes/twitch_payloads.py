"""EventSub ``event`` bodies as Twitch documents them (dev.twitch.tv, EventSub subscription
types reference), one builder per subscription type, with the documented field names and
value shapes (ids as strings, tiers as "1000", timestamps in RFC 3339).

Each returns ``(subscription_type, version, condition, event)`` for ``FakeTwitch.notify``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BOT", "BROADCASTER"]

BROADCASTER = {"id": "1971641", "login": "streamer", "name": "Streamer"}
BOT = {"id": "904", "login": "pixelbot", "name": "PixelBot"}

Payload = tuple[str, str, dict[str, str], dict[str, Any]]


def _broadcaster() -> dict[str, str]:
    return {
        "broadcaster_user_id": BROADCASTER["id"],
        "broadcaster_user_login": BROADCASTER["login"],
        "broadcaster_user_name": BROADCASTER["name"],
    }


def _user(uid: str, login: str, prefix: str = "user") -> dict[str, str]:
    return {
        f"{prefix}_id": uid,
        f"{prefix}_login": login,
        f"{prefix}_name": login.capitalize(),
    }


def _cond() -> dict[str, str]:
    return {"broadcaster_user_id": BROADCASTER["id"]}


def chat(uid: str, login: str, text: str, message_id: str, badges: tuple[str, ...] = ()) -> Payload:
    event = {
        **_broadcaster(),
        **_user(uid, login, "chatter_user"),
        "message_id": message_id,
        "message": {
            "text": text,
            "fragments": [
                {"type": "text", "text": text, "cheermote": None, "emote": None, "mention": None}
            ],
        },
        "color": "#00FF7F",
        "badges": [{"set_id": badge, "id": "1", "info": ""} for badge in badges],
        "message_type": "text",
        "cheer": None,
        "reply": None,
        "channel_points_custom_reward_id": None,
        "channel_points_animation_id": None,
        "source_broadcaster_user_id": None,
        "source_broadcaster_user_login": None,
        "source_broadcaster_user_name": None,
        "source_message_id": None,
        "source_badges": None,
        "is_source_only": None,
    }
    condition = {"broadcaster_user_id": BROADCASTER["id"], "user_id": BOT["id"]}
    return ("channel.chat.message", "1", condition, event)


def follow(uid: str, login: str) -> Payload:
    event = {**_user(uid, login), **_broadcaster(), "followed_at": "2026-01-01T20:00:00.5Z"}
    condition = {**_cond(), "moderator_user_id": BROADCASTER["id"]}
    return ("channel.follow", "2", condition, event)


def subscribe(uid: str, login: str, tier: str = "1000", gift: bool = False) -> Payload:
    event = {**_user(uid, login), **_broadcaster(), "tier": tier, "is_gift": gift}
    return ("channel.subscribe", "1", _cond(), event)


def resub(uid: str, login: str, months: int, text: str, tier: str = "1000") -> Payload:
    event = {
        **_user(uid, login),
        **_broadcaster(),
        "tier": tier,
        "message": {"text": text, "emotes": [{"begin": 0, "end": 3, "id": "304456832"}]},
        "cumulative_months": months,
        "streak_months": None,
        "duration_months": 1,
    }
    return ("channel.subscription.message", "1", _cond(), event)


def gift(uid: str | None, login: str | None, total: int, tier: str = "1000") -> Payload:
    anonymous = uid is None
    user = (
        {"user_id": None, "user_login": None, "user_name": None}
        if anonymous
        else _user(uid or "", login or "")
    )
    event = {
        **user,
        **_broadcaster(),
        "total": total,
        "tier": tier,
        "cumulative_total": None if anonymous else 284,
        "is_anonymous": anonymous,
    }
    return ("channel.subscription.gift", "1", _cond(), event)


def cheer(uid: str, login: str, bits: int, message: str) -> Payload:
    event = {
        "is_anonymous": False,
        **_user(uid, login),
        **_broadcaster(),
        "message": message,
        "bits": bits,
    }
    return ("channel.cheer", "1", _cond(), event)


def raid(uid: str, login: str, viewers: int) -> Payload:
    event = {
        **_user(uid, login, "from_broadcaster_user"),
        "to_broadcaster_user_id": BROADCASTER["id"],
        "to_broadcaster_user_login": BROADCASTER["login"],
        "to_broadcaster_user_name": BROADCASTER["name"],
        "viewers": viewers,
    }
    return ("channel.raid", "1", {"to_broadcaster_user_id": BROADCASTER["id"]}, event)


def online(stream_id: str = "9001") -> Payload:
    event = {
        **_broadcaster(),
        "id": stream_id,
        "type": "live",
        "started_at": "2026-01-01T20:00:00Z",
    }
    return ("stream.online", "1", _cond(), event)


def offline() -> Payload:
    return ("stream.offline", "1", _cond(), _broadcaster())


def delete(uid: str, login: str, message_id: str) -> Payload:
    event = {**_broadcaster(), **_user(uid, login, "target_user"), "message_id": message_id}
    condition = {"broadcaster_user_id": BROADCASTER["id"], "user_id": BOT["id"]}
    return ("channel.chat.message_delete", "1", condition, event)


def ban(uid: str, login: str, ends_at: str | None = None) -> Payload:
    event = {
        **_user(uid, login),
        **_broadcaster(),
        **_user(BOT["id"], BOT["login"], "moderator_user"),
        "reason": "spam",
        "banned_at": "2026-01-01T20:05:00Z",
        "ends_at": ends_at,
        "is_permanent": ends_at is None,
    }
    return ("channel.ban", "1", _cond(), event)


def redemption(
    uid: str, login: str, redemption_id: str, reward_id: str, title: str, text: str = ""
) -> Payload:
    event = {
        "id": redemption_id,
        **_broadcaster(),
        **_user(uid, login),
        "user_input": text,
        "status": "unfulfilled",
        "reward": {"id": reward_id, "title": title, "cost": 100, "prompt": ""},
        "redeemed_at": "2026-01-01T20:06:00Z",
    }
    return ("channel.channel_points_custom_reward_redemption.add", "1", _cond(), event)
