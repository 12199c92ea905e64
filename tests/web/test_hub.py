"""The overlays' live channel as a page speaks it, without a browser: a plain WebSocket client
stands in for the page, to show what the bot does with each kind of report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode

from pixelbot.clock import SystemClock
from pixelbot.testing import EventFactory, viewer
from tests.web.conftest import OVERLAY_KEY, Bot, running_bot
from tests.web.overlay_bot import ALICE, SPIN_COST, config_for, say

pytestmark = pytest.mark.asyncio(loop_scope="module")


@asynccontextmanager
async def page_socket(bot: Bot, overlay: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    assert bot.app.web is not None
    url = f"{bot.app.web.url.replace('http', 'ws')}/overlay/ws?overlay={overlay}&key={OVERLAY_KEY}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as socket:
        yield socket


async def next_of(socket: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            message: dict[str, Any] = await socket.receive_json()
            if message["type"] == kind:
                return message


@pytest.mark.both_backends
async def test_a_page_reporting_an_error_cannot_refund_what_it_was_shown(
    db_path: Path,
) -> None:
    """Anyone who learns an overlay URL holds its key: a page's own "error" must not turn an
    item it was sent into a refund (a free reroll of a spin, or anyone's TTS cut and refunded).
    The item counts as shown and keeps the page's complaint for the streamer."""
    async with running_bot(config_for(db_path)) as bot, page_socket(bot, "tts") as page:
        await say(bot, ALICE, "!tts hello")
        shown = await next_of(page, "tts")
        await page.send_json({"type": "ended", "item_id": shown["item_id"] + 1})  # not this one
        await page.send_json({"type": "error", "item_id": shown["item_id"], "message": "no sound"})
        [settled] = await bot.settled.wait(1, "tts")
        assert (settled.status, settled.refunded) == ("done", 0)
        assert settled.result["shown"]["page_error"] == "no sound"


async def test_a_page_reporting_an_error_cannot_reroll_a_spin(db_path: Path) -> None:
    wheel = {"wait": True, "spin_time": "100ms", "grace": "5s"}
    async with (
        running_bot(config_for(db_path, wheel=wheel)) as bot,
        page_socket(bot, "wheel") as page,
    ):
        await say(bot, ALICE, "!spin")
        spin = await next_of(page, "spin")
        await page.send_json({"type": "error", "item_id": spin["item_id"], "message": "meh"})
        [settled] = await bot.settled.wait(1, "wheel")
        assert (settled.status, settled.refunded) == ("done", 0)


async def test_without_wait_a_page_that_never_answers_does_not_hold_the_prize(
    db_path: Path,
) -> None:
    wheel = {"wait": False, "spin_time": "100ms", "grace": "300ms"}
    async with (
        running_bot(config_for(db_path, wheel=wheel)) as bot,
        page_socket(bot, "wheel") as page,
    ):
        await say(bot, ALICE, "!spin")
        await next_of(page, "spin")  # shown, but this page never reports the end
        [settled] = await bot.settled.wait(1, "wheel")
        assert settled.status == "done"
        assert "shown" not in settled.result


async def test_with_wait_a_page_that_never_answers_fails_the_spin(db_path: Path) -> None:
    wheel = {"wait": True, "spin_time": "100ms", "grace": "300ms"}
    async with (
        running_bot(config_for(db_path, wheel=wheel)) as bot,
        page_socket(bot, "wheel") as page,
    ):
        await say(bot, ALICE, "!spin")
        spin = await next_of(page, "spin")
        stop = await next_of(page, "stop")  # the pages are told to stop showing it
        assert stop["item_id"] == spin["item_id"]
        [settled] = await bot.settled.wait(1, "wheel")
        assert (settled.status, settled.refunded) == ("failed", SPIN_COST)
        assert settled.error == "the wheel overlay did not finish it within 0.4s"


async def test_a_page_opened_late_gets_the_spin_with_the_time_it_missed(db_path: Path) -> None:
    wheel = {"wait": True, "spin_time": "5s"}
    async with (
        running_bot(config_for(db_path, wheel=wheel)) as bot,
        page_socket(bot, "wheel") as first,
    ):
        await say(bot, ALICE, "!spin")
        spin = await next_of(first, "spin")
        assert spin["elapsed_ms"] < 500
        assert bot.app.status()["web"].detail.endswith("overlays open: wheel")
        await asyncio.sleep(0.6)
        async with page_socket(bot, "wheel") as late:
            state = await next_of(late, "state")
            assert state["current"]["item_id"] == spin["item_id"]
            assert state["current"]["prizes"] == spin["prizes"]
            assert state["current"]["elapsed_ms"] >= 600
            await late.send_json({"type": "ended", "item_id": spin["item_id"], "angle": 1.5})
            [settled] = await bot.settled.wait(1, "wheel")
            assert settled.result["shown"] == {"item_id": spin["item_id"], "angle": 1.5}


async def test_connections_past_the_cap_are_refused_and_logged_once_others_keep_working(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone who learns the overlay key can open pages: past ``max_connections`` with it, a
    new connection is closed at once with 1013 (try again later) and a sentence saying why,
    logged once however often it retries; the open pages keep getting every message, and a
    page that closes makes room."""
    config = config_for(db_path, max_connections=2)
    async with running_bot(config) as bot:
        assert bot.app.web is not None
        url = f"{bot.app.web.url.replace('http', 'ws')}/overlay/ws?key={OVERLAY_KEY}&overlay="
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(url + "alerts")
            second = await http.ws_connect(url + "wheel")
            for page in (first, second):
                assert (await page.receive_json(timeout=5))["type"] == "state"
            caplog.clear()
            for _ in range(3):  # a refused page retries (overlay.js reconnects by itself)
                async with http.ws_connect(url + "alerts") as refused:
                    closed = await refused.receive(timeout=5)
                    assert closed.type == aiohttp.WSMsgType.CLOSE
                    assert closed.data == WSCloseCode.TRY_AGAIN_LATER
                    assert closed.extra == (
                        "too many overlay pages open: 2 with this key "
                        "(web.overlays.max_connections)"
                    )
            warnings = [r for r in caplog.records if "overlay pages open" in r.getMessage()]
            assert len(warnings) == 1, caplog.text
            assert OVERLAY_KEY not in caplog.text
            assert bot.app.overlays is not None and bot.app.overlays.pages("alerts") == 1

            events = EventFactory(SystemClock(), "twitch")  # type: ignore[arg-type]
            await bot.platform.emit(events.follow(viewer("dana")))
            assert (await next_of(first, "alert"))["user"] == "dana"  # still posted

            await second.close()
            async with asyncio.timeout(5):  # the bot sees it go
                while bot.app.overlays.pages("wheel"):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            async with http.ws_connect(url + "wheel") as again:
                assert (await again.receive_json(timeout=5))["type"] == "state"
            await first.close()
