"""Which typed error each PostgreSQL (asyncpg) fault becomes (``db/faults.py``), by SQLSTATE.

The errors are asyncpg's own classes, as the driver raises them and as SQLAlchemy's asyncpg
dialect wraps them (its DBAPI error carries the SQLSTATE and has asyncpg's error as cause).
The server-side behaviour (a real restart, a real deadlock) is in
``tests/integration/test_pg_faults.py``.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from pixelbot.db.faults import Faults
from pixelbot.errors import (
    DatabaseConflict,
    DatabaseError,
    DatabaseFull,
    DatabaseLocked,
    DatabaseReadOnly,
    DatabaseUnreachable,
)

WHERE = "postgresql+asyncpg://pixel@db.example:5432/pixel"


def faults() -> Faults:
    return Faults(WHERE, None, timedelta(seconds=5), is_sqlite=False)


def as_sqlalchemy_sees_it(error: Exception) -> Exception:
    """The dialect's wrapping: a DBAPI error with the SQLSTATE, asyncpg's error as cause."""
    wrapped = AsyncAdapt_asyncpg_dbapi.Error(f"{type(error).__name__}: {error}", error)
    wrapped.__cause__ = error
    return wrapped


CASES: list[tuple[Exception, type[DatabaseError], str]] = [
    (asyncpg.AdminShutdownError("terminating connection"), DatabaseUnreachable, "lost the"),
    (asyncpg.CannotConnectNowError("the database system is starting up"), DatabaseUnreachable, ""),
    (asyncpg.ConnectionDoesNotExistError("connection was closed"), DatabaseUnreachable, ""),
    (ConnectionRefusedError(111, "Connect call failed"), DatabaseUnreachable, "is it running?"),
    (asyncpg.TooManyConnectionsError("sorry, too many clients"), DatabaseUnreachable, "too many"),
    (asyncpg.InvalidPasswordError("password authentication failed"), DatabaseUnreachable, "login"),
    (asyncpg.DiskFullError("could not extend file"), DatabaseFull, "disk is full"),
    (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), DatabaseReadOnly, "primary"),
    (asyncpg.SerializationError("could not serialize"), DatabaseConflict, "concurrent"),
    (asyncpg.DeadlockDetectedError("deadlock detected"), DatabaseConflict, "concurrent"),
    (asyncpg.LockNotAvailableError("could not obtain lock"), DatabaseConflict, "concurrent"),
]


@pytest.mark.parametrize(("error", "expected", "phrase"), CASES)
def test_each_fault_is_its_typed_error_naming_the_server(
    error: Exception, expected: type[DatabaseError], phrase: str
) -> None:
    for seen in (error, as_sqlalchemy_sees_it(error)):
        typed = faults().error_for(seen)
        assert type(typed) is expected, (seen, typed)
        assert typed.where == WHERE
        assert WHERE in str(typed) and phrase in str(typed)
        assert "\n" not in str(typed)  # one line for the operator


def test_a_conflict_is_a_kind_of_lock_so_callers_that_handle_locks_handle_it() -> None:
    assert issubclass(DatabaseConflict, DatabaseLocked)


@pytest.mark.parametrize(
    "error",
    [
        # two bots storing one event: the writer's one-by-one retry answers "duplicate"
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.CheckViolationError("new row violates check constraint"),  # a bug, not an outage
        asyncpg.UndefinedColumnError("column does not exist"),
        ValueError("not a driver error at all"),
    ],
)
def test_what_is_not_about_the_server_passes_through(error: Exception) -> None:
    assert faults().error_for(error) is None
    assert faults().error_for(as_sqlalchemy_sees_it(error)) is None


def test_an_outage_is_told_once_and_a_conflict_not_at_all(caplog: pytest.LogCaptureFixture) -> None:
    told = faults()
    told.watch()
    for error in (asyncpg.AdminShutdownError("x"), ConnectionRefusedError(111, "refused")):
        typed = told.error_for(error)
        assert typed is not None
        told.report(typed)
    conflict = told.error_for(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert conflict is not None
    told.report(conflict)
    lines = [r.getMessage() for r in caplog.records if r.name == "pixelbot.db"]
    assert len(lines) == 1 and "lost the PostgreSQL server" in lines[0]
    told.recovered()
    assert "can save again" in caplog.records[-1].getMessage()
