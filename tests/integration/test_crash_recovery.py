"""A bot killed mid-item (SIGKILL, no clean-up) and started again on the same database: the
item is recovered — refunded exactly once, or run again — and ``db verify`` stays clean.

The TTS player is a command that never finishes, so the item is surely running when the bot
is killed. Everything here is a real process: the bot, the player, the restart.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only(
    "a restarted bot on a database other bots share waits for the dead one's lease (30 s); "
    "test_processes.py kills real bots on PostgreSQL with short leases"
)

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, on_restart: str) -> Path:
    player = f"{sys.executable} -c 'import time; time.sleep(120)' {{file}}"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""\
database: {{url: "sqlite+aiosqlite:///{tmp_path / "pixel.db"}"}}
economy: {{starting_points: 100}}
redeems:
  tts: {{title: Text-to-Speech, cost: 25, action: {{type: tts}}}}
tts: {{player: {json.dumps(player)}, dir: {json.dumps(str(tmp_path / "tts"))}}}
queue: {{on_restart: {on_restart}}}
""",
        encoding="utf-8",
    )
    return config


def bot(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "bot.py"), *args]


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def wait_for_running_item(db: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        if db.exists():
            try:
                if query(db, "SELECT id FROM queue_items WHERE status = 'running'"):
                    return
            except sqlite3.OperationalError:  # tables not there yet
                pass
        time.sleep(0.1)
    raise AssertionError("the TTS item never started running")


def kill_mid_item(tmp_path: Path, config: Path) -> None:
    process = subprocess.Popen(
        bot("console", "--config", str(config)),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the player dies with it
    )
    try:
        assert process.stdin is not None
        process.stdin.write("alice: hello\nalice: !tts hello from before the crash\n")
        process.stdin.flush()
        wait_for_running_item(tmp_path / "pixel.db", process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stdin is not None:
            process.stdin.close()


def restart(tmp_path: Path, config: Path, script: str) -> str:
    result = subprocess.run(
        bot("console", "--config", str(config), "--script", "-"),
        cwd=tmp_path,
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def verify(tmp_path: Path, config: Path) -> None:
    result = subprocess.run(
        bot("db", "verify", "--config", str(config)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_killed_mid_item_then_refunded_exactly_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, "refund")
    kill_mid_item(tmp_path, config)
    db = tmp_path / "pixel.db"
    assert query(db, "SELECT status FROM queue_items") == [("running",)]
    assert query(db, "SELECT points FROM users") == [(76,)]  # 100 + 1 for chatting - 25

    out = restart(tmp_path, config, "alice: !points\n")
    assert (
        "[tts] #1 failed: the bot stopped while it was running; refunded 25 pixels to alice" in out
    )
    assert (
        "Pixel: @alice your Text-to-Speech didn't happen: the bot stopped while it was "
        "running. Your 25 pixels are back." in out
    )
    assert "Pixel: @alice you have 101 pixels" in out
    assert query(db, "SELECT status FROM queue_items") == [("failed",)]
    refunds = query(db, "SELECT refund_of, amount FROM transactions WHERE kind = 'refund'")
    charge = query(db, "SELECT charge_ref FROM queue_items")[0][0]
    assert refunds == [(charge, 25)]

    # a second restart finds nothing to recover and refunds nothing again
    out = restart(tmp_path, config, "alice: !points\n")
    assert "was running when the bot stopped" not in out
    assert len(query(db, "SELECT id FROM transactions WHERE kind = 'refund'")) == 1
    verify(tmp_path, config)


def test_killed_mid_item_then_retried(tmp_path: Path) -> None:
    config = write_config(tmp_path, "retry")
    kill_mid_item(tmp_path, config)
    # (scripted runs play no audio, so the second attempt finishes at once)
    out = restart(tmp_path, config, "alice: !points\n")
    assert "[queue] #1 was running when the bot stopped: queued again" in out
    assert "[tts] #1 spoke tts-1.wav" in out
    assert "Pixel: @alice you have 76 pixels" in out
    db = tmp_path / "pixel.db"
    assert query(db, "SELECT status, attempts, error FROM queue_items") == [("done", 2, None)]
    assert query(db, "SELECT id FROM transactions WHERE kind = 'refund'") == []
    verify(tmp_path, config)
