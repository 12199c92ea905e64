"""Discord gateway dispatch payloads in their documented shapes, for the fake server and the
replay data files. Sources (https://discord.com/developers/docs/...):
resources/guild (Guild, Guild Member), topics/permissions (Role), resources/channel (Channel),
resources/message (Message), resources/voice (Voice State), resources/user (User),
interactions/receiving-and-responding (Interaction), events/gateway-events (the dispatches),
reference#snowflakes (ids carry their creation time)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

GUILD_ID = "1200000000000000001"
CHAT = "1200000000000000010"  # the configured text channel
OTHER = "1200000000000000011"  # a text channel the bot does not listen in
VOICE = "1200000000000000020"  # the configured voice channel
AFK = "1200000000000000021"
MOD_ROLE = "1200000000000000100"
VIP_ROLE = "1200000000000000101"
ADMIN_ROLE = "1200000000000000102"
EPOCH_MS = 1420070400000
START = datetime(2026, 1, 1, 20, 0, 0, tzinfo=UTC)
_increment = itertools.count(1)


def user(uid: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": uid,
        "username": name,
        "discriminator": "0",
        "global_name": name.capitalize(),
        "avatar": None,
    }
    if bot:
        found["bot"] = True
    return found


OWNER = user("1000000000000000001", "streamer")
ALICE = user("1000000000000000002", "alice")
BOB = user("1000000000000000003", "bob")
MOD = user("1000000000000000004", "mia")
ADMIN = user("1000000000000000005", "ada")
EVERYONE = {**user("1000000000000000006", "everyone"), "global_name": "@everyone"}
OTHER_BOT = user("1000000000000000007", "otherbot", bot=True)


def snowflake(at: datetime) -> str:
    ms = int(at.timestamp() * 1000) - EPOCH_MS
    return str((ms << 22) | (next(_increment) & 0xFFF))


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def role(rid: str, name: str, permissions: int = 0, position: int = 1) -> dict[str, Any]:
    return {
        "id": rid,
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": True,
        "flags": 0,
    }


def channel(cid: str, name: str, kind: int) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": cid,
        "type": kind,  # 0 GUILD_TEXT, 2 GUILD_VOICE
        "guild_id": GUILD_ID,
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
    }
    if kind == 0:
        found.update(topic=None, last_message_id=None, rate_limit_per_user=0)
    else:
        found.update(bitrate=64000, user_limit=0, rtc_region=None)
    return found


def guild() -> dict[str, Any]:
    """GUILD_CREATE: a Guild object with the extra fields of the event."""
    return {
        "id": GUILD_ID,
        "name": "Pixel Stream",
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": OWNER["id"],
        "afk_channel_id": AFK,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": [
            role(GUILD_ID, "@everyone", permissions=(1 << 10) | (1 << 11), position=0),
            role(MOD_ROLE, "Moderators", permissions=1 << 13),
            role(VIP_ROLE, "VIP"),
            role(ADMIN_ROLE, "Admins", permissions=1 << 3, position=2),
        ],
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": CHAT,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "safety_alerts_channel_id": None,
        "stickers": [],
        "joined_at": stamp(START - timedelta(days=30)),
        "large": False,
        "unavailable": False,
        "member_count": 6,
        "voice_states": [],
        "members": [],
        "channels": [
            channel(CHAT, "stream-chat", 0),
            channel(OTHER, "off-topic", 0),
            channel(VOICE, "Watch party", 2),
            channel(AFK, "AFK", 2),
        ],
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def member(roles: list[str] | None = None, nick: str | None = None) -> dict[str, Any]:
    """A Guild Member object without ``user`` (as MESSAGE_CREATE's ``member``)."""
    return {
        "nick": nick,
        "avatar": None,
        "banner": None,
        "roles": roles or [],
        "joined_at": stamp(START - timedelta(days=7)),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def message(
    author: dict[str, Any],
    content: str,
    at: datetime,
    *,
    channel_id: str = CHAT,
    roles: list[str] | None = None,
) -> dict[str, Any]:
    """MESSAGE_CREATE: a Message object plus ``guild_id`` and ``member``."""
    found: dict[str, Any] = {
        "id": snowflake(at),
        "channel_id": channel_id,
        "guild_id": GUILD_ID,
        "author": author,
        "content": content,
        "timestamp": stamp(at),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
    }
    if not author.get("bot"):
        found["member"] = member(roles)
    return found


def interaction(
    author: dict[str, Any],
    name: str,
    options: list[dict[str, Any]],
    at: datetime,
    *,
    kind: int = 2,
    roles: list[str] | None = None,
    permissions: int = (1 << 10) | (1 << 11),
    channel_id: str = CHAT,
    application_id: str = "1100000000000000001",
) -> dict[str, Any]:
    """INTERACTION_CREATE of a slash command (type 2) or its autocomplete (type 4)."""
    iid = snowflake(at)
    return {
        "id": iid,
        "application_id": application_id,
        "type": kind,
        "data": {"id": "1100000000000000500", "name": name, "type": 1, "options": options},
        "guild_id": GUILD_ID,
        "guild": {"id": GUILD_ID, "locale": "en-US", "features": []},
        "channel_id": channel_id,
        "channel": {"id": channel_id, "type": 0, "guild_id": GUILD_ID, "name": "stream-chat"},
        "member": {**member(roles), "user": author, "permissions": str(permissions)},
        "token": f"interaction-token-{iid}",
        "version": 1,
        "app_permissions": str((1 << 10) | (1 << 11)),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID},
        "context": 0,
        "attachment_size_limit": 10485760,
    }


def option(name: str, kind: int, value: Any, *, focused: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "type": kind, "value": value}
    if focused:
        found["focused"] = True
    return found


def voice_state(who: dict[str, Any], channel_id: str | None, session: str) -> dict[str, Any]:
    """VOICE_STATE_UPDATE: a Voice State object (with ``member`` in a guild)."""
    return {
        "guild_id": GUILD_ID,
        "channel_id": channel_id,
        "user_id": who["id"],
        "member": {**member(), "user": who},
        "session_id": session,
        "deaf": False,
        "mute": False,
        "self_deaf": False,
        "self_mute": False,
        "self_stream": False,
        "self_video": False,
        "suppress": False,
        "request_to_speak_timestamp": None,
    }


def member_update(
    who: dict[str, Any], *, roles: list[str] | None = None, timeout_until: datetime | None = None
) -> dict[str, Any]:
    """GUILD_MEMBER_UPDATE (needs the Server Members intent)."""
    return {
        "guild_id": GUILD_ID,
        "roles": roles or [],
        "user": who,
        "nick": None,
        "avatar": None,
        "banner": None,
        "joined_at": stamp(START - timedelta(days=7)),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "communication_disabled_until": stamp(timeout_until) if timeout_until else None,
        "flags": 0,
        "avatar_decoration_data": None,
    }
