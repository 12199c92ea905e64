"""Browser tests: the bot's real web server, opened in a real headless Chromium.

Debian's ``chromium`` (installed by ``scripts/setup --dev``) is driven by Playwright for Python
through ``executable_path``: ``playwright install`` cannot download browsers here, and is not
needed. One browser per test module (each test gets a fresh context); the tests and their async
fixtures run on the module's event loop, so mark a module
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.

Screenshots go to ``tests/artifacts/screenshots/`` (git-ignored), one per page and test.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import SystemClock
from pixelbot.config import Config
from pixelbot.testing import FakePlatform, make_config

CHROMIUM = Path(os.environ.get("PIXELBOT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
OVERLAY_KEY = "test-overlay-key-0123456789"
VIEWPORT = {"width": 1920, "height": 1080}  # an OBS browser source


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
    opened = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        yield opened
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
    await page.screenshot(path=str(path))
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


@asynccontextmanager
async def running_bot(
    config: Config, *, platforms: Sequence[FakePlatform] = (), base_dir: Path | None = None
) -> AsyncIterator[App]:
    """The whole bot as ``bot.py run`` starts it (real clock, real queue, the web server)."""
    async with open_app(
        config,
        clock=SystemClock(),
        platforms=list(platforms) or [FakePlatform()],
        base_dir=base_dir,
    ) as app:
        assert app.web is not None and app.web.running
        yield app


def overlay_url(app: App, name: str, key: str = OVERLAY_KEY) -> str:
    assert app.web is not None
    return f"{app.web.url}/overlay/{name}?key={key}"
