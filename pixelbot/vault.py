"""The token vault: platform OAuth tokens, encrypted at rest, for every platform.

Tokens live in the ``platform_tokens`` table, one row per platform account (the Twitch bot
account, the broadcaster account, ...). The access and refresh tokens are stored only as
Fernet ciphertext (AES-128-CBC + HMAC-SHA256, from ``cryptography``), so a copied database
file, a backup or its WAL gives nothing away without the key.

The key comes from ``PIXELBOT_SECRET_KEY`` (a Fernet key: 32 url-safe base64 bytes). Where
that is unset it comes from a key file, created with mode 0600 on first use; the operator backs
it up separately from the database (a backup of both in one place protects nothing).

Tokens never reach a log line, an exception or ``repr``: ``Token`` hides them, and a token that
cannot be decrypted (a changed key) raises ``VaultError`` with one line that says so, without
the ciphertext. Platform libraries' own token files are never used: adapters load and save
through this module.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.errors import VaultError

__all__ = [
    "DEFAULT_KEY_FILE",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "Token",
    "TokenInfo",
    "TokenVault",
    "load_key",
]

KEY_ENV = "PIXELBOT_SECRET_KEY"
KEY_FILE_ENV = "PIXELBOT_SECRET_KEY_FILE"
DEFAULT_KEY_FILE = Path("data/secret.key")  # beside the default database, relative to the cwd
TOKENS = Base.metadata.tables["platform_tokens"]
WRONG_KEY = "cannot decrypt the stored tokens: PIXELBOT_SECRET_KEY changed?"


@dataclass(frozen=True)
class Token:
    """One account's OAuth tokens. The secrets are left out of ``repr`` (and so of logs)."""

    platform: str
    account_id: str  # the platform's user id of the account the token acts as
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None

    def info(self) -> TokenInfo:
        return TokenInfo(self.platform, self.account_id, self.scopes, self.expires_at)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a stored token: whose it is, what it may do, until when."""

    platform: str
    account_id: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


def _check_key(raw: bytes, where: str) -> bytes:
    key = raw.strip()
    try:
        if len(base64.urlsafe_b64decode(key)) == 32:
            return key
    except (binascii.Error, ValueError):
        pass
    raise VaultError(
        f"{where} is not a vault key (32 url-safe base64 bytes); make one with "
        "`python bot.py auth new-key`"
    )


def load_key(env: Mapping[str, str] | None = None, key_file: Path | None = None) -> bytes:
    """The vault key: ``PIXELBOT_SECRET_KEY`` if set, else the key file
    (``PIXELBOT_SECRET_KEY_FILE``, default ``data/secret.key``), made on first use, readable
    by its owner only."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return _check_key(env[KEY_ENV].encode(), KEY_ENV)
    if key_file is None:
        key_file = Path(env[KEY_FILE_ENV]) if env.get(KEY_FILE_ENV) else DEFAULT_KEY_FILE
    if key_file.exists():
        return _check_key(key_file.read_bytes(), str(key_file))
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not each write a different key
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _check_key(key_file.read_bytes(), str(key_file))
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key


class TokenVault:
    """Stores and reads ``Token`` rows; encrypts on the way in, decrypts on the way out."""

    def __init__(self, db: Database, key: bytes, clock: Clock, *, owns_db: bool = False) -> None:
        self._db = db
        self._fernet = Fernet(key)
        self._clock = clock
        self._owns_db = owns_db

    @classmethod
    def open(cls, database_url: str, clock: Clock) -> TokenVault:
        """A vault on a database connection of its own (a platform keeping its tokens), with
        the key from the environment or the key file."""
        return cls(Database(database_url), load_key(), clock, owns_db=True)

    async def close(self) -> None:
        if self._owns_db:
            await self._db.dispose()

    def _decrypt(self, blob: bytes) -> str:
        try:
            return self._fernet.decrypt(blob).decode()
        except InvalidToken:
            raise VaultError(WRONG_KEY) from None

    async def store(self, token: Token) -> None:
        """Insert or replace the token of ``(platform, account_id)``."""
        now = self._clock.now()
        refresh = token.refresh_token
        stmt = self._db.upsert(
            TOKENS,
            ["platform", "channel_id"],
            ["access_token_enc", "refresh_token_enc", "scopes", "expires_at", "updated_at"],
        )
        values = {
            "platform": token.platform,
            "channel_id": token.account_id,
            "access_token_enc": self._fernet.encrypt(token.access_token.encode()),
            "refresh_token_enc": None
            if refresh is None
            else self._fernet.encrypt(refresh.encode()),
            "scopes": " ".join(token.scopes),
            "expires_at": token.expires_at,
            "created_at": now,
            "updated_at": now,
        }
        async with self._db.write() as conn:
            await conn.execute(stmt, values)

    async def get(self, platform: str, account_id: str) -> Token | None:
        for token in await self.tokens(platform):
            if token.account_id == account_id:
                return token
        return None

    async def tokens(self, platform: str) -> list[Token]:
        """Every stored token of ``platform``, decrypted (``VaultError`` with a wrong key)."""
        query = select(TOKENS).where(TOKENS.c.platform == platform).order_by(TOKENS.c.channel_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Token(
                platform=row.platform,
                account_id=row.channel_id,
                access_token=self._decrypt(row.access_token_enc),
                refresh_token=None
                if row.refresh_token_enc is None
                else self._decrypt(row.refresh_token_enc),
                scopes=tuple(row.scopes.split()),
                expires_at=row.expires_at,
            )
            for row in rows
        ]

    async def list(self) -> list[TokenInfo]:
        """What is stored, for every platform, without the secrets. Decrypts each token so a
        wrong key shows here too, not first when a platform starts."""
        query = select(TOKENS).order_by(TOKENS.c.platform, TOKENS.c.channel_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            self._decrypt(row.access_token_enc)
        return [
            TokenInfo(row.platform, row.channel_id, tuple(row.scopes.split()), row.expires_at)
            for row in rows
        ]

    async def remove(self, platform: str, account_id: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                TOKENS.delete().where(
                    (TOKENS.c.platform == platform) & (TOKENS.c.channel_id == account_id)
                )
            )
