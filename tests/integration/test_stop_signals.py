"""Stopping ``python bot.py run`` the ways a streamer and an init system do: Ctrl-C (SIGINT)
and SIGTERM (systemd, Docker, ``kill``), in a real subprocess on the console stream (no
platform credentials), with its keyboard (stdin) left open as a terminal leaves it.

Before, SIGTERM killed the process on the spot (exit -15, no shutdown at all), and after
Ctrl-C the console waited for one more line of input before it could exit (then "Aborted!",
exit 1). Now both stop gracefully: the events in hand finish, "Bye!", exit 0, the database
whole; a second signal stops at once (``pixelbot/app/signals.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pixelbot.testing_db import database_url, query
from tests.fakes import joystick_server as js
from tests.fakes.joystick_server import FakeJoystick
from tests.integration.test_console_cli import REPO, clean_env

PATIENCE = 30.0  # seconds: a hang guard, not a timing assertion


class Bot:
    """``bot.py run`` in a subprocess; what it prints is collected as it comes."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "bot.py", "run", "--config", str(config)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def until(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while not check():
            assert self.proc.poll() is None or check(), f"the bot ended waiting for {what}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.text()}"
            time.sleep(0.02)

    def said(self, fragment: str) -> bool:
        return any(fragment in line for line in self.out)

    def logged(self, fragment: str) -> bool:
        return any(fragment in line for line in self.err)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def ended(self) -> int:
        """Its exit code, once it ended by itself (stdin still open: it is not told by EOF)."""
        try:
            code = self.proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the bot did not end: {self.text()}") from None
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def text(self) -> str:
        return f"stdout={''.join(self.out)!r} stderr={''.join(self.err)!r}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()


@contextlib.contextmanager
def started(config: Path) -> Iterator[Bot]:
    bot = Bot(config)
    try:
        bot.until(lambda: bot.said("This is the console stream"), "the greeting")
        yield bot
    finally:
        bot.close()


def setup(tmp_path: Path, extra: str = "", top: str = "") -> tuple[Path, Path]:
    """(config file, its database): ``extra`` goes in ``database``, ``top`` after it."""
    db_path = tmp_path / "pixel.db"
    config = tmp_path / "pixel.yaml"
    config.write_text(
        f'database:\n  url: "{database_url(db_path)}"\n{extra}'
        "economy:\n  earn:\n    chat: {points: 1, xp: 1, cooldown: 0s}\n" + top,
        encoding="utf-8",
    )
    return config, db_path


def verified(config: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bot.py", "db", "verify", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert (result.returncode, result.stdout.splitlines()[-1:]) == (0, ["ok"]), result.stderr


def chat_lines(db_path: Path) -> int:
    rows = query(database_url(db_path), "SELECT count(*) FROM events WHERE kind = 'chat'")
    return int(rows[0][0])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_the_bot_gracefully(tmp_path: Path, signum: signal.Signals) -> None:
    config, db_path = setup(tmp_path)
    with started(config) as bot:
        bot.type("alice: hello")
        bot.type("alice: !points")
        bot.until(lambda: bot.said("@alice you have 2 pixels"), "the answer")
        bot.signal(signum)
        assert bot.ended() == 0, bot.text()
    assert bot.out[-1] == "Pixel: Bye!\n", bot.text()
    assert not bot.logged("Traceback"), bot.text()
    assert bot.logged(f"{signum.name}: stopping;"), bot.text()
    assert chat_lines(db_path) == 2
    verified(config)


@pytest.mark.sqlite_only("holds the SQLite file's write lock to keep a line in hand")
def test_a_second_signal_stops_at_once_and_the_database_stays_whole(tmp_path: Path) -> None:
    config, db_path = setup(tmp_path, "  busy_timeout: 60s\n")  # (in ``database``)
    with started(config) as bot:
        bot.type("alice: hello")
        bot.until(lambda: chat_lines(db_path) == 1, "the first line saved")
        locker = sqlite3.connect(db_path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")  # (another program writing: the bot waits)
            bot.type("alice: !points")  # in hand: its earning waits for the lock
            time.sleep(1.5)  # (it reaches the writer: nothing to observe from outside)
            bot.signal(signal.SIGTERM)
            bot.until(lambda: bot.logged("SIGTERM: stopping;"), "the graceful stop")
            bot.signal(signal.SIGTERM)
            bot.until(lambda: bot.logged("line in hand was cut off"), "the line cut off")
        finally:
            locker.execute("ROLLBACK")  # the writer finishes the operation in hand
            locker.close()
        assert bot.ended() == 0, bot.text()
    assert bot.logged("SIGTERM again: stopping at once"), bot.text()
    assert bot.logged("console: the line in hand was cut off mid-way (stopping at once)")
    assert not bot.logged("Traceback"), bot.text()
    assert bot.out[-1] == "Pixel: Bye!\n", bot.text()
    assert chat_lines(db_path) == 2  # the line cut off was still saved: it reached the writer
    verified(config)


@pytest.mark.sqlite_only("holds the SQLite file's write lock to keep a line in hand")
def test_past_the_grace_the_line_in_hand_is_cut_and_said_so(tmp_path: Path) -> None:
    config, db_path = setup(tmp_path, "  busy_timeout: 60s\n")  # (in ``database``)
    with started(config) as bot:
        bot.type("alice: hello")
        bot.until(lambda: chat_lines(db_path) == 1, "the first line saved")
        locker = sqlite3.connect(db_path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            bot.type("alice: !points")
            time.sleep(1.5)  # (it reaches the writer)
            bot.signal(signal.SIGTERM)  # once: the grace (5 s) runs out
            bot.until(lambda: bot.logged("line in hand was cut off"), "the line cut off")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert bot.ended() == 0, bot.text()
    assert bot.logged("console: the line in hand was cut off mid-way (after the 5 s grace)")
    assert not bot.logged("Traceback"), bot.text()
    assert bot.out[-1] == "Pixel: Bye!\n", bot.text()
    verified(config)


@pytest.mark.sqlite_only("holds the SQLite file's write lock to keep a line in hand")
async def test_sigterm_lets_a_joystick_line_in_hand_finish_and_answers_it(
    tmp_path: Path,
) -> None:
    """The same on a real platform: ``bot.py run`` on the fake Joystick gateway, a line held
    in hand by a slow database when SIGTERM comes; it finishes within the grace, is answered
    over the socket, and the bot exits cleanly."""
    async with FakeJoystick() as fake:
        config, db_path = setup(
            tmp_path,
            top="platforms:\n  joystick:\n    enabled: true\n"
            f"    client_id: {js.CLIENT_ID}\n    client_secret: {js.CLIENT_SECRET}\n"
            f"    api_url: {fake.api_url}\n    gateway_url: {fake.gateway_url}\n",
        )
        bot = Bot(config)
        try:
            await _until(lambda: bot.said("is running on: joystick"), "the start", bot)
            await fake.push(js.chat("alice", "hello", "m-1"))
            await _until(lambda: _chat_lines(db_path) == 1, "the first line saved", bot)
            locker = sqlite3.connect(db_path, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            try:
                await fake.push(js.chat("alice", "!points", "m-2"))
                await asyncio.sleep(1.5)  # (it reaches the writer: nothing to see from outside)
                bot.signal(signal.SIGTERM)
                await _until(lambda: bot.logged("SIGTERM: stopping;"), "the stop", bot)
                await asyncio.sleep(0.5)  # a slow moment of the database, within the grace
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            await _until(lambda: bot.proc.poll() is not None, "the bot to end", bot)
            assert bot.proc.returncode == 0, bot.text()
        finally:
            bot.close()
        assert "@alice you have 2 pixels" in fake.said()
    assert not bot.logged("Traceback"), bot.text()
    assert not bot.logged("unfinished"), bot.text()
    assert "".join(bot.out).endswith("Pixel: Bye!\n"), bot.text()
    assert chat_lines(db_path) == 2
    verified(config)


def _chat_lines(db_path: Path) -> int:
    try:
        return chat_lines(db_path)
    except sqlite3.OperationalError:  # (not made yet)
        return 0


async def _until(check: Callable[[], bool], what: str, bot: Bot) -> None:
    """``Bot.until`` for a test whose event loop must keep running (the fake gateway's)."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {bot.text()}"
        await asyncio.sleep(0.02)
