"""One wallet across platforms (``!link`` / ``!unlink``): the whole app through ``open_app``,
two or three ``FakePlatform`` adapters on the real Platform interface, the real writer, on
SQLite and PostgreSQL (the ``db_backend`` fixture)."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.db.copy import copy_database
from pixelbot.db.engine import Database
from pixelbot.db.verify import verify
from pixelbot.economy.links import NOT_VALID, hash_code
from pixelbot.economy.payouts import Award as WatchAward
from pixelbot.economy.payouts import Payouts
from pixelbot.economy.store import EVENTS, IDENTITIES, LINK_CODES, TRANSACTIONS, USERS
from pixelbot.errors import InsufficientFunds, LinkRefused
from pixelbot.events import ChatMessage, Viewer
from pixelbot.testing import EventFactory, FakePlatform, assert_verified, balance_of, make_config

XP_TRANSACTIONS = TRANSACTIONS.metadata.tables["xp_transactions"]
ROOMY = {"reply_rate": {"messages": 10_000, "per": "30s"}}
CODE = re.compile(r"your link code is ([A-Z0-9]{8})\.")

ALICE = Viewer("twitch", "tw-alice", "alice", "Alice")
ALICE_DC = Viewer("discord", "dc-alice", "alice_dc", "AliceDC")
MALLORY_TW = Viewer("twitch", "tw-mallory", "mallory", "Mallory")
ALICE_JS = Viewer("joystick", "js-alice", "alice_js", "AliceJS")
MOD = Viewer("twitch", "tw-mod", "mod", "Mod", roles=frozenset({"moderator"}))


def config_for(db: Path, *, chat_cooldown: str = "0s", **sections: Any) -> Config:
    return make_config(
        db,
        commands=ROOMY,
        economy={"earn": {"chat": {"points": 3, "xp": 40, "cooldown": chat_cooldown}}},
        **sections,
    )


class Chat:
    """Three platforms and a clock; ``say`` types a line as a viewer, returns the replies."""

    def __init__(self, app: App, clock: FakeClock, platforms: dict[str, FakePlatform]) -> None:
        self.app, self.clock, self.platforms = app, clock, platforms
        self._ids = itertools.count(1)

    async def say(self, who: Viewer, text: str) -> list[str]:
        platform = self.platforms[who.platform]
        before = len(platform.sent)
        base = EventFactory(self.clock, who.platform).chat(who, text)
        message = ChatMessage(
            viewer=who,
            text=text,
            channel="main",
            id=f"{who.platform}-msg-{next(self._ids)}",
            platform=who.platform,
            occurred_at=base.occurred_at,
        )
        await platform.emit(message)
        return [text for _channel, text in platform.sent[before:]]

    async def code_for(self, who: Viewer) -> str:
        replies = await self.say(who, "!link")
        found = CODE.search(replies[-1])
        assert found, replies
        return found.group(1)


@asynccontextmanager
async def running(
    config: Config, clock: FakeClock | None = None, seed: int = 7
) -> AsyncIterator[Chat]:
    clock = clock or FakeClock()
    platforms = {name: FakePlatform(name) for name in ("twitch", "discord", "joystick")}
    async with open_app(
        config, clock=clock, platforms=list(platforms.values()), link_rng=random.Random(seed)
    ) as app:
        yield Chat(app, clock, platforms)


async def user_of(app: App, who: Viewer) -> int:
    return await app.engine.wallets.find_identity(who)


async def rows(app: App, query: Any) -> list[Any]:
    async with app.engine.db.read() as conn:
        return list((await conn.execute(query)).all())


async def total_points(app: App) -> int:
    return int((await rows(app, select(func.coalesce(func.sum(USERS.c.points), 0))))[0][0])


# ----------------------------------------------------------------------------- the flow


async def test_link_flow_end_to_end_joins_both_wallets_ledgered(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        app = chat.app
        for _ in range(3):
            await chat.say(ALICE, "hello")  # 3 x 3 points, 3 x 40 XP
        for _ in range(2):
            await chat.say(ALICE_DC, "hi")  # 2 x 3 points, 2 x 40 XP
        alice_user, dc_user = await user_of(app, ALICE), await user_of(app, ALICE_DC)
        assert alice_user != dc_user
        before = await app.engine.wallets.summary(alice_user)

        code = await chat.code_for(ALICE)  # (!link earns its chat point too)
        replies = await chat.say(ALICE_DC, f"!link {code.lower()}")  # any case works
        assert replies[-1].startswith("@AliceDC linked: this discord account now shares")

        assert await user_of(app, ALICE_DC) == alice_user
        summary = await app.engine.wallets.summary(alice_user)
        assert summary.points == 12 + 9 and summary.xp == 160 + 120  # both wallets, summed
        assert summary.level == app.engine.writer.policy.curve.level_for(summary.xp)
        assert summary.level >= before.level
        assert (await chat.say(ALICE, "!points"))[-1] == "@Alice you have 24 pixels"
        assert (await chat.say(ALICE_DC, "!points"))[-1] == "@AliceDC you have 27 pixels"

        # ledgered: a link row pair in each ledger naming both identities; nothing deleted
        link_rows = await rows(
            app,
            select(TRANSACTIONS.c.user_id, TRANSACTIONS.c.amount, TRANSACTIONS.c.reason)
            .where(TRANSACTIONS.c.kind == "link")
            .order_by(TRANSACTIONS.c.id),
        )
        assert link_rows == [(dc_user, -9, "link_out"), (alice_user, 9, "link_in")]
        xp_rows = await rows(
            app,
            select(XP_TRANSACTIONS.c.user_id, XP_TRANSACTIONS.c.amount)
            .where(XP_TRANSACTIONS.c.ref.like("link:%"))
            .order_by(XP_TRANSACTIONS.c.id),
        )
        assert xp_rows == [(dc_user, -120), (alice_user, 120)]
        earned_by_dc = await rows(
            app, select(func.count()).where(TRANSACTIONS.c.user_id == dc_user)
        )
        assert earned_by_dc[0][0] == 4  # its three earnings stay, plus the link row
        (event,) = await rows(app, select(EVENTS.c.payload).where(EVENTS.c.kind == "link"))
        assert event[0]["identities"] == ["discord:dc-alice"]
        assert event[0]["kept"] == ["twitch:tw-alice"]
        merged = await rows(app, select(USERS.c.merged_into).where(USERS.c.id == dc_user))
        assert merged == [(alice_user,)]
        assert [w.user_id for w in await app.engine.wallets.top(10)] == [alice_user]
        assert await app.engine.wallets.xp_rank(alice_user) == (1, 1)
        await assert_verified(app.engine)

        # a third platform joins the same wallet (a code from either linked account works;
        # !link's 10 s cooldown is the person's, so it runs for both accounts now)
        assert "on cooldown" in (await chat.say(ALICE_DC, "!link"))[-1]
        chat.clock.advance(timedelta(seconds=11))
        code = await chat.code_for(ALICE_DC)
        await chat.say(ALICE_JS, f"!link {code}")
        assert await user_of(app, ALICE_JS) == alice_user
        await assert_verified(app.engine)


async def test_code_is_stored_hashed_and_survives_a_restart(db_path: Path) -> None:
    config, clock = config_for(db_path), FakeClock()
    async with running(config, clock) as chat:
        code = await chat.code_for(ALICE)
        stored = await rows(chat.app, select(LINK_CODES.c.code_hash, LINK_CODES.c.used_at))
        assert stored == [(hash_code(code), None)]
        assert code not in str(await rows(chat.app, select(LINK_CODES)))
    clock.advance(timedelta(minutes=5))
    async with running(config, clock, seed=8) as chat:  # a restart: the code still works
        replies = await chat.say(ALICE_DC, f"!link {code}")
        assert "linked" in replies[-1]
        assert await user_of(chat.app, ALICE_DC) == await user_of(chat.app, ALICE)


async def test_codes_come_from_the_injected_source_and_differ(db_path: Path) -> None:
    async with running(config_for(db_path), seed=1) as chat:
        first = await chat.code_for(ALICE)
        chat.clock.advance(timedelta(seconds=11))  # !link has a 10 s cooldown per viewer
        second = await chat.code_for(ALICE)
    async with running(config_for(db_path), seed=1) as chat:
        again = chat.app.engine.links.new_code()
    assert first != second
    expected = random.Random(1)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    assert first == "".join(expected.choice(alphabet) for _ in range(8))
    assert again == first  # the same seed, the same first code: the source is the injected one


# ----------------------------------------------------------------------------- refusals


async def test_expired_code_is_refused_and_one_just_inside_works(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        code = await chat.code_for(ALICE)
        chat.clock.advance(timedelta(minutes=10))  # exactly its lifetime: over
        replies = await chat.say(ALICE_DC, f"!link {code}")
        assert replies[-1] == f"@AliceDC {NOT_VALID}"
        assert await user_of(chat.app, ALICE_DC) != await user_of(chat.app, ALICE)
        await assert_verified(chat.app.engine)

        code = await chat.code_for(ALICE)
        chat.clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
        assert "linked" in (await chat.say(ALICE_DC, f"!link {code}"))[0]
        assert await user_of(chat.app, ALICE_DC) == await user_of(chat.app, ALICE)


async def test_reused_code_is_refused(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        code = await chat.code_for(ALICE)
        assert "linked" in (await chat.say(ALICE_DC, f"!link {code}"))[-1]
        replies = await chat.say(ALICE_JS, f"!link {code}")
        assert replies[-1] == f"@AliceJS {NOT_VALID}"
        assert await user_of(chat.app, ALICE_JS) != await user_of(chat.app, ALICE)
        # and the one who used it cannot replay it either
        chat.clock.advance(timedelta(seconds=11))
        replies = await chat.say(ALICE_DC, f"!link {code}")
        assert replies[-1] == f"@AliceDC {NOT_VALID}"


async def test_code_from_the_same_platform_is_refused(db_path: Path) -> None:
    """An onlooker in the same chat, where the code was said, cannot use it."""
    async with running(config_for(db_path)) as chat:
        code = await chat.code_for(ALICE)
        replies = await chat.say(MALLORY_TW, f"!link {code}")
        assert replies[-1] == f"@Mallory {NOT_VALID}"  # (which of the rules: not said)
        assert await user_of(chat.app, MALLORY_TW) != await user_of(chat.app, ALICE)
        # refused, not spent: the owner can still use it from the other platform
        assert "linked" in (await chat.say(ALICE_DC, f"!link {code}"))[-1]


async def test_unknown_code_and_platform_clashes_are_refused(db_path: Path) -> None:
    other_dc = Viewer("discord", "dc-other", "other", "Other")
    async with running(config_for(db_path)) as chat:
        assert (await chat.say(ALICE_DC, "!link ZZZZZZZZ"))[-1] == f"@AliceDC {NOT_VALID}"
        chat.clock.advance(timedelta(seconds=11))  # a refused code keeps !link's cooldown
        code = await chat.code_for(ALICE)
        await chat.say(ALICE_DC, f"!link {code}")
        chat.clock.advance(timedelta(seconds=11))
        code = await chat.code_for(ALICE)
        chat.clock.advance(timedelta(seconds=11))
        assert (await chat.say(ALICE_DC, f"!link {code}"))[-1] == (
            "@AliceDC these accounts already share one wallet"
        )
        assert (await chat.say(other_dc, f"!link {code}"))[-1] == (
            "@Other that wallet already has a discord account; unlink it first"
        )
        await assert_verified(chat.app.engine)


# ----------------------------------------------------------------------------- unlink


async def test_unlink_splits_an_identity_off_with_an_empty_wallet(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        app = chat.app
        await chat.say(ALICE_DC, "hi")
        code = await chat.code_for(ALICE)
        await chat.say(ALICE_DC, f"!link {code}")
        shared = await user_of(app, ALICE)
        kept = await balance_of(app.engine, ALICE)

        assert (await chat.say(ALICE, "!unlink discord"))[-1] == (  # not from another account
            "@Alice here you can split off only this twitch account (!unlink twitch); "
            "a moderator can split off another"
        )
        kept += 3  # (that line earned its 3)
        replies = await chat.say(ALICE_DC, "!unlink discord")
        assert replies[-1] == (
            "@AliceDC unlinked your discord account: it has a wallet of its own now, starting at 0"
        )
        split = await user_of(app, ALICE_DC)
        assert split != shared
        assert await balance_of(app.engine, ALICE) == kept + 3  # (!unlink earned its 3)
        assert (await chat.say(ALICE_DC, "!points"))[-1] == "@AliceDC you have 3 pixels"
        row = await rows(
            app,
            select(TRANSACTIONS.c.amount, TRANSACTIONS.c.kind, TRANSACTIONS.c.actor).where(
                TRANSACTIONS.c.user_id == split, TRANSACTIONS.c.reason == "unlink"
            ),
        )
        assert row == [(0, "link", "discord:dc-alice")]
        (event,) = await rows(app, select(EVENTS.c.payload).where(EVENTS.c.kind == "unlink"))
        assert event[0]["identity"] == "discord:dc-alice" and event[0]["new_user"] == split
        await assert_verified(app.engine)

        # nothing left to split off, and a platform that is not linked
        assert (await chat.say(ALICE, "!unlink twitch"))[-1] == (
            "@Alice the twitch account is that wallet's only one"
        )
        assert (await chat.say(ALICE_JS, "!unlink joystick"))[-1] == (
            "@AliceJS the joystick account is that wallet's only one"
        )
        # and linking again works (a new code)
        chat.clock.advance(timedelta(seconds=11))
        code = await chat.code_for(ALICE)
        await chat.say(ALICE_DC, f"!link {code}")
        assert await user_of(app, ALICE_DC) == shared
        await assert_verified(app.engine)


async def test_moderators_unlink_a_viewer_and_others_may_not(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        code = await chat.code_for(ALICE)
        await chat.say(ALICE_DC, f"!link {code}")
        assert (await chat.say(MALLORY_TW, "!unlink alice discord"))[-1] == (
            "@Mallory !unlink <viewer> <platform> is for moderators only"
        )
        assert await user_of(chat.app, ALICE_DC) == await user_of(chat.app, ALICE)
        replies = await chat.say(MOD, "!unlink alice discord")
        assert (
            replies[-1]
            == "@Mod unlinked discord:dc-alice from Alice's wallet; it starts again at 0"
        )
        assert await user_of(chat.app, ALICE_DC) != await user_of(chat.app, ALICE)
        await assert_verified(chat.app.engine)


async def test_an_intruder_who_raced_a_code_cannot_push_the_owner_out_or_come_back(
    db_path: Path,
) -> None:
    """Mallory types Alice's public code first (from Discord). She cannot split Alice's own
    account off the wallet (it would leave Alice at 0), and once a moderator has split her
    off, a code she asked for while inside no longer opens Alice's wallet."""
    mallory_dc = Viewer("discord", "dc-mallory", "mallory_dc", "MalloryDC")
    mallory_js = Viewer("joystick", "js-mallory", "mallory_js", "MalloryJS")
    async with running(config_for(db_path)) as chat:
        app = chat.app
        await chat.say(ALICE, "hi")
        code = await chat.code_for(ALICE)
        await chat.say(mallory_dc, f"!link {code}")  # raced: Mallory is in Alice's wallet
        wallet = await user_of(app, ALICE)
        assert await user_of(app, mallory_dc) == wallet
        chat.clock.advance(timedelta(seconds=11))
        taken_inside = await chat.code_for(mallory_dc)
        assert (await chat.say(mallory_dc, "!unlink twitch"))[-1] == (
            "@MalloryDC here you can split off only this discord account (!unlink discord); "
            "a moderator can split off another"
        )
        assert await user_of(app, ALICE) == wallet
        replies = await chat.say(MOD, "!unlink alice discord")  # (the wallet, by its name)
        assert replies[-1].startswith("@Mod unlinked discord:dc-mallory"), replies
        assert await user_of(app, mallory_dc) != wallet
        assert (await chat.say(mallory_js, f"!link {taken_inside}"))[-1] == (
            f"@MalloryJS {NOT_VALID}"
        )
        assert await user_of(app, mallory_js) != wallet
        await assert_verified(app.engine)


# ----------------------------------------------------------------------------- per person


async def test_cooldown_is_shared_after_link(db_path: Path) -> None:
    """A chat earning's cooldown runs for the person: after linking, a message on the other
    platform within the cooldown earns nothing, and the joined wallet's running cooldown
    carries over too."""
    async with running(config_for(db_path, chat_cooldown="60s")) as chat:
        app = chat.app
        await chat.say(ALICE_DC, "hi")  # discord wallet earns, its cooldown runs
        chat.clock.advance(timedelta(seconds=30))
        code = await chat.code_for(ALICE)  # twitch wallet earns (its own cooldown)
        await chat.say(ALICE_DC, f"!link {code}")  # within both cooldowns: earns nothing
        shared = await balance_of(app.engine, ALICE)
        assert shared == 6
        chat.clock.advance(timedelta(seconds=40))  # discord's cooldown ended, twitch's has not
        await chat.say(ALICE_DC, "again")
        await chat.say(ALICE, "again")
        assert await balance_of(app.engine, ALICE) == shared
        chat.clock.advance(timedelta(seconds=21))
        await chat.say(ALICE_DC, "now")  # cooldown over: one earning, then the shared cooldown
        await chat.say(ALICE, "now")
        assert await balance_of(app.engine, ALICE) == shared + 3
        await assert_verified(app.engine)


async def test_joined_wallets_running_cooldown_carries_over(db_path: Path) -> None:
    async with running(config_for(db_path, chat_cooldown="60s")) as chat:
        app = chat.app
        code = await chat.code_for(ALICE)  # twitch earns at t=0
        chat.clock.advance(timedelta(seconds=61))  # twitch cooldown over
        await chat.say(ALICE_DC, "hi")  # discord earns at t=61
        await chat.say(ALICE_DC, f"!link {code}")  # (within discord's cooldown)
        await chat.say(ALICE, "hello")  # twitch: the discord cooldown now applies to it
        assert await balance_of(app.engine, ALICE) == 6


async def test_per_stream_limit_counts_for_the_person_after_link(db_path: Path) -> None:
    config = config_for(
        db_path,
        redeems={
            "hug": {
                "title": "Hug",
                "cost": 1,
                "max_per_user_per_stream": 1,
                "action": {"type": "chat", "message": "{user} hugs the streamer"},
            }
        },
    )
    async with running(config) as chat:
        await chat.say(ALICE_DC, "hi")
        await chat.say(ALICE, "hello")
        await chat.say(ALICE_DC, "!hug")  # the discord wallet's one hug this stream
        code = await chat.code_for(ALICE)
        await chat.say(ALICE_DC, f"!link {code}")
        replies = await chat.say(ALICE, "!hug")
        assert replies[-1] == "@Alice !hug has reached its limit of 1 per viewer this stream"
        hugs = await rows(
            chat.app,
            select(func.count()).select_from(TRANSACTIONS).where(TRANSACTIONS.c.kind == "spend"),
        )
        assert hugs[0][0] == 1
        await assert_verified(chat.app.engine)


# ----------------------------------------------------------------------------- concurrency


async def test_200_concurrent_earns_and_spends_during_a_link_lose_and_double_nothing(
    db_path: Path,
) -> None:
    """200 earn, grant and spend operations on both identities, gathered around the link (the
    writer batches them together): every point is accounted for exactly once."""
    async with running(config_for(db_path)) as chat:
        app, engine = chat.app, chat.app.engine
        await engine.ledger.grant(ALICE, 500, reason="opening", ref="open-a")
        await engine.ledger.grant(ALICE_DC, 300, reason="opening", ref="open-b")
        code = (await engine.links.create_code(ALICE)).code
        dc_user = await user_of(app, ALICE_DC)
        start_total = await total_points(app)  # 800: the code request earned nothing
        factories = {p: EventFactory(chat.clock, p) for p in ("twitch", "discord")}
        rng = random.Random(2026)
        calls: list[Any] = []
        on_dc: list[int] = []  # positions of the discord identity's operations
        for i in range(200):
            who = ALICE if i % 2 else ALICE_DC
            if who is ALICE_DC:
                on_dc.append(len(calls) + (len(calls) >= 100))  # (the link goes in at 100)
            match rng.randrange(3):
                case 0:
                    calls.append(app.handle(factories[who.platform].chat(who, f"m{i}")))
                case 1:
                    calls.append(
                        engine.ledger.grant(who, rng.randint(1, 9), reason="t", ref=f"g{i}")
                    )
                case _:
                    calls.append(
                        engine.ledger.spend(who, rng.randint(1, 40), reason="t", ref=f"s{i}")
                    )
        middle = len(calls) // 2
        calls.insert(middle, engine.links.link(ALICE_DC, code))
        results = await asyncio.gather(*calls, return_exceptions=True)

        linked = results[middle]
        assert not isinstance(linked, BaseException), linked
        delta = 0
        refused = 0
        for result in results[:middle] + results[middle + 1 :]:
            if isinstance(result, InsufficientFunds):
                refused += 1
                continue
            assert not isinstance(result, BaseException), result
            delta += result.points if hasattr(result, "skipped") else result.amount
        shared = await user_of(app, ALICE)
        assert await user_of(app, ALICE_DC) == shared
        # The discord identity's operations queued before the link paid its own wallet, those
        # after it the shared one, even within one batch of the writer.
        paid = {getattr(results[i], "user_id", None) for i in on_dc}
        assert {dc_user, shared} <= paid, paid
        assert engine.writer.batches < 200  # they were batched, not one commit each
        summary = await engine.wallets.summary(shared)
        # exact: the opening balances plus every acknowledged change, nothing else
        assert summary.points == start_total + delta
        assert await total_points(app) == start_total + delta
        ledger_sum = await rows(
            app, select(func.sum(TRANSACTIONS.c.amount)).where(TRANSACTIONS.c.user_id == shared)
        )
        assert ledger_sum[0][0] == summary.points
        # every acknowledged payment is in the ledger exactly once
        refs = await rows(
            app,
            select(TRANSACTIONS.c.ref, func.count())
            .group_by(TRANSACTIONS.c.ref)
            .having(func.count() > 1),
        )
        assert refs == []
        report = await verify(engine.db)
        assert report.ok, report.violations
        assert refused < 200  # (the mix leaves most spends affordable)


# ----------------------------------------------------------------------------- property


_examples = itertools.count()


@pytest.fixture(scope="module")
def property_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("links-property")


_op = st.tuples(
    st.sampled_from(["grant", "spend", "link", "unlink"]),
    st.sampled_from([0, 1, 2]),  # twitch, discord, joystick identity of one person
    st.integers(min_value=1, max_value=60),
)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(_op, min_size=1, max_size=30), chunk=st.integers(min_value=1, max_value=8))
def test_any_mix_of_links_unlinks_and_payments_keeps_every_point(
    property_dir: Path, ops: list[tuple[str, int, int]], chunk: int
) -> None:
    """Whatever the order and batching of links, unlinks, grants and spends of one person's
    three identities, no point appears or disappears and ``db verify`` passes."""
    people = [ALICE, ALICE_DC, ALICE_JS]
    db_file = property_dir / f"example-{next(_examples)}.db"

    async def run() -> None:
        clock = FakeClock()
        async with open_app(
            config_for(db_file), clock=clock, platforms=[], link_rng=random.Random(3)
        ) as app:
            engine = app.engine
            granted = 0
            for who in people:
                await engine.ledger.grant(who, 100, reason="opening")
                granted += 100
            for start in range(0, len(ops), chunk):
                calls = []
                for name, index, amount in ops[start : start + chunk]:
                    who = people[index]
                    if name == "grant":
                        calls.append(engine.ledger.grant(who, amount, reason="p"))
                    elif name == "spend":
                        calls.append(engine.ledger.spend(who, amount, reason="p"))
                    elif name == "link":
                        asker = people[(index + 1) % 3]
                        code = (await engine.links.create_code(asker)).code
                        calls.append(engine.links.link(who, code))
                    else:
                        calls.append(engine.links.unlink(who, who.platform, actor="test"))
                results = await asyncio.gather(*calls, return_exceptions=True)
                for result in results:
                    if isinstance(result, InsufficientFunds | LinkRefused):
                        continue
                    assert not isinstance(result, BaseException), result
                    granted += getattr(result, "amount", 0)
            assert await total_points(app) == granted
            report = await verify(engine.db)
            assert report.ok, report.violations
            identities = await rows(
                app,
                select(IDENTITIES.c.user_id, USERS.c.merged_into).join(
                    USERS, USERS.c.id == IDENTITIES.c.user_id
                ),
            )
            assert all(merged is None for _user, merged in identities)

    asyncio.run(run())


# ----------------------------------------------------------------------------- old wallet ids


async def test_what_still_names_a_joined_wallet_lands_on_the_shared_one(db_path: Path) -> None:
    """A refund of a charge paid before linking, or a payment to the old wallet id (a queue
    item's prize), goes to the wallet it joined; the writer's cache does not remember the old
    wallet (SQLite) and PostgreSQL re-reads it, so nothing is paid to an emptied wallet."""
    async with running(config_for(db_path)) as chat:
        engine = chat.app.engine
        await engine.ledger.grant(ALICE_DC, 50, reason="opening")
        charge = await engine.ledger.spend(ALICE_DC, 20, reason="redeem:x", ref="charge-1")
        dc_user = charge.user_id
        code = (await engine.links.create_code(ALICE)).code
        await engine.links.link(ALICE_DC, code)
        shared = await user_of(chat.app, ALICE)

        refund = await engine.ledger.refund("charge-1")
        assert refund is not None and refund.user_id == shared and refund.balance == 50
        prize = await engine.ledger.grant(dc_user, 7, reason="prize")
        assert prize.user_id == shared and prize.balance == 57
        assert (await engine.wallets.summary(dc_user)).points == 0
        assert await balance_of(engine, ALICE_DC) == 57
        assert await engine.ledger.refund("charge-1") is None  # still exactly once
        await assert_verified(engine)
        # and once the shared wallet is joined into a third, the refund still checks out
        code = (await engine.links.create_code(ALICE_JS)).code
        await engine.links.link(ALICE, code)
        assert await balance_of(engine, ALICE_JS) == 57
        await assert_verified(engine)


async def test_verify_reports_broken_link_data(db_path: Path) -> None:
    """The new checks can fail: an identity left on a joined wallet, a joined wallet that
    still holds points, and a link whose two rows do not match are each reported."""
    async with running(config_for(db_path)) as chat:
        engine = chat.app.engine
        await engine.ledger.grant(ALICE_DC, 10, reason="opening")
        code = (await engine.links.create_code(ALICE)).code
        linked = await engine.links.link(ALICE_DC, code)
        await assert_verified(engine)
        async with engine.db.write() as conn:
            await conn.execute(
                IDENTITIES.update()
                .where(IDENTITIES.c.platform == "discord")
                .values(user_id=linked.joined_user_id)
            )
            await conn.execute(
                TRANSACTIONS.update()
                .where(TRANSACTIONS.c.reason == "link_in")
                .values(amount=11, balance_after=11)
            )
            await conn.execute(
                USERS.update().where(USERS.c.id == linked.joined_user_id).values(xp=5)
            )
        report = await verify(engine.db)
    found = [(v.check, v.user_id, v.detail) for v in report.violations]
    joined, shared = linked.joined_user_id, linked.user_id
    assert (
        "merged_wallet",
        joined,
        "identity discord:dc-alice points at a wallet joined into another",
    ) in found
    assert (
        "merged_wallet",
        joined,
        f"wallet was joined into {shared} but still has 0 points and 5 XP",
    ) in found
    assert any(c == "points_link" and u == shared for c, u, _d in found), found


async def test_verify_checks_each_links_in_row_sits_on_the_wallet_it_joined(
    db_path: Path,
) -> None:
    """A link's ``:in`` rows must be on the wallet its ``:out`` wallet was joined into (or on
    one joined into that since: two links in a row verify clean). An ``:in`` row moved to
    another wallet is reported, in each ledger, even when the amounts still match."""
    async with running(config_for(db_path)) as chat:
        engine = chat.app.engine
        await chat.say(ALICE_DC, "hi")  # 3 points, 40 XP to move
        await chat.say(MALLORY_TW, "hi")
        first = await engine.links.link(ALICE_DC, (await engine.links.create_code(ALICE)).code)
        await engine.links.link(ALICE, (await engine.links.create_code(ALICE_JS)).code)
        await assert_verified(engine)  # untouched, through two links: clean
        (code_id,) = await rows(
            chat.app, select(LINK_CODES.c.id).where(LINK_CODES.c.used_by == "discord:dc-alice")
        )
        mallory = await user_of(chat.app, MALLORY_TW)
        moved = f"link:{code_id[0]}:in"
        async with engine.db.write() as conn:
            for ledger in (TRANSACTIONS, XP_TRANSACTIONS):
                await conn.execute(
                    ledger.update().where(ledger.c.ref == moved).values(user_id=mallory)
                )
        report = await verify(engine.db)
    found = [(v.check, v.user_id, v.detail) for v in report.violations]
    for name in ("points", "xp"):
        assert any(
            check == f"{name}_link"
            and user_id == mallory
            and f"link:{code_id[0]}" in detail
            and f"wallet {first.joined_user_id}" in detail
            and f"wallet {mallory}" in detail
            for check, user_id, detail in found
        ), found


# ----------------------------------------------------------------------------- levels


async def test_level_follows_the_summed_xp_and_rewards_pay_once(db_path: Path) -> None:
    """Level 2 needs 100 XP. Two wallets at 80 XP each link into 160: level 2, its reward paid
    once, announced. A wallet already paid for level 2 joining brings that along: the shared
    wallet is not paid for it again."""
    config = config_for(
        db_path, xp={"level_rewards": {2: {"points": 100, "message": "{user} hit {level}!"}}}
    )
    async with running(config) as chat:
        app, engine = chat.app, chat.app.engine
        factories = {p: EventFactory(chat.clock, p) for p in ("twitch", "discord", "joystick")}
        for who in (ALICE, ALICE_DC, ALICE_DC, ALICE):
            await app.handle(factories[who.platform].chat(who, "hi"))  # 3 points, 40 XP each
        code = await chat.code_for(ALICE)  # (+40 XP: Alice at 120, level 2, paid 100)
        assert await balance_of(engine, ALICE) == 109
        chat.clock.advance(timedelta(seconds=11))
        replies = await chat.say(ALICE_DC, f"!link {code}")  # DC: 80 + 40 = 120, paid 100 too
        shared = await engine.wallets.summary(await user_of(app, ALICE))
        assert (shared.xp, shared.level) == (240, 2)
        assert shared.points == 109 + 109  # each wallet's own level-2 reward, not a third one
        assert "linked" in replies[-1]
        rewards = await rows(
            app,
            select(func.count()).where(TRANSACTIONS.c.reason == "level_reward"),
        )
        assert rewards[0][0] == 2
        await assert_verified(engine)

        # Joystick at 80 XP (level 1, never paid) joins: 320 XP, still level 2: nothing paid
        for _ in range(2):
            await app.handle(factories["joystick"].chat(ALICE_JS, "hey"))
        chat.clock.advance(timedelta(seconds=11))
        code = await chat.code_for(ALICE)
        linked = await engine.links.link(ALICE_JS, code)
        assert (linked.level, linked.level_up) == (2, None)
        assert linked.points == 218 + 3 + 6  # (+ the !link line's 3, joystick's 6)
        await assert_verified(engine)


async def test_joining_two_fresh_wallets_reaches_a_level_neither_had(db_path: Path) -> None:
    config = config_for(
        db_path, xp={"level_rewards": {2: {"points": 100, "message": "{user} hit {level}!"}}}
    )
    async with running(config) as chat:
        app, engine = chat.app, chat.app.engine
        factories = {p: EventFactory(chat.clock, p) for p in ("twitch", "discord")}
        for who in (ALICE, ALICE_DC, ALICE_DC):
            await app.handle(factories[who.platform].chat(who, "hi"))  # 40, 80 XP
        code = (await engine.links.create_code(ALICE)).code
        linked = await engine.links.link(ALICE_DC, code)
        assert (linked.level, linked.points) == (2, 9 + 100)
        assert linked.level_up is not None
        assert linked.level_up.announcement() == "Alice hit 2!"
        logged = await rows(
            app,
            select(EVENTS.c.payload).where(
                EVENTS.c.kind == "level_up", EVENTS.c.cause_ref.like("link:%")
            ),
        )
        assert [payload for (payload,) in logged] == [{"from": 1, "to": 2}]
        await assert_verified(engine)

        # split off and earning level 2 again: the person was paid its reward already
        await engine.links.unlink(ALICE_DC, "discord", actor="discord:dc-alice", ref="split-1")
        for _ in range(3):
            await app.handle(factories["discord"].chat(ALICE_DC, "hi"))
        split = await engine.wallets.summary(await user_of(app, ALICE_DC))
        assert split.level == 2
        rewards = await rows(
            app, select(func.count()).where(TRANSACTIONS.c.reason == "level_reward")
        )
        assert rewards == [(1,)]
        await assert_verified(engine)


async def test_a_new_code_ends_the_earlier_one(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        first = await chat.code_for(ALICE)
        chat.clock.advance(timedelta(seconds=11))
        second = await chat.code_for(ALICE)
        replies = await chat.say(ALICE_DC, f"!link {first}")
        assert replies[-1] == f"@AliceDC {NOT_VALID}"
        chat.clock.advance(timedelta(seconds=11))  # a refused code keeps !link's cooldown
        replies = await chat.say(ALICE_DC, f"!link {second}")
        assert replies[0].startswith("@AliceDC linked: this discord account now shares"), replies
        assert replies[1:] == ["Alice reached level 2!"]  # 4 lines of 40 XP: the sum levels up


async def test_watching_on_two_linked_platforms_pays_once_a_tick(db_path: Path) -> None:
    async with running(config_for(db_path)) as chat:
        engine = chat.app.engine
        code = (await engine.links.create_code(ALICE)).code
        await engine.links.link(ALICE_DC, code)
        payouts = Payouts(engine.writer)
        awards = [
            WatchAward(ALICE, 5, 1),
            WatchAward(ALICE_DC, 10, 2),  # (a subscriber there: the better award is kept)
            WatchAward(MALLORY_TW, 5, 1),
        ]
        paid = await payouts.pay_tick(1, 1, awards)
        assert (paid.viewers, paid.points, paid.xp) == (2, 15, 3)
        assert await balance_of(engine, ALICE) == 10
        assert (await payouts.pay_tick(1, 1, awards)).already_paid
        await assert_verified(engine)


async def test_db_copy_keeps_linked_wallets(db_path: Path, tmp_path: Path) -> None:
    """A wallet joined into a LATER one (higher id) names it: ``db copy`` still copies every
    row with its foreign keys holding, and the copy verifies."""
    async with running(config_for(db_path)) as chat:
        engine = chat.app.engine
        await engine.ledger.grant(ALICE_DC, 10, reason="opening")  # the discord wallet first
        code = (await engine.links.create_code(ALICE)).code  # then Alice's, a higher id
        linked = await engine.links.link(ALICE_DC, code)
        assert linked.joined_user_id < linked.user_id
        target = Database(f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")
        try:
            report = await copy_database(engine.db, target)
            assert report.verified.ok, report.verified.violations
            assert report.source == report.target
            async with target.read() as conn:
                merged = (
                    await conn.execute(
                        select(USERS.c.merged_into).where(USERS.c.id == linked.joined_user_id)
                    )
                ).scalar_one()
            assert merged == linked.user_id
        finally:
            await target.dispose()


async def test_a_wallets_waiting_items_include_those_bought_before_linking(
    db_path: Path,
) -> None:
    """(A ban cancels the person's waiting TTS: found by wallet, joined wallets included.)"""
    config = config_for(
        db_path, redeems={"tts": {"title": "TTS", "cost": 5, "action": {"type": "tts"}}}
    )
    async with running(config) as chat:
        engine = chat.app.engine
        await engine.ledger.grant(ALICE_DC, 50, reason="opening")
        await chat.app.queue.stop()  # keep the item waiting
        await chat.say(ALICE_DC, "!tts hello from discord")
        code = (await engine.links.create_code(ALICE)).code
        linked = await engine.links.link(ALICE_DC, code)
        waiting = await engine.queue.pending("tts", user_id=linked.user_id)
        assert [item.user_id for item in waiting] == [linked.joined_user_id]
        assert await engine.queue.pending("tts", user_id=linked.joined_user_id) == waiting


async def test_a_link_that_would_pass_the_maximum_balance_is_refused_and_moves_nothing(
    db_path: Path,
) -> None:
    """The maximum balance is per person: an account split off to fill a second wallet up
    to it does not link back in over it. The code stays usable once there is room."""
    config = make_config(
        db_path,
        commands=ROOMY,
        economy={"max_balance": 10, "earn": {"chat": {"points": 3, "xp": 0, "cooldown": "0s"}}},
    )
    async with running(config) as chat:
        app = chat.app
        for _ in range(3):
            await chat.say(ALICE, "hello")  # 9 points
        for _ in range(2):
            await chat.say(ALICE_DC, "hi")  # 6 points
        code = await chat.code_for(ALICE)  # (that line earned 1 more: 10, the cap)
        replies = await chat.say(ALICE_DC, f"!link {code}")  # (that line earned its 3: 9)
        assert replies[-1] == (
            "@AliceDC together these wallets would hold 19, over the maximum of 10; "
            "spend some first"
        )
        assert await user_of(app, ALICE) != await user_of(app, ALICE_DC)
        assert await balance_of(app.engine, ALICE) == 10
        assert await balance_of(app.engine, ALICE_DC) == 9
        assert await rows(app, select(TRANSACTIONS.c.id).where(TRANSACTIONS.c.kind == "link")) == []
        await assert_verified(app.engine)

        await app.engine.ledger.spend(ALICE_DC, 9, reason="test", ref="spend:dc")
        await app.engine.ledger.spend(ALICE, 9, reason="test", ref="spend:tw")
        assert (await chat.say(ALICE_DC, f"!link {code}"))[-1].startswith("@AliceDC linked")
        assert await user_of(app, ALICE) == await user_of(app, ALICE_DC)
        assert await balance_of(app.engine, ALICE) == 1 + 3  # both leftovers, and that line
        await assert_verified(app.engine)
