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

__all__ = ["VAULT_ACCOUNT", "VAULT_PLATFORM", "overlay_key"]

VAULT_PLATFORM = "web"
VAULT_ACCOUNT = "overlay"


async def overlay_key(settings: WebSettings, db: Database, clock: Clock) -> str:
    if settings.overlay_key is not None:
        return settings.overlay_key.get_secret_value()
    vault = TokenVault(db, load_key(), clock)
    stored = await vault.get(VAULT_PLATFORM, VAULT_ACCOUNT)
    if stored is not None:
        return stored.access_token
    key = secrets.token_urlsafe(24)
    await vault.store(Token(VAULT_PLATFORM, VAULT_ACCOUNT, key))
    return key
