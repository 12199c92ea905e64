"""The wheel overlay in a real headless Chromium, fed by the whole bot (real queue, real
worker, real database): it lands on the recorded prize, a missing page fails and refunds the
spin, and a page that reconnects or opens mid-spin shows what it missed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page

from pixelbot.testing import balance_of
from tests.web.conftest import overlay_url, running_bot, screenshot
from tests.web.overlay_bot import (
    ALICE,
    PRIZES,
    SPIN_COST,
    config_for,
    open_overlay,
    page_rotation,
    say,
    slice_under_pointer,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
    config = config_for(db_path, wheel={"wait": True, "spin_time": "6s", "page_timeout": "1s"})
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
