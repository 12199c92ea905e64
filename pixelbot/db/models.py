"""The database schema as SQLAlchemy 2 typed models (see DESIGN.md §3).

Ledgers (``transactions``, ``xp_transactions``, ``events``) are append-only: rows are inserted,
never updated or deleted. ``users.points``/``xp``/``level`` are caches of those ledgers, kept in
step inside the same transaction; ``pixelbot db verify`` proves they agree.

Every change here needs an alembic migration (``python bot.py db revision -m "why"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pixelbot.db.types import UTCDateTime

__all__ = [
    "Base",
    "Cooldown",
    "EventRow",
    "Identity",
    "LinkCode",
    "ObsUndo",
    "PlatformToken",
    "QueueControl",
    "QueueItem",
    "Redeem",
    "StreamSession",
    "Transaction",
    "User",
    "XpTransaction",
]

# Deterministic constraint names: alembic batch migrations on SQLite need them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite's INTEGER PRIMARY KEY is its rowid (64-bit); elsewhere a BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """One wallet per person. A person may have identities on several platforms."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("xp >= 0", name="xp_not_negative"),
        # Partial (migration 0009): a plain index stored a NULL for every wallet never joined,
        # ~25% of the cost of inserting a watch-time tick's new wallets in SQLite.
        Index(
            "ix_users_merged_into",
            "merged_into",
            sqlite_where=text("merged_into IS NOT NULL"),
            postgresql_where=text("merged_into IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    xp: Mapped[int] = mapped_column(BigInteger, default=0)
    level: Mapped[int] = mapped_column(Integer)
    # Highest level whose level reward has been paid: a high-water mark, so losing XP and
    # levelling up again never pays a reward twice.
    rewarded_level: Mapped[int] = mapped_column(Integer)
    # Set when this wallet was joined into another by ``!link`` (migration 0007): its points
    # and XP moved there as ``link`` ledger rows, its identities now point there, and anything
    # that still names this id (a refund of an old charge, a queue item) lands on that wallet.
    # Always the final wallet, never one that was merged itself (a merge re-points older ones).
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Identity(Base):
    """(platform, platform_user_id) -> wallet. Names are labels that may change."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("platform", "platform_user_id"),
        Index(None, "platform", "login"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    login: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkCode(Base):
    """A one-time ``!link`` code (migration 0007). Only its SHA-256 is stored: a copy of the
    database does not reveal live codes. ``used_at`` is set once, by the identity it joined."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    platform: Mapped[str] = mapped_column(String(32))  # where it was asked for
    platform_user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    used_by: Mapped[str | None] = mapped_column(String(100), default=None)  # platform:id


class Transaction(Base):
    """The append-only points ledger. ``ref`` is the idempotency key: one row per ref, ever."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index(None, "user_id", "id"),
        # A refund names the charge it returns; unique makes "refunded exactly once" a DB rule.
        # Partial (migration 0008): a plain UNIQUE indexed a NULL for every other ledger row,
        # ~20% of the cost of inserting a watch-time tick's rows in SQLite.
        Index(
            "uq_transactions_refund_of",
            "refund_of",
            unique=True,
            sqlite_where=text("refund_of IS NOT NULL"),
            postgresql_where=text("refund_of IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # earn | grant | spend | transfer | adjust | refund | link; only a spend can be refunded
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(200), unique=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    refund_of: Mapped[str | None] = mapped_column(ForeignKey("transactions.ref"), default=None)
    # Not indexed: no query reads it, and every ledger row would pay (migration 0003).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class XpTransaction(Base):
    """The append-only XP ledger, with the level reached after each award."""

    __tablename__ = "xp_transactions"
    __table_args__ = (
        CheckConstraint("xp_after >= 0", name="xp_after_not_negative"),
        Index(None, "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    xp_after: Mapped[int] = mapped_column(BigInteger)
    level_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Cooldown(Base):
    """A cooldown that survives restarts. ``scope`` is ``user:<id>`` or ``global``."""

    __tablename__ = "cooldowns"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(100))
    # Not indexed: each restarted cooldown would move in the index, and cooldowns are found by
    # (scope, key); a purge of expired ones can scan this small table (migration 0003).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Redeem(Base):
    """Runtime state of a redeem defined in config.yaml (YAML stays the source of truth)."""

    __tablename__ = "redeems"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    cost: Mapped[int] = mapped_column(BigInteger)
    # None: as configured; True/False: a moderator's toggle, which outlives restarts.
    enabled_override: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StreamSession(Base):
    """One live window of one channel; per-stream limits hang off it."""

    __tablename__ = "stream_sessions"
    __table_args__ = (Index(None, "platform", "channel", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QueueItem(Base):
    """A durable unit of work (a redeem to perform). ``charge_ref`` names what it cost."""

    __tablename__ = "queue_items"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'cancelled')", name="status"
        ),
        Index(None, "kind", "status", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    redeem_key: Mapped[str | None] = mapped_column(String(64))
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    charge_ref: Mapped[str | None] = mapped_column(ForeignKey("transactions.ref"))
    stream_session_id: Mapped[int | None] = mapped_column(ForeignKey("stream_sessions.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # What the worker did, for audits: a wheel's draw and prize, the TTS file, the OBS steps.
    # None is SQL NULL (not the JSON text 'null'), however the row was written: the writer's
    # bulk path and a plain insert (``db copy``) store the same thing.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While running: which bot process holds the item, and until when. The holder renews the
    # lease while it works; an item whose lease ran out was left by a process that died, and
    # only such an item is recovered, so several processes can share one queue (migration 0006).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QueueControl(Base):
    """A moderator's pause of one queue kind (``!pause tts``); survives restarts."""

    __tablename__ = "queue_controls"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ObsUndo(Base):
    """A timed OBS change (a scene to switch back to, a source to hide, a filter to restore)
    that could not be undone because OBS went away: put back when OBS is reachable again.

    ``request`` is what puts it back; ``check`` reads OBS first, and when it no longer shows
    the change (the streamer switched scenes by hand meanwhile) the stream is left alone.
    ``outcome`` (applied or stale) is set once, when it is settled.
    """

    __tablename__ = "obs_undos"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("queue_items.id"))
    what: Mapped[str] = mapped_column(String(300))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    check: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))


class EventRow(Base):
    """The append-only event log: every event that came in and every outcome it caused.

    Incoming events carry their idempotency ``ref`` (unique); outcomes (award, spend, level-up,
    refund) carry ``cause_ref``, the ref of what caused them.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str | None] = mapped_column(String(32))
    # Indexes cost every one of the many rows written here, so there are only two: ref (the
    # idempotency check) and user_id, which in SQLite also orders a viewer's rows by id, i.e.
    # by time: a viewer's timeline. Time-range scans walk the id order.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    stream_session_id: Mapped[int | None] = mapped_column(ForeignKey("stream_sessions.id"))
    ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Not indexed: every event row pays for each index, and "what did X cause" is an audit
    # question answered by ref lookups in the ledgers.
    cause_ref: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlatformToken(Base):
    """OAuth tokens of a platform install. Token columns hold ciphertext, never plaintext."""

    __tablename__ = "platform_tokens"
    __table_args__ = (UniqueConstraint("platform", "channel_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(64))
    access_token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    scopes: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of a scheduled job (backup, cleanup...): when, how it ended, what it did."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    outcome: Mapped[str] = mapped_column(String(16))  # running | ok | failed
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
