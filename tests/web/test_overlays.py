"""The alerts, TTS and "now" overlays in a real headless Chromium, fed by the whole bot (real
queue, real workers, real database): alerts come and go one at a time, TTS audio plays to its
end in the page and a skip stops it, a missing page fails and refunds its item. Viewer names
are shown as text on every page, and the live channel needs the key."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import BrowserContext, Page

from pixelbot.clock import SystemClock
from pixelbot.events import Viewer
from pixelbot.testing import EventFactory, balance_of, viewer
from tests.web.conftest import OVERLAY_KEY, overlay_url, running_bot, screenshot
from tests.web.overlay_bot import ALICE, TTS_COST, XSS_NAME, config_for, open_overlay, say

pytestmark = pytest.mark.asyncio(loop_scope="module")


# ----------------------------------------------------------------------------------- alerts


async def test_an_alert_appears_and_goes_away(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    async with running_bot(config_for(db_path)) as bot:
        await open_overlay(page, bot, "alerts")
        events = EventFactory(SystemClock(), "twitch")  # type: ignore[arg-type]
        await bot.platform.emit(events.tip(viewer("dana"), "5"))
        await page.wait_for_function("() => document.body.dataset.state === 'showing'")
        assert await page.is_visible("#alert")
        assert await page.inner_text("#alert .text") == "dana tipped 5.00 USD!"
        assert await page.text_content("#alert .kind") == "Tip"
        await screenshot(page, request, "alert")
        await page.wait_for_function("() => document.body.dataset.state === 'idle'", timeout=3000)
        await page.wait_for_function(  # (faded out)
            "() => getComputedStyle(document.getElementById('alert')).opacity === '0'", timeout=2000
        )


async def test_an_alert_plays_its_sound_from_the_sounds_folder(
    db_path: Path, tmp_path: Path, page: Page
) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    with wave.open(str(sounds / "ding.wav"), "wb") as ding:  # a short silence will do
        ding.setnchannels(1)
        ding.setsampwidth(2)
        ding.setframerate(8000)
        ding.writeframes(b"\0\0" * 2400)
    alerts = {
        "duration": "1s",
        "sounds_dir": "sounds",
        "follow": {"text": "hi {user}", "sound": "ding.wav"},
    }
    async with running_bot(config_for(db_path, alerts=alerts), base_dir=tmp_path) as bot:
        await open_overlay(page, bot, "alerts")
        events = EventFactory(SystemClock(), "twitch")  # type: ignore[arg-type]
        async with page.expect_response(lambda r: "/overlay/sounds/ding.wav" in r.url) as fetched:
            await bot.platform.emit(events.follow(viewer("gus")))
        response = await fetched.value
        assert response.status in (200, 206)  # (a media element asks for a range)
        assert await page.inner_text("#alert .text") == "hi gus"


async def test_alerts_show_one_at_a_time_in_order(db_path: Path, page: Page) -> None:
    async with running_bot(config_for(db_path)) as bot:
        await open_overlay(page, bot, "alerts")
        await page.evaluate(
            """() => { window.seen = [];
                new MutationObserver(() => {
                    if (document.body.dataset.state === 'showing')
                        window.seen.push(document.querySelector('#alert .text').textContent);
                }).observe(document.body, {attributes: true}); }"""
        )
        events = EventFactory(SystemClock(), "twitch")  # type: ignore[arg-type]
        await bot.platform.emit(events.follow(viewer("erin")))
        await bot.platform.emit(events.raid(viewer("fay"), 12))
        await page.wait_for_function("() => window.seen.length === 2", timeout=4000)
        assert await page.evaluate("window.seen") == [
            "erin just followed!",
            "fay is raiding with 12 viewers!",
        ]


# -------------------------------------------------------------------------------------- tts


async def test_tts_audio_plays_to_its_end_in_the_page(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    async with running_bot(config_for(db_path)) as bot:
        await open_overlay(page, bot, "tts")
        await say(bot, ALICE, "!tts hello from the overlay")
        await page.wait_for_function("() => document.body.dataset.state === 'playing'")
        await screenshot(page, request, "tts-playing")
        [settled] = await bot.settled.wait(1, "tts")
        assert settled.status == "done", settled
        played = await page.evaluate(
            "[window.ttsAudio.ended, window.ttsAudio.currentTime, window.ttsAudio.duration]"
        )
        ended, current, duration = played
        assert ended is True
        assert duration > 0.5 and current == pytest.approx(duration, abs=0.05)
        assert settled.result["shown"]["played"] == pytest.approx(duration, abs=0.05)


@pytest.mark.both_backends
async def test_a_skip_stops_the_tts_audio_mid_word_and_refunds(db_path: Path, page: Page) -> None:
    long_text = "this is a long message that keeps going " * 4
    async with running_bot(config_for(db_path)) as bot:
        await open_overlay(page, bot, "tts")
        await say(bot, ALICE, f"!tts {long_text}")
        await page.wait_for_function(
            "() => document.body.dataset.state === 'playing' && window.ttsAudio.currentTime > 0.3"
        )
        skipped = bot.app.queue.skip("tts", by="moderator")
        assert skipped is not None
        [settled] = await bot.settled.wait(1, "tts")
        assert settled.status == "cancelled"
        assert settled.refunded == TTS_COST
        await page.wait_for_function("() => document.body.dataset.state === 'stopped'")
        paused, current, duration = await page.evaluate(
            "[window.ttsAudio.paused, window.ttsAudio.currentTime, window.ttsAudio.duration]"
        )
        assert paused is True
        assert 0.3 < current < duration - 1.0  # stopped in the middle
        await asyncio.sleep(0.3)  # and it stays stopped
        assert await page.evaluate("window.ttsAudio.currentTime") == pytest.approx(current)
        assert await balance_of(bot.app.engine, ALICE) == 10_000


@pytest.mark.both_backends
async def test_tts_with_no_page_open_fails_and_is_refunded(db_path: Path) -> None:
    async with running_bot(config_for(db_path)) as bot:
        await say(bot, ALICE, "!tts nobody hears this")
        [settled] = await bot.settled.wait(1, "tts")
        assert settled.status == "failed"
        assert settled.refunded == TTS_COST
        assert "the tts overlay is not open" in (settled.error or "")
        assert await balance_of(bot.app.engine, ALICE) == 10_000


# -------------------------------------------------------------------------------------- now


async def test_now_shows_what_plays_and_what_waits(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    config = config_for(db_path, tts={"page_timeout": "20s"})
    async with running_bot(config) as bot:
        await open_overlay(page, bot, "now")
        bob = viewer("bob")
        await say(bot, ALICE, "!tts first")  # plays (waits for a TTS page that never opens)
        await say(bot, bob, "!tts second")
        await say(bot, ALICE, "!tts third")
        await page.wait_for_function(
            "() => document.body.dataset.playing === '1' && document.body.dataset.waiting === '2'"
        )
        assert "alice" in await page.inner_text("#playing")
        waiting = await page.inner_text("#waiting")
        assert waiting.index("bob") < waiting.index("alice")
        await screenshot(page, request, "now")


# ---------------------------------------------------------------------------------- safety


async def test_a_viewer_name_with_markup_is_shown_as_text(
    db_path: Path, context: BrowserContext, request: pytest.FixtureRequest
) -> None:
    sly = Viewer("twitch", "id-sly", "sly", XSS_NAME)
    config = config_for(db_path, wheel={"wait": True, "spin_time": "1s"})
    async with running_bot(config) as bot:
        pages = {}
        for name in ("wheel", "alerts", "tts", "now"):
            pages[name] = await context.new_page()
            await open_overlay(pages[name], bot, name)
        await bot.platform.emit(EventFactory(SystemClock(), "twitch").follow(sly))  # type: ignore[arg-type]
        await say(bot, sly, "!spin")
        await say(bot, sly, "!tts hello")
        await pages["alerts"].wait_for_function("() => document.body.dataset.state === 'showing'")
        assert await pages["alerts"].inner_text("#alert .text") == f"{XSS_NAME} just followed!"
        await pages["wheel"].wait_for_function("() => document.body.dataset.state === 'spinning'")
        assert await pages["wheel"].inner_text("#wheel-caption") == (
            f"{XSS_NAME} is spinning the wheel!"
        )
        await pages["tts"].wait_for_function("() => document.body.dataset.item !== undefined")
        assert await pages["tts"].text_content("#tts .who") == f"{XSS_NAME} says"
        await pages["now"].wait_for_function(
            "() => document.getElementById('playing').textContent.includes('<img src=x')"
        )
        for name in ("now", "wheel", "tts", "alerts"):  # (the quickest to change first)
            shown = pages[name]
            await screenshot(shown, request, f"xss-{name}")
            assert await shown.evaluate("typeof window.__xss") == "undefined", name
            assert await shown.locator("img").count() == 0, name
        await bot.settled.wait(2)


async def test_a_refused_page_waits_before_knocking_again_and_gets_in_once_a_place_frees(
    db_path: Path, page: Page
) -> None:
    """Past ``web.overlays.max_connections`` the bot opens a page's socket and closes it at
    once with 1013: the page then waits its longest delay (5 s) instead of knocking four times
    a second, does not claim to be connected, and gets in (and works) once a place frees."""
    async with running_bot(config_for(db_path, max_connections=1)) as bot:
        hub = bot.app.overlays
        assert hub is not None and bot.app.web is not None
        ws = f"{bot.app.web.url.replace('http', 'ws')}/overlay/ws?key={OVERLAY_KEY}&overlay=wheel"
        async with aiohttp.ClientSession() as http:
            held = await http.ws_connect(ws)  # the one place, taken
            assert (await held.receive_json(timeout=5))["type"] == "state"
            await page.goto(overlay_url(bot, "alerts"))
            async with asyncio.timeout(5):
                while hub.connections.refused == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            await asyncio.sleep(3)
            refused = hub.connections.refused
            assert refused <= 2, f"{refused} sockets refused in 3 s"
            assert await page.evaluate("document.body.dataset.connected") == "false"
            assert hub.pages("alerts") == 0
            await held.close()
        await page.wait_for_function(  # (within the page's longest delay, with slack for a
            # browser on a busy machine: the refusals above show it does not knock sooner)
            "() => document.body.dataset.connected === 'true'",
            timeout=5000 + 5000,
        )
        assert hub.connections.refused == refused
        events = EventFactory(SystemClock(), "twitch")  # type: ignore[arg-type]
        await bot.platform.emit(events.follow(viewer("ivy")))
        await page.wait_for_function("() => document.body.dataset.state === 'showing'")
        assert await page.inner_text("#alert .text") == "ivy just followed!"


async def test_the_live_channel_needs_the_key_too(db_path: Path) -> None:
    async with running_bot(config_for(db_path)) as bot:
        assert bot.app.web is not None
        base = bot.app.web.url.replace("http", "ws")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{base}/overlay/ws?overlay=wheel&key=nope")
            assert refused.value.status == 403
            async with http.ws_connect(f"{base}/overlay/ws?overlay=wheel&key={OVERLAY_KEY}") as ws:
                assert (await ws.receive_json()) == {"type": "state", "overlay": "wheel"}
            url = bot.app.web.url
            async with http.get(f"{url}/overlay/tts/audio/1?key=nope") as response:
                assert response.status == 403
            sneaky = f"{url}/overlay/sounds/..%2Fpixel.db?key={OVERLAY_KEY}"
            async with http.get(sneaky) as response:
                assert response.status == 404
