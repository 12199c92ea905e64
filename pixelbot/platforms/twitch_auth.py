"""Twitch tokens in and out of the vault: validating a token obtained elsewhere, refreshing.

``bot.py auth twitch --access-token T --refresh-token R`` asks Twitch whose token it is
(``GET /oauth2/validate``: user id, login, scopes, seconds left) and stores it under that
account. Nothing here prints or logs a token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from pixelbot.errors import PlatformAuthError, PlatformError
from pixelbot.vault import Token

__all__ = [
    "REQUIRED_SCOPES",
    "DeviceTokens",
    "Validated",
    "device_code_flow",
    "token_from_validation",
    "validate",
]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

PLATFORM = "twitch"

# What each account needs for what the adapter does (Twitch EventSub subscription types).
REQUIRED_SCOPES = {
    "bot": ("user:read:chat", "user:write:chat", "user:bot"),
    "broadcaster": (
        "channel:bot",
        "moderator:read:followers",
        "channel:read:subscriptions",
        "bits:read",
        "channel:manage:redemptions",
        "moderator:manage:banned_users",
        "moderator:read:chatters",
    ),
}


@dataclass(frozen=True)
class Validated:
    user_id: str
    login: str
    client_id: str
    scopes: tuple[str, ...]
    expires_in: int


async def validate(access_token: str, auth_url: str) -> Validated:
    """Ask Twitch whose token this is. ``PlatformAuthError`` if Twitch refuses it."""
    url = auth_url.rstrip("/") + "/oauth2/validate"
    headers = {"Authorization": f"OAuth {access_token}"}
    try:
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            if resp.status == 401:
                raise PlatformAuthError("twitch: the token is invalid or revoked; get a new one")
            if resp.status != 200:
                raise PlatformError(f"twitch: validating the token failed (HTTP {resp.status})")
            body = await resp.json()
    except aiohttp.ClientError as exc:
        raise PlatformError(f"twitch: cannot reach {auth_url} ({type(exc).__name__})") from None
    return Validated(
        user_id=str(body["user_id"]),
        login=str(body.get("login", "")),
        client_id=str(body.get("client_id", "")),
        scopes=tuple(sorted(body.get("scopes") or ())),
        expires_in=int(body.get("expires_in", 0)),
    )


def token_from_validation(
    access_token: str, refresh_token: str | None, found: Validated, now: datetime
) -> Token:
    expires = now + timedelta(seconds=found.expires_in) if found.expires_in else None
    return Token(PLATFORM, found.user_id, access_token, refresh_token, found.scopes, expires)


@dataclass(frozen=True)
class DeviceTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


async def _post(session: aiohttp.ClientSession, url: str, form: dict[str, str]) -> tuple[int, Any]:
    async with session.post(url, data=form) as resp:
        return resp.status, await resp.json(content_type=None)


async def device_code_flow(
    client_id: str,
    scopes: tuple[str, ...],
    auth_url: str,
    show: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> DeviceTokens:
    """Twitch's Device Code grant: show the operator where to go and which code to enter,
    then poll until they have allowed (or refused) the bot. No browser on this machine and no
    redirect URL are needed, which suits a bot on a headless box."""
    base = auth_url.rstrip("/")
    wanted = " ".join(scopes)
    try:
        async with aiohttp.ClientSession() as session:
            status, body = await _post(
                session, f"{base}/oauth2/device", {"client_id": client_id, "scopes": wanted}
            )
            if status != 200:
                message = body.get("message", "") if isinstance(body, dict) else ""
                raise PlatformAuthError(f"twitch: could not start the login ({status} {message})")
            show(
                f"Open {body['verification_uri']} and enter the code {body['user_code']} "
                "(logged in as the account this token is for)."
            )
            interval = float(body.get("interval", 5))
            form = {
                "client_id": client_id,
                "scopes": wanted,
                "device_code": body["device_code"],
                "grant_type": DEVICE_GRANT,
            }
            while True:
                await sleep(interval)
                status, body = await _post(session, f"{base}/oauth2/token", form)
                if status == 200:
                    return DeviceTokens(body["access_token"], body["refresh_token"])
                message = body.get("message", "") if isinstance(body, dict) else ""
                if message == "authorization_pending":
                    continue
                if message == "slow_down":
                    interval += 5
                    continue
                raise PlatformAuthError(f"twitch: the login did not complete ({message or status})")
    except aiohttp.ClientError as exc:
        raise PlatformError(f"twitch: cannot reach {auth_url} ({type(exc).__name__})") from None
