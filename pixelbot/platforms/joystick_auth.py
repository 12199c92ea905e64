"""Joystick.tv credentials: the gateway's basic key, and the OAuth install of the bot.

Two different secrets, as Joystick's developer page and its example bot use them:

- the **gateway** (``wss://joystick.tv/cable?token=...``) takes the bot application's *basic
  key*, ``base64(client_id:client_secret)``; it needs no per-streamer token;
- a streamer **installs** the bot through OAuth's authorization-code flow: the install URL
  (``/api/oauth/authorize?client_id=...&scope=bot&state=...``) sends them back with a ``code``,
  which is exchanged at ``POST /api/oauth/token`` (Basic auth with the same key; the
  parameters in the query string, as Joystick's example does). The access token serves
  Joystick's REST endpoints; ``bot.py auth joystick`` stores it in the vault.

Nothing here prints or logs a secret.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp

from pixelbot.errors import PlatformAuthError, PlatformError
from pixelbot.vault import Token

__all__ = ["PLATFORM", "SCOPE", "basic_key", "exchange_code", "install_url", "new_state"]

PLATFORM = "joystick"
SCOPE = "bot"


def basic_key(client_id: str, client_secret: str) -> str:
    """The bot application's key for the gateway and the token endpoint."""
    return base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def new_state() -> str:
    """An unguessable ``state`` for one install (checked when the code comes back)."""
    return secrets.token_urlsafe(16)


def install_url(api_url: str, client_id: str, state: str) -> str:
    """Where the streamer goes to install (authorize) the bot on their channel."""
    query = urlencode({"client_id": client_id, "scope": SCOPE, "state": state})
    return f"{api_url.rstrip('/')}/api/oauth/authorize?{query}"


async def exchange_code(
    api_url: str, client_id: str, client_secret: str, code: str, now: datetime
) -> Token:
    """Trade an authorization code for the install's tokens (``PlatformAuthError`` if refused)."""
    code = code.strip()
    if not code:
        raise PlatformAuthError("joystick: no authorization code was given")
    query = urlencode({"redirect_uri": "/unused", "code": code, "grant_type": "authorization_code"})
    url = f"{api_url.rstrip('/')}/api/oauth/token?{query}"
    headers = {
        "Authorization": f"Basic {basic_key(client_id, client_secret)}",
        "Content-Type": "application/json",
    }
    try:
        async with aiohttp.ClientSession() as session, session.post(url, headers=headers) as resp:
            body: Any = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, ValueError) as exc:
        raise PlatformError(f"joystick: cannot reach {api_url} ({type(exc).__name__})") from None
    if status in (400, 401, 403):
        why = body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
        raise PlatformAuthError(
            f"joystick: the code was refused ({why or status}); install the bot again for a "
            "new code (a code works once)"
        )
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        raise PlatformError(f"joystick: the token exchange failed (HTTP {status})")
    expires_in = body.get("expires_in")
    expires = now + timedelta(seconds=int(expires_in)) if expires_in else None
    account = str(
        body.get("channel_id") or body.get("user_id") or body.get("username") or "install"
    )
    scopes = tuple(str(body.get("scope") or SCOPE).split())
    return Token(
        PLATFORM,
        account,
        str(body["access_token"]),
        str(body["refresh_token"]) if body.get("refresh_token") else None,
        scopes,
        expires,
    )
