"""The dashboard's live feed never makes the outcome bus wait for a browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web

from pixelbot.clock import FakeClock, utc
from pixelbot.outcomes import Notice
from pixelbot.web.auth import DashboardAuth
from pixelbot.web.dashboard_live import (
    LINK_NOTICE,
    LIVE_BACKLOG,
    SESSION_ENDED,
    TOO_SLOW,
    LiveFeed,
    LivePage,
)

pytestmark = pytest.mark.no_database
PASSWORD = "a password for the live feed"


@pytest.fixture
def auth() -> DashboardAuth:
    return DashboardAuth.create(FakeClock(utc(2026, 12, 1, 20)), PASSWORD, timedelta(hours=1))


async def test_a_slow_dashboard_page_never_holds_up_the_bus(auth: DashboardAuth) -> None:
    """The live feed queues each update for each page and returns at once; a page that
    falls LIVE_BACKLOG updates behind (a frozen phone) is dropped, one whose session ended too."""
    session = (await auth.login_with_password("ip", "mod", PASSWORD)).session
    other = (await auth.login_with_password("ip", "mod2", PASSWORD)).session
    assert session is not None and other is not None
    dashboard = LiveFeed(auth, auth.clock)
    frozen = LivePage(web.WebSocketResponse(), session)  # nobody pumps it: it never drains
    leaving = LivePage(web.WebSocketResponse(), other)
    dashboard.pages += [frozen, leaving]
    auth.close(other)
    for n in range(LIVE_BACKLOG):
        await dashboard.outcome(Notice("test", f"update {n}"))
    assert dashboard.pages == [frozen]
    assert leaving.backlog.get_nowait() == SESSION_ENDED
    assert frozen.backlog.qsize() == LIVE_BACKLOG
    await dashboard.outcome(Notice("test", "one too many"))
    assert dashboard.pages == []
    queued = [frozen.backlog.get_nowait() for _ in range(frozen.backlog.qsize())]
    assert queued[-1] == TOO_SLOW and '"update 0"' in str(queued[0])


async def test_a_login_link_is_never_shown_on_a_dashboard_page(auth: DashboardAuth) -> None:
    session = (await auth.login_with_password("ip", "mod", PASSWORD)).session
    assert session is not None
    dashboard = LiveFeed(auth, auth.clock)
    page = LivePage(web.WebSocketResponse(), session)
    dashboard.pages.append(page)
    await dashboard.outcome(Notice(LINK_NOTICE, "open the dashboard once with ...?token=x"))
    assert page.backlog.empty()
    await dashboard.outcome(Notice("dashboard", "mod skipped #4"))
    assert page.backlog.qsize() == 1
