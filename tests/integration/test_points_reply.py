"""``!points`` answers from its own line's commit: the balance the writer reported for that
line (``Earned.balance``), its earn included, without reading the wallet again. Real app
assembly, real writer and database; the SQL every engine runs is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.economy.ledger import SPEND, _Post
from pixelbot.errors import InsufficientFunds
from pixelbot.events import Viewer
from pixelbot.outcomes import OutcomeBus, Say
from pixelbot.testing import (
    EventFactory,
    FakePlatform,
    assert_verified,
    balance_of,
    make_config,
    open_test_engine,
)

ALICE = Viewer("twitch", "t-alice", "alice", "Alice")


def settings(path: Path, cooldown: str) -> Config:
    return make_config(
        path,
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={
            "starting_points": 10,
            "earn": {"chat": {"points": 2, "xp": 1, "cooldown": cooldown}},
        },
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return settings(tmp_path / "pixel.db", "60s")


class WalletReads:
    """Every SELECT that reads a wallet, on any of the database's engines, but the writer's."""

    def __init__(self, app: App) -> None:
        self.seen: list[str] = []
        self._targets = app.engine.db.statement_engines()
        for target in self._targets:
            event.listen(target, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split())
        # (on PostgreSQL the writer has no cache: its batch reads the wallet it locks)
        if "FOR UPDATE" in text:
            return
        if text.startswith("SELECT") and (" FROM users" in text or " JOIN users" in text):
            self.seen.append(text)

    def close(self) -> None:
        for target in self._targets:
            event.remove(target, "before_cursor_execute", self._record)


@pytest.fixture
def recorded() -> Iterator[list[WalletReads]]:
    readers: list[WalletReads] = []
    yield readers
    for reader in readers:
        reader.close()


async def test_points_counts_its_own_line_and_reads_no_wallet(
    config: Config, recorded: list[WalletReads]
) -> None:
    clock = FakeClock()
    twitch = FakePlatform("twitch")
    async with open_app(config, clock=clock, platforms=[twitch]) as app:
        on_twitch = EventFactory(clock, "twitch")
        await twitch.emit(on_twitch.chat(ALICE, "hello"))  # welcome 10, +2
        reads = WalletReads(app)
        recorded.append(reads)

        await twitch.emit(on_twitch.chat(ALICE, "!points"))  # on cooldown: still 12
        clock.advance(61)
        await twitch.emit(on_twitch.chat(ALICE, "!points"))  # +2 with its own earn: 14

        assert twitch.texts() == ["@Alice you have 12 pixels", "@Alice you have 14 pixels"]
        # (the writer knows alice from the first line: neither reply read her wallet)
        assert reads.seen == []
        assert await balance_of(app.engine, ALICE) == 14
        await assert_verified(app.engine)


async def test_points_of_lines_sent_together_each_say_the_balance_their_line_left(
    tmp_path: Path,
) -> None:
    """Several lines of one viewer in one batch: each reply is the wallet as of its own line
    (a read after the commit would say 16 three times)."""
    clock = FakeClock()
    twitch = FakePlatform("twitch")
    bus, answers = OutcomeBus(), {}

    async def keep(say: Say) -> None:
        if say.reply_to is not None:
            answers[say.reply_to.id] = say.text

    bus.subscribe(keep, Say)
    config = settings(tmp_path / "pixel.db", "0s")
    async with open_app(config, clock=clock, platforms=[twitch], bus=bus) as app:
        on_twitch = EventFactory(clock, "twitch")
        lines = [on_twitch.chat(ALICE, "!points") for _ in range(3)]
        await asyncio.gather(*(twitch.emit(message) for message in lines))
        assert app.engine.writer.batches == 1  # (all three in one batch)

        assert [answers[message.id] for message in lines] == [
            "you have 12 pixels",
            "you have 14 pixels",
            "you have 16 pixels",
        ]
        assert await balance_of(app.engine, ALICE) == 16


async def test_the_reported_balance_is_what_was_committed_with_rewards_caps_and_refusals(
    tmp_path: Path,
) -> None:
    """``Earned.balance`` is the wallet as committed at that line's place in the batch: level
    rewards its XP paid included, stopped at the maximum balance, and untouched by a later
    operation of the same batch that was refused and rolled back."""
    clock = FakeClock()
    config = make_config(
        tmp_path / "pixel.db",
        economy={
            "starting_points": 10,
            "max_balance": 600,
            "earn": {"chat": {"points": 5, "xp": 400, "cooldown": "0s"}},
        },
        xp={"level_rewards": {2: {"points": 500}, 3: {"points": 500}}},
    )
    async with open_test_engine(config, clock) as engine:
        on_twitch = EventFactory(clock, "twitch")
        lines = [engine.earning.enqueue(on_twitch.chat(ALICE, "hi")) for _ in range(3)]
        too_much = engine.writer.enqueue(_Post(ALICE, 10_000, "x", "spend:1", None, SPEND))
        earned = await asyncio.gather(*lines)
        with pytest.raises(InsufficientFunds):
            await too_much
        assert engine.writer.batches == 1  # (all of it in one batch)
        # 10 + 5 + level 2's 500; then +5 and level 3's reward up to the maximum; then nothing
        assert [(e.points, e.balance) for e in earned] == [(5, 515), (5, 600), (0, 600)]
        assert await balance_of(engine, ALICE) == 600
        await assert_verified(engine)
