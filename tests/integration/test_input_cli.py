"""Hostile input through the real console (issue 11): invalid UTF-8 in a script and on a
strict or lenient stdin, 100 KB messages and names, odd digits, /timeout 0 and tiny tips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_cli import REPO, clean_env, write_config

pytestmark = pytest.mark.sqlite_only(
    "input handling does not depend on the database; these run the CLI on a SQLite file"
)


def run(config: Path, *args: str, stdin: bytes, **env: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "bot.py", "console", "--config", str(config), *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        env=clean_env(**env),
        timeout=120,  # a hang guard, not a timing assertion
    )
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, err
    assert "Traceback" not in err
    return out, err


def test_invalid_utf8_in_a_script_is_replaced_and_the_run_goes_on(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    script = tmp_path / "script.txt"
    script.write_bytes(b"/follow alice\nalice: !give \xff\xfe 5\n/follow bob\nalice: !points\n")
    out, _ = run(config, "--script", str(script), stdin=b"")
    assert "Thanks for the follow, alice!" in out
    assert "@alice '\ufffd\ufffd' is not a viewer's name" in out  # the bad line, processed
    assert "Thanks for the follow, bob!" in out  # and the lines after it
    assert "@alice you have 51 pixels" in out


def test_invalid_utf8_on_a_strict_stdin_keeps_the_live_console_running(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    lines = b"/follow alice\nalice: hi \xff there\nalice: !give \xc3 5\n/follow bob\n/quit\n"
    out, _ = run(config, stdin=lines, PYTHONIOENCODING="utf-8:strict")
    assert "@alice '\ufffd' is not a viewer's name" in out
    assert "Thanks for the follow, bob!" in out
    assert out.rstrip().endswith("Pixel: Bye!")


def test_invalid_utf8_on_a_lenient_stdin_gets_a_reply(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    lines = b"b\xffb: hello\nalice: !points b\xffb\n/quit\n"
    out, _ = run(config, stdin=lines, PYTHONIOENCODING="utf-8:surrogateescape")
    assert "Pixel: @alice 'b\ufffdb' is not a viewer's name" in out, out
    assert "that line failed" not in out


def test_script_on_stdin_is_read_leniently_too(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    out, _ = run(config, "--script", "-", stdin=b"alice: hi \xff\n/follow alice\n")
    assert "Thanks for the follow, alice!" in out


def test_long_messages_and_names_are_capped_before_anything_sees_them(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    huge_name = "n" * 100_000
    lines = (
        f"{huge_name}: hello\n"
        f"alice: !{'x' * 100_000}\n"
        f"alice: !give {'y' * 100_000} 5\n"
        "alice: !top\n"
    )
    out, _ = run(config, "--script", "-", stdin=lines.encode())
    replies = out.splitlines()[1:]
    assert replies, out
    assert all(len(line) < 300 for line in replies), [len(line) for line in replies]
    assert "I don't know !" + "x" * 31 + "…" in out  # a short prefix of what was typed
    top = next(line for line in replies if "n" * 64 in line)
    assert "n" * 65 not in top  # the name was stored at 64 characters


def test_odd_digits_timeout_zero_and_tiny_tips_are_refused_with_a_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    lines = (
        "/follow alice\n/follow bob\n"
        "alice: !give bob ١٠٠\n"
        "alice: !give bob １０\n"
        "/timeout bob 0\n"
        "/tip alice 0.0000001\n"
        "/tip alice 0.001\n"
        "/gift alice ٣\n"
        "alice: !points\n"
    )
    out, _ = run(config, "--script", "-", stdin=lines.encode())
    assert "@alice '١٠٠' is not an amount" in out
    assert "@alice '１０' is not an amount" in out
    assert "[console] a timeout must be longer than 0s" in out
    assert out.count("[console] a tip is money: at least 0.01, in whole cents") == 2
    assert "[console] count must be a whole number" in out
    assert "@alice you have 51 pixels" in out  # 50 for the follow, 1 for chatting: no more


def test_a_unicode_line_separator_inside_a_chat_line_does_not_split_it(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "pixel.db")
    script = tmp_path / "script.txt"
    script.write_text("alice: !give\u2028bob 5\nalice: !points\n", encoding="utf-8")
    out, _ = run(config, "--script", str(script), stdin=b"")
    # one line, read as alice's chat (not a second line "bob 5" the console cannot parse)
    assert out.split("\n")[1:-1] == [
        "Pixel: @alice I don't know !give\u2028bob. Try !help",
        "Pixel: @alice you have 1 pixel",
    ]
