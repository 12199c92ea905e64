"""A running bot with its dashboard, for the dashboard's HTTP and browser tests.

The whole bot through the one assembly (``open_app``), its real web server on a free port, a
fake clock (so the login limit's window can be moved), a ``FakePlatform`` to chat on, and a
TTS worker that plays until it is released or skipped (so there is something to skip).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.models import Transaction
from pixelbot.events import Viewer
from pixelbot.outcomes import Notice, Outcome, OutcomeBus
from pixelbot.queue.worker import Done, Job, Worker
from pixelbot.testing import EventFactory, FakePlatform, viewer
from pixelbot.web.dashboard import EXTRA, Dashboard
from pixelbot.web.deps import DEPS
from tests.web.conftest import OVERLAY_KEY, web_config

PASSWORD = "pixel-dashboard-test-password"
OPERATOR = "Mod Mia"
ALICE = viewer("alice", platform="fake")
REDEEMS: dict[str, Any] = {
    "tts": {"title": "Text-to-Speech", "cost": 25, "action": {"type": "tts"}},
    "hydrate": {"title": "Hydrate!", "cost": 300, "action": {"type": "chat", "message": "Drink!"}},
}
WAIT = 10.0  # a hang guard for things that normally take milliseconds


class Gate:
    """A TTS worker that 'speaks' each item until ``release`` is set, or it is skipped."""

    kind = "tts"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled: list[int] = []

    async def perform(self, job: Job) -> Done:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.item_id)
            raise
        return Done(f"#{job.item_id} spoken")

    async def close(self) -> None:
        return None


def dashboard_config(db_path: Path, *, password: str | None = PASSWORD, **sections: Any) -> Config:
    web: dict[str, Any] = {
        "enabled": True,
        "port": 0,
        "overlay_key": OVERLAY_KEY,
        "dashboard": {"password": password},
    }
    data: dict[str, Any] = {
        "web": web,
        "redeems": REDEEMS,
        "economy": {"earn": {"chat": {"points": 0, "xp": 0}}},
    }
    data.update(sections)
    return web_config(db_path, **data)


@dataclass
class Rig:
    app: App
    clock: FakeClock
    platform: FakePlatform
    gate: Gate
    notices: list[Notice] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.app.web is not None
        return self.app.web.url

    @property
    def dashboard(self) -> Dashboard:
        assert self.app.web is not None
        found = self.app.web.app[DEPS].extras[EXTRA]
        assert isinstance(found, Dashboard)
        return found

    @property
    def events(self) -> EventFactory:
        return EventFactory(self.clock, platform="fake")

    async def chat(self, who: Viewer, text: str) -> None:
        await self.platform.emit(self.events.chat(who, text))

    async def give(self, who: Viewer, points: int) -> None:
        await self.app.engine.ledger.grant(who, points, reason="test")

    async def balance(self, who: Viewer) -> int:
        wallets = self.app.engine.wallets
        return (await wallets.summary(await wallets.find_identity(who))).points

    async def ledger(self, who: Viewer) -> list[Any]:
        """The viewer's points ledger rows, oldest first."""
        user_id = await self.app.engine.wallets.find_identity(who)
        table = Transaction.__table__
        async with self.app.engine.db.read() as conn:
            rows = await conn.execute(
                select(table).where(table.c.user_id == user_id).order_by(table.c.id)
            )
            return list(rows)


@asynccontextmanager
async def running_dashboard(config: Config) -> AsyncIterator[Rig]:
    clock = FakeClock(utc(2026, 12, 1, 20))
    platform = FakePlatform()
    gate = Gate()
    bus = OutcomeBus()
    notices: list[Notice] = []

    async def keep(outcome: Outcome) -> None:
        assert isinstance(outcome, Notice)
        notices.append(outcome)

    bus.subscribe(keep, Notice)

    def workers(app: App) -> Mapping[str, Worker]:
        return {"tts": gate}

    async with open_app(config, clock=clock, platforms=[platform], workers=workers, bus=bus) as app:
        assert app.web is not None and app.web.running
        yield Rig(app, clock, platform, gate, notices)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- HTTP helpers


def http_session() -> aiohttp.ClientSession:
    # (unsafe: keep cookies for an IP address such as 127.0.0.1, as a browser does)
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


async def post_login(
    http: aiohttp.ClientSession, base: str, password: str, name: str = OPERATOR
) -> aiohttp.ClientResponse:
    async with http.get(f"{base}/dashboard/login") as page:
        token = form_token(await page.text())
    async with http.post(
        f"{base}/dashboard/login",
        data={"csrf": token, "name": name, "password": password},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def log_in(http: aiohttp.ClientSession, base: str, name: str = OPERATOR) -> str:
    """Log in with the test password; returns the session's CSRF token."""
    response = await post_login(http, base, PASSWORD, name)
    assert response.status == 303, response.status
    async with http.get(f"{base}/dashboard/api/session") as session:
        assert session.status == 200
        data = await session.json()
    assert data["operator"] == name
    return str(data["csrf"])
