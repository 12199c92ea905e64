"""The dashboard in a real headless Chromium, against the whole running bot: logging in (and
being refused), skipping from the queue page (the viewer is refunded), a viewer whose name is
a script tag (shown as text everywhere), live events, and every page on a desktop and on a
390-pixel-wide phone (screenshots in tests/artifacts/screenshots/). Pages are checked once,
on SQLite; what moves points (the skip's refund, an adjustment) on PostgreSQL too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Dialog, Page

from pixelbot.testing import viewer
from pixelbot.web.auth import ATTEMPT_WINDOW, ATTEMPTS
from tests.web.conftest import OVERLAY_KEY, screenshot
from tests.web.dashboard_rig import (
    ALICE,
    OPERATOR,
    PASSWORD,
    Rig,
    dashboard_config,
    eventually,
    http_session,
    running_dashboard,
)
from tests.web.dashboard_rig import log_in as http_log_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCRIPT_NAME = "<script>alert(1)</script>"
MALLORY = viewer("mallory", platform="fake", display_name=SCRIPT_NAME)
IMG_TEXT = '<img src=x onerror="alert(2)">'
PHONE = {"width": 390, "height": 844}


@pytest_asyncio.fixture(loop_scope="module")
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A phone-sized context; like ``context``, its pages must run without a script error
    or a Content-Security-Policy violation."""
    opened = await browser.new_context(viewport=PHONE, device_scale_factor=2)  # type: ignore[arg-type]
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


async def log_in(page: Page, rig: Rig, password: str = PASSWORD) -> None:
    await page.goto(f"{rig.url}/dashboard/")
    assert page.url.endswith("/dashboard/login")  # no session: sent to the login
    await page.fill("#name", OPERATOR)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


async def ready(page: Page) -> None:
    await page.wait_for_selector("body[data-ready=true]")


def dialogs(page: Page) -> list[str]:
    """Every alert() the page shows (there must be none)."""
    seen: list[str] = []

    async def note(dialog: Dialog) -> None:
        seen.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", note)
    return seen


async def test_a_wrong_password_fails_and_the_sixth_try_is_refused(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig:
        await log_in(page, rig, "wrong password")
        assert await page.inner_text(".error") == "Wrong password."
        assert await page.input_value("#name") == OPERATOR  # kept, the password is not
        assert await page.input_value("#password") == ""
        await screenshot(page, request, "login-wrong-password")
        for _ in range(ATTEMPTS - 1):
            await page.fill("#password", "still wrong")
            await page.click("button[type=submit]")
            assert await page.inner_text(".error") == "Wrong password."
        await page.fill("#password", PASSWORD)  # right, but too late
        await page.click("button[type=submit]")
        assert (await page.inner_text(".error")).startswith("Too many tries. Try again in 15")
        await screenshot(page, request, "login-too-many-tries")
        rig.clock.advance(ATTEMPT_WINDOW)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await ready(page)
        assert page.url.endswith("/dashboard/")
        assert await page.inner_text("#operator") == OPERATOR


@pytest.mark.both_backends
async def test_the_queue_page_skip_refunds_the_viewer(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig:
        await rig.give(ALICE, 100)
        await rig.chat(ALICE, "!tts hello from alice")
        await rig.chat(ALICE, "!tts and another one")
        await eventually(_started(rig), "the TTS item to start")
        [playing] = rig.app.queue.running()
        await log_in(page, rig)
        await ready(page)
        card = page.locator("article.queue[data-kind=tts]")
        await card.locator(".now .title").wait_for()
        assert await card.locator(".now .title").inner_text() == f"#{playing.id} Text-to-Speech"
        assert await card.locator(".now .text").inner_text() == "hello from alice"
        assert await card.locator(".pill").inner_text() == "playing"
        assert await card.locator(".item").count() == 1  # the second one waits
        await screenshot(page, request, "queue-playing")
        assert await rig.balance(ALICE) == 50

        await card.get_by_role("button", name="Skip").click()

        async def refunded() -> bool:
            return await rig.balance(ALICE) == 75

        await eventually(refunded, "the refund of the skipped item")
        assert rig.gate.cancelled == [playing.id]
        refund = next(row for row in await rig.ledger(ALICE) if row.kind == "refund")
        assert (refund.amount, refund.actor) == (25, f"dashboard:{OPERATOR}")
        # the page follows: the next item plays (the live channel told the page to refresh)
        await page.wait_for_function(
            "id => !document.querySelector('article.queue[data-kind=tts] .now .title')"
            "?.textContent.startsWith('#' + id)",
            arg=playing.id,
        )
        assert "skipping" in await page.inner_text("#toast")
        await screenshot(page, request, "queue-after-skip")


async def test_a_script_in_a_viewer_name_is_shown_as_text(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig:
        alerts = dialogs(page)
        await rig.platform.emit(rig.events.follow(MALLORY))
        await rig.give(MALLORY, 500)
        await rig.chat(MALLORY, f"!tts {IMG_TEXT}")
        await eventually(_started(rig), "the TTS item to start")
        await log_in(page, rig)
        await ready(page)
        # the queue: the viewer and the text as typed
        now = page.locator("article.queue[data-kind=tts] .now")
        await now.locator(".by").wait_for()
        assert await now.locator(".by").inner_text() == f"for {SCRIPT_NAME}"
        assert await now.locator(".text").inner_text() == IMG_TEXT
        # viewer search
        await page.click("a[data-nav=viewers]")
        await ready(page)
        await page.fill("#search-text", "script")
        await page.click("#search button")
        result = page.locator("#results .name")
        await result.wait_for()
        assert await result.inner_text() == SCRIPT_NAME
        await result.click()
        await page.locator("#viewer-name").wait_for()
        assert await page.inner_text("#viewer-name") == SCRIPT_NAME
        await screenshot(page, request, "viewers-script-name")
        await _no_injected_markup(page)
        # events, as stored and as they happen live
        await page.click("a[data-nav=events]")
        await ready(page)
        rows = page.locator("#events .event .viewer")
        assert SCRIPT_NAME in await rows.all_inner_texts()
        await rig.chat(MALLORY, f"!tts {IMG_TEXT} again")
        fresh = page.locator("#events .event.fresh")
        await fresh.first.wait_for()
        assert await fresh.first.locator(".viewer").inner_text() == SCRIPT_NAME
        await screenshot(page, request, "events-script-name")
        await _no_injected_markup(page)
        assert alerts == []


async def test_every_page_on_a_desktop_and_on_a_phone(
    db_path: Path,
    context: BrowserContext,
    phone: BrowserContext,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    config = dashboard_config(
        db_path, backup={"dir": str(tmp_path / "backups")}, schedule={"backup": {"every": "1d"}}
    )
    async with running_dashboard(config) as rig:
        bob = viewer("bob", platform="fake", display_name="BobTheBuilder")
        await rig.give(ALICE, 1_250)
        await rig.give(bob, 40)
        for _ in range(20):  # more than a page of ledger
            await rig.give(ALICE, 1)
        for n in range(3):
            await rig.chat(ALICE, f"!tts message number {n}")
        await rig.platform.emit(rig.events.follow(bob))
        await rig.platform.emit(rig.events.tip(bob, "5.00"))
        await eventually(_started(rig), "the TTS item to start")
        for label, browser_context, width in (("desktop", context, 1920), ("phone", phone, 390)):
            page = await browser_context.new_page()
            await log_in(page, rig)
            await ready(page)
            await page.locator("article.queue .now .title").wait_for()
            await _fits(page, width)
            await screenshot(page, request, f"{label}-queue")

            await page.goto(f"{rig.url}/dashboard/viewers?q=a")
            await ready(page)
            await page.locator("#results button").first.click()
            await page.locator("#ledger tr").first.wait_for()
            await _fits(page, width)
            await screenshot(page, request, f"{label}-viewers")
            if label == "desktop":  # the ledger pages: 20 rows, then the older ones
                assert await page.locator("#ledger tr").count() == 20
                await page.click("#ledger-more")
                await page.wait_for_function(
                    "() => document.querySelectorAll('#ledger tr').length === 24"
                )
                assert await page.locator("#ledger-more").is_hidden()

            await page.goto(f"{rig.url}/dashboard/redeems")
            await ready(page)
            assert await page.locator("#redeems .redeem").count() == 2
            await _fits(page, width)
            await screenshot(page, request, f"{label}-redeems")

            await page.goto(f"{rig.url}/dashboard/events")
            await ready(page)
            assert await page.locator("#events .event").count() >= 3
            await _fits(page, width)
            await screenshot(page, request, f"{label}-events")

            await page.goto(f"{rig.url}/dashboard/system")
            await ready(page)
            if label == "desktop":
                await page.click("#verify")
                await page.locator("#verify-result .status.ok").wait_for()
                await page.click("#backup")  # SQLite: a file copy; PostgreSQL: pg_dump
                await page.locator("#backups li span", has_text="pixel-").first.wait_for()
            await page.locator("#jobs tr").first.wait_for()
            await _fits(page, width)
            await screenshot(page, request, f"{label}-system")
            await page.close()


async def test_a_refused_tab_says_why_waits_and_goes_live_once_a_place_frees(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    """Past ``web.dashboard.max_connections`` the bot opens a tab's live socket and closes it
    at once with 1013: the tab waits its longest delay (15 s) instead of knocking every second,
    its live indicator says why, and it goes live once a place frees. The page's clock is
    Playwright's, so the 15 s pass at once (the bot's sockets and the counting are real)."""
    web = {
        "enabled": True,
        "port": 0,
        "overlay_key": OVERLAY_KEY,
        "dashboard": {"password": PASSWORD, "max_connections": 1},
    }
    async with running_dashboard(dashboard_config(db_path, web=web)) as rig, http_session() as http:
        cap = rig.dashboard.live.connections
        await http_log_in(http, rig.url)
        held = await http.ws_connect(f"{rig.url}/dashboard/ws")  # the one place, taken
        await eventually(_live_pages(rig, 1), "the held socket")
        await page.clock.install()  # (time flows as usual until fast-forwarded)
        await log_in(page, rig)
        await ready(page)

        async def refused_once() -> bool:
            return cap.refused >= 1

        await eventually(refused_once, "the tab's socket to be refused")
        await asyncio.sleep(3)
        refused = cap.refused
        assert refused <= 2, f"{refused} sockets refused in 3 s"
        live = page.locator("#live.refused")
        await live.wait_for()
        assert await live.text_content() == "live: refused"
        title = await live.get_attribute("title")
        assert title is not None
        assert "too many dashboard pages open: 1 (web.dashboard.max_connections)" in title
        assert not await page.locator("#live.on").count()
        await screenshot(page, request, "live-refused")

        await held.close()
        await eventually(_live_pages(rig, 0), "the held socket to go")
        await page.clock.fast_forward(15_000)  # the longest wait, at most
        await page.locator("#live.on").wait_for(timeout=5000)
        assert await page.locator("#live").get_attribute("title") == "Live updates"
        await eventually(_live_pages(rig, 1), "the tab's socket")
        assert cap.refused == refused
        await rig.give(ALICE, 100)  # and it is live: a queued item shows without a reload
        await rig.chat(ALICE, "!tts after the wait")
        await page.locator("article.queue[data-kind=tts] .now .text").wait_for()
        assert await page.inner_text("article.queue[data-kind=tts] .now .text") == (
            "after the wait"
        )


async def test_the_system_page_shows_refused_overlay_sockets(
    db_path: Path, page: Page, request: pytest.FixtureRequest
) -> None:
    """An overlay page refused for ``web.overlays.max_connections`` (a forgotten browser
    source, a leaked key) shows on the System page with the setting that raises the cap."""
    web = {
        "enabled": True,
        "port": 0,
        "overlay_key": OVERLAY_KEY,
        "dashboard": {"password": PASSWORD},
        "overlays": {"max_connections": 1},
    }
    async with running_dashboard(dashboard_config(db_path, web=web)) as rig, http_session() as http:
        overlay_ws = f"{rig.url.replace('http', 'ws')}/overlay/ws?key={OVERLAY_KEY}&overlay="
        held = await http.ws_connect(overlay_ws + "alerts")  # the one place, taken
        try:
            assert (await held.receive_json(timeout=5))["type"] == "state"
            for _ in range(2):  # (a refused page retries: each time counts)
                async with http.ws_connect(overlay_ws + "wheel") as refused:
                    closed = await refused.receive(timeout=5)
                    assert closed.type == aiohttp.WSMsgType.CLOSE
            await log_in(page, rig)
            await ready(page)
            await page.goto(f"{rig.url}/dashboard/system")
            await ready(page)
            overlay = page.locator("#sockets li[data-kind=overlay]")
            await overlay.wait_for()
            assert await overlay.inner_text() == (
                "overlay sockets: 1 open of 1\n"
                "overlay sockets refused: 2 (cap web.overlays.max_connections)"
            )
            assert await overlay.locator(".refused").count() == 1  # (in the warning colour)
            dashboard = page.locator("#sockets li[data-kind=dashboard]")
            assert "dashboard sockets refused: 0 (cap web.dashboard.max_connections)" in (
                await dashboard.inner_text()
            )
            assert await dashboard.locator(".refused").count() == 0
            await screenshot(page, request, "system-sockets-refused")
        finally:
            await held.close()


HEADER_BOXES = """() => Object.fromEntries(
  ['.top', '.brand', '.tabs', '.who', '#live', '#operator', '#logout'].map((selector) => {
    const box = document.querySelector(selector).getBoundingClientRect();
    return [selector, { left: box.left, top: box.top, right: box.right, bottom: box.bottom }];
  }))"""
SET_OPERATOR = "(name) => { document.getElementById('operator').textContent = name; }"


async def test_a_refused_live_indicator_keeps_the_phone_header_on_its_rows(
    db_path: Path, phone: BrowserContext, request: pytest.FixtureRequest
) -> None:
    """On a 390-pixel phone the header is two rows: brand and who's logged in, then the tabs.
    "live: refused" (longer than "live"), even beside a long operator name, must not push
    the login block onto a row of its own (a taller sticky header over every page) nor out
    of the screen. Measured from the elements' boxes, beside a tab that is live."""
    web = {
        "enabled": True,
        "port": 0,
        "overlay_key": OVERLAY_KEY,
        "dashboard": {"password": PASSWORD, "max_connections": 1},
    }
    async with running_dashboard(dashboard_config(db_path, web=web)) as rig:
        live_tab = await phone.new_page()
        await log_in(live_tab, rig)
        await ready(live_tab)
        await live_tab.locator("#live.on").wait_for()  # (it holds the one place)
        normal = await live_tab.evaluate(HEADER_BOXES)

        refused_tab = await phone.new_page()  # (same cookies: logged in as the operator)
        await refused_tab.goto(f"{rig.url}/dashboard/")
        await ready(refused_tab)
        await refused_tab.locator("#live.refused").wait_for()
        for name in (OPERATOR, "Moderator Maximiliana Longname"):
            await refused_tab.evaluate(SET_OPERATOR, name)
            boxes = await refused_tab.evaluate(HEADER_BOXES)
            top, who, tabs, brand = boxes[".top"], boxes[".who"], boxes[".tabs"], boxes[".brand"]
            assert top["bottom"] == pytest.approx(normal[".top"]["bottom"], abs=1), (name, boxes)
            assert who["top"] < brand["bottom"] and who["bottom"] <= tabs["top"], (name, boxes)
            for part in ("#live", "#operator", "#logout"):  # on the screen, side by side
                assert boxes[part]["left"] >= 0 and boxes[part]["right"] <= PHONE["width"]
            assert boxes["#live"]["right"] <= boxes["#operator"]["left"]
            assert boxes["#operator"]["right"] <= boxes["#logout"]["left"]
            assert await refused_tab.locator("#live").text_content() == "live: refused"
            await _fits(refused_tab, PHONE["width"])
        await screenshot(refused_tab, request, "phone-live-refused")


@pytest.mark.both_backends
async def test_redeem_toggles_and_adjustments_from_the_pages(db_path: Path, page: Page) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig:
        await rig.give(ALICE, 100)
        await log_in(page, rig)
        await ready(page)
        await page.goto(f"{rig.url}/dashboard/redeems")
        await ready(page)
        switch = page.locator("li.redeem[data-key=tts] input[type=checkbox]")
        assert await switch.is_checked()
        await switch.click(force=True)  # (the input sits under its styled track)
        await page.wait_for_function("() => document.querySelector('#toast').textContent")
        assert not rig.app.engine.catalog.is_enabled("tts")  # the same toggle as !redeem off
        await rig.chat(ALICE, "!tts refused now")
        assert any("tts" in text and "off" in text for text in rig.platform.texts())

        await page.goto(f"{rig.url}/dashboard/viewers?q=alice")
        await ready(page)
        await page.locator("#results button").first.click()
        await page.locator("#viewer-points").wait_for()
        await page.fill("#adjust-amount", "-30")
        await page.fill("#adjust-reason", "spam")
        await page.click("#adjust button")
        await page.wait_for_function(
            "() => document.querySelector('#viewer-points').textContent === '70'"
        )
        first = page.locator("#ledger tr").first
        assert await first.locator("td").nth(3).inner_text() == "adjust: spam"
        assert await first.locator("td").nth(4).inner_text() == f"dashboard:{OPERATOR}"
        assert await rig.balance(ALICE) == 70


def _started(rig: Rig) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return rig.gate.started.is_set()

    return check


def _live_pages(rig: Rig, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:  # (a closed page leaves the list a step before its place frees)
        live = rig.dashboard.live
        return len(live.pages) == count and live.connections.open == count

    return check


async def _no_injected_markup(page: Page) -> None:
    """The page holds only its own script and no element the data could have made."""
    found = await page.evaluate(
        "() => [document.scripts.length, document.querySelectorAll('img').length,"
        " document.body.innerHTML.includes('<script>alert')]"
    )
    assert found == [1, 0, False]


async def _fits(page: Page, width: int) -> None:
    """Nothing sticks out sideways (the phone check: no horizontal scrolling)."""
    scroll = await page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll}px wide on a {width}px screen"
