"""The dashboard's start rule: on an address other machines can reach, it needs a password,
and the bot refuses to start without one, with a line that names the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pixelbot.config import load_config
from pixelbot.errors import ConfigError

pytestmark = pytest.mark.no_database
REPO = Path(__file__).resolve().parents[2]


def public_config(path: Path, host: str) -> Path:
    path.write_text(
        "bot: {name: Pixel}\n"
        "web:\n"
        "  enabled: true\n"
        f'  host: "{host}"\n'
        "  dashboard:\n"
        '    password: "${PIXELBOT_DASHBOARD_PASSWORD:-}"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_public_address_without_a_password_refuses_to_start(
    tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIXELBOT_DASHBOARD_PASSWORD", raising=False)
    path = public_config(tmp_path / "config.yaml", host)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    [issue] = refused.value.issues
    assert issue.path == "web.host" and issue.line == 4
    assert "needs a password" in issue.message and "PIXELBOT_DASHBOARD_PASSWORD" in issue.message
    # with the password set it starts; on 127.0.0.1 it needs none
    monkeypatch.setenv("PIXELBOT_DASHBOARD_PASSWORD", "a long enough password")
    assert load_config(path).web.host == host
    monkeypatch.delenv("PIXELBOT_DASHBOARD_PASSWORD")
    path.write_text(path.read_text(encoding="utf-8").replace(host, "127.0.0.1"), encoding="utf-8")
    assert load_config(path).web.dashboard.password is None


def test_bot_py_run_refuses_to_start_on_0_0_0_0_without_a_password(tmp_path: Path) -> None:
    config = public_config(tmp_path / "config.yaml", "0.0.0.0")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    ran = subprocess.run(
        [sys.executable, "bot.py", "run", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,  # a hang guard: it must stop at once
    )
    assert ran.returncode == 2
    assert "web.host: 0.0.0.0 can be reached from other machines" in ran.stderr
    assert "config.yaml line 4" in ran.stderr
    assert "nothing was started" in ran.stderr
    assert not (tmp_path / "data").exists()  # no database was opened
