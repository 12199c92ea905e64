"""Browser tests: the bot's real web server, opened in a real headless Chromium.

Debian's ``chromium`` (installed by ``scripts/setup --dev``) is driven by Playwright for Python
through ``executable_path``: ``playwright install`` cannot download browsers here, and is not
needed. One browser per test module (each test gets a fresh context); the tests and their async
fixtures run on the module's event loop, so mark a module
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.

Browser tests are about pages, so they run once, on SQLite; a test about money (a refund) is
marked ``both_backends`` and runs on PostgreSQL too, like the integration tests.

Screenshots go to ``tests/artifacts/screenshots/`` (git-ignored), one per page and test.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import SystemClock
from pixelbot.config import Config
from pixelbot.outcomes import ItemSettled, OutcomeBus
from pixelbot.platforms.base import Capabilities
from pixelbot.testing import FakePlatform, make_config
from tests.conftest import BACKENDS

CHROMIUM = Path(os.environ.get("PIXELBOT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
OVERLAY_KEY = "test-overlay-key-0123456789"
VIEWPORT = {"width": 1920, "height": 1080}  # an OBS browser source


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: a browser test that also runs on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_backends") is not None:
        metafunc.parametrize("db_backend", BACKENDS, indirect=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():  # noqa: ASYNC240  (once per module, before anything runs)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: scripts/setup --dev installs chromium")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/setup --dev installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh context; every page opened in it must run without a script error or a
    Content-Security-Policy violation (checked when the test ends)."""
    opened = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    problems: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )

    opened.on("page", watch)
    try:
        yield opened
        assert problems == []
    finally:
        await opened.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def screenshot(page: Page, request: pytest.FixtureRequest, name: str) -> Path:
    """Save what the page shows now as ``<test>-<name>.png`` (a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = SCREENSHOTS / f"{test}-{name}.png"
    await page.screenshot(path=str(path), omit_background=True)  # (transparent, as in OBS)
    return path


def web_config(db_path: Path, **sections: Any) -> Config:
    """A test config with the web server on a free port and a known overlay key; no local
    audio, no scheduled jobs."""
    data: dict[str, Any] = {
        "web": {"enabled": True, "port": 0, "overlay_key": OVERLAY_KEY},
        "tts": {"dir": str(db_path.parent / "tts"), "player": "none"},
        "schedule": {"backup": {"enabled": False}},
    }
    data.update(sections)
    return make_config(db_path, **data)


@dataclass
class Settlements:
    """Every ``ItemSettled`` the bot published, to wait for."""

    seen: list[ItemSettled] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, outcome: ItemSettled) -> None:
        self.seen.append(outcome)
        self.changed.set()

    async def wait(
        self, count: int = 1, kind: str | None = None, within: float = 20.0
    ) -> list[ItemSettled]:
        """The first ``count`` items (of ``kind``) settled, once they are."""
        async with asyncio.timeout(within):
            while True:
                found = [o for o in self.seen if kind is None or o.kind == kind]
                if len(found) >= count:
                    return found[:count]
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Bot:
    app: App
    platform: FakePlatform
    settled: Settlements


@asynccontextmanager
async def running_bot(
    config: Config, *, platforms: Sequence[FakePlatform] = (), base_dir: Path | None = None
) -> AsyncIterator[Bot]:
    """The whole bot as ``bot.py run`` starts it (real clock, real queue, the web server),
    with a fake platform named ``twitch``."""
    bus = OutcomeBus()
    settled = Settlements()
    bus.subscribe(settled.record, ItemSettled)
    unthrottled = Capabilities(messages_per_window=10_000)  # (chat pacing is not tested here)
    chosen = list(platforms) or [FakePlatform("twitch", capabilities=unthrottled)]
    async with open_app(
        config, clock=SystemClock(), platforms=chosen, base_dir=base_dir, bus=bus
    ) as app:
        assert app.web is not None and app.web.running
        yield Bot(app, chosen[0], settled)


def overlay_url(bot: Bot | App, name: str, key: str = OVERLAY_KEY) -> str:
    app = bot.app if isinstance(bot, Bot) else bot
    assert app.web is not None
    return f"{app.web.url}/overlay/{name}?key={key}"
