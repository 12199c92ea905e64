"""The web server starts and stops with the bot, shows in its status, and serves the overlay
pages (seen in a real Chromium) only with the overlay key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner, Result
from playwright.async_api import Page

from pixelbot.app.assembly import open_app
from pixelbot.cli import main
from pixelbot.clock import SystemClock
from pixelbot.errors import PixelbotError
from pixelbot.testing import FakePlatform
from tests.web.conftest import OVERLAY_KEY, overlay_url, running_bot, screenshot, web_config

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_server_runs_while_the_bot_runs(db_path: Path) -> None:
    async with running_bot(web_config(db_path)) as bot:
        assert bot.app.web is not None
        url = bot.app.web.url
        status = bot.app.status()["web"]
        assert status.connected and status.detail == url
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"ok": True}
    # stopped with the bot: nothing listens there any more
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz"):
            pass


async def test_a_port_in_use_stops_the_start_with_a_clear_line(db_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        config = web_config(db_path, web={"enabled": True, "port": port})
        platform = FakePlatform()
        with pytest.raises(PixelbotError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
            async with open_app(config, clock=SystemClock(), platforms=[platform]):
                pass
        assert platform.stopped is False  # the platforms never started
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_the_web_is_off_unless_enabled(db_path: Path) -> None:
    config = web_config(db_path, web={"enabled": False})
    async with open_app(config, clock=SystemClock(), platforms=[FakePlatform()]) as app:
        assert app.web is None
        assert "web" not in app.status()


async def test_an_overlay_opens_in_a_real_browser_with_its_key(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    async with running_bot(web_config(db_path)) as bot:
        response = await page.goto(overlay_url(bot, "now"))
        assert response is not None and response.status == 200
        await page.wait_for_selector("[data-overlay=now]")
        # an OBS browser source: 1920x1080, transparent, nothing to scroll
        size = await page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
            " getComputedStyle(document.body).backgroundColor]"
        )
        assert size == [1920, 1080, "rgba(0, 0, 0, 0)"]
        await screenshot(page, request, "now")


@pytest.mark.parametrize("key", ["", "wrong-key-wrong-key", OVERLAY_KEY + "x"])
async def test_an_overlay_without_its_key_is_forbidden(db_path: Path, page: Page, key: str) -> None:
    async with running_bot(web_config(db_path)) as bot:
        response = await page.goto(overlay_url(bot, "wheel", key))
        assert response is not None and response.status == 403
        assert "needs its key" in await page.inner_text("body")


async def test_bot_py_status_asks_the_running_bot(db_path: Path, tmp_path: Path) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"web: {{enabled: true, port: {port}}}\n", encoding="utf-8")

    def status() -> Result:
        return CliRunner().invoke(main, ["status", "--config", str(config_file)])

    config = web_config(db_path, web={"enabled": True, "port": port, "overlay_key": OVERLAY_KEY})
    async with running_bot(config):
        shown = await asyncio.to_thread(status)
        async with (  # a page whose own name resolves here (DNS rebinding) is refused
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{port}/status", headers={"Host": f"evil.example:{port}"}
            ) as rebound,
        ):
            assert rebound.status == 403
    assert shown.exit_code == 0, shown.output
    assert shown.output == f"twitch: up\nweb: up (http://127.0.0.1:{port})\n"
    stopped = await asyncio.to_thread(status)
    assert stopped.exit_code == 1
    assert "the bot is not running" in stopped.output
