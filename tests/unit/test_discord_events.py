"""The Discord parser and the slash-command payload, on payloads hostile and odd: a bad one is
a ``FrameError`` naming what is wrong (the adapter logs and skips it), never a crash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pixelbot.domain.command_specs import CommandSpec, ParamSpec
from pixelbot.events import ChatMessage, Presence, PresenceLeft, ViewerBanned
from pixelbot.platforms.discord_commands import commands_digest, slash_payload
from pixelbot.platforms.discord_events import (
    CompletionRequest,
    FrameError,
    GuildView,
    SlashCall,
    parse_dispatch,
    snowflake_time,
)
from tests.fakes import discord_payloads as p

pytestmark = pytest.mark.no_database
NOW = p.START + timedelta(minutes=5)


def view(**overrides: Any) -> GuildView:
    found = GuildView(
        guild_id=p.GUILD_ID,
        channels=frozenset({p.CHAT}),
        voice_channel=p.VOICE,
        roles={"moderator": frozenset({p.MOD_ROLE}), "vip": frozenset({p.VIP_ROLE})},
        prefix="!",
        bot_user_id="1100000000000000001",
        commands={
            "give": CommandSpec(
                "give",
                "Give",
                (ParamSpec("viewer", "viewer", True), ParamSpec("amount", "amount", True)),
            )
        },
    )
    for key, value in overrides.items():
        setattr(found, key, value)
    parse_dispatch("GUILD_CREATE", p.guild(), found, NOW)
    return found


@pytest.mark.parametrize(
    ("kind", "data", "why"),
    [
        ("MESSAGE_CREATE", [], "not an object"),
        ("MESSAGE_CREATE", {"guild_id": p.GUILD_ID, "channel_id": p.CHAT}, "author"),
        ("INTERACTION_CREATE", {"type": "two"}, "ValueError"),
        ("VOICE_STATE_UPDATE", {"guild_id": p.GUILD_ID, "channel_id": None}, "user_id"),
        (
            "GUILD_MEMBER_UPDATE",
            {"guild_id": p.GUILD_ID, "communication_disabled_until": "soon"},
            "ValueError",
        ),
    ],
)
def test_a_payload_without_its_documented_fields_is_a_frame_error(
    kind: str, data: Any, why: str
) -> None:
    with pytest.raises(FrameError, match=why):
        parse_dispatch(kind, data, view(), NOW)


def test_roles_owner_and_administrators() -> None:
    v = view()

    def roles(who: dict[str, Any], role_ids: list[str]) -> frozenset[str]:
        event = parse_dispatch("MESSAGE_CREATE", p.message(who, "hi", NOW, roles=role_ids), v, NOW)
        assert isinstance(event, ChatMessage)
        return event.viewer.roles

    assert roles(p.ALICE, []) == frozenset()
    assert roles(p.MOD, [p.MOD_ROLE, p.VIP_ROLE]) == {"moderator", "vip"}
    assert roles(p.ADMIN, [p.ADMIN_ROLE]) == {"broadcaster"}  # the role has Administrator
    assert roles(p.OWNER, []) == {"broadcaster"}


def test_other_servers_channels_bots_and_webhooks_are_not_chat() -> None:
    v = view()
    elsewhere = {**p.message(p.ALICE, "hi", NOW), "guild_id": "1"}
    webhook = {**p.message(p.ALICE, "hi", NOW), "webhook_id": "5"}
    for data in (
        elsewhere,
        webhook,
        p.message(p.ALICE, "hi", NOW, channel_id=p.OTHER),
        p.message(p.OTHER_BOT, "hi", NOW),
        p.message(p.user(v.bot_user_id, "pixelbot"), "hi", NOW),
    ):
        assert parse_dispatch("MESSAGE_CREATE", data, v, NOW) is None


def test_a_slash_command_is_the_typed_command_in_declared_order() -> None:
    data = p.interaction(
        p.ALICE, "give", [p.option("amount", 3, "all"), p.option("viewer", 6, p.BOB["id"])], NOW
    )
    call = parse_dispatch("INTERACTION_CREATE", data, view(), NOW)
    assert isinstance(call, SlashCall)
    assert call.message.text == f"!give <@{p.BOB['id']}> all"
    assert call.message.id == data["id"] and call.token == data["token"]
    assert call.message.occurred_at == snowflake_time(data["id"])


def test_an_autocomplete_names_the_focused_option() -> None:
    data = p.interaction(p.ALICE, "redeem", [p.option("name", 3, "hy", focused=True)], NOW, kind=4)
    request = parse_dispatch("INTERACTION_CREATE", data, view(), NOW)
    assert request == CompletionRequest(data["id"], data["token"], "redeem", "name", "hy")


def test_timeouts_and_voice() -> None:
    v = view()
    ended = p.member_update(p.ALICE, timeout_until=NOW - timedelta(minutes=1))
    assert parse_dispatch("GUILD_MEMBER_UPDATE", ended, v, NOW) is None  # already over
    running = p.member_update(p.ALICE, timeout_until=NOW + timedelta(minutes=10))
    banned = parse_dispatch("GUILD_MEMBER_UPDATE", running, v, NOW)
    assert isinstance(banned, ViewerBanned) and banned.duration == timedelta(minutes=10)
    joined = parse_dispatch("VOICE_STATE_UPDATE", p.voice_state(p.ALICE, p.VOICE, "s"), v, NOW)
    left = parse_dispatch("VOICE_STATE_UPDATE", p.voice_state(p.ALICE, p.AFK, "s"), v, NOW)
    assert isinstance(joined, Presence) and isinstance(left, PresenceLeft)
    bot = parse_dispatch("VOICE_STATE_UPDATE", p.voice_state(p.OTHER_BOT, p.VOICE, "b"), v, NOW)
    assert bot is None
    off = view(voice_channel=None)
    assert (
        parse_dispatch("VOICE_STATE_UPDATE", p.voice_state(p.ALICE, p.VOICE, "s"), off, NOW) is None
    )


def test_slash_payload_keeps_to_discords_rules() -> None:
    specs = [
        CommandSpec("Bad Name", "x"),
        CommandSpec("long", "word " * 40),
        CommandSpec(
            "redeem", "", (ParamSpec("name", "redeem", True), ParamSpec("text", "rest", False))
        ),
    ]
    payload, included = slash_payload(specs)
    assert [c["name"] for c in payload] == ["long", "redeem"]  # sorted; the bad name left out
    assert len(payload[0]["description"]) == 100
    assert payload[1]["description"] == "a Pixel Bot command"  # never empty
    assert payload[1]["options"][0]["autocomplete"] is True
    assert [s.name for s in included] == ["long", "redeem"]
    assert commands_digest("1", "2", payload) == commands_digest("1", "2", slash_payload(specs)[0])
    assert commands_digest("1", "2", payload) != commands_digest("1", "3", payload)
