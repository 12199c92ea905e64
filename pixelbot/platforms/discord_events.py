"""What a Discord gateway dispatch means to the bot: raw dispatch payloads (the ``d`` of an
op 0 frame, exactly as Discord sends it) turned into normalized events (``pixelbot.events``).

The live adapter and ``bot.py replay discord`` share this module: the adapter hands it the
payloads discord.py has just decoded, a replay reads them from a file, so both take the same
path. Documented shapes: https://discord.com/developers/docs/events/gateway-events
(Message Create, Interaction Create, Guild Member Update, Voice State Update, Guild Create).

What becomes what:

- ``MESSAGE_CREATE`` in a configured channel of the configured server, by a person (not a bot,
  not a webhook): a ``ChatMessage`` (its ``id`` is the message id; Discord never reuses one).
- ``INTERACTION_CREATE`` of an application command: a ``ChatMessage`` whose text is the same
  command typed with the prefix (``/give viewer:@bob amount:10`` is ``!give <@bob-id> 10``), so
  a slash command runs through the same dispatcher, checks and cooldowns as a typed one. Its
  ``id`` is the interaction id. An autocomplete request is a ``CompletionRequest``.
- ``GUILD_MEMBER_UPDATE`` that puts a member in timeout (``communication_disabled_until`` in
  the future): a ``ViewerBanned`` with the duration (their waiting TTS is cancelled).
- ``VOICE_STATE_UPDATE``: joining the configured voice channel is a ``Presence`` (they watch);
  being anywhere else (or nowhere) is a ``PresenceLeft``.
- ``GUILD_CREATE`` of the configured server: who owns it and which roles are administrators
  (kept in ``GuildView``; nothing is emitted).

Roles: the server owner, a member with an administrator role, or (in an interaction, which
carries them) the Administrator permission is the broadcaster; ``platforms.discord.roles``
maps role ids to moderator / vip / subscriber.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pixelbot.domain.command_specs import CommandSpec
from pixelbot.events import ChatMessage, Event, Presence, PresenceLeft, Viewer, ViewerBanned

__all__ = [
    "HANDLED",
    "PLATFORM",
    "CompletionRequest",
    "FrameError",
    "GuildView",
    "SlashCall",
    "parse_dispatch",
    "snowflake_time",
]

PLATFORM = "discord"
HANDLED = frozenset(
    {"MESSAGE_CREATE", "INTERACTION_CREATE", "GUILD_MEMBER_UPDATE", "VOICE_STATE_UPDATE"}
)
ADMINISTRATOR = 1 << 3  # https://discord.com/developers/docs/topics/permissions
DISCORD_EPOCH_MS = 1420070400000  # https://discord.com/developers/docs/reference#snowflakes
# Interaction types: https://discord.com/developers/docs/interactions/receiving-and-responding
APPLICATION_COMMAND, APPLICATION_COMMAND_AUTOCOMPLETE = 2, 4
USER_OPTION = 6  # application command option type USER


class FrameError(ValueError):
    """A payload that does not have the documented shape (reported, then skipped)."""


@dataclass
class GuildView:
    """What the parser needs to know about the configured server."""

    guild_id: str
    channels: frozenset[str]  # text channels the bot listens in (empty: every channel)
    voice_channel: str | None
    roles: Mapping[str, frozenset[str]]  # bot role ("moderator") -> Discord role ids
    prefix: str
    bot_user_id: str = ""
    owner_id: str = ""
    admin_roles: frozenset[str] = frozenset()
    commands: dict[str, CommandSpec] = field(default_factory=dict)  # slash name -> spec

    def listens_in(self, channel_id: str) -> bool:
        return not self.channels or channel_id in self.channels

    def learn_guild(self, data: Mapping[str, Any]) -> None:
        """Take the owner and the administrator roles from a ``GUILD_CREATE`` payload (with
        no server configured, the first one to arrive is the one)."""
        if not self.guild_id:
            self.guild_id = str(data.get("id") or "")
        if str(data.get("id")) != self.guild_id:
            return
        self.owner_id = str(data.get("owner_id") or "")
        self.admin_roles = frozenset(
            str(role["id"])
            for role in data.get("roles") or []
            if int(role.get("permissions") or 0) & ADMINISTRATOR
        )


@dataclass(frozen=True)
class SlashCall:
    """An application command: the message it stands for, and what to answer through."""

    message: ChatMessage
    interaction_id: str
    token: str  # (never logged: it lets anyone answer the interaction for 15 minutes)


@dataclass(frozen=True)
class CompletionRequest:
    interaction_id: str
    token: str
    command: str
    option: str  # the option being typed
    typed: str


def snowflake_time(snowflake: str) -> datetime:
    """When a Discord id was made (ids carry their creation time)."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


def _roles(
    view: GuildView, user_id: str, role_ids: Sequence[Any], permissions: int = 0
) -> frozenset[str]:
    held = {str(r) for r in role_ids}
    found = {role for role, ids in view.roles.items() if held & ids}
    if (
        (view.owner_id and user_id == view.owner_id)
        or held & view.admin_roles
        or permissions & ADMINISTRATOR
    ):
        found.add("broadcaster")
    return frozenset(found)


def _viewer(
    view: GuildView, user: Mapping[str, Any], member: Mapping[str, Any] | None, permissions: int = 0
) -> Viewer:
    user_id = str(user["id"])
    login = str(user.get("username") or user_id)
    shown = (member or {}).get("nick") or user.get("global_name") or login
    roles = _roles(view, user_id, (member or {}).get("roles") or [], permissions)
    return Viewer(PLATFORM, user_id, login, str(shown), roles)


def _is_person(user: Mapping[str, Any], view: GuildView) -> bool:
    return not user.get("bot") and str(user.get("id")) != view.bot_user_id


def parse_dispatch(
    kind: str, data: Any, view: GuildView, now: datetime
) -> Event | SlashCall | CompletionRequest | None:
    """The meaning of one dispatch (None: not one the bot acts on). ``FrameError`` if a
    payload lacks a documented field."""
    if not isinstance(data, Mapping):
        raise FrameError(f"{kind}: the payload is not an object")
    try:
        match kind:
            case "GUILD_CREATE":
                view.learn_guild(data)
                return None
            case "MESSAGE_CREATE":
                return _message(data, view)
            case "INTERACTION_CREATE":
                return _interaction(data, view)
            case "GUILD_MEMBER_UPDATE":
                return _member_update(data, view, now)
            case "VOICE_STATE_UPDATE":
                return _voice(data, view, now)
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{kind}: {type(exc).__name__}: {exc}") from None
    return None


def _message(data: Mapping[str, Any], view: GuildView) -> ChatMessage | None:
    if str(data.get("guild_id")) != view.guild_id or data.get("webhook_id"):
        return None
    channel = str(data["channel_id"])
    author = data["author"]
    if not view.listens_in(channel) or not _is_person(author, view):
        return None
    return ChatMessage(
        id=str(data["id"]),
        platform=PLATFORM,
        occurred_at=_time(str(data["timestamp"])),
        viewer=_viewer(view, author, data.get("member")),
        text=str(data.get("content") or ""),
        channel=channel,
    )


def _option_text(option: Mapping[str, Any]) -> str:
    value = option["value"]
    if option.get("type") == USER_OPTION:
        return f"<@{value}>"  # a viewer named by id (``converters.parse_target``)
    return str(value)


def _interaction(data: Mapping[str, Any], view: GuildView) -> SlashCall | CompletionRequest | None:
    kind = int(data["type"])
    if kind not in (APPLICATION_COMMAND, APPLICATION_COMMAND_AUTOCOMPLETE):
        return None
    if str(data.get("guild_id")) != view.guild_id:
        return None
    command = data["data"]
    name = str(command["name"])
    options = {str(o["name"]): o for o in command.get("options") or []}
    interaction_id, token = str(data["id"]), str(data["token"])
    if kind == APPLICATION_COMMAND_AUTOCOMPLETE:
        focused = next((o for o in options.values() if o.get("focused")), None)
        if focused is None:
            return None
        return CompletionRequest(
            interaction_id, token, name, str(focused["name"]), str(focused.get("value") or "")
        )
    member = data["member"]
    permissions = int(member.get("permissions") or 0)
    viewer = _viewer(view, member["user"], member, permissions)
    spec = view.commands.get(name)
    order = [p.name for p in spec.params] if spec else list(options)
    words = [_option_text(options[n]) for n in order if n in options]
    text = " ".join([view.prefix + name, *words])
    channel = str(data.get("channel_id") or (data.get("channel") or {}).get("id") or "")
    message = ChatMessage(
        id=interaction_id,
        platform=PLATFORM,
        occurred_at=snowflake_time(interaction_id),
        viewer=viewer,
        text=text,
        channel=channel,
    )
    return SlashCall(message, interaction_id, token)


def _member_update(data: Mapping[str, Any], view: GuildView, now: datetime) -> Event | None:
    if str(data.get("guild_id")) != view.guild_id:
        return None
    until = data.get("communication_disabled_until")
    if not until:
        return None
    ends = _time(str(until))
    if ends <= now:
        return None  # a timeout that has run out (Discord leaves the old time in place)
    user = data["user"]
    return ViewerBanned(
        id=f"{user['id']}:timeout:{until}",
        platform=PLATFORM,
        occurred_at=now,
        viewer=_viewer(view, user, data),
        duration=ends - now,
    )


def _voice(data: Mapping[str, Any], view: GuildView, now: datetime) -> Event | None:
    if view.voice_channel is None or str(data.get("guild_id")) != view.guild_id:
        return None
    member = data.get("member") or {}
    user = member.get("user") or {"id": data["user_id"]}
    if not _is_person(user, view):
        return None
    viewer = _viewer(view, user, member)
    session = str(data["session_id"])
    channel = data.get("channel_id")
    common: dict[str, Any] = {"platform": PLATFORM, "occurred_at": now, "viewer": viewer}
    if channel is not None and str(channel) == view.voice_channel:
        return Presence(id=f"voice:{session}:{channel}", **common)
    return PresenceLeft(id=f"voice-left:{session}:{channel or 'none'}", **common)
