"""PostgreSQL's own client tools (``pg_dump``, ``pg_restore``) for backups and restores.

A PostgreSQL server is not a file the bot can copy: the backup is ``pg_dump --format=custom``
(one consistent snapshot while the bot keeps writing), and what proves it good is the server's
own ``pg_restore``: ``--list`` reads the whole archive's table of contents, and a restore into a
scratch database on the same server, followed by ``db verify`` there, proves the data inside.

The tools get the connection through libpq's environment variables (``PGHOST``, ``PGPORT``,
``PGUSER``, ``PGDATABASE``, and the password in ``PGPASSWORD``), never on their command line,
where any user of the machine could read it in the process list; nothing here logs them.
Administrative statements (``CREATE DATABASE``, ``ALTER DATABASE .. RENAME``) run through a
connection of their own in autocommit mode, as PostgreSQL requires.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from pixelbot.db.engine import APPLICATION_NAME, Database
from pixelbot.db.verify import verify
from pixelbot.errors import DatabaseError

__all__ = [
    "CLIENT_PACKAGE",
    "Replaced",
    "ScratchCheck",
    "archive_problems",
    "check_in_scratch_database",
    "dump",
    "other_sessions",
    "postgres_url",
    "restore_in_place",
    "tool",
    "verify_database",
]

CLIENT_PACKAGE = "postgresql-client"
_INSUFFICIENT_PRIVILEGE = "42501"


def tool(name: str) -> str:
    """The path of ``pg_dump``/``pg_restore`` on PATH, or one clear error saying what to install."""
    found = shutil.which(name)
    if found is None:
        raise DatabaseError(
            f"{name} is not installed (not on PATH): backups of a PostgreSQL database need "
            f"PostgreSQL's client tools; install the {CLIENT_PACKAGE} package matching the "
            f"server's major version (e.g. apt install {CLIENT_PACKAGE})"
        )
    return found


def libpq_env(url: URL, database: str | None = None) -> dict[str, str]:
    """The environment that points a libpq tool at ``url`` (the password stays off argv)."""
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", url.host),
        ("PGPORT", None if url.port is None else str(url.port)),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", database or url.database),
    ):
        if value:
            env[variable] = str(value)
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str) and ssl:  # asyncpg also takes ssl=true/false
        env["PGSSLMODE"] = {"true": "require", "false": "disable"}.get(ssl.lower(), ssl)
    env["PGAPPNAME"] = f"{APPLICATION_NAME}-backup"
    return env


async def _run(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace").strip()


async def _tool_major(path: str, env: dict[str, str]) -> int:
    code, out, err = await _run([path, "--version"], env)
    match = re.search(r"\)\s+(\d+)", out)
    if code != 0 or match is None:
        raise DatabaseError(f"cannot tell the version of {path}: {err or out}")
    return int(match.group(1))


async def _server_major(db: Database) -> int:
    async with db.read() as conn:
        number = (await conn.exec_driver_sql("SHOW server_version_num")).scalar_one()
    return int(number) // 10000


async def dump(db: Database, target: Path) -> None:
    """``pg_dump --format=custom`` of ``db`` into ``target``. DatabaseError, saying what to
    install, when pg_dump is missing or older than the server (it cannot dump a newer one)."""
    env = libpq_env(db.url)
    pg_dump = tool("pg_dump")
    mine, server = await _tool_major(pg_dump, env), await _server_major(db)
    if mine < server:
        raise DatabaseError(
            f"pg_dump is version {mine}, older than the PostgreSQL {server} server, and cannot "
            f"back it up: install {CLIENT_PACKAGE}-{server} (the client of the server's "
            "major version)"
        )
    command = [pg_dump, "--format=custom", "--no-password", f"--file={target}"]
    code, _out, err = await _run(command, env)
    if code != 0:
        raise DatabaseError(f"pg_dump failed: {err[-2000:]}")


async def archive_problems(archive: Path) -> list[str]:
    """``pg_restore --list``: reads the archive's whole table of contents (no server needed)."""
    code, out, err = await _run([tool("pg_restore"), "--list", str(archive)], dict(os.environ))
    if code != 0:
        return [f"{archive.name} is not a readable pg_dump archive: {err[-500:]}"]
    if "TABLE DATA" not in out:
        return [f"{archive.name} holds no table data"]
    return []


_MAINTENANCE = ("postgres", "template1")  # a database to stand in while renaming the bot's


@asynccontextmanager
async def _admin(url: URL, database: str | None = None) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection (CREATE/DROP/ALTER DATABASE refuse to run in a transaction)
    to ``database``, or with ``maintenance``-style names, the first of them that lets us in."""
    names = (database,) if database not in _MAINTENANCE else _MAINTENANCE
    for index, name in enumerate(names):
        engine = create_async_engine(
            url.set(database=name or url.database),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"server_settings": {"application_name": f"{APPLICATION_NAME}-backup"}},
        )
        try:
            try:
                conn = await engine.connect()
            except Exception:
                if index + 1 < len(names):
                    continue  # e.g. no "postgres" database on this server: try template1
                raise
            try:
                yield conn
            finally:
                await conn.close()
            return
        finally:
            await engine.dispose()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlstate(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        for candidate in (seen, getattr(seen, "orig", None)):
            state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(state, str):
                return state
        seen = seen.__cause__
    return None


def _scratch_name(base: str, tag: str) -> str:
    return f"{base[:40]}_{tag}_{uuid.uuid4().hex[:10]}"


async def _pg_restore(url: URL, database: str, archive: Path, *extra: str) -> str | None:
    """Restore ``archive`` into ``database`` in one transaction; the error text, or None."""
    command = [
        tool("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        *extra,
        f"--dbname={database}",
        str(archive),
    ]
    code, _out, err = await _run(command, libpq_env(url, database))
    return None if code == 0 else (err[-2000:] or f"pg_restore exited with {code}")


@dataclass
class ScratchCheck:
    """What restoring an archive into a scratch database found. ``restored`` is False when the
    role may not create databases, so only the archive itself could be checked (``note``)."""

    restored: bool
    problems: list[str]
    counts: dict[str, int]
    note: str | None = None


async def verify_database(url: URL) -> tuple[list[str], dict[str, int]]:
    database = Database(url.render_as_string(hide_password=False))
    try:
        report = await verify(database)
    except Exception as exc:  # an archive of something that is not our database
        return [f"db verify could not read it: {type(exc).__name__}: {exc}"], {}
    finally:
        await database.dispose()
    return [f"{v.check}: {v.detail}" for v in report.violations], report.counts


async def check_in_scratch_database(url: URL, archive: Path) -> ScratchCheck:
    """Restore ``archive`` into a new database beside ``url``'s, run ``db verify`` there, and
    drop it again. Without the right to create databases: say so, and check nothing more."""
    scratch = _scratch_name(url.database or "pixel", "verify")
    try:
        async with _admin(url) as conn:
            await conn.exec_driver_sql(f"CREATE DATABASE {_quote(scratch)}")
    except Exception as exc:
        if _sqlstate(exc) != _INSUFFICIENT_PRIVILEGE:
            raise DatabaseError(f"cannot create a scratch database to verify in: {exc}") from exc
        note = (
            f"archive check only (pg_restore --list): the role {url.username or ''} may not "
            "create databases, so the data was NOT restored and verified with db verify; "
            "grant CREATEDB for the full check"
        )
        return ScratchCheck(False, [], {}, note)
    try:
        failed = await _pg_restore(url, scratch, archive)
        if failed is not None:
            return ScratchCheck(True, [f"pg_restore into a scratch database failed: {failed}"], {})
        problems, counts = await verify_database(url.set(database=scratch))
        return ScratchCheck(True, problems, counts)
    finally:
        async with _admin(url) as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quote(scratch)} WITH (FORCE)")


async def other_sessions(url: URL) -> list[str]:
    """Who else is connected to ``url``'s database (``pg_stat_activity``), one line each."""
    async with _admin(url, "postgres") as conn:
        rows = await conn.execute(
            text(
                "SELECT pid, application_name, client_addr FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": url.database},
        )
        return [f"pid {r.pid} ({r.application_name or 'no name'}, {r.client_addr})" for r in rows]


@dataclass(frozen=True)
class Replaced:
    """Where the data that was in the database went: a renamed database, or a safety dump."""

    database: str | None = None
    dump: Path | None = None


async def restore_in_place(url: URL, archive: Path, stamp: str, safety_dir: Path) -> Replaced:
    """Put ``archive`` in place of ``url``'s database, keeping what was there.

    First choice: rename the current database aside (``<name>_replaced_<stamp>``), create a new
    one under the name and restore into it; if that restore fails, the new one is dropped and
    the old one renamed back. Where the role may not rename or create databases: dump the
    current one into ``safety_dir`` first, then restore over it in one transaction
    (``--clean``), so a failed restore changes nothing. Call only with nobody connected.
    """
    name = url.database or ""
    aside = f"{name[:40]}_replaced_{stamp}"
    try:
        async with _admin(url, "postgres") as conn:
            like = await _create_like(conn, name)
            await conn.exec_driver_sql(f"ALTER DATABASE {_quote(name)} RENAME TO {_quote(aside)}")
            try:
                await conn.exec_driver_sql(f"CREATE DATABASE {_quote(name)} {like}")
            except Exception:
                await conn.exec_driver_sql(
                    f"ALTER DATABASE {_quote(aside)} RENAME TO {_quote(name)}"
                )
                raise
    except Exception as exc:
        if _sqlstate(exc) != _INSUFFICIENT_PRIVILEGE:
            raise DatabaseError(f"cannot move the current database aside: {exc}") from exc
        return await _restore_over(url, archive, stamp, safety_dir)
    failed = await _pg_restore(url, name, archive)
    if failed is not None:
        async with _admin(url, "postgres") as conn:
            await conn.exec_driver_sql(f"DROP DATABASE {_quote(name)} WITH (FORCE)")
            await conn.exec_driver_sql(f"ALTER DATABASE {_quote(aside)} RENAME TO {_quote(name)}")
        raise DatabaseError(f"the restore did not finish, nothing changed: {failed}")
    return Replaced(database=aside)


async def _create_like(conn: AsyncConnection, name: str) -> str:
    """``CREATE DATABASE`` options that give the new database the old one's owner, encoding and
    locale (from the empty ``template0``, so nothing of a customised template1 gets in)."""
    row = (
        await conn.execute(
            text(
                "SELECT pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS enc, "
                "datcollate, datctype FROM pg_database WHERE datname = :name"
            ),
            {"name": name},
        )
    ).one()

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    return (
        f"WITH TEMPLATE template0 OWNER {_quote(row.owner)} ENCODING {literal(row.enc)} "
        f"LC_COLLATE {literal(row.datcollate)} LC_CTYPE {literal(row.datctype)}"
    )


async def _restore_over(url: URL, archive: Path, stamp: str, safety_dir: Path) -> Replaced:
    await asyncio.to_thread(safety_dir.mkdir, parents=True, exist_ok=True)
    safety = safety_dir / f"replaced-{stamp}.pgdump"
    database = Database(url.render_as_string(hide_password=False))
    try:
        await dump(database, safety)
    finally:
        await database.dispose()
    failed = await _pg_restore(url, url.database or "", archive, "--clean", "--if-exists")
    if failed is not None:
        raise DatabaseError(f"the restore did not finish, nothing changed: {failed}")
    return Replaced(dump=safety)


def postgres_url(url: str | URL) -> URL | None:
    """``url`` parsed, if it is a PostgreSQL one."""
    parsed = make_url(url)
    return parsed if parsed.get_backend_name() == "postgresql" else None
