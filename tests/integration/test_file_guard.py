"""The database file can't vanish under the writer (issue 11): a change is acknowledged only
if it was committed into the file that is still at the database's path. Real SQLite files."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from pixelbot.app import Engine
from pixelbot.economy.batch import Batch, Needs
from pixelbot.errors import DatabaseVanished
from pixelbot.testing import viewer

pytestmark = pytest.mark.sqlite_only(
    "the guard watches the inode of a SQLite file and its folder; a server has no file to vanish"
)

ALICE = viewer("alice")


class DeleteTheFile:
    """An operation that deletes the database file while its batch runs: the commit then
    goes into an inode nobody can reach again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def needs(self, needs: Needs) -> None:
        return None

    def apply(self, batch: Batch) -> str:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return "saved"


async def test_a_commit_into_a_file_deleted_meanwhile_is_not_acknowledged(
    engine: Engine, db_path: Path
) -> None:
    await engine.ledger.grant(ALICE, 10, reason="test")
    with pytest.raises(DatabaseVanished, match="was deleted or replaced"):
        await engine.writer.submit(DeleteTheFile(db_path))
    with pytest.raises(DatabaseVanished):  # and every write after it
        await engine.ledger.grant(ALICE, 5, reason="test")


async def test_a_replaced_file_is_refused_before_anything_is_written(
    engine: Engine, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await engine.ledger.grant(ALICE, 10, reason="test")
    copy = db_path.with_name("copy.db")
    shutil.copyfile(db_path, copy)
    os.replace(copy, db_path)  # same path, another file (a restore over a running bot)
    before = contents(db_path)
    with caplog.at_level(logging.CRITICAL, logger="pixelbot.db"):
        for _ in range(3):
            with pytest.raises(DatabaseVanished, match=f"{db_path} was deleted or replaced"):
                await engine.ledger.grant(ALICE, 5, reason="test")
    assert contents(db_path) == before
    critical = [record for record in caplog.records if record.levelno == logging.CRITICAL]
    assert len(critical) == 1  # said loudly, once


def contents(path: Path) -> bytes:
    return path.read_bytes()
