"""The Discord adapter end to end: the REAL discord.py client against a fake Discord on
localhost (tests/fakes/discord_server.py: REST and the gateway WebSocket in the documented
formats), the real assembly and database. Each test ends in balances and in what the bot sent
to Discord, as Discord would receive it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import FakeClock
from pixelbot.commands.services import ReloadResult
from pixelbot.config import Config, load_config
from pixelbot.db.engine import Database
from pixelbot.errors import UnknownViewer
from pixelbot.events import Viewer
from pixelbot.platforms.discord import DiscordAdapter
from pixelbot.testing import assert_verified, balance_of, make_config
from pixelbot.vault import TokenVault
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import TOKEN, FakeDiscord, Request

STRING, INTEGER, USER = 3, 4, 6


def discord_config(db_path: Path, fake: FakeDiscord, **discord: Any) -> Config:
    return make_config(
        db_path,
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={"earn": {"chat": {"points": 1, "xp": 1, "cooldown": "0s"}}},
        redeems={
            "tts": {"title": "Text-to-Speech", "cost": 5, "action": {"type": "tts"}},
            "hydrate": {
                "title": "Hydrate!",
                "cost": 3,
                "action": {"type": "chat", "message": "Drink!"},
            },
        },
        platforms={
            "console": {"enabled": False},
            "discord": {
                "enabled": True,
                "token": TOKEN,
                "guild_id": p.GUILD_ID,
                "channels": [p.CHAT],
                "voice_channel": p.VOICE,
                "roles": {"moderator": [p.MOD_ROLE], "vip": [p.VIP_ROLE]},
                "api_url": fake.api_url,
                "gateway_url": fake.gateway_url,
                **discord,
            },
        },
    )


@dataclass
class Live:
    app: App
    fake: FakeDiscord
    adapter: DiscordAdapter
    clock: FakeClock

    def bodies(self) -> list[dict[str, Any]]:
        """Every message the bot sent or edited (channel messages and interaction answers)."""
        return [r.body for r in self.outgoing()]

    def outgoing(self) -> list[Request]:
        return [
            r
            for r in self.fake.requests
            if (r.method == "POST" and r.path.endswith("/messages"))
            or ("/webhooks/" in r.path and r.method in ("PATCH", "POST"))
            or (r.path.endswith("/callback") and (r.body or {}).get("data", {}).get("content"))
        ]

    def said(self) -> list[str]:
        return [
            body.get("content") or body.get("data", {}).get("content", "") for body in self.bodies()
        ]

    async def points(self, who: dict[str, Any]) -> int:
        """The viewer's committed balance (0 before they have a wallet)."""
        try:
            return await balance_of(
                self.app.engine, Viewer("discord", who["id"], who["username"], "")
            )
        except UnknownViewer:
            return 0


async def until(
    check: Callable[[], bool], what: str | Callable[[], str], patience: float = 10.0
) -> None:
    """Wait for the bot to have done something observable (a hang guard, not a timing test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while not check():
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out waiting for: {what if isinstance(what, str) else what()}"
            )
        await asyncio.sleep(0.02)


async def until_said(live: Live, fragment: str) -> str:
    def found() -> str | None:
        return next((line for line in live.said() if fragment in line), None)

    await until(
        lambda: found() is not None, lambda: f"the bot to say {fragment!r}; it said {live.said()}"
    )
    line = found()
    assert line is not None
    return line


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(p.guild()) as server:
        yield server


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@contextlib.asynccontextmanager
async def running(
    config: Config, fake: FakeDiscord, key: bytes, clock: FakeClock | None = None, **options: Any
) -> AsyncIterator[Live]:
    """The bot with its Discord adapter, started through the one assembly (``options``: more
    of the adapter's own, such as ``inbox_limit``)."""
    clock = clock or FakeClock(p.START)
    vault_db = Database(config.database.url)
    vault = TokenVault(vault_db, key, clock)
    adapter = DiscordAdapter(
        config.platforms.discord,
        lambda: vault,
        clock,
        prefix=config.bot.prefix,
        guild_ready_timeout=0.05,
        **options,
    )
    try:
        async with open_app(config, clock=clock, platforms=[adapter]) as app:
            assert app.platform_errors == {}
            yield Live(app, fake, adapter, clock)
    finally:
        await vault_db.dispose()


@pytest.fixture
async def live(tmp_path: Path, fake: FakeDiscord, key: bytes) -> AsyncIterator[Live]:
    async with running(discord_config(tmp_path / "pixel.db", fake), fake, key) as bot:
        yield bot


def later(live: Live, seconds: float = 1.0) -> Any:
    """A time a little after the clock's now (ids and timestamps carry it)."""
    live.clock.advance(timedelta(seconds=seconds))
    return live.clock.now()


async def chat(live: Live, who: dict[str, Any], text: str, **options: Any) -> dict[str, Any]:
    data = p.message(who, text, later(live), **options)
    await live.fake.dispatch("MESSAGE_CREATE", data)
    return data


async def slash(
    live: Live, who: dict[str, Any], name: str, *options: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    data = p.interaction(who, name, list(options), later(live), **kw)
    await live.fake.dispatch("INTERACTION_CREATE", data)
    return data


async def paid(live: Live, who: dict[str, Any], points: int) -> None:
    async def check() -> bool:
        return await live.points(who) == points

    deadline = asyncio.get_running_loop().time() + 10
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{who['username']} has {await live.points(who)}, not {points}")
        await asyncio.sleep(0.02)


def assert_only_author_pinged(live: Live) -> None:
    """Every message sent allows at most its author to be pinged: no @everyone, no role."""
    bodies = live.bodies()
    assert bodies, "the bot sent nothing"
    for body in bodies:
        mentions = body.get("allowed_mentions", body.get("data", {}).get("allowed_mentions"))
        assert mentions is not None, f"no allowed_mentions in {body}"
        assert mentions.get("parse") == [], body
        assert "roles" not in mentions or mentions["roles"] == [], body
        assert len(mentions.get("users", [])) <= 1, body


# ---------------------------------------------------------------------------- start


async def test_start_identifies_with_only_the_needed_intents(live: Live) -> None:
    identify = live.fake.identifies[0]
    guilds, messages, voice, content, members = 1 << 0, 1 << 9, 1 << 7, 1 << 15, 1 << 1
    assert identify["intents"] == guilds | messages | voice | content
    assert not identify["intents"] & members
    status = live.adapter.status()
    assert status.connected and status.retrying_since is None


# ---------------------------------------------------------------------------- prefix commands


async def test_a_prefix_command_earns_and_is_answered_as_a_reply(live: Live) -> None:
    await chat(live, p.ALICE, "hello")
    await paid(live, p.ALICE, 1)
    asked = await chat(live, p.ALICE, "!points")
    line = await until_said(live, "pixels")
    assert line.startswith(f"<@{p.ALICE['id']}> ")
    assert "2 pixels" in line  # the command line earned too, as on every platform
    body = live.bodies()[-1]
    allowed = body["allowed_mentions"]
    assert [str(user) for user in allowed.pop("users")] == [p.ALICE["id"]]  # (ids as numbers)
    assert allowed == {"parse": [], "replied_user": True}
    assert str(body["message_reference"]["message_id"]) == asked["id"]
    assert live.fake.sent("POST", f"/channels/{p.CHAT}/messages")


async def test_only_configured_channels_earn_and_answer(live: Live) -> None:
    await chat(live, p.BOB, "hello", channel_id=p.OTHER)
    await chat(live, p.BOB, "!points", channel_id=p.OTHER)
    await chat(live, p.OTHER_BOT, "!points")  # another bot: never a viewer
    await chat(live, p.BOB, "counted")
    await paid(live, p.BOB, 1)
    await asyncio.sleep(0.2)
    assert live.said() == []
    assert await live.points(p.OTHER_BOT) == 0


# ---------------------------------------------------------------------------- slash commands


async def test_every_command_is_a_slash_command_from_the_registry(live: Live) -> None:
    assert live.adapter.synced
    (put,) = live.fake.sent("PUT", f"/guilds/{p.GUILD_ID}/commands")
    commands = {c["name"]: c for c in put.body}
    registry = {c.name for c in live.app.commands.router.all()}
    assert set(commands) == registry
    give = commands["give"]
    assert give["description"] == "Give some of your points away."
    assert [(o["name"], o["type"], o["required"]) for o in give["options"]] == [
        ("viewer", USER, True),
        ("amount", STRING, True),
    ]
    top = commands["top"]["options"][0]
    assert (top["type"], top["required"]) == (INTEGER, False)
    name = commands["redeem"]["options"][0]
    assert name["name"] == "name" and name["autocomplete"] is True
    assert "tts" in commands and "hydrate" in commands  # each redeem is a command of its own


async def test_a_slash_command_runs_and_answers_its_interaction(live: Live) -> None:
    for _ in range(3):
        await chat(live, p.ALICE, "hi")
    await chat(live, p.BOB, "hi")
    await paid(live, p.ALICE, 3)
    await paid(live, p.BOB, 1)
    asked = await slash(
        live,
        p.ALICE,
        "give",
        p.option("viewer", USER, p.BOB["id"]),
        p.option("amount", STRING, "2"),
    )
    await paid(live, p.BOB, 1 + 2)
    callback = live.fake.sent("POST", f"/interactions/{asked['id']}/")
    assert [c.body for c in callback] == [{"type": 5}]  # "thinking...", at once
    await until(lambda: bool(live.fake.sent("PATCH", "/messages/@original")), "the answer")
    (edit,) = live.fake.sent("PATCH", "/messages/@original")
    assert (
        edit.path
        == f"/api/v10/webhooks/{live.adapter.application_id}/{asked['token']}/messages/@original"
    )
    assert edit.body["content"].startswith(f"<@{p.ALICE['id']}> ")
    assert edit.body["allowed_mentions"] == {"parse": [], "users": [p.ALICE["id"]]}
    assert await live.points(p.ALICE) == 3 + 1 - 2  # the slash command earns like a line


async def test_a_slash_command_elsewhere_says_where_the_bot_answers(live: Live) -> None:
    asked = await slash(live, p.ALICE, "points", channel_id=p.OTHER)
    await until(lambda: bool(live.fake.sent("POST", f"/interactions/{asked['id']}/")), "an answer")
    (answer,) = live.fake.sent("POST", f"/interactions/{asked['id']}/")
    assert answer.body["type"] == 4
    assert answer.body["data"]["flags"] == 64  # only the viewer sees it
    assert p.CHAT in answer.body["data"]["content"]
    assert await live.points(p.ALICE) == 0


async def test_redeem_names_are_offered_as_completions(live: Live) -> None:
    asked = await slash(
        live, p.ALICE, "redeem", p.option("name", STRING, "h", focused=True), kind=4
    )
    await until(lambda: bool(live.fake.sent("POST", f"/interactions/{asked['id']}/")), "choices")
    (answer,) = live.fake.sent("POST", f"/interactions/{asked['id']}/")
    assert answer.body == {
        "type": 8,
        "data": {"choices": [{"name": "hydrate", "value": "hydrate"}]},
    }


async def test_unchanged_slash_commands_are_not_registered_again(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake)
    async with running(config, fake, key) as first:
        assert first.adapter.synced
    async with running(config, fake, key) as second:
        assert not second.adapter.synced
    assert len(fake.sent("PUT", "/commands")) == 1
    changed = discord_config(
        tmp_path / "pixel.db",
        fake,
    ).model_copy(update={"redeems": {}})
    async with running(changed, fake, key) as third:
        assert third.adapter.synced  # a redeem went: the list changed
    assert len(fake.sent("PUT", "/commands")) == 2


# ---------------------------------------------------------------------------- roles


async def test_roles_map_to_permissions(live: Live) -> None:
    await chat(live, p.ALICE, "!addpoints bob 10")
    await until_said(live, "moderators only")
    await chat(live, p.BOB, "hello")  # bob has a wallet to be found by name
    await paid(live, p.BOB, 1)
    await chat(live, p.MOD, "!addpoints bob 10", roles=[p.MOD_ROLE])
    await paid(live, p.BOB, 11)
    await chat(live, p.ADMIN, "!addpoints bob 10", roles=[p.ADMIN_ROLE])  # an administrator
    await paid(live, p.BOB, 21)
    await chat(live, p.OWNER, "!addpoints bob 10")  # the server owner
    await paid(live, p.BOB, 31)
    # in a slash command, the Administrator permission the interaction carries counts too
    await slash(
        live,
        p.BOB,
        "addpoints",
        p.option("viewer", USER, p.ALICE["id"]),
        p.option("amount", STRING, "5"),
        permissions=1 << 3,
    )
    await paid(live, p.ALICE, 1 + 5)


# ---------------------------------------------------------------------------- mentions


async def test_no_reply_pings_anyone_but_its_author(live: Live) -> None:
    await chat(live, p.EVERYONE, "!top")  # a viewer whose name is @everyone
    await until_said(live, "@everyone")
    await chat(live, p.ALICE, f"!give <@&{p.MOD_ROLE}> 5")  # a message quoting a role
    await until_said(live, f"<@&{p.MOD_ROLE}>")
    await slash(live, p.ALICE, "points", p.option("viewer", USER, p.EVERYONE["id"]))
    await until(lambda: bool(live.fake.sent("PATCH", "/messages/@original")), "the answer")
    await chat(live, p.MOD, "!reload", roles=[p.MOD_ROLE])  # said without a mention
    await until(lambda: len(live.bodies()) >= 4, "four messages")
    assert_only_author_pinged(live)
    assert any(body["allowed_mentions"] == {"parse": []} for body in live.bodies())


# ---------------------------------------------------------------------------- presence


async def test_the_voice_channel_counts_as_watching(live: Live) -> None:
    presence = live.app.intake.presence
    await live.fake.dispatch("VOICE_STATE_UPDATE", p.voice_state(p.ALICE, p.VOICE, "s1"))
    await live.fake.dispatch("VOICE_STATE_UPDATE", p.voice_state(p.BOB, p.AFK, "s2"))
    await until(lambda: len(presence.watching(live.clock.now())) == 1, "alice to watch")
    (watcher,) = presence.watching(live.clock.now())
    assert watcher.viewer.platform_user_id == p.ALICE["id"]
    await live.fake.dispatch("VOICE_STATE_UPDATE", p.voice_state(p.ALICE, None, "s1"))
    await until(lambda: presence.watching(live.clock.now()) == [], "alice to leave")


# ---------------------------------------------------------------------------- reconnect


async def test_a_gateway_reconnect_resumes_and_pays_nothing_twice(live: Live) -> None:
    await chat(live, p.ALICE, "before")
    await paid(live, p.ALICE, 1)
    await live.fake.reconnect()
    await chat(live, p.ALICE, "while away")  # waits on the server for the resume
    await until(lambda: live.fake.resumes == 1, "the bot to resume")
    await paid(live, p.ALICE, 2)
    await chat(live, p.ALICE, "after")
    await paid(live, p.ALICE, 3)
    await asyncio.sleep(0.2)
    assert await live.points(p.ALICE) == 3
    assert len(live.fake.identifies) == 1  # resumed, not a new session
    assert live.adapter.status().connected
    await assert_verified(live.app.engine)


async def test_status_shows_the_reconnect(live: Live) -> None:
    live.fake.resume_allowed.clear()  # the server takes its time to answer the resume
    await live.fake.reconnect()
    await until(lambda: not live.adapter.status().connected, "the status to show the drop")
    assert live.adapter.status().retrying_since == live.clock.now()
    live.fake.resume_allowed.set()
    await until(lambda: live.adapter.status().connected, "connected again")
    assert live.adapter.status().retrying_since is None
    assert live.fake.resumes == 1


# ---------------------------------------------------------------------------- intents


async def test_refused_privileged_intents_are_one_clear_line_and_slash_still_works(
    tmp_path: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord(p.guild(), allow_privileged=False) as fake:
        config = discord_config(tmp_path / "pixel.db", fake)
        with caplog.at_level(logging.WARNING):
            async with running(config, fake, key) as live:
                lines = [
                    r.getMessage()
                    for r in caplog.records
                    if "Message Content Intent" in r.getMessage()
                ]
                assert len(lines) == 1
                assert "prefix commands" in lines[0] and "slash commands work" in lines[0]
                assert not live.fake.identifies[0]["intents"] & (1 << 15)
                assert "Message Content" in live.adapter.status().detail
                await chat(live, p.ALICE, "!points")  # arrives empty: earns, runs nothing
                await paid(live, p.ALICE, 1)
                await slash(live, p.ALICE, "points")
                line = await until_said(live, "pixels")
                assert line.endswith("you have 2 pixels")
                assert len(live.said()) == 1


async def test_a_wrong_token_is_one_line_naming_the_fix(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake, token="not-the-token")
    adapter = DiscordAdapter(config.platforms.discord, lambda: None, FakeClock(p.START), prefix="!")  # type: ignore[arg-type,return-value]
    async with open_app(config, clock=FakeClock(p.START), platforms=[adapter]) as app:
        assert "refused the bot token" in app.platform_errors["discord"]


# ---------------------------------------------------------------------------- moderation


async def test_a_timeout_cancels_and_refunds_waiting_tts(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake, members_intent=True)
    async with running(config, fake, key) as live:
        assert live.fake.identifies[0]["intents"] & (1 << 1)  # Server Members, asked for
        await chat(live, p.MOD, "!pause tts", roles=[p.MOD_ROLE])
        await until_said(live, "paused: tts")
        await chat(live, p.ALICE, "hi")
        await chat(live, p.OWNER, "!addpoints alice 10")
        await paid(live, p.ALICE, 11)
        await chat(live, p.ALICE, "!tts hello chat")
        await until_said(live, "Text-to-Speech redeemed")
        await paid(live, p.ALICE, 11 + 1 - 5)
        until_then = live.clock.now() + timedelta(minutes=10)
        update = p.member_update(p.ALICE, timeout_until=until_then)
        await live.fake.dispatch("GUILD_MEMBER_UPDATE", update)
        await live.fake.dispatch("GUILD_MEMBER_UPDATE", update)  # the same update twice
        await until_said(live, "your Text-to-Speech was cancelled (timed out by a moderator)")
        await paid(live, p.ALICE, 12)
        await asyncio.sleep(0.2)
        assert sum("was cancelled" in line for line in live.said()) == 1
        await assert_verified(live.app.engine)


# ---------------------------------------------------------------------------- the server


async def test_without_a_guild_id_the_one_server_is_used(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake, guild_id=None)
    async with running(config, fake, key) as live:
        assert live.adapter.view.guild_id == p.GUILD_ID
        assert live.fake.sent("PUT", f"/guilds/{p.GUILD_ID}/commands")
        await chat(live, p.ALICE, "!points")
        await until_said(live, "you have 1 pixel")


async def test_a_server_the_bot_is_not_in_is_named(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake, guild_id="1200000000000009999")
    adapter = DiscordAdapter(
        config.platforms.discord,
        lambda: TokenVault(Database(config.database.url), key, FakeClock()),
        FakeClock(p.START),
        prefix="!",
        guild_ready_timeout=0.05,
    )
    async with open_app(config, clock=FakeClock(p.START), platforms=[adapter]) as app:
        error = app.platform_errors["discord"]
        assert "not a member of the server 1200000000000009999" in error
        assert "applications.commands" in error


async def test_a_gateway_that_stops_for_good_is_reported_once(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    session = live.fake._current
    assert session is not None and session.socket is not None
    with caplog.at_level(logging.ERROR):
        # 4004 Authentication failed (the token was reset while running): discord.py gives up
        await session.socket.ws.close(code=4004, message=b"Authentication failed.")
        # (the drop shows first, from discord.py's on_disconnect; that it gave up shows once
        # its client has closed: wait for the reason, not only for the drop)
        await until(
            lambda: "the gateway stopped" in live.adapter.status().detail,
            lambda: f"the status to say the gateway stopped; it says {live.adapter.status()}",
        )
    assert not live.adapter.status().connected
    assert sum("the gateway stopped" in r.getMessage() for r in caplog.records) == 1


async def test_a_reload_that_adds_a_redeem_registers_its_slash_command(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake)
    path = tmp_path / "config.yaml"

    def write(redeems: dict[str, Any]) -> None:
        data = config.model_dump(mode="json", exclude_none=True)
        data["platforms"]["discord"]["token"] = TOKEN  # (a SecretStr dumps masked)
        data["redeems"] = redeems
        path.write_text(yaml.safe_dump(data), encoding="utf-8")

    tts = {"title": "Text-to-Speech", "cost": 5, "action": {"type": "tts"}}
    write({"tts": tts})
    config = load_config(path, env={})
    clock = FakeClock(p.START)
    vault_db = Database(config.database.url)
    adapter = DiscordAdapter(
        config.platforms.discord,
        lambda: TokenVault(vault_db, key, clock),
        clock,
        prefix="!",
        guild_ready_timeout=0.05,
    )
    try:
        async with open_app(config, clock=clock, config_path=path, platforms=[adapter]) as app:
            assert app.platform_errors == {}
            assert await app.reload() == ReloadResult(True, [])  # nothing changed: nothing sent
            assert len(fake.sent("PUT", "/commands")) == 1
            cheer = {"title": "Cheer", "cost": 1, "action": {"type": "chat", "message": "Yay!"}}
            write({"tts": tts, "cheer": cheer})
            assert await app.reload() == ReloadResult(True, [])
            puts = fake.sent("PUT", "/commands")
            assert len(puts) == 2
            assert "cheer" in {command["name"] for command in puts[-1].body}
    finally:
        await vault_db.dispose()
