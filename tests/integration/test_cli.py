"""The command line as a streamer uses it: ``python bot.py ...`` in a real subprocess.

Every command gets ``--config`` pointing at a YAML file in ``tmp_path`` whose database lives in
``tmp_path`` too, and an environment without platform secrets or ``DATABASE_URL``, so nothing
here reads or writes the repository's ``data/`` directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from pixelbot.db.migrate import MIGRATIONS_DIR

pytestmark = pytest.mark.sqlite_only(
    "about the command line and the SQLite file it names (missing, copied, tampered with); "
    "test_db_copy.py and test_console_cli.py run the command line on PostgreSQL"
)

REPO = Path(__file__).resolve().parents[2]

GREETING = (
    "Pixel: Hi! This is the console stream. Chat as anyone: 'alice: hello', then "
    "'alice: !points' or '!redeems'. Operator lines: /help. /quit ends.\n"
)
BYE = "Pixel: Bye!\n"
CHAT = "alice: hello\nbob: hi\nalice: again\n/quit\n"


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment minus anything that could change the config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWITCH_", "DISCORD_", "JOYSTICK_")) and key != "DATABASE_URL"
    }
    env.update(extra)
    return env


def bot(
    *args: str | Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bot.py", *map(str, args)],
        cwd=REPO,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=120,  # a hang guard, not a timing assertion
    )


def write_config(path: Path, db_path: Path, extra: str = "") -> Path:
    body = f'database:\n  url: "sqlite+aiosqlite:///{db_path}"\n' + textwrap.dedent(extra)
    path.write_text(body, encoding="utf-8")
    return path


def head_revision() -> str:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def copy_db(source: Path, target: Path) -> Path:
    src, dest = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        src.close()
        dest.close()
    return target


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pixel.db"


@pytest.fixture
def good(tmp_path: Path, db_file: Path) -> Path:
    return write_config(tmp_path / "x.yaml", db_file)


@pytest.fixture(scope="module")
def chatted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose database saw one console session: alice and bob, 1 point and 1 XP each.

    Read-only for the tests that share it (``points show`` changes nothing)."""
    tmp = tmp_path_factory.mktemp("chatted")
    config = write_config(tmp / "x.yaml", tmp / "pixel.db")
    result = bot("run", "--config", config, stdin=CHAT)
    assert (result.returncode, result.stdout, result.stderr) == (0, GREETING + BYE, "")
    return config


# ----------------------------------------------------------------------------- check-config


def test_check_config_ok(good: Path, db_file: Path) -> None:
    result = bot("check-config", "--config", good)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")
    assert not db_file.exists()  # checking starts nothing


@pytest.mark.parametrize("args", [("--config", "config.yaml"), ()], ids=["explicit", "default"])
def test_check_config_accepts_the_shipped_config_without_secrets(args: tuple[str, ...]) -> None:
    assert not (REPO / ".env").exists()  # else the secrets would come from there
    result = bot("check-config", *args)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


BROKEN = """\
    economy:
      starting_pionts: 5
      earn:
        chat:
          points: -1
          cooldown: 5x
    bot:
      colour: red
    """


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, Path]:
    db_path = tmp_path / "never" / "pixel.db"
    return write_config(tmp_path / "bad.yaml", db_path, BROKEN), db_path


def broken_report(config: Path) -> str:
    return (
        f"{config}: 4 problem(s), nothing was started:\n"
        "  economy.starting_pionts: unknown key; did you mean 'starting_points'?"
        " (bad.yaml line 4)\n"
        "  economy.earn.chat.points: must be >= 0 (bad.yaml line 7)\n"
        "  economy.earn.chat.cooldown: '5x' is not a duration; use e.g. 30s, 5m, 1h"
        " (bad.yaml line 8)\n"
        "  bot.colour: unknown key (bad.yaml line 10)\n"
    )


@pytest.mark.parametrize(
    "command",
    [["check-config"], ["run"], ["db", "verify"], ["db", "upgrade"], ["points", "show", "alice"]],
    ids=" ".join,
)
def test_broken_config_lists_every_problem_and_starts_nothing(
    broken: tuple[Path, Path], command: list[str]
) -> None:
    config, db_path = broken
    result = bot(*command, "--config", config, stdin=CHAT)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == broken_report(config)
    assert not db_path.exists()
    assert not db_path.parent.exists()


def test_yaml_syntax_error_gives_its_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text('bot:\n  name: Pixel\n   prefix: "!"\n', encoding="utf-8")
    result = bot("check-config", "--config", config)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{config}: 1 problem(s), nothing was started:\n"
        "  YAML syntax error: mapping values are not allowed here (bad.yaml line 3)\n"
    )


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "nope.yaml"
    result = bot("check-config", "--config", config)
    assert result.returncode == 2
    assert result.stderr == (
        f"{config}: 1 problem(s), nothing was started:\n"
        f"  cannot read config file: No such file or directory: {config} (nope.yaml)\n"
    )


def test_top_level_config_option_applies_to_subcommands(broken: tuple[Path, Path]) -> None:
    """``python bot.py --config bad.yaml check-config`` validates ./config.yaml instead (and
    ``--config mine.yaml db upgrade`` would migrate the database of ./config.yaml)."""
    config, _ = broken
    result = bot("--config", config, "check-config")
    assert (result.returncode, result.stderr) == (2, broken_report(config))


# ----------------------------------------------------------------------------- db


def test_db_upgrade_prints_the_revision(good: Path, db_file: Path) -> None:
    result = bot("db", "upgrade", "--config", good)
    expected = f"database at revision {head_revision()}\n"
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")
    assert db_file.exists()
    again = bot("db", "upgrade", "--config", good)
    assert (again.returncode, again.stdout) == (0, expected)


def test_db_verify_refuses_a_missing_database_and_does_not_create_one(
    good: Path, db_file: Path
) -> None:
    result = bot("db", "verify", "--config", good)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: no database at {db_file}")
    assert not db_file.exists()


def test_db_verify_fresh_database(good: Path, db_file: Path) -> None:
    assert bot("db", "upgrade", "--config", good).returncode == 0
    result = bot("db", "verify", "--config", good)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "checked 0 users, 0 transactions, 0 xp_transactions, 0 queue_items\nok\n"
    )

    as_json = bot("db", "verify", "--json", "--config", good)
    assert (as_json.returncode, as_json.stderr) == (0, "")
    assert json.loads(as_json.stdout) == {
        "ok": True,
        "counts": {"users": 0, "transactions": 0, "xp_transactions": 0, "queue_items": 0},
        "violations": [],
    }


def test_db_verify_tampered_database(chatted: Path, tmp_path: Path) -> None:
    db_path = copy_db(chatted.parent / "pixel.db", tmp_path / "tampered.db")
    config = write_config(tmp_path / "x.yaml", db_path)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE users SET points = points + 5")
    conn.close()

    result = bot("db", "verify", "--config", config)
    assert (result.returncode, result.stderr) == (1, "")
    detail = "wallet has 6 points, ledger sums to 1, last balance_after is 1"
    assert result.stdout == (
        "checked 2 users, 2 transactions, 2 xp_transactions, 0 queue_items\n"
        f"  points_balance (user 1): {detail}\n"
        f"  points_balance (user 2): {detail}\n"
        "2 violation(s)\n"
    )

    as_json = bot("db", "verify", "--json", "--config", config)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["violations"] == [
        {"check": "points_balance", "detail": detail, "user_id": 1},
        {"check": "points_balance", "detail": detail, "user_id": 2},
    ]


# ----------------------------------------------------------------------------- console + points


def test_console_session(chatted: Path) -> None:
    """The module fixture ran ``run`` with the chat on stdin; here: what it left behind."""
    result = bot("db", "verify", "--config", chatted)
    assert result.returncode == 0
    assert result.stdout.endswith("\nok\n")
    assert result.stdout.startswith("checked 2 users, 2 transactions, 2 xp_transactions")


def test_points_show_json(chatted: Path) -> None:
    result = bot("points", "show", "alice", "--json", "--config", chatted)
    assert (result.returncode, result.stderr) == (0, "")
    # 60 s chat cooldown: "alice: again" paid nothing.
    assert result.stdout == '{"user": "alice", "points": 1, "xp": 1, "level": 1}\n'


def test_points_show_human(chatted: Path) -> None:
    result = bot("points", "show", "alice", "--config", chatted)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "alice: 1 pixel, 1 XP, level 1\n",
        "",
    )


def test_points_show_is_case_insensitive_and_takes_a_platform(chatted: Path) -> None:
    result = bot("points", "show", "ALICE", "--platform", "console", "--config", chatted)
    assert (result.returncode, result.stdout) == (0, "alice: 1 pixel, 1 XP, level 1\n")


def test_points_show_unknown_viewer(chatted: Path) -> None:
    result = bot("points", "show", "nobody", "--config", chatted)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: no viewer named 'nobody'\n"

    elsewhere = bot("points", "show", "alice", "--platform", "twitch", "--config", chatted)
    assert (elsewhere.returncode, elsewhere.stdout) == (1, "")
    assert elsewhere.stderr == "error: no viewer named 'alice' on twitch\n"


def test_no_subcommand_runs_the_console(good: Path, db_file: Path) -> None:
    result = bot("--config", good, stdin="carol: hi\n")  # Ctrl-D instead of /quit
    assert (result.returncode, result.stdout, result.stderr) == (0, GREETING + BYE, "")
    shown = bot("points", "show", "carol", "--json", "--config", good)
    assert shown.stdout == '{"user": "carol", "points": 1, "xp": 1, "level": 1}\n'


def test_console_says_when_it_does_not_understand(good: Path) -> None:
    result = bot("run", "--config", good, stdin="hello there\n\n/quit\n")
    assert result.returncode == 0
    assert result.stdout == (GREETING + "[console] type 'name: message' to chat, or /help\n" + BYE)


# ----------------------------------------------------------------------------- DATABASE_URL


def test_database_url_env_overrides_the_config(good: Path, db_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "other.db"
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{other}")
    result = bot("run", "--config", good, stdin="dana: hi\n/quit\n", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    assert other.exists()
    assert not db_file.exists()

    shown = bot("points", "show", "dana", "--json", "--config", good, env=env)
    assert shown.stdout == '{"user": "dana", "points": 1, "xp": 1, "level": 1}\n'


def test_empty_database_url_env_keeps_the_config(good: Path, db_file: Path) -> None:
    result = bot("db", "upgrade", "--config", good, env=clean_env(DATABASE_URL=""))
    assert result.returncode == 0
    assert db_file.exists()


# ----------------------------------------------------------------------------- help


def test_help_lists_the_subcommands() -> None:
    result = bot("--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: bot.py [OPTIONS] [COMMAND] [ARGS]...\n")
    commands = result.stdout.split("Commands:\n", 1)[1]
    names = [line.split()[0] for line in commands.splitlines() if line.strip()]
    assert names == [
        "auth",
        "backup",
        "check-config",
        "cleanup",
        "console",
        "db",
        "export",
        "import",
        "jobs",
        "points",
        "replay",
        "run",
        "status",
        "web",
    ]
    assert "revision" not in result.stdout  # the developers' command stays hidden


def test_db_help_lists_its_subcommands() -> None:
    result = bot("db", "--help")
    assert result.returncode == 0
    commands = result.stdout.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in commands.splitlines() if line.strip()] == [
        "copy",
        "upgrade",
        "verify",
    ]


def test_an_enabled_twitch_passes_check_config(tmp_path: Path, db_file: Path) -> None:
    config = write_config(
        tmp_path / "twitch.yaml",
        db_file,
        """
        platforms:
          twitch: {enabled: true, channel: me, client_id: a, client_secret: b, bot_id: "1"}
        """,
    )
    result = bot("check-config", "--config", config)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_an_enabled_discord_passes_check_config(tmp_path: Path, db_file: Path) -> None:
    config = write_config(
        tmp_path / "discord.yaml",
        db_file,
        """
        platforms:
          discord: {enabled: true, token: abc, channels: [123456789012345678]}
        """,
    )
    result = bot("check-config", "--config", config)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_run_with_the_console_off_and_nothing_else_says_so(tmp_path: Path, db_file: Path) -> None:
    config = write_config(
        tmp_path / "off.yaml", db_file, "platforms:\n  console: {enabled: false}\n"
    )
    result = bot("check-config", "--config", config)
    assert result.returncode == 2
    assert "platforms: no platform is enabled" in result.stderr


# ----------------------------------------------------------------------------- backups


def test_backup_now_list_verify_restore_through_the_cli(tmp_path: Path, db_file: Path) -> None:
    folder = tmp_path / "backups"
    config = write_config(tmp_path / "b.yaml", db_file, f'backup:\n  dir: "{folder}"\n')
    assert bot("run", "--config", config, stdin=CHAT).returncode == 0

    taken = bot("backup", "now", "--config", config)
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.startswith(f"backed up to {folder}/pixel-")
    assert "verified: 2 users, 2 transactions" in taken.stdout
    (backup_file,) = folder.glob("pixel-*.db.gz")
    listed = bot("backup", "list", "--config", config)
    assert listed.stdout.startswith(backup_file.name)

    assert bot("run", "--config", config, stdin="carol: hi\n").returncode == 0  # after it
    verified = bot("backup", "verify", backup_file, "--config", config)
    assert (verified.returncode, verified.stdout) == (
        0,
        f"{backup_file.name}: ok (2 users, 2 transactions, 2 xp_transactions, 0 queue_items)\n",
    )
    restored = bot("backup", "restore", backup_file, "--config", config)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.endswith(f"restored {backup_file.name} to {db_file}; db verify: ok\n")
    shown = bot("points", "show", "carol", "--config", config)
    assert shown.returncode == 1  # carol came after the backup

    jobs = bot("jobs", "--config", config)
    assert jobs.returncode == 0
    assert jobs.stdout.startswith("backup: 0 * * * *; next ")
    assert "never ran" in jobs.stdout  # `backup now` is the operator's, not the schedule's

    data = bytearray(backup_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup_file.write_bytes(bytes(data))
    damaged = bot("backup", "verify", backup_file, "--config", config)
    assert damaged.returncode == 1
    assert damaged.stderr == (
        f"{backup_file.name}: NOT a good backup\n"
        f"  {backup_file.name} does not match its checksum: the file is damaged\n"
    )
    refused = bot("backup", "restore", backup_file, "--config", config)
    assert refused.returncode == 1 and "is not a good backup" in refused.stderr
    assert "Traceback" not in refused.stderr + damaged.stderr
