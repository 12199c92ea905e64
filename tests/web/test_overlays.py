"""The overlay pages in a real headless Chromium, fed by the whole bot (real queue, real
workers, real database): the wheel lands on the recorded prize, alerts come and go, TTS audio
plays to its end in the page and a skip stops it, a missing page fails and refunds its item,
and a page that reconnects shows what it missed. Viewer names are shown as text."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext, Page

from pixelbot.clock import SystemClock
from pixelbot.events import Viewer
from pixelbot.testing import EventFactory, balance_of, viewer
from tests.web.conftest import (
    OVERLAY_KEY,
    Bot,
    overlay_url,
    running_bot,
    screenshot,
    web_config,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRIZES: list[dict[str, Any]] = [
    {"name": "50 Points", "weight": 30, "points": 50},
    {"name": "Nothing", "weight": 20},
    {"name": "1000 XP", "weight": 15, "xp": 1000},
    {"name": "Jackpot", "weight": 1, "points": 5000},
    {"name": "Hat", "weight": 10, "message": "{user} gets a hat"},
    {"name": "Sock", "weight": 4},
]
SPIN_COST = 10
TTS_COST = 25
REDEEMS = {
    "spin": {"title": "Prize Wheel", "cost": SPIN_COST, "action": {"type": "wheel"}},
    "tts": {"title": "Text-to-Speech", "cost": TTS_COST, "action": {"type": "tts"}},
}
XSS_NAME = "<img src=x onerror=window.__xss=1><script>__xss=2</script>"
ALICE = viewer("alice")


def config_for(db_path: Path, **web: Any) -> Any:
    overlays = {
        "wheel": {"wait": True, "spin_time": "300ms", "page_timeout": "1s"},
        "alerts": {"duration": "600ms"},
        "tts": {"page_timeout": "1s"},
        **web,
    }
    return web_config(
        db_path,
        web={"enabled": True, "port": 0, "overlay_key": OVERLAY_KEY, "overlays": overlays},
        wheels={"main": {"prizes": PRIZES}},
        redeems=REDEEMS,
        economy={"starting_points": 10_000, "earn": {"chat": {"points": 0}}},
        tts={"dir": str(db_path.parent / "tts"), "player": "none", "output": "overlay"},
    )


async def say(bot: Bot, who: Viewer, text: str) -> None:
    await bot.platform.emit(EventFactory(SystemClock(), "twitch").chat(who, text))  # type: ignore[arg-type]


async def open_overlay(page: Page, bot: Bot, name: str) -> None:
    await page.goto(overlay_url(bot, name))
    await page.wait_for_function("() => document.body.dataset.connected === 'true'")
    async with asyncio.timeout(5):  # the page's socket is attached on the bot's side too
        while not bot.app.overlays.watching(name):  # type: ignore[union-attr]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def slice_under_pointer(rotation: float, weights: list[float]) -> int:
    """Which slice ends under the pointer (at the top) after the wheel turned ``rotation``
    degrees clockwise: the test's own arithmetic, not the page's."""
    point = (-rotation) % 360.0  # the wheel's angle now at the top
    total = sum(weights)
    start = 0.0
    for index, weight in enumerate(weights):
        end = start + weight / total * 360.0
        if start <= point < end:
            return index
        start = end
    return len(weights) - 1


async def page_rotation(page: Page) -> float:
    """The wheel's rotation as the browser renders it (from the computed CSS transform)."""
    a, b = await page.evaluate(
        """() => {
            const wheel = document.getElementById('wheel-canvas');
            const m = new DOMMatrix(getComputedStyle(wheel).transform);
            return [m.a, m.b];
        }"""
    )
    return math.degrees(math.atan2(b, a))


# ------------------------------------------------------------------------------------ wheel


async def test_the_wheel_lands_on_the_recorded_prize_20_times(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    weights = [float(prize["weight"]) for prize in PRIZES]
    async with running_bot(config_for(db_path)) as bot:
        await open_overlay(page, bot, "wheel")
        for spin in range(20):
            await say(bot, ALICE, "!spin")
            [settled] = (await bot.settled.wait(spin + 1, "wheel"))[spin:]
            assert settled.status == "done", settled
            recorded = settled.result["prize_index"]
            # the page's own report, and what it shows now
            assert settled.result["shown"]["prize"] == PRIZES[recorded]["name"]
            await page.wait_for_function(
                f"() => document.body.dataset.item === '{settled.item_id}'"
                " && document.body.dataset.state === 'landed'"
            )
            final = float(await page.evaluate("document.body.dataset.angle"))
            assert final == pytest.approx(settled.result["shown"]["angle"])
            assert slice_under_pointer(final, weights) == recorded
            assert slice_under_pointer(await page_rotation(page), weights) == recorded
            caption = await page.inner_text("#wheel-caption")
            assert caption == f"alice won {PRIZES[recorded]['name']}!"
            if spin == 0:
                await screenshot(page, request, "wheel-landed")


@pytest.mark.both_backends
async def test_a_spin_with_no_wheel_page_open_fails_and_is_refunded(db_path: Path) -> None:
    async with running_bot(config_for(db_path)) as bot:
        await say(bot, ALICE, "!spin")
        [settled] = await bot.settled.wait(1, "wheel")
        assert settled.status == "failed"
        assert settled.refunded == SPIN_COST
        assert "the wheel overlay is not open" in (settled.error or "")
        assert await balance_of(bot.app.engine, ALICE) == 10_000


async def test_without_wait_a_spin_does_not_block_when_no_page_is_open(db_path: Path) -> None:
    async with running_bot(config_for(db_path, wheel={"wait": False})) as bot:
        await say(bot, ALICE, "!spin")
        [settled] = await bot.settled.wait(1, "wheel", within=3)
        assert settled.status == "done"
        assert "shown" not in settled.result


async def test_a_page_reconnecting_mid_spin_shows_what_it_missed(
    db_path: Path, context: BrowserContext, request: pytest.FixtureRequest
) -> None:
    weights = [float(prize["weight"]) for prize in PRIZES]
    config = config_for(db_path, wheel={"wait": True, "spin_time": "3s", "page_timeout": "1s"})
    async with running_bot(config) as bot:
        first = await context.new_page()
        await open_overlay(first, bot, "wheel")
        await say(bot, ALICE, "!spin")
        await first.wait_for_function("() => document.body.dataset.state === 'spinning'")
        # the connection drops mid-spin: the page reconnects by itself
        await bot.app.overlays.disconnect_all("wheel")  # type: ignore[union-attr]
        await first.wait_for_function("() => document.body.dataset.connected === 'false'")
        await first.wait_for_function("() => document.body.dataset.connected === 'true'")
        # a page opened in the middle of the spin (the same as one that reconnects after
        # missing its start) shows it where it is, not from the start
        await asyncio.sleep(1.0)
        late = await context.new_page()
        await late.goto(overlay_url(bot, "wheel"))
        await late.wait_for_function("() => document.body.dataset.state === 'spinning'")
        assert float(await late.evaluate("document.body.dataset.rotation")) > 360
        await screenshot(late, request, "wheel-mid-spin")
        [settled] = await bot.settled.wait(1, "wheel")
        assert settled.status == "done"
        for shown in (first, late):
            await shown.wait_for_function("() => document.body.dataset.state === 'landed'")
            final = float(await shown.evaluate("document.body.dataset.angle"))
            assert slice_under_pointer(final, weights) == settled.result["prize_index"]


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
        assert await page.inner_text("#alert .text") == "dana tipped 5.00!"
        assert await page.text_content("#alert .kind") == "Tip"
        await screenshot(page, request, "alert")
        await page.wait_for_function("() => document.body.dataset.state === 'idle'", timeout=3000)
        await page.wait_for_function(  # (faded out)
            "getComputedStyle(document.getElementById('alert')).opacity === '0'", timeout=2000
        )


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
    config = config_for(db_path, wheel={"wait": True, "spin_time": "1500ms"})
    async with running_bot(config) as bot:
        pages = {}
        for name in ("wheel", "alerts", "now"):
            pages[name] = await context.new_page()
            await open_overlay(pages[name], bot, name)
        await bot.platform.emit(EventFactory(SystemClock(), "twitch").follow(sly))  # type: ignore[arg-type]
        await say(bot, sly, "!spin")
        await pages["alerts"].wait_for_function("() => document.body.dataset.state === 'showing'")
        assert await pages["alerts"].inner_text("#alert .text") == f"{XSS_NAME} just followed!"
        await pages["wheel"].wait_for_function("() => document.body.dataset.state === 'spinning'")
        assert XSS_NAME in await pages["wheel"].inner_text("#wheel-caption")
        await pages["now"].wait_for_function("() => document.body.dataset.playing === '1'")
        assert XSS_NAME in await pages["now"].inner_text("#playing")
        for name, shown in pages.items():
            assert await shown.evaluate("typeof window.__xss") == "undefined", name
            assert await shown.locator("img").count() == 0, name
            await screenshot(shown, request, f"xss-{name}")
        await bot.settled.wait(1, "wheel")


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
