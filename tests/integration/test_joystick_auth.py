"""``bot.py auth joystick``: the install URL, the code exchanged at the (fake) Joystick token
endpoint with the application's Basic key, the tokens encrypted in the vault."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from pixelbot.clock import FakeClock
from pixelbot.db.engine import Database
from pixelbot.vault import KEY_ENV, TokenVault
from tests.fakes import joystick_server as js
from tests.fakes.joystick_server import FakeJoystick
from tests.integration.test_cli import clean_env, write_config
from tests.integration.test_vault import bot

pytestmark = pytest.mark.sqlite_only("bot.py runs in a subprocess on the config's SQLite file")

ACCESS, REFRESH = "jt-access-0123456789", "jt-refresh-0123456789"


def config_for(tmp_path: Path, fake: FakeJoystick) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        tmp_path / "pixel.db",
        f"""
        platforms:
          joystick:
            enabled: false
            client_id: "{js.CLIENT_ID}"
            client_secret: "{js.CLIENT_SECRET}"
            api_url: "{fake.api_url}"
        """,
    )


async def test_auth_joystick_prints_the_install_url_then_stores_the_code_s_tokens(
    tmp_path: Path,
) -> None:
    key = Fernet.generate_key()
    async with FakeJoystick() as fake:
        fake.codes["code-1"] = {
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "bot",
            "channel_id": js.CHANNEL,
        }
        config = config_for(tmp_path, fake)
        env = clean_env(**{KEY_ENV: key.decode()})
        code, out, err = await bot(
            "auth", "joystick", "--config", config, "--code", "code-1", env=env
        )
        assert (code, err) == (0, "")
        assert out == f"stored the joystick token of the install {js.CHANNEL} (scopes: bot)\n"
        assert ACCESS not in out

        again_code, _, again_err = await bot(
            "auth", "joystick", "--config", config, "--code", "code-1", env=env
        )  # a code works once
        assert again_code == 1
        assert again_err.startswith("error: joystick: the code was refused (invalid_grant)")

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}")
        try:
            stored = await TokenVault(db, key, FakeClock()).get("joystick", js.CHANNEL)
        finally:
            await db.dispose()
        assert stored is not None
        assert (stored.access_token, stored.refresh_token, stored.scopes) == (
            ACCESS,
            REFRESH,
            ("bot",),
        )
        assert ACCESS.encode() not in (tmp_path / "pixel.db").read_bytes()


async def test_without_a_code_it_shows_where_to_install_and_asks(tmp_path: Path) -> None:
    async with FakeJoystick() as fake:
        config = config_for(tmp_path, fake)
        env = clean_env(**{KEY_ENV: Fernet.generate_key().decode()})
        code, out, err = await bot("auth", "joystick", "--config", config, env=env)
    # stdin is empty: the prompt gets no code and click aborts, after the URL was shown
    assert code == 1, (out, err)
    url = next(line for line in out.splitlines() if line.startswith("http"))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == fake.api_url
    assert parts.path == "/api/oauth/authorize"
    query = parse_qs(parts.query)
    assert query["client_id"] == [js.CLIENT_ID] and query["scope"] == ["bot"]
    assert len(query["state"][0]) >= 16
    assert js.CLIENT_SECRET not in out + err
