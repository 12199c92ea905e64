"""Helpers shipped with the package for tests (ours and anyone extending Pixel Bot).

They build real objects (a real SQLite file, the real writer), not mocks: only the clock is fake.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pixelbot.app import Engine
from pixelbot.app.assembly import App, open_app
from pixelbot.app.console_run import SCRIPT_START, console_bus
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.db.models import Identity, User
from pixelbot.db.verify import verify
from pixelbot.events import (
    ChatMessage,
    Cheer,
    Event,
    Follow,
    Presence,
    Raid,
    Subscription,
    Tip,
    Viewer,
)
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus
from pixelbot.platforms.console import ConsoleStream
from pixelbot.testing_db import database_url

__all__ = [
    "ConsoleSession",
    "EventFactory",
    "FakePlatform",
    "assert_verified",
    "balance_of",
    "console_session",
    "make_config",
    "open_test_engine",
    "redeem_item",
    "stored_names",
    "viewer",
]

_ids = itertools.count(1)


def viewer(
    login: str,
    platform: str = "twitch",
    user_id: str | None = None,
    display_name: str | None = None,
) -> Viewer:
    """A viewer whose platform id defaults to ``id-<login>`` (pass ``user_id`` to rename)."""
    return Viewer(platform, user_id or f"id-{login}", login.lower(), display_name or login)


def make_config(db_path: Path, **sections: Any) -> Config:
    """A Config on the database ``db_path`` names (the SQLite file, or PostgreSQL: see
    testing_db.py), with any sections overridden (plain dicts are validated).
    It has a wheel called ``main`` (one prize: nothing) unless ``wheels`` is given."""
    data: dict[str, Any] = {
        **({} if "database" in sections else {"database": {"url": database_url(db_path)}}),
        # a wheel for redeems to name; tests that care about prizes configure their own
        "wheels": {"main": {"prizes": [{"name": "Nothing"}]}},
        "tts": {"dir": str(db_path.parent / "tts")},  # spoken files stay with the test
    }
    data.update(sections)
    return Config.model_validate(data)


@asynccontextmanager
async def open_test_engine(config: Config, clock: FakeClock | None = None) -> AsyncIterator[Engine]:
    async with Engine.open(config, clock or FakeClock()) as engine:
        yield engine


async def balance_of(engine: Engine, who: Viewer) -> int:
    """The points of a viewer as committed (found by platform identity, not by name)."""
    user_id = await engine.wallets.find_identity(who)
    return (await engine.wallets.summary(user_id)).points


async def redeem_item(
    engine: Engine, key: str, ref: str, who: Viewer, text: str | None = "hi", **extra: Any
) -> int:
    """Redeem ``key`` for ``who`` in the stream window now (as ``!key text`` would); returns
    the id of the queue item it made. ``extra``: more of ``Redeems.redeem``'s options."""
    session_id, since = await engine.streams.window()
    bought = await engine.redeems.redeem(
        key,
        engine.catalog.get(key),
        who,
        text,
        ref=ref,
        stream_session_id=session_id,
        counts_since=since,
        **extra,
    )
    assert bought.item_id is not None, f"{key} made no queue item"
    return int(bought.item_id)


async def assert_verified(engine: Engine) -> None:
    """``db verify`` finds nothing wrong (the violations are shown if it does)."""
    report = await verify(engine.db)
    assert report.violations == []
    assert report.ok


async def stored_names(engine: Engine, platform_user_id: str) -> tuple[str, str, str]:
    """(identity login, identity display name, wallet display name) as stored."""
    async with engine.db.read() as conn:
        row = (
            await conn.execute(
                select(Identity.login, Identity.display_name, User.display_name)
                .join(User, User.id == Identity.user_id)
                .where(Identity.platform_user_id == platform_user_id)
            )
        ).one()
    return (row[0], row[1], row[2])


class EventFactory:
    """Builds normalized events stamped by a clock, each with a fresh platform event id."""

    def __init__(self, clock: FakeClock, platform: str = "twitch") -> None:
        self.clock = clock
        self.platform = platform

    def _base(self, event_id: str | None) -> dict[str, Any]:
        return {
            "id": event_id or f"evt-{next(_ids)}",
            "platform": self.platform,
            "occurred_at": self.clock.now(),
        }

    def chat(self, who: Viewer, text: str = "hello", event_id: str | None = None) -> ChatMessage:
        return ChatMessage(viewer=who, text=text, **self._base(event_id))

    def follow(self, who: Viewer, event_id: str | None = None) -> Follow:
        return Follow(viewer=who, **self._base(event_id))

    def sub(
        self, who: Viewer, tier: int = 1, months: int = 1, event_id: str | None = None
    ) -> Subscription:
        return Subscription(viewer=who, tier=tier, months=months, **self._base(event_id))

    def tip(self, who: Viewer, amount: str, event_id: str | None = None) -> Tip:
        return Tip(viewer=who, amount=Decimal(amount), **self._base(event_id))

    def cheer(self, who: Viewer, bits: int, event_id: str | None = None) -> Cheer:
        return Cheer(viewer=who, bits=bits, **self._base(event_id))

    def raid(self, who: Viewer, viewers: int, event_id: str | None = None) -> Raid:
        return Raid(viewer=who, viewers=viewers, **self._base(event_id))

    def presence(self, who: Viewer, event_id: str | None = None) -> Presence:
        return Presence(viewer=who, **self._base(event_id))


class FakePlatform:
    """A platform adapter for tests, on the real ``Platform`` interface: a test pushes
    normalized events (``emit``) and reads what the bot said (``sent``: (channel, text))."""

    def __init__(
        self,
        name: str = "fake",
        *,
        capabilities: Capabilities | None = None,
        default_channel: str = "main",
        fail_start: Exception | None = None,
    ) -> None:
        self.name = name
        self.default_channel = default_channel
        self.capabilities = capabilities or Capabilities()
        self.sent: list[tuple[str, str]] = []
        self.replies: list[tuple[str, str]] = []  # (id of the message answered, text)
        self._fail_start = fail_start
        self._sink: EventSink | None = None
        self._last_event_at: datetime | None = None
        self.stopped = False

    async def start(self, sink: EventSink) -> None:
        if self._fail_start is not None:
            raise self._fail_start
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None
        self.stopped = True

    async def send(self, channel: str, text: str) -> None:
        self.sent.append((channel, text))

    async def reply(self, to: ChatMessage, text: str) -> None:
        self.replies.append((to.id, text))
        self.sent.append((to.channel, text))

    def status(self) -> PlatformStatus:
        return PlatformStatus(self._sink is not None, last_event_at=self._last_event_at)

    async def emit(self, event: Event) -> object:
        """Push an event as the platform would; returns what the bot's sink returned."""
        if self._sink is None:
            raise RuntimeError(f"{self.name} is not started")
        self._last_event_at = event.occurred_at
        return await self._sink(event)

    def texts(self) -> list[str]:
        return [text for _channel, text in self.sent]


@dataclass
class ConsoleSession:
    """A scripted console bot kept open, so a test can feed lines and look in between."""

    app: App
    console: ConsoleStream
    clock: FakeClock
    out: list[str]

    async def run(self, *script: str) -> list[str]:
        """Feed lines (the queue drains after each one); return what they printed."""
        start = len(self.out)
        await self.console.run_lines(script)
        return self.out[start:]

    async def verified(self) -> None:
        """Raise if ``db verify`` finds a violation."""
        report = await verify(self.app.engine.db)
        if not report.ok:
            raise AssertionError(report.violations)


@asynccontextmanager
async def console_session(
    config: Config, config_path: Path | None = None, *, base_dir: Path | None = None
) -> AsyncIterator[ConsoleSession]:
    """What ``python bot.py console --script`` wires together (the app with the console as
    its platform), opened in-process. Refuses to start quietly past a broken cog or an item a
    crash left running: a test should not miss those lines."""
    out: list[str] = []
    clock = FakeClock(SCRIPT_START)
    console = ConsoleStream(
        clock, out.append, bot_name=config.bot.name, prefix=config.bot.prefix, drain_each_line=True
    )
    async with open_app(
        config,
        clock=clock,
        config_path=config_path,
        platforms=[console],
        bus=console_bus(out.append),
        scripted=True,
        base_dir=base_dir,
    ) as app:
        console.drain = app.queue.drain
        console.after_tick = app.scheduler.run_due
        if out or app.commands.cog_errors:
            raise RuntimeError(
                f"the console did not start cleanly: {out} {app.commands.cog_errors}"
            )
        yield ConsoleSession(app, console, clock, out)
