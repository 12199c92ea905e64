"""``python bot.py console --script`` in a real subprocess: the transcript a streamer sees.

Each run gets its own config and SQLite file in ``tmp_path`` and an environment without
platform secrets or ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from pixelbot.testing_db import database_url, query

REPO = Path(__file__).resolve().parents[2]

REDEEMS = """\
    redeems:
      tts:
        title: Text-to-Speech
        cost: 25
        cooldown: 10s
        action: {type: tts}
      spin:
        title: Prize Wheel
        cost: 100
        action: {type: wheel}
    wheels:
      main:
        prizes: [{name: 10 Points, points: 10}]
    """

SCRIPT = """\
# a scripted stream: comments and blank lines are skipped
/follow alice
alice: hello

/tick 61
alice: !points
/sub alice 1 3
alice: !tts hello world
alice: !tts again
/tick 11
alice: !tts again
/live
bob: !give alice 1
bob: !points
alice: !redeems
/quit
alice: !points
"""

TRANSCRIPT = """\
Pixel: Hi! This is the console stream. Chat as anyone: 'alice: hello', then 'alice: !points' \
or '!redeems'. Operator lines: /help. /quit ends.
Pixel: Thanks for the follow, alice! +50 pixels
Pixel: @alice you have 52 pixels
Pixel: Thanks for the sub, alice! +1,000 pixels
Pixel: alice reached level 2!
Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)
[tts] #1 pending: Text-to-Speech for alice: hello world
[tts] #1 spoke tts-1.wav: alice says, hello world
Pixel: @alice !tts is on cooldown for 10s
Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #2)
[tts] #2 pending: Text-to-Speech for alice: again
[tts] #2 spoke tts-2.wav: alice says, again
[console] the stream is live
Pixel: @bob gave 1 pixel to alice (you have 0 left)
Pixel: @bob you have 0 pixels
Pixel: Redeems: !tts (25), !spin (100)
"""


def clean_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWITCH_", "DISCORD_", "JOYSTICK_")) and key != "DATABASE_URL"
    }


def bot(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bot.py", *map(str, args)],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,  # a hang guard, not a timing assertion
    )


def setup(tmp_path: Path, name: str = "run") -> tuple[Path, Path]:
    """(config file, its database) in a fresh directory."""
    folder = tmp_path / name
    folder.mkdir()
    db_path = folder / "pixel.db"
    config = folder / "pixel.yaml"
    config.write_text(
        f'database:\n  url: "{database_url(db_path)}"\n'
        f'tts:\n  dir: "{folder / "tts"}"\n' + textwrap.dedent(REDEEMS),
        encoding="utf-8",
    )
    return config, db_path


def queue(db_path: Path) -> list[tuple[object, ...]]:
    rows = query(database_url(db_path), "SELECT id, kind, status, cost, payload FROM queue_items")
    return [(*row[:4], json.loads(row[4])["text"]) for row in rows]


def test_script_file(tmp_path: Path) -> None:
    config, db_path = setup(tmp_path)
    script = tmp_path / "stream.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    result = bot("console", "--config", config, "--script", script)
    assert (result.returncode, result.stdout, result.stderr) == (0, TRANSCRIPT, "")
    assert queue(db_path) == [
        (1, "tts", "done", 25, "hello world"),
        (2, "tts", "done", 25, "again"),
    ]
    verified = bot("db", "verify", "--config", config)
    assert (verified.returncode, verified.stdout.splitlines()[-1:]) == (0, ["ok"]), verified.stderr


def test_script_on_stdin(tmp_path: Path) -> None:
    config, _ = setup(tmp_path)
    result = bot("console", "--config", config, "--script", "-", stdin=SCRIPT)
    assert (result.returncode, result.stdout, result.stderr) == (0, TRANSCRIPT, "")


def test_a_script_is_deterministic_across_fresh_databases(tmp_path: Path) -> None:
    outputs = []
    for name in ("first", "second"):
        config, _ = setup(tmp_path, name)
        result = bot("console", "--config", config, "--script", "-", stdin=SCRIPT)
        assert (result.returncode, result.stderr) == (0, "")
        outputs.append(result.stdout)
    assert outputs == [TRANSCRIPT, TRANSCRIPT]


def test_points_show_after_a_script(tmp_path: Path) -> None:
    """What a script leaves behind is the same wallet the other commands read."""
    config, _ = setup(tmp_path)
    assert bot("console", "--config", config, "--script", "-", stdin=SCRIPT).returncode == 0
    shown = bot("points", "show", "alice", "--json", "--config", config)
    assert (shown.returncode, shown.stderr) == (0, "")
    # 50 + 1 + 1 + 1,000 + 1 (from bob) - 25 - 25; XP 10 + 1 + 1 + 250
    assert shown.stdout == '{"user": "alice", "points": 1003, "xp": 262, "level": 2}\n'


def test_a_missing_script_file(tmp_path: Path) -> None:
    config, db_path = setup(tmp_path)
    missing = tmp_path / "nope.txt"
    result = bot("console", "--config", config, "--script", missing)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "Usage: bot.py console [OPTIONS]\n"
        "Try 'bot.py console --help' for help.\n"
        "\n"
        f"Error: Invalid value for '--script': '{missing}': No such file or directory\n"
    )
    assert not db_path.exists()
