"""The overlay key: the read-only secret in every overlay URL.

``web.overlay_key`` in the config (e.g. ``${PIXELBOT_OVERLAY_KEY}``) wins. Without it a key is
generated on first start and kept in the token vault (encrypted like an OAuth token), so the
URLs the streamer pasted into OBS keep working after a restart. ``bot.py web urls`` prints them.
"""

from __future__ import annotations

import secrets

from pixelbot.clock import Clock
from pixelbot.config.web import WebSettings
from pixelbot.db.engine import Database
from pixelbot.vault import Token, TokenVault, load_key

__all__ = ["VAULT_ACCOUNT", "VAULT_PLATFORM", "new_overlay_key", "overlay_key", "overlay_lines"]

OVERLAY_PAGES = ("wheel", "alerts", "tts", "now")

VAULT_PLATFORM = "web"
VAULT_ACCOUNT = "overlay"


async def overlay_key(settings: WebSettings, db: Database, clock: Clock) -> str:
    if settings.overlay_key is not None:
        return settings.overlay_key.get_secret_value()
    vault = TokenVault(db, load_key(), clock)
    stored = await vault.get(VAULT_PLATFORM, VAULT_ACCOUNT)
    if stored is not None:
        return stored.access_token
    return await new_overlay_key(db, clock)


async def new_overlay_key(db: Database, clock: Clock) -> str:
    """Generate and keep a new key: every overlay URL with the old one stops working."""
    key = secrets.token_urlsafe(24)
    await TokenVault(db, load_key(), clock).store(Token(VAULT_PLATFORM, VAULT_ACCOUNT, key))
    return key


def overlay_lines(settings: WebSettings, key: str, base: str | None = None) -> list[str]:
    """``name: URL`` for each overlay, as printed at start and by ``bot.py web urls``."""
    if base is None:
        host = settings.host
        base = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    return [f"{name:>6}: {base}/overlay/{name}?key={key}" for name in OVERLAY_PAGES]
