"""The ``web:`` section: defaults an old config keeps, and bad values named by path and line;
``bot.py web urls`` prints the overlay URLs with a key that stays the same."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pixelbot.cli import main
from pixelbot.config import Config, load_config
from pixelbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    return [str(issue) for issue in exc.value.issues]


def test_a_config_without_web_gets_the_defaults() -> None:
    web = Config().web
    assert (web.enabled, web.host, web.port, web.overlay_key) == (False, "127.0.0.1", 8480, None)
    assert web.local_only
    assert web.overlays.wheel.wait is False
    assert web.overlays.max_connections == 32
    assert web.dashboard.max_connections == 16
    assert web.secure_cookies is False
    assert Config().tts.output == "local"


def test_the_shipped_config_serves_the_overlays() -> None:
    web = load_config(REPO / "config.yaml", env={}).web
    assert web.enabled and web.host == "127.0.0.1"


def test_bad_web_values_are_named_with_their_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        web:
          port: 70000
          overlay_key: short
          overlays:
            alerts:
              tip: {text: "{user} cheered {bits}"}
              raid: {text: "raid!", sound: ../../secret.key}
        """,
    )
    assert found == [
        "web.port: must be <= 65535 (config.yaml line 2)",
        "web.overlay_key: must be at least 16 characters (anyone who guesses it sees it) "
        "(config.yaml line 3)",
        "web.overlays.alerts.tip.text: uses {bits}; usable here: {amount}, {currency}, "
        "{message}, {points}, {user} (config.yaml line 6)",
        "web.overlays.alerts.raid.sound: must be a file name in sounds_dir, not a path "
        "(config.yaml line 7)",
    ]


def test_a_bad_connection_cap_is_named_with_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        web:
          overlays:
            max_connections: 0
        """,
    )
    assert found == ["web.overlays.max_connections: must be >= 1 (config.yaml line 3)"]


def test_a_bad_dashboard_connection_cap_is_named_with_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        web:
          dashboard:
            session: 1h
            max_connections: lots
        """,
    )
    assert found == ["web.dashboard.max_connections: must be an integer (config.yaml line 4)"], (
        found
    )
    found = problems(tmp_path, "web:\n  dashboard:\n    max_connections: 0\n")
    assert found == ["web.dashboard.max_connections: must be >= 1 (config.yaml line 3)"]


def test_a_secure_cookies_value_that_is_not_true_or_false_is_named_with_its_line(
    tmp_path: Path,
) -> None:
    found = problems(tmp_path, "web:\n  secure_cookies: sometimes\n")
    assert found == ["web.secure_cookies: must be true or false (config.yaml line 2)"]


def test_tts_on_the_overlay_needs_the_web_server(tmp_path: Path) -> None:
    found = problems(tmp_path, "tts:\n  output: overlay\nweb:\n  enabled: false\n")
    assert found == ["tts.output: overlay needs the web server (web.enabled) (config.yaml line 2)"]


def bot_web(tmp_path: Path, env: dict[str, str | None], command: str = "urls") -> Result:
    """``bot.py web COMMAND`` (in-process, through the real click command)."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f'database: {{url: "sqlite+aiosqlite:///{tmp_path / "pixel.db"}"}}\n'
        'web: {enabled: true, port: 8555, overlay_key: "${PIXELBOT_OVERLAY_KEY:-}"}\n',
        encoding="utf-8",
    )
    return CliRunner().invoke(main, ["web", command, "--config", str(config)], env=env)


def own_key_file(tmp_path: Path) -> dict[str, str | None]:
    return {
        "PIXELBOT_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
        "PIXELBOT_SECRET_KEY": None,
        "PIXELBOT_OVERLAY_KEY": None,
    }


def test_web_urls_prints_each_overlay_with_a_key_that_stays(tmp_path: Path) -> None:
    env = own_key_file(tmp_path)
    first = bot_web(tmp_path, env)
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["wheel", "alerts", "tts", "now"]
    key = lines[0].rsplit("key=", 1)[1]
    assert len(key) >= 24
    assert lines[0] == f" wheel: http://127.0.0.1:8555/overlay/wheel?key={key}"
    assert bot_web(tmp_path, env).stdout == first.stdout  # kept in the database ...
    assert key.encode() not in (tmp_path / "pixel.db").read_bytes()  # ... encrypted
    # a leaked key is replaced
    renewed = bot_web(tmp_path, env, "new-key").stdout
    assert renewed != first.stdout
    assert bot_web(tmp_path, env).stdout == renewed


def test_web_urls_uses_the_configured_key(tmp_path: Path) -> None:
    chosen = "my-own-overlay-key-1234"
    result = bot_web(tmp_path, {**own_key_file(tmp_path), "PIXELBOT_OVERLAY_KEY": chosen})
    assert result.exit_code == 0, result.output
    assert f"/overlay/now?key={chosen}" in result.stdout
    refused = bot_web(
        tmp_path, {**own_key_file(tmp_path), "PIXELBOT_OVERLAY_KEY": chosen}, "new-key"
    )
    assert refused.exit_code == 2
    assert "web.overlay_key is set in the config" in refused.output


def test_run_prints_the_overlay_urls_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f'database: {{url: "sqlite+aiosqlite:///{tmp_path / "pixel.db"}"}}\n'
        'web: {enabled: true, port: 0, overlay_key: "a-key-for-this-test-only"}\n'
        "tts: {player: none}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["run", "--config", str(config)], input="/quit\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Overlays for OBS")))
    base = lines[start].rsplit(" ", 1)[1].rstrip(":")
    assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
    assert lines[start + 1 : start + 5] == [
        f"{name:>6}: {base}/overlay/{name}?key=a-key-for-this-test-only"
        for name in ("wheel", "alerts", "tts", "now")
    ]
