"""The dashboard's login rules, on a fake clock: the password hash, the attempt limit, signed
session cookies that end, CSRF tokens, the login form's own token, the one-time link."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pixelbot.clock import FakeClock, utc
from pixelbot.web.auth import (
    ATTEMPT_WINDOW,
    ATTEMPTS,
    FAILURES,
    DashboardAuth,
    PasswordHash,
    clean_operator_name,
)

pytestmark = pytest.mark.no_database
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(2026, 12, 1, 20))


@pytest.fixture
def auth(clock: FakeClock) -> DashboardAuth:
    return DashboardAuth.create(clock, PASSWORD, timedelta(hours=12))


def test_the_password_is_kept_only_as_an_scrypt_hash() -> None:
    hashed = PasswordHash.of(PASSWORD)
    assert hashed.matches(PASSWORD)
    assert not hashed.matches(PASSWORD + " ")
    assert not hashed.matches("")
    assert PASSWORD.encode() not in hashed.digest + hashed.salt
    assert PasswordHash.of(PASSWORD).salt != hashed.salt  # a fresh salt each time


async def test_a_wrong_password_opens_no_session(auth: DashboardAuth) -> None:
    result = await auth.login_with_password("10.0.0.5", "mod", "guess")
    assert not result.ok and not result.throttled
    right = await auth.login_with_password("10.0.0.5", "mod", PASSWORD)
    assert right.ok and right.session is not None and right.session.operator == "mod"


async def test_after_five_tries_an_address_is_refused_until_the_window_moves(
    auth: DashboardAuth, clock: FakeClock
) -> None:
    for _ in range(ATTEMPTS):
        assert not (await auth.login_with_password("10.0.0.5", "mod", "guess")).ok
    refused = await auth.login_with_password("10.0.0.5", "mod", PASSWORD)  # even the right one
    assert refused.throttled and not refused.ok
    assert refused.retry_after == pytest.approx(ATTEMPT_WINDOW.total_seconds())
    # another address is not punished for it
    assert (await auth.login_with_password("10.0.0.6", "mod", PASSWORD)).ok
    clock.advance(ATTEMPT_WINDOW - timedelta(seconds=1))
    assert (await auth.login_with_password("10.0.0.5", "mod", PASSWORD)).throttled
    clock.advance(timedelta(seconds=1))
    assert (await auth.login_with_password("10.0.0.5", "mod", PASSWORD)).ok


async def test_many_addresses_guessing_make_every_password_login_wait(
    auth: DashboardAuth, clock: FakeClock
) -> None:
    """Five tries an address is no limit to someone with many addresses: past ``FAILURES``
    wrong passwords from anywhere in a window, password logins wait (sessions stay)."""
    for n in range(FAILURES):
        assert not (await auth.login_with_password(f"10.1.{n}.1", "x", "guess")).ok
    waiting = await auth.login_with_password("10.9.9.9", "mod", PASSWORD)
    assert waiting.throttled and not waiting.ok
    clock.advance(ATTEMPT_WINDOW)
    assert (await auth.login_with_password("10.9.9.9", "mod", PASSWORD)).ok


async def test_a_session_cookie_is_signed_and_ends(auth: DashboardAuth, clock: FakeClock) -> None:
    session = (await auth.login_with_password("ip", "mod", PASSWORD)).session
    assert session is not None
    cookie = auth.cookie_for(session)
    assert session.id in cookie  # the id, signed: a tampered id or signature is refused
    assert auth.session_for(cookie) is session
    assert auth.session_for(session.id) is None
    assert auth.session_for(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    other = DashboardAuth.create(clock, PASSWORD, timedelta(hours=12))  # another key
    assert other.session_for(cookie) is None
    assert auth.session_for(None) is None and auth.session_for("") is None
    clock.advance(timedelta(hours=12))
    assert auth.session_for(cookie) is None  # expired


async def test_logging_out_ends_the_session(auth: DashboardAuth) -> None:
    session = (await auth.login_with_password("ip", "mod", PASSWORD)).session
    assert session is not None
    cookie = auth.cookie_for(session)
    auth.close(session)
    assert auth.session_for(cookie) is None


async def test_csrf_tokens_belong_to_their_session(auth: DashboardAuth) -> None:
    one = (await auth.login_with_password("ip", "a", PASSWORD)).session
    two = (await auth.login_with_password("ip", "b", PASSWORD)).session
    assert one is not None and two is not None
    assert auth.csrf_ok(one, one.csrf)
    assert not auth.csrf_ok(one, two.csrf)
    assert not auth.csrf_ok(one, None)
    assert not auth.csrf_ok(one, "")
    assert not auth.csrf_ok(one, "tökén ✓")  # any text a request sends: refused, not a crash


def test_the_login_form_token_matches_its_cookie_and_expires(
    auth: DashboardAuth, clock: FakeClock
) -> None:
    cookie, token = auth.login_form_token()
    assert auth.login_form_ok(cookie, token)
    other_cookie, other_token = auth.login_form_token()
    assert not auth.login_form_ok(cookie, other_token)
    assert not auth.login_form_ok(None, token)
    assert not auth.login_form_ok(cookie, None)
    assert not auth.login_form_ok("forged." + token, token)
    clock.advance(auth.login_form_lifetime + timedelta(seconds=1))
    assert not auth.login_form_ok(other_cookie, other_token)


def test_a_one_time_link_works_once(clock: FakeClock) -> None:
    auth = DashboardAuth.create(clock, None, timedelta(hours=12))
    assert not auth.uses_password
    token = auth.new_link()
    assert auth.link_valid(token)
    assert not auth.login_with_link("ip", "streamer", "not-it").ok
    assert not auth.login_with_link("ip", "streamer", "ünïcode").ok
    assert auth.login_with_link("ip", "streamer", token).ok
    assert not auth.link_valid(token)
    assert not auth.login_with_link("ip", "streamer", token).ok  # spent
    fresh = auth.new_link()
    assert fresh != token and auth.link_valid(fresh)


async def test_with_a_password_there_is_no_link_login(auth: DashboardAuth) -> None:
    token = auth.new_link()
    assert not auth.login_with_link("ip", "mod", token).ok


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("  Mod  Alice ", "Mod Alice"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # text, shown as text
        ("", None),
        ("   ", None),
        ("x" * 33, None),
        ("bell\x07", None),
    ],
)
def test_operator_names(given: str, kept: str | None) -> None:
    assert clean_operator_name(given) == kept


def test_a_dashboard_other_machines_can_reach_needs_a_long_password() -> None:
    from pixelbot.config import Config

    web = {"enabled": True, "host": "0.0.0.0", "dashboard": {"password": "hunter2"}}
    with pytest.raises(ValueError, match="at least 12 characters"):
        Config.model_validate({"web": web})
    Config.model_validate({"web": {**web, "dashboard": {"password": PASSWORD}}})
    Config.model_validate({"web": {**web, "host": "127.0.0.1"}})  # this machine only
