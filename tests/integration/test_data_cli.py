"""``bot.py cleanup``, ``points history``, ``export`` and ``import`` as a streamer runs them:
real subprocesses on a SQLite file in ``tmp_path`` (the services underneath are tested on both
backends in test_cleanup.py and test_data_commands.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pixelbot.db.lock import DatabaseLock

pytestmark = pytest.mark.sqlite_only(
    "about the command line on a SQLite file; the services are tested on PostgreSQL too"
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "import"
SE_FILE = SAMPLES / "streamelements-points.csv"


def bot(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWITCH_", "DISCORD_", "JOYSTICK_")) and key != "DATABASE_URL"
    }
    return subprocess.run(
        [sys.executable, "bot.py", *map(str, args)],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a hang guard, not a timing assertion
    )


def write_config(path: Path, db_path: Path, extra: str) -> Path:
    body = f'database:\n  url: "sqlite+aiosqlite:///{db_path}"\n' + textwrap.dedent(extra)
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a little chat in it, made once (each bot.py start costs seconds)."""
    folder = tmp_path_factory.mktemp("data-cli")
    config = write_config(folder / "config.yaml", folder / "pixel.db", CONFIG)
    chat = "alice: hello\nbob: hi\nalice: !give bob 20\nalice: again\nbob: !link\n"
    done = bot("console", "--config", config, "--script", "-", stdin=chat)
    assert done.returncode == 0, done.stderr
    return folder / "pixel.db"


CONFIG = """
economy: {starting_points: 100}
"""


@pytest.fixture
def config_path(template: Path, tmp_path: Path) -> Path:
    """The template's database, copied for this test alone."""
    shutil.copyfile(template, tmp_path / "pixel.db")
    return write_config(
        tmp_path / "config.yaml", tmp_path / "pixel.db", CONFIG + f'tts: {{dir: "{tmp_path}"}}\n'
    )


def test_points_history_prints_each_row_with_the_running_balance(config_path: Path) -> None:
    shown = bot("points", "history", "alice", "--config", config_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "alice: 3 ledger row(s)"
    assert [line.split()[2:5] for line in lines[2:]] == [
        ["+100", "100", "grant"],
        ["+1", "101", "earn"],
        ["-20", "81", "transfer"],
    ]
    as_json = bot("points", "history", "alice", "--json", "--config", config_path)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [row["running"] for row in rows] == [row["balance_after"] for row in rows]


def test_export_streams_csv_and_jsonl(config_path: Path, tmp_path: Path) -> None:
    as_csv = bot("export", "users", "--config", config_path)
    assert as_csv.returncode == 0, as_csv.stderr
    users = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {(u["login"], u["points"]) for u in users} == {("alice", "81"), ("bob", "121")}
    out = tmp_path / "ledger.jsonl"
    to_file = bot("export", "ledger", "--format", "jsonl", "-o", out, "--config", config_path)
    assert to_file.returncode == 0, to_file.stderr
    assert "wrote 6 ledger row(s)" in to_file.stderr
    ledger = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(row["amount"] for row in ledger) == 81 + 121
    events = bot("export", "events", "--format", "jsonl", "--config", config_path)
    kinds = {json.loads(line)["kind"] for line in events.stdout.splitlines()}
    assert {"chat", "award", "transfer"} <= kinds


def test_import_reports_bad_lines_imports_the_rest_and_runs_once(config_path: Path) -> None:
    first = bot("import", "streamelements", SE_FILE, "--config", config_path)
    assert first.returncode == 1  # some rows could not be imported: said, with their lines
    assert "imported 2 viewer(s), 2,450 pixels: 0 matched by twitch id, 2 new (by id)" in (
        first.stdout
    )
    assert "line 4: carol: no twitch id in the file" in first.stderr
    assert "line 6: 'lots' is not a whole number of points" in first.stderr
    again = bot("import", "streamelements", SE_FILE, "--config", config_path)
    assert "imported 0 viewer(s)" in again.stdout
    assert "2 already imported by an earlier run (unchanged)" in again.stdout
    verified = bot("db", "verify", "--config", config_path)
    assert verified.returncode == 0, verified.stdout


def test_cleanup_dry_run_then_for_real_reports_what_went(config_path: Path) -> None:
    dry = bot("cleanup", "--dry-run", "--json", "--config", config_path)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    # the script ran on the simulated clock (2026-01-01): long before today, so old
    # (alice's !give and again, bob's !link: chat lines that paid nothing; bob's link code)
    assert planned["dry_run"] and planned["removed"]["chat_events"] == 3
    assert planned["removed"]["link_codes"] == 1
    assert planned["verified"] is True
    real = bot("cleanup", "--config", config_path)
    assert real.returncode == 0, real.stderr
    assert real.stdout.startswith("removed ")
    assert "3 chat events" in real.stdout and "1 link codes" in real.stdout
    assert "db verify: ok" in real.stdout


def test_an_old_file_is_told_how_to_give_space_back_and_vacuum_converts_it(
    config_path: Path, tmp_path: Path
) -> None:
    database = tmp_path / "pixel.db"
    with sqlite3.connect(database) as conn:  # a file from before auto_vacuum=INCREMENTAL
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("VACUUM")
    told = bot("cleanup", "--config", config_path)
    assert "incremental vacuum skipped" in told.stdout and "--vacuum" in told.stdout

    lock = DatabaseLock(database)
    lock.hold_shared()  # as a running bot does
    try:
        refused = bot("cleanup", "--vacuum", "--config", config_path)
    finally:
        lock.release()
    assert refused.returncode == 1 and "error:" in refused.stderr

    converted = bot("cleanup", "--vacuum", "--config", config_path)
    assert converted.returncode == 0, converted.stderr
    assert "rewrote" in converted.stdout
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    later = bot("cleanup", "--config", config_path)
    assert "incremental vacuum gave back" in later.stdout
