"""The token vault on a real SQLite file, and ``bot.py auth`` in a real subprocess against the
fake Twitch: tokens are stored only as ciphertext, a wrong key is one line and exit 2, and no
token reaches the output."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pixelbot.clock import FakeClock, utc
from pixelbot.db import migrate
from pixelbot.db.engine import Database
from pixelbot.errors import VaultError
from pixelbot.vault import KEY_ENV, Token, TokenVault, load_key
from tests.fakes import twitch_payloads as p
from tests.fakes.twitch_server import FakeTwitch
from tests.integration.test_cli import clean_env, write_config

REPO = Path(__file__).resolve().parents[2]
ACCESS = "access-SECRET-d41d8cd98f00b204"
REFRESH = "refresh-SECRET-e9800998ecf8427e"


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}")
    await migrate.upgrade(database)
    yield database  # type: ignore[misc]
    await database.dispose()


def read_bytes(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


async def test_tokens_round_trip_and_are_not_in_the_database_files(
    db: Database, tmp_path: Path
) -> None:
    key = Fernet.generate_key()
    vault = TokenVault(db, key, FakeClock())
    expires = utc(2026, 2, 1, 0, 0, 0)
    await vault.store(
        Token("twitch", "904", ACCESS, REFRESH, ("user:bot", "user:read:chat"), expires)
    )
    await vault.store(Token("twitch", "904", ACCESS + "2", REFRESH + "2", ("user:bot",), expires))
    got = await vault.get("twitch", "904")
    assert got == Token("twitch", "904", ACCESS + "2", REFRESH + "2", ("user:bot",), expires)
    assert [i.account_id for i in await vault.list()] == ["904"]
    files = b"".join(read_bytes(tmp_path / name) for name in ("pixel.db", "pixel.db-wal"))
    assert len(files) > 0
    for secret in (ACCESS, REFRESH, "SECRET"):
        assert secret.encode() not in files
    assert b"user:bot" in files  # scopes are not secret: the grep does see plain text


async def test_a_wrong_key_is_one_clear_error(db: Database) -> None:
    await TokenVault(db, Fernet.generate_key(), FakeClock()).store(Token("twitch", "1", ACCESS))
    other = TokenVault(db, Fernet.generate_key(), FakeClock())
    with pytest.raises(VaultError) as caught:
        await other.tokens("twitch")
    assert str(caught.value) == "cannot decrypt the stored tokens: PIXELBOT_SECRET_KEY changed?"
    assert caught.value.__suppress_context__  # the ciphertext error is not chained in
    with pytest.raises(VaultError):
        await other.list()


def test_tokens_stay_out_of_repr() -> None:
    text = repr(Token("twitch", "904", ACCESS, REFRESH, ("user:bot",)))
    assert ACCESS not in text and REFRESH not in text
    assert "904" in text


def test_the_key_file_is_made_once_for_its_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "secret.key"
    first = load_key({}, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key({}, key_file) == first
    env_key = Fernet.generate_key()
    assert load_key({KEY_ENV: env_key.decode()}, key_file) == env_key  # the environment wins


def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="PIXELBOT_SECRET_KEY is not a vault key"):
        load_key({KEY_ENV: "hunter2"}, tmp_path / "k")


# ---------------------------------------------------------------------------- bot.py auth


async def bot(*args: str | Path, env: dict[str, str]) -> tuple[int, str, str]:
    """``python bot.py ARGS`` in a subprocess, while the fake Twitch runs on this loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "bot.py",
        *map(str, args),
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)  # a hang guard
    return proc.returncode or 0, out.decode(), err.decode()


async def test_auth_twitch_stores_the_token_and_auth_list_names_it(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    async with FakeTwitch() as twitch:
        twitch.add_user_token(ACCESS, REFRESH, p.BOT, ["user:bot", "user:read:chat"])
        config = write_config(
            tmp_path / "config.yaml",
            tmp_path / "pixel.db",
            f"""
            platforms:
              twitch:
                enabled: false
                channel: streamer
                bot_id: "904"
                auth_url: "{twitch.auth_url}"
            """,
        )
        env = clean_env(**{KEY_ENV: key})
        code, out, err = await bot(
            "-v", "auth", "twitch", "--config", config, "--access-token", ACCESS,
            "--refresh-token", REFRESH, env=env,
        )  # fmt: skip
        assert (code, err.count("SECRET")) == (0, 0), err
        assert out.splitlines() == [
            "stored the twitch token of pixelbot (user id 904, bot account)",
            "scopes: user:bot user:read:chat",
            "missing scopes for the bot account: user:write:chat",
        ]
        code, out, err = await bot("-v", "auth", "list", "--config", config, env=env)
        assert code == 0, err
        assert out.startswith("twitch 904: user:bot user:read:chat; expires ")
        assert "SECRET" not in out + err

        wrong = clean_env(**{KEY_ENV: Fernet.generate_key().decode()})
        code, out, err = await bot("auth", "list", "--config", config, env=wrong)
        assert (code, out) == (2, "")
        assert err == "error: cannot decrypt the stored tokens: PIXELBOT_SECRET_KEY changed?\n"

        twitch.expire(ACCESS)
        code, out, err = await bot(
            "auth", "twitch", "--config", config, "--access-token", ACCESS, env=env
        )
        assert code == 1
        assert err == "error: twitch: the token is invalid or revoked; get a new one\n"


async def test_auth_uses_a_key_file_beside_nothing_else(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    key_file = tmp_path / "keys" / "secret.key"
    env = clean_env(PIXELBOT_SECRET_KEY_FILE=str(key_file))
    env.pop(KEY_ENV, None)
    code, out, _ = await bot("auth", "list", "--config", config, env=env)
    assert (code, out) == (0, "no tokens stored (python bot.py auth twitch --help)\n")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


async def test_auth_twitch_logs_in_by_device_code(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    async with FakeTwitch() as twitch:
        twitch.device_login = (p.BROADCASTER, ["channel:bot", "moderator:read:followers"])
        twitch.device_pending_polls = 2  # the streamer takes a moment to type the code
        config = write_config(
            tmp_path / "config.yaml",
            tmp_path / "pixel.db",
            f"""
            platforms:
              twitch:
                enabled: false
                channel: streamer
                bot_id: "904"
                client_id: fake-client-id
                auth_url: "{twitch.auth_url}"
            """,
        )
        env = clean_env(**{KEY_ENV: key})
        code, out, err = await bot(
            "auth", "twitch", "--account", "broadcaster", "--config", config, env=env
        )
        assert code == 0, err
        assert out.splitlines()[0] == (
            "Open https://www.twitch.tv/activate?device-code=ABCDEFGH and enter the code "
            "ABCDEFGH (logged in as the account this token is for)."
        )
        assert out.splitlines()[1:3] == [
            "stored the twitch token of streamer (user id 1971641, broadcaster account)",
            "scopes: channel:bot moderator:read:followers",
        ]
        assert out.splitlines()[3].startswith("missing scopes for the broadcaster account: ")
        assert twitch.device_requests[0]["scopes"].split() == [
            "channel:bot",
            "moderator:read:followers",
            "channel:read:subscriptions",
            "bits:read",
            "channel:manage:redemptions",
            "moderator:manage:banned_users",
            "moderator:read:chatters",
        ]
        assert "dcf-access" not in out + err
        code, out, _ = await bot("auth", "list", "--config", config, env=env)
        assert out.startswith("twitch 1971641: channel:bot moderator:read:followers; expires ")


async def test_run_with_twitch_and_a_changed_key_exits_2(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        tmp_path / "pixel.db",
        """
        platforms:
          twitch: {enabled: true, channel: streamer, bot_id: "904", client_id: a, client_secret: b}
        """,
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}")
    try:
        await migrate.upgrade(db)
        await TokenVault(db, Fernet.generate_key(), FakeClock()).store(Token("twitch", "1", ACCESS))
    finally:
        await db.dispose()
    env = clean_env(**{KEY_ENV: Fernet.generate_key().decode()})
    code, out, err = await bot("run", "--config", config, env=env)
    assert (code, out) == (2, "")
    assert err == "error: cannot decrypt the stored tokens: PIXELBOT_SECRET_KEY changed?\n"
