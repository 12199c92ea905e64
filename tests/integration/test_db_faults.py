"""Database faults through the real CLI: each one is a line that says what is wrong, never a
traceback, and no write is acknowledged that was not saved (issue 11).

The bot runs as ``python bot.py`` in a subprocess on a real SQLite file. Faults that need root
(an immutable file, a full disk on a small tmpfs) are skipped with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import REPO, bot, clean_env, write_config

pytestmark = pytest.mark.sqlite_only(
    "read-only, full, damaged and locked files are SQLite faults (PostgreSQL's: test_pg_faults.py)"
)

CANT_SAVE = "the bot can't save right now, nothing was charged; try again in a moment"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def one_clean_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The run failed with exit 1 and one ``error:`` line holding every expected phrase."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for phrase in expected:
        assert phrase in lines[0], lines[0]
    return lines[0]


def start_once(tmp_path: Path, db_path: Path, busy_timeout: str = "5s") -> Path:
    """A config, and a database the bot has started on once (alice and bob have 50 each)."""
    config = write_config(tmp_path / "config.yaml", db_path)
    config.write_text(
        f'database:\n  url: "sqlite+aiosqlite:///{db_path}"\n  busy_timeout: {busy_timeout}\n'
    )
    result = bot(
        "console", "--config", config, "--script", "-", stdin="/follow alice\n/follow bob\n"
    )
    assert result.returncode == 0, result.stderr
    return config


class LiveConsole:
    """``python bot.py console`` on pipes, fed a line at a time (the real clock runs)."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "bot.py", "console", "--config", str(config)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.history: list[str] = []  # every line read so far
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()
        self.expect("Hi! This is the console stream")

    def _pump(self, stream: object) -> None:
        try:
            for line in stream:  # type: ignore[attr-defined]
                self.lines.put(line.rstrip("\n"))
        except ValueError:  # closed by quit(): the run is over
            return

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, *texts: str, timeout: float = 60) -> str:
        """The next output line that contains one of ``texts`` (the timeout is a hang guard,
        not a timing check)."""
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {texts!r}; saw {seen}") from None
            seen.append(line)
            self.history.append(line)
            if any(text in line for text in texts):
                return line

    def quit(self) -> str:
        """End the run; its stderr."""
        self.send("/quit")
        _out, err = self.proc.communicate(timeout=60)
        return err


@contextlib.contextmanager
def live(config: Path) -> Iterator[LiveConsole]:
    console = LiveConsole(config)
    try:
        yield console
    finally:
        if console.proc.poll() is None:
            console.proc.kill()
            console.proc.communicate()


def points_of(config: Path, name: str) -> int:
    result = bot("points", "show", name, "--json", "--config", config)
    assert result.returncode == 0, result.stderr
    import json

    return int(json.loads(result.stdout)["points"])


# ------------------------------------------------------------------------------- at start


def test_a_parent_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    config = write_config(tmp_path / "config.yaml", tmp_path / "data" / "pixel.db")
    result = bot("console", "--config", config, "--script", "-", stdin="alice: hi\n")
    one_clean_line(result, f"{tmp_path / 'data'} is a file, not a folder", "database.url")


@pytest.mark.skipif(not IS_ROOT, reason="chattr +i needs root")
def test_an_immutable_file_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    db_path = tmp_path / "pixel.db"
    config = start_once(tmp_path, db_path)
    if subprocess.run(["chattr", "+i", str(db_path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        result = bot("console", "--config", config, "--script", "-", stdin="/follow bob\n")
    finally:
        subprocess.run(["chattr", "-i", str(db_path)], check=True)
    one_clean_line(result, f"cannot write {db_path}", "read-only")


@pytest.mark.skipif(not IS_ROOT, reason="mounting a read-only tmpfs needs root")
def test_a_read_only_disk_is_one_line_at_start(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        db_path = disk / "pixel.db"
        config = start_once(tmp_path, db_path)
        (disk / "data").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        existing = bot("console", "--config", config, "--script", "-", stdin="/follow carol\n")
        one_clean_line(existing, f"cannot write {db_path}", "mounted read-only")
        fresh = write_config(tmp_path / "fresh.yaml", disk / "data" / "new" / "pixel.db")
        missing = bot("console", "--config", fresh, "--script", "-", stdin="/follow carol\n")
        one_clean_line(missing, "cannot create the folder for", "Read-only file system")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def overwrite_pages(path: Path, pages: tuple[int, ...], page_size: int = 4096) -> None:
    with path.open("r+b") as file:
        for page in pages:
            file.seek(page * page_size)
            file.write(bytes([0xA5]) * page_size)


def test_three_overwritten_pages_are_a_violation_and_the_bot_refuses_to_write(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "pixel.db"
    config = start_once(tmp_path, db_path)
    overwrite_pages(db_path, (2, 3, 4))
    before = db_path.read_bytes()

    verify = bot("db", "verify", "--config", config)
    assert verify.returncode == 1, (verify.stdout, verify.stderr)
    assert "Traceback" not in verify.stderr
    assert "integrity:" in verify.stdout and "violation" in verify.stdout

    start = bot("console", "--config", config, "--script", "-", stdin="/follow carol\n")
    one_clean_line(start, f"{db_path} is damaged", "db verify --full", "backup")
    assert db_path.read_bytes() == before  # nothing was written into it


def test_full_verify_runs_integrity_check(tmp_path: Path) -> None:
    db_path = tmp_path / "pixel.db"
    config = start_once(tmp_path, db_path)
    ok = bot("db", "verify", "--full", "--config", config)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("ok"), ok.stdout
    overwrite_pages(db_path, (3,))
    damaged = bot("db", "verify", "--full", "--json", "--config", config)
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr
    assert '"check": "integrity"' in damaged.stdout


def test_a_truncated_file_is_a_violation_and_refused_at_start(tmp_path: Path) -> None:
    db_path = tmp_path / "pixel.db"
    config = start_once(tmp_path, db_path)
    with db_path.open("r+b") as file:
        file.truncate(3 * 4096)
    verify = bot("db", "verify", "--config", config)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    assert "integrity:" in verify.stdout
    start = bot("console", "--config", config, "--script", "-", stdin="/follow bob\n")
    one_clean_line(start, f"{db_path} is damaged")


def test_a_file_that_is_not_a_database_is_a_violation(tmp_path: Path) -> None:
    db_path = tmp_path / "pixel.db"
    config = start_once(tmp_path, db_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.write_bytes(b"this is not a database\n" * 400)
    verify = bot("db", "verify", "--config", config)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    assert "integrity: file is not a database" in verify.stdout
    start = bot("console", "--config", config, "--script", "-", stdin="/follow bob\n")
    one_clean_line(start, "is damaged (file is not a database)")


# -------------------------------------------------------------------------- while running


def test_locked_beyond_busy_timeout_the_viewer_is_answered_and_nothing_is_charged(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "pixel.db"
    config = start_once(tmp_path, db_path, busy_timeout="200ms")
    with live(config) as console:
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            console.send("alice: !give bob 5")
            assert console.expect("@alice") == f"Pixel: @alice {CANT_SAVE}"
            console.send("alice: !give bob 7")
            assert console.expect("@alice") == f"Pixel: @alice {CANT_SAVE}"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        stderr = console.quit()
    assert "Traceback" not in stderr
    assert stderr.count("is locked by another program") == 1, stderr  # once per outage
    assert "database.busy_timeout (0.2s)" in stderr
    assert points_of(config, "alice") == 50  # nothing was charged
    assert points_of(config, "bob") == 50


def test_a_vanished_directory_acknowledges_nothing_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_path = data / "pixel.db"
    config = start_once(tmp_path, db_path)
    with live(config) as console:
        console.send("/follow erin")
        console.expect("Thanks for the follow, erin!")
        shutil.rmtree(data)
        console.send("alice: !give bob 5")
        assert console.expect("@alice") == f"Pixel: @alice {CANT_SAVE}"
        console.send("/follow carol")
        assert "not saved" in console.expect("[console]")
        console.send("/follow dave")
        assert "not saved" in console.expect("[console]")
        stderr = console.quit()
    assert "Traceback" not in stderr
    assert stderr.count(f"the folder {data} was removed or replaced") == 1, stderr
    assert "Every write is refused" in stderr
    gone = console.history.index("Pixel: Thanks for the follow, erin! +50 pixels") + 1
    after = console.history[gone:]
    assert not [line for line in after if "Thanks" in line or "gave" in line], after


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if not IS_ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the disk holding ``folder``."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_is_told_once_and_saving_resumes_when_space_returns(
    tmp_path: Path, small_disk: Path
) -> None:
    db_path = small_disk / "pixel.db"
    config = start_once(tmp_path, db_path)
    with live(config) as console:
        filler = fill(small_disk)
        # Each new viewer needs new pages; the WAL soon needs more room than there is.
        refused = None
        for n in range(200):
            console.send(f"/follow viewer{n}")
            line = console.expect(f"viewer{n}!", "[console]")
            if "not saved" in line:
                refused = n
                break
        assert refused is not None, "the disk never filled"
        console.send("alice: !give bob 5")
        assert console.expect("@alice") == f"Pixel: @alice {CANT_SAVE}"
        console.send("/follow late")
        assert "not saved" in console.expect("[console]")
        filler.unlink()
        console.send("/follow after")
        console.expect("Thanks for the follow, after!")
        stderr = console.quit()
    assert "Traceback" not in stderr
    assert stderr.count("the disk is full") == 1, stderr
    assert "can save again" in stderr
    assert bot("db", "verify", "--config", config).returncode == 0


def test_a_full_disk_at_start_is_one_line(small_disk: Path, tmp_path: Path) -> None:
    fill(small_disk)
    config = write_config(tmp_path / "config.yaml", small_disk / "pixel.db")
    result = bot("console", "--config", config, "--script", "-", stdin="/follow alice\n")
    assert "Traceback" not in result.stderr
    line = one_clean_line(result)
    assert "the disk is full" in line or "cannot open" in line, line
