"""Twitch tokens in and out of the vault: validating a token obtained elsewhere, refreshing.

``bot.py auth twitch --access-token T --refresh-token R`` asks Twitch whose token it is
(``GET /oauth2/validate``: user id, login, scopes, seconds left) and stores it under that
account. Nothing here prints or logs a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from pixelbot.errors import PlatformAuthError, PlatformError
from pixelbot.vault import Token

__all__ = ["REQUIRED_SCOPES", "Validated", "token_from_validation", "validate"]

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
