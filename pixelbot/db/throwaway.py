"""A throwaway PostgreSQL server for tests and benchmarks: started in a temporary directory on
a free localhost port, stopped and deleted at the end. No server needs to be running first.

It uses Debian's ``postgresql`` package (installed by ``scripts/setup --dev``). The server
refuses to run as root, so as root the cluster belongs to the ``postgres`` system user and every
server command goes through ``runuser``. Durability is switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``): the data dies with the test run anyway, and
locking, constraints and isolation, which the tests are about, behave the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from pixelbot.errors import DatabaseError

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_server"]

USER = "pixel"  # the superuser of the throwaway cluster (trust authentication, localhost only)


class PostgresServer:
    """A running throwaway cluster. ``create_database()`` hands out fresh empty databases."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = port
        self.run_as = run_as

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL (asyncpg driver)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement through ``psql``; returns its unaligned output."""
        command = [
            str(self.bin_dir / "psql"),
            *("-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database),
            *("-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DatabaseError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def _server_command(self, *args: str) -> list[str]:
        return _as_user(
            self.run_as, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        )

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.data_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
            ]
        )
        _run(self._server_command("-o", options, "-l", str(self.data_dir / "log"), "-w", "start"))

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``fast``: what an operator's restart does, sessions told first).
        A server that is not running (a test stopped it) is left alone."""
        if (self.data_dir / "postmaster.pid").exists():
            _run(self._server_command("-m", mode, "-w", "stop"))


def find_postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


@contextlib.contextmanager
def postgres_server(base: Path | None = None) -> Iterator[PostgresServer]:
    """Start a throwaway cluster; stop it and delete its files on exit."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise DatabaseError("PostgreSQL is not installed (scripts/setup --dev installs it)")
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="pixelbot-pg-", dir=base))
    root.chmod(0o755)  # the postgres user must be able to reach its data directory
    data_dir = root / "data"
    data_dir.mkdir(mode=0o700)
    if run_as is not None:
        shutil.chown(data_dir, run_as, run_as)
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", USER]
        _run(_as_user(run_as, [*initdb, "--no-sync", "-E", "UTF8", "--locale=C"]))
        server = PostgresServer(bin_dir, data_dir, _free_port(), run_as)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_user(user: str | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user, "--", *command]


def _run(command: Sequence[str]) -> None:
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DatabaseError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
