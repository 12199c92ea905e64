"""The Twitch adapter end to end: the REAL twitchio client against a fake Twitch on localhost
(tests/fakes/twitch_server.py: OAuth, Helix, EventSub WebSocket in the documented formats),
the real assembly, real SQLite. Each test ends in balances and chat lines, the bot's output
as a viewer would see it."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from pixelbot.app.assembly import App, open_app
from pixelbot.app.delivery import MAX_WAITING
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db import migrate
from pixelbot.db.engine import Database
from pixelbot.errors import UnknownViewer
from pixelbot.events import Viewer
from pixelbot.outcomes import Say
from pixelbot.platforms.twitch import MODERATOR_RATE, VIEWER_RATE, TwitchAdapter
from pixelbot.testing import assert_verified, balance_of, make_config
from pixelbot.testing_db import database_url
from pixelbot.vault import Token, TokenVault
from tests.fakes import twitch_payloads as p
from tests.fakes.twitch_server import FakeTwitch

BOT_SCOPES = ["user:bot", "user:read:chat", "user:write:chat"]
BROADCASTER_SCOPES = [
    "bits:read",
    "channel:bot",
    "channel:manage:redemptions",
    "channel:read:redemptions",
    "channel:read:subscriptions",
    "moderator:manage:banned_users",
    "moderator:read:chatters",
    "moderator:read:followers",
]
BOT_TOKEN, BOT_REFRESH = "bot-access-0123456789", "bot-refresh-0123456789"
CASTER_TOKEN, CASTER_REFRESH = "caster-access-9876543210", "caster-refresh-9876543210"


def twitch_config(db_path: Path, twitch: FakeTwitch) -> Config:
    return make_config(
        db_path,
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={
            "earn": {
                "chat": {"points": 1, "xp": 1, "cooldown": "0s"},
                "follow": {"points": 50, "xp": 10},
                "sub": {"points": 200, "xp": 50},
                "cheer": {"points_per_100_bits": 100},
                "raid": {"points_per_viewer": 1},
            }
        },
        redeems={"tts": {"title": "Text-to-Speech", "cost": 5, "action": {"type": "tts"}}},
        platforms={
            "console": {"enabled": False},
            "twitch": twitch_settings(twitch),
        },
    )


def twitch_settings(twitch: FakeTwitch) -> dict[str, Any]:
    """``platforms.twitch`` as a streamer writes it, pointed at the fake Twitch."""
    return {
        "enabled": True,
        "channel": p.BROADCASTER["login"],
        "client_id": "fake-client-id",
        "client_secret": "fake-secret",
        "bot_id": p.BOT["id"],
        "api_url": twitch.api_url,
        "auth_url": twitch.auth_url,
        "eventsub_url": twitch.eventsub_url,
    }


@dataclass
class Live:
    app: App
    twitch: FakeTwitch
    adapter: TwitchAdapter
    vault: TokenVault

    def said(self) -> list[str]:
        return [sent.text for sent in self.twitch.chat_sent]

    async def points(self, uid: str, login: str) -> int:
        return await balance_of(self.app.engine, Viewer("twitch", uid, login, login))


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


async def until_points(live: Live, uid: str, login: str, points: int) -> None:
    """Wait for a viewer's committed balance to be ``points`` (a hang guard)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            found: int | None = await live.points(uid, login)
        except UnknownViewer:  # (no wallet yet)
            found = None
        if found == points:
            return
        assert loop.time() < deadline, f"{login} has {found} points, not {points}"
        await asyncio.sleep(0.02)


async def until_said(live: Live, text: str) -> None:
    await until(
        lambda: text in live.said(), lambda: f"the bot to say {text!r}; it said {live.said()}"
    )


@pytest.fixture
async def twitch() -> AsyncIterator[FakeTwitch]:
    async with FakeTwitch() as fake:
        fake.add_user_token(BOT_TOKEN, BOT_REFRESH, p.BOT, BOT_SCOPES)
        fake.add_user_token(CASTER_TOKEN, CASTER_REFRESH, p.BROADCASTER, BROADCASTER_SCOPES)
        yield fake


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


async def store_tokens(db_path: Path, key: bytes, tokens: list[Token]) -> None:
    db = Database(database_url(db_path))  # the database make_config gives this path
    try:
        await migrate.upgrade(db)
        vault = TokenVault(db, key, FakeClock())
        for token in tokens:
            await vault.store(token)
    finally:
        await db.dispose()


BOTH = [
    Token("twitch", p.BOT["id"], BOT_TOKEN, BOT_REFRESH, tuple(BOT_SCOPES)),
    Token("twitch", p.BROADCASTER["id"], CASTER_TOKEN, CASTER_REFRESH, tuple(BROADCASTER_SCOPES)),
]


@asynccontextmanager
async def started(
    tmp_path: Path,
    twitch: FakeTwitch,
    key: bytes,
    tokens: list[Token] = BOTH,
    **settings: str,
) -> AsyncIterator[Live]:
    """The bot on the fake Twitch with ``tokens`` stored (``settings`` override the adapter's
    ``platforms.twitch``), for a test that starts it its own way."""
    db_path = tmp_path / "pixel.db"
    await store_tokens(db_path, key, tokens)
    config = twitch_config(db_path, twitch)
    db = Database(config.database.url)
    vault = TokenVault(db, key, FakeClock())
    adapter_settings = config.platforms.twitch.model_copy(update=settings)
    adapter = TwitchAdapter(adapter_settings, lambda: vault, FakeClock())
    try:
        async with open_app(config, clock=FakeClock(), platforms=[adapter]) as app:
            yield Live(app, twitch, adapter, vault)
    finally:
        await db.dispose()


@asynccontextmanager
async def running(
    db_path: Path, twitch: FakeTwitch, key: bytes, config: Config | None = None, **options: Any
) -> AsyncIterator[Live]:
    """The bot on the fake Twitch with both tokens stored, started through the one assembly
    (``config``: ``twitch_config`` unless given; ``options``: more of the adapter's own, such
    as ``redeems`` or ``inbox_limit``)."""
    await store_tokens(db_path, key, BOTH)
    config = config or twitch_config(db_path, twitch)
    clock = FakeClock(utc(2026, 1, 1, 20, 0, 0))
    vault_db = Database(config.database.url)
    vault = TokenVault(vault_db, key, clock)
    adapter = TwitchAdapter(config.platforms.twitch, lambda: vault, clock, **options)
    try:
        async with open_app(config, clock=clock, platforms=[adapter]) as app:
            assert app.platform_errors == {}
            yield Live(app, twitch, adapter, vault)
    finally:
        await vault_db.dispose()


@pytest.fixture
async def live(tmp_path: Path, twitch: FakeTwitch, key: bytes) -> AsyncIterator[Live]:
    async with running(tmp_path / "pixel.db", twitch, key) as bot:
        yield bot


# ---------------------------------------------------------------------------- start


async def test_start_subscribes_to_every_event_with_the_right_account(live: Live) -> None:
    subs = {s.type: s for s in live.twitch.subscriptions.values()}
    assert set(subs) == {
        "channel.chat.message",
        "channel.chat.message_delete",
        "channel.follow",
        "channel.subscribe",
        "channel.subscription.message",
        "channel.subscription.gift",
        "channel.cheer",
        "channel.raid",
        "stream.online",
        "stream.offline",
        "channel.ban",
        "channel.channel_points_custom_reward_redemption.add",
    }
    assert subs["channel.chat.message"].token_user == p.BOT["id"]
    assert subs["channel.chat.message"].condition == {
        "broadcaster_user_id": p.BROADCASTER["id"],
        "user_id": p.BOT["id"],
    }
    assert subs["channel.cheer"].token_user == p.BROADCASTER["id"]
    assert live.adapter.status().connected
    assert live.adapter.capabilities.native_rewards


def token_file_written(folder: Path) -> bool:
    return (folder / ".tio.tokens.json").exists()


async def test_twitchio_writes_no_token_file(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    await live.adapter.stop()  # twitchio saves its token file here on close, unless told not to
    assert not token_file_written(tmp_path)


# ---------------------------------------------------------------------------- chat


async def test_chat_earns_and_commands_are_answered_through_helix(live: Live) -> None:
    await live.twitch.notify(*p.chat("77", "alice", "hello chat", "m-1"))
    await live.twitch.notify(*p.chat("77", "alice", "!points", "m-2"))
    await until_said(live, "@Alice you have 2 pixels")
    sent = live.twitch.chat_sent[-1]
    assert (sent.sender_id, sent.broadcaster_id) == (p.BOT["id"], p.BROADCASTER["id"])
    assert await live.points("77", "alice") == 2


async def test_roles_come_from_badges(live: Live) -> None:
    await live.twitch.notify(*p.chat("77", "alice", "hi", "m-0"))
    await live.twitch.notify(*p.chat("88", "mod", "!addpoints alice 10", "m-1", ("moderator",)))
    await live.twitch.notify(*p.chat("99", "pleb", "!addpoints alice 10", "m-2"))
    await until(lambda: len(live.said()) >= 2, "two answers")
    await live.twitch.notify(*p.chat("77", "alice", "!points", "m-3"))
    await until_said(live, "@Alice you have 12 pixels")  # 10 from the moderator + 2 lines


async def test_the_bots_own_messages_earn_nothing_and_set_the_rate(live: Live) -> None:
    assert live.adapter.capabilities.messages_per_window == VIEWER_RATE
    own = p.chat(p.BOT["id"], p.BOT["login"], "!points", "m-own", ("moderator",))
    await live.twitch.notify(*own)
    await until(
        lambda: live.adapter.capabilities.messages_per_window == MODERATOR_RATE, "moderator rate"
    )
    assert live.said() == []


async def test_the_same_message_delivered_twice_pays_once(live: Live) -> None:
    frame = p.chat("77", "alice", "hello", "m-1")
    await live.twitch.notify(*frame, message_id="dup")
    await live.twitch.notify(*frame, message_id="dup")  # a redelivery after a reconnect
    follow = p.follow("77", "alice")
    await live.twitch.notify(*follow, message_id="f-1")
    await live.twitch.notify(*follow, message_id="f-1")
    await until_said(live, "Thanks for the follow, Alice! +50 pixels")
    # (chat and channel events come on two sockets, one per account: no order between them)
    await live.twitch.notify(*follow, message_id="f-1")
    await live.twitch.notify(*p.chat("77", "alice", "!points", "m-2"))
    await until_said(live, "@Alice you have 52 pixels")
    assert live.said().count("Thanks for the follow, Alice! +50 pixels") == 1
    await assert_verified(live.app.engine)


# ---------------------------------------------------------------------------- channel events


async def test_every_channel_event_becomes_its_normalized_event(live: Live) -> None:
    t = live.twitch
    await t.notify(*p.follow("1", "fay"))
    await until_said(live, "Thanks for the follow, Fay! +50 pixels")
    await t.notify(*p.subscribe("2", "sam"))
    await until_said(live, "Thanks for the sub, Sam! +200 pixels")
    await t.notify(*p.resub("3", "ray", 12, "a year!"))
    await until_said(live, "Thanks for the sub, Ray! +200 pixels")
    await t.notify(*p.cheer("4", "cal", 250, "cheer250 go"))
    await until_said(live, "Thanks for the bits, Cal! +250 pixels")
    await t.notify(*p.raid("5", "rex", 42))
    await until_said(live, "Thanks for the raid, Rex! +42 pixels")
    await t.notify(*p.subscribe("6", "gus", gift=True))  # the gifter's event pays, not this
    await t.notify(*p.online())
    await until(lambda: live.app.engine.streams is not None, "stream")
    await t.notify(*p.chat("1", "fay", "!points", "m-1"))
    await until_said(live, "@Fay you have 51 pixels")
    assert await live.points("5", "rex") == 42
    assert await live.points("3", "ray") == 200
    await assert_verified(live.app.engine)


async def test_stream_online_and_offline_open_and_close_the_session(live: Live) -> None:
    await live.twitch.notify(*p.online())
    await until_live(live, True)
    await live.twitch.notify(*p.offline())
    await until_live(live, False)


async def until_live(live: Live, state: bool) -> None:
    async def is_live() -> bool:
        return (await live.app.engine.streams.current()) is not None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await is_live() != state:
        assert loop.time() < deadline, f"stream never became live={state}"
        await asyncio.sleep(0.02)


async def test_a_deleted_message_and_a_ban_cancel_and_refund_waiting_tts(live: Live) -> None:
    t = live.twitch
    for n in range(3):
        await t.notify(*p.chat("77", "alice", f"hello {n}", f"warm-{n}"))
    await t.notify(*p.follow("77", "alice"))
    await until_said(live, "Thanks for the follow, Alice! +50 pixels")
    await live.app.queue.pause("tts")  # nothing speaks while we moderate
    await t.notify(*p.chat("77", "alice", "!tts first words", "tts-1"))
    await t.notify(*p.chat("77", "alice", "!tts second words", "tts-2"))
    await until(lambda: sum("queued as" in s for s in live.said()) == 2, "two queued")
    await t.notify(*p.delete("77", "alice", "tts-1"))
    await t.notify(*p.ban("77", "alice", ends_at="2026-01-01T20:15:00Z"))
    await until(lambda: sum("was cancelled" in s for s in live.said()) >= 2, "two refunds")
    assert await live.points("77", "alice") == 3 + 50 + 2  # chat + follow + the two !tts lines
    await assert_verified(live.app.engine)


async def test_a_tts_deleted_or_banned_at_once_is_still_cancelled_and_refunded(
    live: Live,
) -> None:
    """Nothing awaited between a ``!tts`` and its deletion or ban while another viewer chats:
    the deletion orders behind its author's line, the ban behind the banned viewer's, so each
    finds the TTS queued a moment before, though different viewers are handled at once."""
    t = live.twitch
    await live.app.queue.pause("tts")  # nothing speaks while we moderate
    for n in range(6):
        await t.notify(*p.chat("77", "alice", f"hello {n}", f"warm-{n}"))
        await t.notify(*p.chat("88", "bob", f"hi {n}", f"bob-{n}"))
    await t.notify(*p.chat("77", "alice", "!tts first words", "tts-1"))
    await t.notify(*p.delete("77", "alice", "tts-1"))
    await t.notify(*p.chat("88", "bob", "!tts bob words", "tts-2"))
    await t.notify(*p.ban("88", "bob", ends_at="2026-01-01T20:15:00Z"))
    for n in range(6, 12):
        await t.notify(*p.chat("99", "carol", f"hey {n}", f"carol-{n}"))
    await until(
        lambda: "\n".join(live.said()).count("was cancelled") >= 2,
        lambda: f"two refunds; the bot said {live.said()}",
    )
    assert await live.points("77", "alice") == 7  # 7 lines; the TTS's 5 came back
    assert await live.points("88", "bob") == 7
    # (carol's lines run beside the moderation, in no order with it: wait for them)
    await until_points(live, "99", "carol", 6)
    await assert_verified(live.app.engine)


# ---------------------------------------------------------------------------- connection


async def test_session_reconnect_moves_to_the_new_url_and_keeps_the_subscriptions(
    live: Live,
) -> None:
    old = set(live.twitch.sessions)
    await live.twitch.reconnect()
    await until(lambda: not (set(live.twitch.sessions) & old), "the old sessions to close")
    await live.twitch.notify(*p.follow("1", "fay"))
    await until_said(live, "Thanks for the follow, Fay! +50 pixels")
    assert live.adapter.status().connected and live.adapter.status().retrying_since is None


async def test_a_dropped_socket_reconnects_and_resubscribes(live: Live) -> None:
    old = set(live.twitch.sessions)
    live.twitch.refuse_websockets = True  # Twitch is unreachable for a while
    await live.twitch.drop()
    await until(lambda: not live.adapter.status().connected, "the drop to show in the status")
    down = live.adapter.status()
    assert down.retrying_since is not None and "reconnecting" in down.detail
    live.twitch.refuse_websockets = False
    await until(
        lambda: "channel.follow" in live.twitch.types() and not (set(live.twitch.sessions) & old),
        "a new session with the subscriptions",
        patience=30,  # twitchio backs off a few seconds before reconnecting
    )
    await live.twitch.notify(*p.follow("1", "fay"))
    await until_said(live, "Thanks for the follow, Fay! +50 pixels")


async def test_keepalive_loss_reconnects_and_resubscribes(live: Live) -> None:
    # The fake sends no session_keepalive: Twitch's promise (a message at least every
    # keepalive_timeout_seconds, here 10) is broken, so twitchio must give the session up,
    # open a new one and subscribe again. (twitchio checks every 10 s, with 5 s of grace.)
    old = set(live.twitch.sessions)
    await until(
        lambda: "channel.follow" in live.twitch.types() and not (set(live.twitch.sessions) & old),
        "a new session after the keepalives stopped",
        patience=60,
    )
    await live.twitch.notify(*p.follow("1", "fay"))
    await until_said(live, "Thanks for the follow, Fay! +50 pixels")


async def test_an_expired_token_is_refreshed_and_stored_encrypted(live: Live) -> None:
    live.twitch.expire(BOT_TOKEN)
    await live.twitch.notify(*p.chat("77", "alice", "!points", "m-1"))
    await until_said(live, "@Alice you have 1 pixel")  # sent after a 401 and a refresh
    assert live.twitch.refreshes == 1

    async def stored() -> str:
        token = await live.vault.get("twitch", p.BOT["id"])
        assert token is not None
        return token.access_token

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # a hang guard (it was 4 s for a write on a busy server)
    while await stored() == BOT_TOKEN:
        assert loop.time() < deadline, "the refreshed token was never stored"
        await asyncio.sleep(0.02)
    assert await stored() == f"{BOT_TOKEN}-r1"


async def test_a_revoked_subscription_is_one_clear_line(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pixelbot"):
        await live.twitch.revoke("channel.follow")
        await until(lambda: live.adapter.revoked != [], "the revocation")
    assert live.adapter.revoked == ["channel.follow: authorization_revoked"]
    assert "revoked the subscription channel.follow: authorization_revoked" in caplog.text
    assert "channel.follow" in live.adapter.status().detail
    # the rest still works
    await live.twitch.notify(*p.chat("77", "alice", "!points", "m-1"))
    await until_said(live, "@Alice you have 1 pixel")


# ---------------------------------------------------------------------------- refusals


async def test_no_bot_token_is_one_line_naming_the_fix(
    tmp_path: Path, twitch: FakeTwitch, key: bytes
) -> None:
    async with started(tmp_path, twitch, key, BOTH[1:]) as live:
        app = live.app
        assert app.platform_errors["twitch"] == (
            "twitch: no token for the bot account (user id 904); run `python bot.py auth twitch`"
        )


async def test_a_missing_scope_is_named(tmp_path: Path, twitch: FakeTwitch, key: bytes) -> None:
    twitch.tokens[BOT_TOKEN].scopes = ["user:read:chat"]
    async with started(tmp_path, twitch, key) as live:
        app = live.app
        assert "lacks the scope user:write:chat" in app.platform_errors["twitch"]


async def test_a_wrong_channel_is_named(tmp_path: Path, twitch: FakeTwitch, key: bytes) -> None:
    async with started(tmp_path, twitch, key, channel="nosuchchannel") as live:
        app = live.app
        assert app.platform_errors["twitch"] == (
            "twitch: there is no channel named 'nosuchchannel' (platforms.twitch.channel)"
        )


async def test_no_token_reaches_the_log_at_any_level(
    tmp_path: Path, twitch: FakeTwitch, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, twitchio's, aiohttp's
    db_path = tmp_path / "pixel.db"
    await store_tokens(db_path, key, BOTH)
    config = twitch_config(db_path, twitch)
    clock = FakeClock(utc(2026, 1, 1, 20, 0, 0))
    db = Database(config.database.url)
    vault = TokenVault(db, key, clock)
    adapter = TwitchAdapter(config.platforms.twitch, lambda: vault, clock)
    try:
        async with open_app(config, clock=clock, platforms=[adapter]) as app:
            live = Live(app, twitch, adapter, vault)
            twitch.expire(BOT_TOKEN)  # a refresh: new tokens travel through twitchio and us
            await twitch.notify(*p.chat("77", "alice", "!points", "m-1"))
            await until_said(live, "@Alice you have 1 pixel")
            await until(lambda: "refreshed the token" in caplog.text, "the refresh to be stored")
    finally:
        await db.dispose()
    secrets = [BOT_TOKEN, BOT_REFRESH, CASTER_TOKEN, CASTER_REFRESH, f"{BOT_TOKEN}-r1"]
    # (aiohttp.access is the FAKE server's request log, not the bot's)
    logged = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    assert len(logged) > 20  # the debug output was really captured
    leaks = [line for line in logged for secret in secrets if secret in line]
    assert leaks == []


# ---------------------------------------------------------------------------- rate


async def flood(live: Live, clock: FakeClock, lines: int) -> list[int]:
    """Say ``lines`` lines at once, then let 30-second windows pass until all went out;
    returns how many messages Twitch received in each window."""
    per_window: list[int] = []
    for n in range(lines):
        await live.app.bus.publish(Say("twitch", "streamer", f"line {n}"))
    per_window.append(len(live.twitch.chat_sent))
    while live.app.delivery.waiting("twitch", "streamer"):
        before = len(live.twitch.chat_sent)
        clock.advance(30)
        await live.app.delivery._flush(live.adapter, "streamer")
        per_window.append(len(live.twitch.chat_sent) - before)
    return per_window


async def test_a_flood_of_replies_keeps_to_the_viewer_rate(live: Live) -> None:
    clock = live.app.engine.clock
    assert isinstance(clock, FakeClock)
    per_window = await flood(live, clock, 1000)
    assert max(per_window) == VIEWER_RATE
    assert max(len(text) for text in live.said()) <= 500  # Twitch's message length
    # (merged lines are split at spaces to fit 500 characters: read them back as one text)
    numbers = [int(n) for n in re.findall(r"line (\d+)", " ".join(live.said()))]
    assert numbers == sorted(set(numbers))  # in order, none twice
    # the first window's lines, then the newest MAX_WAITING (a longer backlog gives up its oldest)
    assert numbers == list(range(VIEWER_RATE)) + list(range(1000 - MAX_WAITING, 1000))


async def test_a_moderator_bot_may_send_more(live: Live) -> None:
    own = p.chat(p.BOT["id"], p.BOT["login"], "hi", "m-own", ("moderator",))
    await live.twitch.notify(*own)
    await until(lambda: live.adapter.capabilities.messages_per_window == MODERATOR_RATE, "mod")
    clock = live.app.engine.clock
    assert isinstance(clock, FakeClock)
    per_window = await flood(live, clock, 1000)
    assert per_window[0] == MODERATOR_RATE
    assert max(per_window) == MODERATOR_RATE


async def test_a_revoked_token_is_one_line_naming_the_fix(
    tmp_path: Path, twitch: FakeTwitch, key: bytes
) -> None:
    twitch.expire(BOT_TOKEN)
    twitch.tokens[BOT_TOKEN].refresh = "revoked-too"  # the refresh token no longer works either
    async with started(tmp_path, twitch, key) as live:
        app = live.app
        assert app.platform_errors["twitch"] == (
            "twitch: a stored token was revoked or expired and cannot be refreshed; "
            "run `python bot.py auth twitch` again"
        )


# ---------------------------------------------------------------------------- who is watching


def chatter(uid: str, login: str) -> dict[str, str]:
    return {"user_id": uid, "user_login": login, "user_name": login.title()}


def watching(live: Live) -> set[str]:
    now = live.app.engine.clock.now()
    return {w.viewer.login for w in live.app.intake.presence.watching(now)}


async def test_the_chatter_list_while_live_is_who_is_watching(live: Live) -> None:
    """Get Chatters read when the stream goes live: each chatter (not the bot) is present and
    gets the drop-in award once; who is gone at the next reading has left; offline, nobody."""
    live.twitch.chatters = [chatter("77", "alice"), chatter("78", "bob")]
    live.twitch.chatters.append(chatter(p.BOT["id"], p.BOT["login"]))
    await live.adapter.read_chatters()
    assert watching(live) == set()  # not live: the chatter list is not read into presence
    await live.twitch.notify(*p.online())
    await until(lambda: watching(live) == {"alice", "bob"}, lambda: f"watching {watching(live)}")
    live.twitch.chatters = [chatter("77", "alice")]
    await live.adapter.read_chatters()
    await live.adapter.read_chatters()  # unchanged: nobody comes or goes again
    assert watching(live) == {"alice"}
    assert await live.points("77", "alice") == 25  # the drop-in award, once
    assert await live.points("78", "bob") == 25
    await live.twitch.notify(*p.offline())
    await until(lambda: watching(live) == set(), lambda: f"watching {watching(live)}")
    await assert_verified(live.app.engine)


async def test_a_long_chatter_list_is_read_page_by_page(live: Live) -> None:
    live.twitch.chatters = [chatter(str(1000 + n), f"viewer{n}") for n in range(1500)]
    await live.twitch.notify(*p.online())
    await until(lambda: len(watching(live)) == 1500, lambda: f"{len(watching(live))} watching")
    pages = [r for r in live.twitch.requests if r[1] == "/helix/chat/chatters"]
    assert len(pages) >= 2  # 1000 a page at most


async def test_a_bot_started_mid_stream_counts_watchers_at_once(
    tmp_path: Path, twitch: FakeTwitch, key: bytes
) -> None:
    twitch.live = True
    twitch.chatters = [chatter("77", "alice")]
    async with started(tmp_path, twitch, key) as live:
        await until(lambda: watching(live) == {"alice"}, "alice to be watching")


async def test_without_the_chatters_scope_presence_is_named_as_missing(
    tmp_path: Path, twitch: FakeTwitch, key: bytes
) -> None:
    scopes = [s for s in BROADCASTER_SCOPES if s != "moderator:read:chatters"]
    twitch.tokens[CASTER_TOKEN].scopes = scopes  # (a new list: the constant is shared)
    twitch.live = True
    twitch.chatters = [chatter("77", "alice")]
    async with started(tmp_path, twitch, key) as live:
        app, adapter = live.app, live.adapter
        assert "watch-time presence (needs moderator:read:chatters)" in adapter.status().detail
        await adapter.read_chatters()
        assert app.intake.presence.watching(app.engine.clock.now()) == []
        assert ("GET", "/helix/chat/chatters") not in twitch.requests


async def test_a_failing_chatter_list_is_retried_and_changes_nobody(live: Live) -> None:
    live.twitch.chatters = [chatter("77", "alice")]
    await live.twitch.notify(*p.online())
    await until(lambda: watching(live) == {"alice"}, "alice to be watching")
    live.twitch.chatters_unavailable = True
    with pytest.raises(Exception, match="503"):
        await live.adapter.read_chatters()
    assert watching(live) == {"alice"}  # a failed reading is no reading, not "everyone left"
    live.twitch.chatters_unavailable = False
    live.twitch.chatters = []
    await live.adapter.read_chatters()
    assert watching(live) == set()
