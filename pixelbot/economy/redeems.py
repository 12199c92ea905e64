"""Redeems: a viewer buys a configured reward; the charge and the queue item it pays for are
committed in ONE transaction, so there is never a charge without its item or an item nobody
paid for.

Everything that can refuse a redeem (its cooldowns, its per-stream limits, the viewer's
balance) is checked inside that same operation, against the same snapshot; a refusal changes
nothing. Checks that need no database (permission, input, enabled) happen in the command
layer before the operation is submitted. Moderators' enable/disable toggles are stored in the
``redeems`` table and outlive restarts; ``config.yaml`` stays the source of everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select

from pixelbot.clock import Clock
from pixelbot.config.redeems import RedeemSettings
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.domain.queue import ItemStatus, QueueKind, kind_of_action
from pixelbot.economy.batch import GLOBAL_SCOPE, SPEND, Batch, Needs, user_scope
from pixelbot.economy.payloads import (
    AiPayload,
    EffectPayload,
    ItemPayload,
    Requester,
    TtsPayload,
    WheelPayload,
)
from pixelbot.economy.writer import Writer
from pixelbot.errors import LimitReached, OnCooldown, QueueFull, RedeemDisabled, UnknownRedeem
from pixelbot.events import Viewer

__all__ = ["RedeemCatalog", "Redeems", "Redemption", "payload_for", "queue_kind"]

REDEEMS = Base.metadata.tables["redeems"]
QUEUE_ITEMS = Base.metadata.tables["queue_items"]


def queue_kind(action_type: str) -> QueueKind:
    """The queue (and worker) an action's items go to: obs, sound and chat are effects."""
    return kind_of_action(action_type)


def payload_for(kind: QueueKind, **fields: Any) -> ItemPayload:
    payload_type = {
        QueueKind.TTS: TtsPayload,
        QueueKind.WHEEL: WheelPayload,
        QueueKind.EFFECT: EffectPayload,
    }.get(kind, AiPayload)
    return payload_type(**fields)


class Redemption(NamedTuple):
    item_id: int | None  # None for a duplicate delivery of the same request
    key: str
    cost: int
    balance: int
    duplicate: bool = False


@dataclass(frozen=True)
class _Redeem:
    key: str
    settings: RedeemSettings
    viewer: Viewer
    text: str | None
    ref: str  # idempotency key, e.g. "redeem:<ref of the chat message that asked>"
    stream_session_id: int | None
    counts_since: datetime
    channel: str | None = None  # where it was asked for: outcomes are said there
    message_id: str | None = None  # the chat message that asked (a deleted one cancels it)
    max_pending: int | None = None  # a queue this full refuses the redeem

    @property
    def kind(self) -> QueueKind:
        return queue_kind(self.settings.action.type)

    def needs(self, needs: Needs) -> None:
        needs.viewer(self.viewer)
        needs.event_refs.add(self.ref)
        needs.global_cooldowns.add(self.cooldown_key)
        if self.settings.max_per_stream or self.settings.max_per_user_per_stream:
            needs.redeem_counts[self.key] = (self.stream_session_id, self.counts_since)
        needs.queue_items += 1
        if self.max_pending is not None:
            needs.pending_kinds.add(self.kind)

    @property
    def cooldown_key(self) -> str:
        return f"redeem:{self.key}"

    def apply(self, batch: Batch) -> Redemption:
        settings, key = self.settings, self.key
        account = batch.account_for(self.viewer)
        if batch.has_event_ref(self.ref):  # the same request delivered twice
            return Redemption(None, key, 0, account.points, duplicate=True)
        for scope, length in (
            (user_scope(account.user_id), settings.cooldown),
            (GLOBAL_SCOPE, settings.global_cooldown),
        ):
            remaining = batch.cooldown_remaining(scope, self.cooldown_key)
            if length and remaining > 0:
                raise OnCooldown(key, remaining)
        for limit, who, per_user in (
            (settings.max_per_stream, None, False),
            (settings.max_per_user_per_stream, account.user_id, True),
        ):
            if limit is not None and batch.redeem_counts.get((key, who), 0) >= limit:
                raise LimitReached(key, limit, per_user=per_user)
        if self.max_pending is not None and batch.pending_counts[self.kind] >= self.max_pending:
            raise QueueFull(key, self.max_pending, self.kind)
        balance = account.points
        charge_ref = None
        if settings.cost > 0:
            balance = batch.debit(
                account, settings.cost, kind=SPEND, reason=f"redeem:{key}", ref=self.ref
            )
            charge_ref = self.ref
        for scope, length in (
            (user_scope(account.user_id), settings.cooldown),
            (GLOBAL_SCOPE, settings.global_cooldown),
        ):
            if length:
                batch.start_cooldown(scope, self.cooldown_key, length)
        batch.count_redeem(key, account.user_id)
        fields: dict[str, Any] = {
            "redeem": key,
            "title": settings.title,
            "text": self.text,
            "action": settings.action.model_dump(mode="json", by_alias=True),
            "channel": self.channel,
            "message": self.message_id,
            "viewer": Requester.of(self.viewer),
        }
        item_id = batch.enqueue(
            {
                "kind": self.kind.value,
                "status": ItemStatus.PENDING.value,
                "priority": 0,
                "payload": payload_for(self.kind, **fields).to_json(),
                "user_id": account.user_id,
                "redeem_key": key,
                "cost": settings.cost,
                "charge_ref": charge_ref,
                "stream_session_id": self.stream_session_id,
                "attempts": 0,
                "error": None,
                "result": None,
                "started_at": None,
                "finished_at": None,
            }
        )
        batch.log(
            "redeem",
            platform=self.viewer.platform,
            user_id=account.user_id,
            ref=self.ref,
            payload={"redeem": key, "cost": settings.cost, "item": item_id},
        )
        return Redemption(item_id, key, settings.cost, balance)


class RedeemCatalog:
    """The configured redeems plus the moderators' toggles (persisted in ``redeems``)."""

    def __init__(self, db: Database, clock: Clock, redeems: dict[str, RedeemSettings]) -> None:
        self._db = db
        self._clock = clock
        self.redeems = dict(redeems)
        self._overrides: dict[str, bool] = {}

    async def load(self, redeems: dict[str, RedeemSettings] | None = None) -> None:
        """Mirror the YAML into the table (title, cost) and read the toggles back. With
        ``redeems`` (a reloaded config), those replace the running ones, but only once they
        are stored: if storing fails, the running redeems stay as they were."""
        wanted = self.redeems if redeems is None else dict(redeems)
        now = self._clock.now()
        async with self._db.write() as conn:
            if wanted:
                await conn.execute(
                    self._db.upsert(REDEEMS, ["key"], ["title", "cost", "updated_at"]),
                    [
                        {
                            "key": key,
                            "title": redeem.title,
                            "cost": redeem.cost,
                            "enabled_override": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for key, redeem in wanted.items()
                    ],
                )
            rows = await conn.execute(
                select(REDEEMS.c.key, REDEEMS.c.enabled_override).where(
                    REDEEMS.c.enabled_override.is_not(None)
                )
            )
            overrides = {key: bool(enabled) for key, enabled in rows}
        self.redeems, self._overrides = wanted, overrides

    def get(self, key: str) -> RedeemSettings:
        try:
            return self.redeems[key]
        except KeyError:
            raise UnknownRedeem(key) from None

    def is_enabled(self, key: str) -> bool:
        return self._overrides.get(key, self.get(key).enabled)

    def require_enabled(self, key: str) -> RedeemSettings:
        settings = self.get(key)
        if not self.is_enabled(key):
            raise RedeemDisabled(key)
        return settings

    async def set_enabled(self, key: str, enabled: bool) -> None:
        """A moderator's toggle: stored, so it survives a restart."""
        self.get(key)
        async with self._db.write() as conn:
            await conn.execute(
                REDEEMS.update()
                .where(REDEEMS.c.key == key)
                .values(enabled_override=enabled, updated_at=self._clock.now())
            )
        self._overrides[key] = enabled


class Redeems:
    """Buying redeems (through the writer) and looking at their queue items."""

    def __init__(self, writer: Writer, db: Database) -> None:
        self._writer = writer
        self._db = db

    async def redeem(
        self,
        key: str,
        settings: RedeemSettings,
        viewer: Viewer,
        text: str | None,
        *,
        ref: str,
        stream_session_id: int | None,
        counts_since: datetime,
        channel: str | None = None,
        message_id: str | None = None,
        max_pending: int | None = None,
    ) -> Redemption:
        """Charge and enqueue in one transaction. Raises OnCooldown, LimitReached, QueueFull,
        InsufficientFunds; nothing is charged when it raises."""
        op = _Redeem(
            key,
            settings,
            viewer,
            text,
            ref,
            stream_session_id,
            counts_since,
            channel,
            message_id,
            max_pending,
        )
        return await self._writer.submit(op)
