"""The dashboard over plain HTTP, against the bot's real web server: who gets in, what a
request without a session or without its CSRF token gets, and that its buttons run the same
code paths as the chat commands (a skip refunds the viewer, an adjustment is ledgered with the
operator's name). What moves points runs on SQLite and PostgreSQL (``both_backends``); the
rest is about HTTP and runs once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pixelbot.web.auth import ATTEMPT_WINDOW, ATTEMPTS
from pixelbot.web.dashboard import LINK_NOTICE, LOGIN_COOKIE, SESSION_COOKIE
from tests.web.conftest import OVERLAY_KEY
from tests.web.dashboard_rig import (
    ALICE,
    OPERATOR,
    PASSWORD,
    Rig,
    dashboard_config,
    eventually,
    form_token,
    http_session,
    log_in,
    post_login,
    running_dashboard,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The routes that answer without a session: the login form, its stylesheet, the one-time link.
PUBLIC = {
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("GET", "/dashboard/login/link"),
    ("POST", "/dashboard/login/link"),
    ("GET", "/dashboard/login.css"),
}


def dashboard_routes(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path) the application serves under /dashboard, sub-applications
    included: a route added later is checked without anyone listing it here."""
    found: set[tuple[str, str]] = set()

    def walk(router: web.UrlDispatcher) -> None:
        for resource in router.resources():
            if isinstance(resource, web.PrefixedSubAppResource):
                walk(resource._app.router)
                continue
            for route in resource:
                path = resource.canonical
                if path.startswith("/dashboard") and route.method != "HEAD":
                    found.add((route.method, path))

    walk(app.router)
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_no_dashboard_route_answers_without_a_session(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig:
        assert rig.app.web is not None
        routes = dashboard_routes(rig.app.web.app)
        protected = routes - PUBLIC
        # (the walk finds the dashboard: pages, the API, the live socket, logout)
        assert {
            ("GET", "/dashboard/"),
            ("GET", "/dashboard/api/queue"),
            ("POST", "/dashboard/api/queue/skip"),
            ("POST", "/dashboard/api/viewers/{user_id}/adjust"),
            ("GET", "/dashboard/ws"),
            ("POST", "/dashboard/logout"),
        } <= protected
        assert routes >= PUBLIC
        # with nothing, with a forged cookie, and with the overlay key in every place a
        # request can carry it
        attempts: list[dict[str, Any]] = [
            {},
            {"cookies": {SESSION_COOKIE: "forged.signature"}},
            {"params": {"key": OVERLAY_KEY}},
            {"headers": {"Authorization": f"Bearer {OVERLAY_KEY}", "X-Overlay-Key": OVERLAY_KEY}},
            {"cookies": {SESSION_COOKIE: OVERLAY_KEY}},
        ]
        for method, path in sorted(protected):
            for extra in attempts:
                async with (
                    aiohttp.ClientSession(cookies=extra.get("cookies")) as http,
                    http.request(
                        method,
                        rig.url + concrete(path),
                        params=extra.get("params"),
                        headers=extra.get("headers"),
                        json={} if method == "POST" else None,
                        allow_redirects=False,
                    ) as response,
                ):
                    body = await response.text()
                    where = f"{method} {path} with {sorted(extra)}"
                    if response.status == 303:  # a page: sent to the login, nothing else
                        assert response.headers["Location"] == "/dashboard/login", where
                        assert body == "" or "Queue" not in body, where
                    else:
                        assert response.status == 401, where
                        assert "log in first" in body, where
        # a made-up path under /dashboard does not answer either
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{rig.url}/dashboard/api/nothing-here", allow_redirects=False) as response,
        ):
            assert response.status == 401


async def test_the_overlay_key_cannot_open_the_dashboard(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        # the key opens its overlay...
        async with http.get(f"{rig.url}/overlay/now", params={"key": OVERLAY_KEY}) as overlay:
            assert overlay.status == 200
        # ...and nothing of the dashboard, however it is offered
        async with http.get(
            f"{rig.url}/dashboard/", params={"key": OVERLAY_KEY}, allow_redirects=False
        ) as page:
            assert page.status == 303 and page.headers["Location"] == "/dashboard/login"
        async with http.get(
            f"{rig.url}/dashboard/api/viewers", params={"q": "a", "key": OVERLAY_KEY}
        ) as api:
            assert api.status == 401
        # nor is it a password
        response = await post_login(http, rig.url, OVERLAY_KEY)
        assert response.status == 401
        assert SESSION_COOKIE not in {c.key for c in http.cookie_jar}


async def test_a_wrong_password_fails_and_five_tries_lock_the_login(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        for _ in range(ATTEMPTS):
            response = await post_login(http, rig.url, "not the password")
            assert response.status == 401
            assert SESSION_COOKIE not in {c.key for c in http.cookie_jar}
        # the sixth try is refused before the password is looked at, even the right one
        async with http.get(f"{rig.url}/dashboard/login") as page:
            token = form_token(await page.text())
        async with http.post(
            f"{rig.url}/dashboard/login",
            data={"csrf": token, "name": OPERATOR, "password": PASSWORD},
            allow_redirects=False,
        ) as refused:
            assert refused.status == 429
            assert "Too many tries" in await refused.text()
            assert int(refused.headers["Retry-After"]) == int(ATTEMPT_WINDOW.total_seconds())
        assert SESSION_COOKIE not in {c.key for c in http.cookie_jar}
        rig.clock.advance(ATTEMPT_WINDOW)  # the window moves on (the injected clock)
        await log_in(http, rig.url)


async def test_the_login_form_needs_its_own_token(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        async with http.get(f"{rig.url}/dashboard/login") as page:
            token = form_token(await page.text())
        # another site posting the form has neither the cookie nor the token
        async with (
            aiohttp.ClientSession() as stranger,
            stranger.post(
                f"{rig.url}/dashboard/login",
                data={"csrf": token, "name": OPERATOR, "password": PASSWORD},
                allow_redirects=False,
            ) as forged,
        ):
            assert forged.status == 403
        async with http.post(
            f"{rig.url}/dashboard/login",
            data={"name": OPERATOR, "password": PASSWORD},
            allow_redirects=False,
        ) as missing:
            assert missing.status == 403
        assert LOGIN_COOKIE in {c.key for c in http.cookie_jar}


async def test_without_a_password_a_one_time_link_logs_in_once(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path, password=None)) as rig:
        [printed] = [n.text for n in rig.notices if n.kind == LINK_NOTICE]
        found = re.search(r"/dashboard/login/link\?token=(\S+)", printed)
        assert found is not None, printed
        link = f"{rig.url}{found.group(0)}"
        async with http_session() as http:
            # the plain login page has no password field: it points at the link
            async with http.get(f"{rig.url}/dashboard/login") as plain:
                text = await plain.text()
                assert "one-time link" in text and 'name="password"' not in text
            async with http.get(link) as page:
                assert page.status == 200
                form = await page.text()
            assert f'name="token" value="{found.group(1)}"' in form
            async with http.post(
                f"{rig.url}/dashboard/login/link",
                data={"csrf": form_token(form), "name": "Streamer", "token": found.group(1)},
                allow_redirects=False,
            ) as used:
                assert used.status == 303
            async with http.get(f"{rig.url}/dashboard/api/session") as session:
                assert (await session.json())["operator"] == "Streamer"
        async with http_session() as other, other.get(link) as again:  # spent
            assert again.status == 401
            assert "used already" in await again.text()
        # the next person gets a fresh link, printed like the first
        fresh = [n.text for n in rig.notices if n.kind == LINK_NOTICE]
        assert len(fresh) == 2 and found.group(1) not in fresh[1]
        # and a password login is not possible without a password
        async with http_session() as stranger:
            async with stranger.get(f"{rig.url}/dashboard/login"):
                pass  # (the login form's cookie, but the page has no form to take a token from)
            async with stranger.post(
                f"{rig.url}/dashboard/login",
                data={"name": "x", "password": ""},
                allow_redirects=False,
            ) as refused:
                assert refused.status == 403


@pytest.mark.both_backends
async def test_a_post_without_its_csrf_token_is_refused(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        await rig.give(ALICE, 100)
        user_id = await rig.app.engine.wallets.find_identity(ALICE)
        csrf = await log_in(http, rig.url)
        adjust = f"{rig.url}/dashboard/api/viewers/{user_id}/adjust"
        body = {"amount": 50, "reason": "raffle", "key": "k" * 16}
        for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
            async with http.post(adjust, json=body, headers=headers) as refused:
                assert refused.status == 403
                assert "CSRF" in (await refused.json())["error"]
        async with http.post(f"{rig.url}/dashboard/api/queue/pause", json={"kind": "tts"}) as p:
            assert p.status == 403
        async with http.post(f"{rig.url}/dashboard/logout", allow_redirects=False) as out:
            assert out.status == 403  # (a form post without its hidden field)
        assert await rig.balance(ALICE) == 100  # nothing changed
        assert rig.app.queue.paused == set()
        async with http.post(adjust, json=body, headers={"X-CSRF-Token": csrf}) as done:
            assert done.status == 200
        assert await rig.balance(ALICE) == 150


@pytest.mark.both_backends
async def test_the_dashboard_skip_refunds_the_viewer(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        await rig.give(ALICE, 100)
        await rig.chat(ALICE, "!tts hello everyone")
        await eventually(lambda: _started(rig), "the TTS item to start")
        assert await rig.balance(ALICE) == 75
        [playing] = rig.app.queue.running()
        csrf = await log_in(http, rig.url)
        async with http.get(f"{rig.url}/dashboard/api/queue") as queue:
            [tts] = (await queue.json())["kinds"]
        assert tts["running"]["id"] == playing.id and tts["running"]["viewer"] == "alice"
        async with http.post(
            f"{rig.url}/dashboard/api/queue/skip",
            json={"kind": "tts", "item_id": playing.id},
            headers={"X-CSRF-Token": csrf},
        ) as skipped:
            assert skipped.status == 200
            assert (await skipped.json())["skipped"] == playing.id

        async def refunded() -> bool:
            return await rig.balance(ALICE) == 100

        await eventually(refunded, "the refund")
        assert rig.gate.cancelled == [playing.id]
        spend, refund = (await rig.ledger(ALICE))[-2:]
        assert (spend.kind, spend.amount) == ("spend", -25)
        assert (refund.kind, refund.amount, refund.balance_after) == ("refund", 25, 100)
        assert refund.refund_of == spend.ref
        assert refund.actor == f"dashboard:{OPERATOR}"

        # the same words as !skip in chat; and skipping it again is refused, not a new skip
        async def told() -> bool:  # (chat hears it after the refund is committed)
            return any("skipped by Mod Mia" in text for text in rig.platform.texts())

        await eventually(told, "the viewer to be told in chat")
        async with http.post(
            f"{rig.url}/dashboard/api/queue/skip",
            json={"kind": "tts", "item_id": playing.id},
            headers={"X-CSRF-Token": csrf},
        ) as again:
            assert again.status == 400
            assert "not playing" in (await again.json())["error"]
        await _verified(rig)


@pytest.mark.both_backends
async def test_an_adjustment_is_ledgered_with_the_operator_and_the_reason(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        await rig.give(ALICE, 100)
        user_id = await rig.app.engine.wallets.find_identity(ALICE)
        csrf = await log_in(http, rig.url)
        adjust = f"{rig.url}/dashboard/api/viewers/{user_id}/adjust"
        headers = {"X-CSRF-Token": csrf}
        body = {"amount": -40, "reason": "  lost a  bet ", "key": "a1" * 8}
        async with http.post(adjust, json=body, headers=headers) as first:
            assert first.status == 200
            assert (await first.json())["balance"] == 60
        async with http.post(adjust, json=body, headers=headers) as resent:  # a double click
            answer = await resent.json()
            assert answer["duplicate"] is True and answer["message"].startswith("already done")
        entry = (await rig.ledger(ALICE))[-1]
        assert (entry.kind, entry.amount, entry.balance_after) == ("adjust", -40, 60)
        assert entry.reason == "lost a bet"
        assert entry.actor == f"dashboard:{OPERATOR}"
        assert await rig.balance(ALICE) == 60
        # refusals say why and change nothing
        for bad, why in [
            ({**body, "key": "b2" * 8, "amount": -61}, "points"),
            ({**body, "key": "b3" * 8, "reason": ""}, "say why"),
            ({**body, "key": "b4" * 8, "reason": "x" * 65}, "too long"),
            ({**body, "key": "b5" * 8, "amount": "lots"}, "whole number"),
            ({**body, "key": "b6" * 8, "amount": 0}, "non-zero"),
            ({**body, "key": "b7" * 8, "amount": 10**13}, "at most"),
            ({**body, "key": "b8" * 8, "amount": 1.9}, "whole number"),
        ]:
            async with http.post(adjust, json=bad, headers=headers) as refused:
                assert refused.status == 400, bad
                assert why in (await refused.json())["error"], bad
        assert await rig.balance(ALICE) == 60
        async with http.post(  # a number too long for Python to read is bad JSON, not a crash
            adjust, data=b'{"amount": ' + b"9" * 5000 + b"}", headers=headers
        ) as huge:
            assert huge.status == 400
        for path in ("/api/viewers/99999999999999999999999", "/api/viewers/-1", "/api/viewers/x"):
            async with http.get(f"{rig.url}/dashboard{path}") as odd:
                assert odd.status == 400, path
        # the page shows it in the viewer's history, newest first
        async with http.get(f"{rig.url}/dashboard/api/viewers/{user_id}") as history:
            ledger = (await history.json())["ledger"]
        assert ledger[0]["actor"] == f"dashboard:{OPERATOR}" and ledger[0]["amount"] == -40
        await _verified(rig)


async def test_a_session_ends_at_logout_and_after_its_lifetime(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        csrf = await log_in(http, rig.url)
        async with http.post(
            f"{rig.url}/dashboard/logout", data={"csrf": csrf}, allow_redirects=False
        ) as out:
            assert out.status == 303
        async with http.get(f"{rig.url}/dashboard/api/queue") as after:
            assert after.status == 401
        await log_in(http, rig.url)
        rig.clock.advance(rig.app.config.web.dashboard.session)
        async with http.get(f"{rig.url}/dashboard/api/queue") as expired:
            assert expired.status == 401


async def test_the_live_socket_refuses_another_site(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        await log_in(http, rig.url)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{rig.url}/dashboard/ws", origin="http://evil.example")
        assert refused.value.status == 403
        async with http.ws_connect(f"{rig.url}/dashboard/ws") as socket:
            await rig.give(ALICE, 5)
            user_id = await rig.app.engine.wallets.find_identity(ALICE)
            csrf = (await (await http.get(f"{rig.url}/dashboard/api/session")).json())["csrf"]
            await http.post(
                f"{rig.url}/dashboard/api/viewers/{user_id}/adjust",
                json={"amount": 5, "reason": "hello", "key": "c3" * 8},
                headers={"X-CSRF-Token": csrf},
            )
            message = await socket.receive_json(timeout=5)
        assert message["type"] == "event" and message["event"]["kind"] == "dashboard"
        assert "gave 5" in message["event"]["text"]


async def test_live_sockets_past_the_cap_are_refused_and_a_closed_or_dropped_one_frees_its_place(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every dashboard tab keeps a live socket: past ``web.dashboard.max_connections`` a new
    one is closed at once with 1013 (try again later) and a sentence saying why, logged once
    however often it retries; the open ones keep getting every update, and one that closes,
    cleanly or by a dropped connection, makes room."""
    web = {
        "enabled": True,
        "port": 0,
        "overlay_key": OVERLAY_KEY,
        "dashboard": {"password": PASSWORD, "max_connections": 2},
    }
    async with running_dashboard(dashboard_config(db_path, web=web)) as rig, http_session() as http:
        csrf = await log_in(http, rig.url)
        url = f"{rig.url}/dashboard/ws"
        first = await http.ws_connect(url)
        # the second from a connection of its own, to be cut without a close frame below
        cut = aiohttp.ClientSession(cookie_jar=http.cookie_jar)
        second = await cut.ws_connect(url)
        await _open_pages(rig, 2)
        caplog.clear()
        for _ in range(3):  # a refused page retries (app.js reconnects by itself)
            async with http.ws_connect(url) as refused:
                closed = await refused.receive(timeout=5)
                assert closed.type == aiohttp.WSMsgType.CLOSE
                assert closed.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER
                assert closed.extra == (
                    "too many dashboard pages open: 2 (web.dashboard.max_connections)"
                )
        warnings = [r for r in caplog.records if "dashboard pages open" in r.getMessage()]
        assert len(warnings) == 1, caplog.text
        assert "web.dashboard.max_connections" in warnings[0].getMessage()
        assert rig.dashboard.live.connections.open == 2

        await rig.give(ALICE, 5)  # the pages already open still get every update
        user_id = await rig.app.engine.wallets.find_identity(ALICE)
        async with http.post(
            f"{rig.url}/dashboard/api/viewers/{user_id}/adjust",
            json={"amount": 5, "reason": "still live", "key": "d4" * 8},
            headers={"X-CSRF-Token": csrf},
        ) as adjusted:
            assert adjusted.status == 200
        for page in (first, second):
            message = await page.receive_json(timeout=5)
            assert "gave 5" in message["event"]["text"]

        await cut.close()  # the connection goes without a WebSocket close (a crashed tab)
        assert not second.closed  # (the client never said goodbye)
        await _open_pages(rig, 1)
        async with http.ws_connect(url) as again:
            await _open_pages(rig, 2)
            assert not again.closed
        await _open_pages(rig, 1)  # a clean close frees its place too
        await first.close()
        await _open_pages(rig, 0)
        assert rig.dashboard.live.connections.open == 0
        warnings = [r for r in caplog.records if "dashboard pages open" in r.getMessage()]
        assert len(warnings) == 1


async def _open_pages(rig: Rig, count: int) -> None:
    live = rig.dashboard.live

    async def settled() -> bool:
        return len(live.pages) == count and live.connections.open == count

    await eventually(settled, f"{count} live dashboard pages")


async def test_responses_forbid_framing_scripts_from_elsewhere_and_caching(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        async with http.get(f"{rig.url}/dashboard/login") as login:
            assert "script-src 'self'" in login.headers["Content-Security-Policy"]
            assert login.headers["X-Frame-Options"] == "DENY"
            assert login.headers["Cache-Control"] == "no-store"
            cookie = login.cookies[LOGIN_COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        response = await post_login(http, rig.url, PASSWORD)
        session = response.cookies[SESSION_COOKIE]
        assert session["httponly"] and session["samesite"] == "Strict"
        assert session["path"] == "/dashboard"


async def test_cookies_are_secure_only_when_web_secure_cookies_is_on(db_path: Path) -> None:
    """Behind a TLS reverse proxy the bot itself speaks plain HTTP, so it cannot tell the
    browser is on HTTPS: ``web.secure_cookies`` says so, and the session cookie (and the login
    form's) is marked Secure, never sent over plain HTTP. Off (the default), it is not."""
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        async with http.get(f"{rig.url}/dashboard/login") as login:
            assert not login.cookies[LOGIN_COOKIE]["secure"]
        response = await post_login(http, rig.url, PASSWORD)
        assert response.status == 303
        assert not response.cookies[SESSION_COOKIE]["secure"]

    web = {
        "enabled": True,
        "port": 0,
        "overlay_key": OVERLAY_KEY,
        "secure_cookies": True,
        "dashboard": {"password": PASSWORD},
    }
    async with running_dashboard(dashboard_config(db_path, web=web)) as rig:
        # a browser at https://... (the proxy's address): it keeps Secure cookies and sends them
        behind_tls = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=rig.url)
        async with aiohttp.ClientSession(cookie_jar=behind_tls) as http:
            async with http.get(f"{rig.url}/dashboard/login") as login:
                assert login.cookies[LOGIN_COOKIE]["secure"] is True
            response = await post_login(http, rig.url, PASSWORD)
            assert response.status == 303
            session = response.cookies[SESSION_COOKIE]
            assert session["secure"] is True and session["httponly"]
            assert session["samesite"] == "Strict" and session["path"] == "/dashboard"
            async with http.get(f"{rig.url}/dashboard/api/session") as answer:
                assert answer.status == 200 and (await answer.json())["operator"] == OPERATOR
        # plain HTTP: a Secure cookie never goes back, so no session is opened that way
        async with http_session() as plain:
            response = await post_login(plain, rig.url, PASSWORD)
            assert response.status == 403  # (the login form's own cookie did not come back)


async def _started(rig: Rig) -> bool:
    return rig.gate.started.is_set()


async def _verified(rig: Rig) -> None:
    from pixelbot.testing import assert_verified

    await assert_verified(rig.app.engine)
