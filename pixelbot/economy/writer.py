"""Group commit: the one writer through which every economy change reaches the database.

Callers ``await writer.submit(op)``. A single task takes every operation queued so far (up to
``max_batch``), runs them in order inside ONE transaction, commits, and only then resolves each
caller's await with its own result or its own error. Under load, a batch holds hundreds of
operations and a commit is shared by all of them; when the chat is quiet, a batch is one
operation and the latency is one commit.

Because operations run one after another against the same in-memory state, two spends of the
same wallet can never both see the old balance: concurrency cannot overspend.

An operation that is refused (``EconomyError``) or raises is rolled back alone; the rest of the
batch commits. If the database refuses the whole batch (a constraint), each
operation is retried in a transaction of its own so one poisoned operation fails only itself.
A fault of the database itself (``DatabaseError``: locked, full, read-only, damaged, the file
gone) fails the whole batch at once, without retries: nothing in it was saved, and each caller
hears so. The file is checked before the batch writes and again after the commit, before anyone
is told their change was saved (``db/fileguard.py``).

On a SQLite file the writer's statements run in a thread of its own, on a synchronous
connection, one trip per step of a batch (``db/writer_connection.py``): the store's functions
are synchronous for that reason. The rules (``op.apply``) run on the event loop.

Between batches the writer remembers the identities, wallets and cooldowns it committed
(``cache.py``), so a batch reads from the database only what it has not seen lately.

How an operation runs is its declared kind, checked when it is submitted (``run_kind``): a
``SetBasedOperation`` or a ``RowsOperation`` subclasses that class; anything else must be an
``Operation`` (``needs`` and ``apply``) and no more. An object that is none of them, or two at
once, is refused with a ``TypeError`` at ``submit`` instead of being run the wrong way.

A ``SetBasedOperation`` (a watch-time payout of a whole channel) skips the ``Batch``: it runs
alone, in its turn, in a write transaction of its own (``Database.write``), writing with its own
set-based statements; the writer then forgets what it remembered. Chat queued behind it waits
in the queue, as behind any batch, instead of competing for the database's write lock. One that
PostgreSQL rolls back for another process (``DatabaseConflict``) runs again, as a batch does.

A ``RowsOperation`` (the queue's claims and lease renewals, on a SQLite file) also runs alone,
in its turn, but on the writer's own connection: it writes rows the writer does not remember,
and written through another connection it would make the writer forget everything (a write by
another connection is all the cache can see, ``cache.py``). A queue busy with redeems did that
before a fifth of the batches of a busy chat, each of which then read all its viewers again.
(On PostgreSQL there is no cache, and the queue writes them itself: ``QueueStore``.)

Statistics, for the benchmarks: ``batches`` and ``operations`` count the committed ``Batch``
runs and the operations in them (so ``operations / batches`` is the mean size of a batch of
chat-speed changes); ``set_based_runs`` and ``rows_runs`` count the committed runs of the two
kinds that run alone.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from abc import ABC, abstractmethod
from collections import deque
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, assert_never

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.writer_connection import WriterConnection
from pixelbot.economy import store
from pixelbot.economy.batch import Batch, Needs, Policy
from pixelbot.economy.cache import WriterCache
from pixelbot.errors import DatabaseConflict, DatabaseError, EconomyError, WriterStopped

__all__ = [
    "Operation",
    "RowsOperation",
    "RunKind",
    "SetBasedOperation",
    "Writer",
    "WriterStopped",
    "run_kind",
]

log = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Operation(Protocol, Generic[T_co]):
    """One economy change: declares what it touches, then applies itself to a batch."""

    def needs(self, needs: Needs) -> None: ...

    def apply(self, batch: Batch) -> T_co: ...


class SetBasedOperation(ABC, Generic[T_co]):
    """A change written with its own statements, in a transaction of its own. Subclass it:
    the writer runs an operation by the kind it declares, not by the methods it has."""

    @abstractmethod
    async def write(self, conn: AsyncConnection, db: Database, now: Any) -> T_co: ...


class RowsOperation(ABC, Generic[T_co]):
    """A few statements on rows the writer does not remember (never wallets, identities or
    cooldowns), run in a transaction of their own on the writer's connection; not run at all
    if its caller stopped waiting before its turn. Subclass it (see ``SetBasedOperation``)."""

    @abstractmethod
    def write_rows(self, conn: Connection, db: Database, now: datetime) -> T_co: ...


AnyOperation = Operation[Any] | SetBasedOperation[Any] | RowsOperation[Any]


class RunKind(enum.Enum):
    """How the writer runs an operation."""

    BATCH = "batch"  # an ``Operation``: applied with others in one ``Batch``
    SET_BASED = "set_based"  # a ``SetBasedOperation``: alone, in a transaction of its own
    ROWS = "rows"  # a ``RowsOperation``: alone, on the writer's connection


_KINDS: dict[type, RunKind] = {}  # checked once per class: enqueue is on the hot path


def run_kind(op: object) -> RunKind:
    """The kind ``op`` declares; ``TypeError`` if it declares none, or more than one."""
    cls = type(op)
    kind = _KINDS.get(cls)
    if kind is None:
        kinds = [
            declared
            for declared, is_it in (
                (RunKind.SET_BASED, isinstance(op, SetBasedOperation)),
                (RunKind.ROWS, isinstance(op, RowsOperation)),
                (RunKind.BATCH, _has_methods(cls, "needs", "apply")),
            )
            if is_it
        ]
        if len(kinds) != 1:
            what = " and ".join(k.value for k in kinds) if kinds else "no kind"
            raise TypeError(
                f"{cls.__qualname__} is {what}: a writer operation is exactly one of an "
                "Operation (needs, apply), a SetBasedOperation or a RowsOperation (subclass it)"
            )
        kind = _KINDS[cls] = kinds[0]
    return kind


def _has_methods(cls: type, *names: str) -> bool:
    """Whether ``cls`` defines each of ``names`` itself: a class that subclasses the
    ``Operation`` protocol inherits its empty stubs, which do not count."""
    return all(
        callable(getattr(cls, name, None)) and getattr(cls, name) is not getattr(Operation, name)
        for name in names
    )


class _Pending:
    __slots__ = ("future", "kind", "op")

    def __init__(self, op: AnyOperation, kind: RunKind, future: asyncio.Future[Any]) -> None:
        self.op: Any = op
        self.kind = kind
        self.future = future


class Writer:
    # The most operations one transaction takes. A commit writes every page the batch dirtied,
    # and in a busy chat those are mostly the same hot pages (wallets, index leaves) whatever the
    # batch size, so larger batches write far less (figures: README, "Why the settings are what
    # they are"). Only a backlog fills a batch, so a quiet chat still commits each message on
    # its own.
    MAX_BATCH = 4000
    CONFLICT_RETRIES = 5  # runs of a batch PostgreSQL rolled back for a concurrent one
    # Operations applied between two yields to the event loop (about 5-10 ms of rules here).
    APPLY_SLICE = 250

    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: Policy,
        *,
        max_batch: int = MAX_BATCH,
        cache_limit: int = 100_000,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: WriterConnection | None = None
        self._stopping = False
        self._cancelled = False  # the writer's task was cancelled: stop after the op in hand
        self.cache = WriterCache(cache_limit)
        # Statistics, for the benchmarks (committed runs only; see the module's docstring).
        self.batches = 0  # Batch runs ...
        self.operations = 0  # ... and the Operations in them
        self.set_based_runs = 0
        self.rows_runs = 0

    async def start(self) -> None:
        if self._task is None:
            self._stopping = self._cancelled = False
            self._task = asyncio.create_task(self._run(), name="economy-writer")
            self.db.faults.watch()  # the bot runs: tell the operator about outages once each

    async def stop(self) -> None:
        """Finish every operation already submitted, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await self._task  # (cancelling this waits for the batch in hand: see _run)
        finally:
            if self._task is not None and self._task.done():
                self._task = None
                self.db.faults.unwatch()
                await self._drop_connection()

    async def submit(self, op: Operation[T] | SetBasedOperation[T] | RowsOperation[T]) -> T:
        """Run ``op`` in the next batch; returns its result once that batch is committed."""
        return await self.enqueue(op)

    def enqueue(
        self, op: Operation[T] | SetBasedOperation[T] | RowsOperation[T]
    ) -> asyncio.Future[T]:
        """Like ``submit`` without a coroutine per call: for callers feeding many operations."""
        kind = run_kind(op)  # (refused before anything is queued)
        task = self._task
        if task is None or not self.accepting:
            raise WriterStopped("the economy writer is not running (not started, or stopping)")
        future: asyncio.Future[T] = task.get_loop().create_future()
        self._queue.append(_Pending(op, kind, future))
        if not self._wakeup.is_set():
            self._wakeup.set()
        return future

    async def _run(self) -> None:
        work = asyncio.ensure_future(self._work())
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            # Cancelled (a shutdown) while an operation may be in hand, a commit under way in
            # the database's thread: finish that one, so that each caller hears what really
            # happened and the connection closes only after it; start no other; then stop.
            self._cancelled = True
            self._wakeup.set()
            await work  # (a second cancel interrupts even that: the way out of a hung commit)
            raise
        finally:
            # However the loop ended: what never started hears so (nothing of it was saved)
            # instead of waiting forever; enqueue takes nothing from now on.
            self._cancelled = True
            while self._queue:
                _settle(
                    self._queue.popleft().future,
                    WriterStopped("the economy writer stopped before this operation's turn"),
                )

    @property
    def accepting(self) -> bool:
        """Whether ``submit`` takes operations now (started, and not stopping)."""
        task = self._task
        return task is not None and not (self._stopping or self._cancelled or task.done())

    async def _work(self) -> None:
        """The writer's loop: one batch, or one operation run alone, after another. It runs
        as one task under ``_run``'s shield, so a shutdown lets whatever is in hand finish,
        whichever kind it is (a payout tick's commit as much as a batch's)."""
        while not self._cancelled:
            if not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            kind = self._queue[0].kind
            if kind is RunKind.ROWS:
                await self._write_rows(self._queue.popleft())
                continue
            if kind is RunKind.SET_BASED:
                await self._write_alone(self._queue.popleft())
                continue
            if kind is not RunKind.BATCH:
                assert_never(kind)
            take = min(len(self._queue), self.max_batch)
            pending: list[_Pending] = []
            while len(pending) < take and self._queue[0].kind is RunKind.BATCH:
                pending.append(self._queue.popleft())
            try:
                await self._process(pending)
            except Exception as exc:  # the writer must outlive any one batch
                log.exception("economy writer: a batch failed unexpectedly")
                self.cache.clear()
                for item in pending:
                    _settle(item.future, exc)

    async def _connection(self) -> WriterConnection:
        # One connection for the writer's life: SQLite's page cache is per connection, and a
        # pool handing out a different one per batch would start each batch with a cold cache.
        if self._conn is None:
            self._conn = await self.db.writer_connection()
        return self._conn

    async def _drop_connection(self) -> None:
        self.cache.clear()  # it describes what that connection committed
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except Exception:
                log.debug("closing a failed writer connection failed too", exc_info=True)

    async def _write_alone(self, item: _Pending) -> None:
        op = item.op
        try:
            outcome = await self._write_alone_retrying_conflicts(op)
        except Exception as exc:  # nothing of it was saved; the caller hears why
            _settle(item.future, exc)
            return
        self.cache.clear()  # it changed wallets behind the cache's back
        self.db.faults.recovered()
        self.set_based_runs += 1
        _settle(item.future, outcome)

    async def _write_alone_retrying_conflicts(self, op: SetBasedOperation[Any]) -> Any:
        """As for a batch: PostgreSQL may roll it back to let another process's transaction go
        on (``DatabaseConflict``: a deadlock, or a payout tick that found a new viewer's wallet
        made by another bot meanwhile). Nothing of it was saved, and it reads everything again
        in its new transaction, so it simply runs again."""
        for attempt in range(self.CONFLICT_RETRIES + 1):
            try:
                self.db.check_file()
                async with self.db.write() as conn:  # (takes turns like every batch)
                    outcome = await op.write(conn, self.db, self.clock.now())
                self.db.check_file()
                return outcome
            except DatabaseConflict as conflict:
                if attempt == self.CONFLICT_RETRIES:
                    log.warning("%s; gave up after %d tries", conflict, attempt + 1)
                    raise
                log.debug("%s conflicted (%s); running it again", type(op).__name__, conflict)
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")  # (the last try returns or raises)

    async def _write_rows(self, item: _Pending) -> None:
        if item.future.done():
            # Its caller is gone (cancelled): its result is all a RowsOperation is for, and a
            # queue claim nobody receives would leave an item running that nobody performs.
            return
        try:
            self.db.check_file()
            conn = await self._connection()
            async with self.db.write_turn(), conn.transaction() as transaction:
                outcome = await transaction.commit_after(
                    item.op.write_rows, self.db, self.clock.now()
                )
            self.db.check_file()
        except Exception as exc:  # rolled back, nothing of it saved; the caller hears why
            await self._drop_connection()  # (a fresh one for the next, whatever broke)
            _settle(item.future, exc)
            return
        self.db.faults.recovered()
        self.rows_runs += 1
        _settle(item.future, outcome)

    async def _process(self, pending: list[_Pending]) -> None:
        try:
            outcomes = await self._commit_retrying_conflicts(pending)
        except DatabaseError as fault:  # the database itself: retrying each op fails the same
            await self._drop_connection()
            for item in pending:
                _settle(item.future, fault)
            return
        except Exception as exc:
            await self._drop_connection()  # a fresh one for the next try, whatever broke
            if len(pending) > 1:
                log.warning("batch of %d failed (%s); retrying one by one", len(pending), exc)
                for item in pending:
                    await self._process([item])
                return
            log.error("economy operation %r failed: %s", pending[0].op, exc)
            _settle(pending[0].future, exc)
            return
        self.db.faults.recovered()
        self.batches += 1
        self.operations += len(pending)
        for item, outcome in zip(pending, outcomes, strict=True):
            _settle(item.future, outcome)

    async def _commit_retrying_conflicts(self, pending: list[_Pending]) -> list[Any]:
        """PostgreSQL may roll a batch back to let another process's transaction go on (a
        serialization failure or deadlock, ``DatabaseConflict``). Nothing of it was saved and
        the batch is rebuilt from the database each time, so it simply runs again."""
        for attempt in range(self.CONFLICT_RETRIES):
            try:
                return await self._commit(pending)
            except DatabaseConflict as conflict:
                log.debug("batch conflicted (%s); running it again", conflict)
                await self._drop_connection()  # (a failed COMMIT can leave it unusable)
                await asyncio.sleep(0.005 * (attempt + 1))
        try:
            return await self._commit(pending)
        except DatabaseConflict as conflict:
            log.warning("%s; gave up after %d tries", conflict, self.CONFLICT_RETRIES + 1)
            raise

    async def _commit(self, pending: list[_Pending]) -> list[Any]:
        needs = Needs()
        for item in pending:
            item.op.needs(needs)
        self.db.check_file()  # never write into a file that is no longer at its path
        conn = await self._connection()
        async with self.db.write_turn(), conn.transaction() as transaction:
            batch = Batch(self.clock.now(), self.policy)
            cache_ok = await transaction.run(self._load, needs, batch)
            outcomes: list[Any] = []
            for number, item in enumerate(pending, 1):
                if number % self.APPLY_SLICE == 0:
                    # A big batch's rules are pure Python on the event loop: let replies,
                    # reads and platform I/O run between slices rather than wait for all of it.
                    await asyncio.sleep(0)
                checkpoint = batch.checkpoint()
                try:
                    outcomes.append(item.op.apply(batch))
                except EconomyError as refused:
                    batch.rollback(checkpoint)
                    outcomes.append(refused)
                except Exception as bug:
                    log.exception("economy operation %r crashed; rolled back alone", item.op)
                    batch.rollback(checkpoint)
                    outcomes.append(bug)
            await transaction.commit_after(store.flush, batch, self.db)
        # Committed, but into the file at our path? If it went meanwhile, acknowledging would
        # promise changes that are lost: the batch fails instead (DatabaseVanished).
        self.db.check_file()
        if cache_ok:
            self._remember(needs, batch)
        return outcomes

    def _load(self, conn: Connection, needs: Needs, batch: Batch) -> bool:
        """The batch's first step, in its transaction: whether the cache may be used, and what
        the operations need from the database. (Asked inside the transaction, which holds the
        write lock: nothing can change between this check and the commit except through this
        batch.)"""
        cache_ok = self.cache.validate(self.db.data_version(conn), batch.now)
        store.load(conn, needs, batch, self.db, self.cache if cache_ok else None)
        return cache_ok

    def _remember(self, needs: Needs, batch: Batch) -> None:
        # The batch is committed: a failure here must not look like a failed batch (it would be
        # retried and paid twice). The next batch just reads everything again.
        try:
            self.cache.remember(needs, batch)
        except Exception:
            log.exception("economy writer: remembering a committed batch failed; cache dropped")
            self.cache.clear()


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # the caller was cancelled; the change stands, nobody is waiting
        return
    if isinstance(outcome, StopIteration):  # futures refuse it; keep the cause visible
        outcome = RuntimeError(f"operation raised StopIteration: {outcome!r}")
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
