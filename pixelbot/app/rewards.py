"""Platform-native rewards (Twitch channel points): a redemption runs the same action as the
chat redeem, paid in the platform's currency instead of ours, and is settled there once.

- A ``RewardRedemption`` becomes a queue item of the redeem it names, charging no points (the
  platform already took its own) and skipping our cooldowns and per-stream limits (the platform
  enforces the reward's). The item remembers the redemption (``ItemPayload.reward``).
- When the item ends (``ItemSettled`` on the bus: done, failed, cancelled by ``!skip``, by
  moderation or by the crash recovery at start), the redemption is marked FULFILLED (done) or
  CANCELED (anything else, so the platform returns the viewer's channel points).
- A redemption that cannot be queued at all (switched off, queue full, needs OBS) is CANCELED
  at once and the viewer is told.
- A redemption that meets the economy writer stopped (a shutdown) cannot be queued, and its
  settlement cannot be recorded (see "Exactly once"). It is CANCELED on the platform at once
  all the same, without the record: the platform moves a redemption out of UNFULFILLED only
  once, and no queue item exists that could settle it later, so it cannot be settled twice. A
  redelivery after the restart would not help: the event log already holds the redemption
  (it is logged before it gets here), so the redelivery stops there as a duplicate. If the
  platform is gone too, the log names the redemption so the streamer can refund it by hand.

Exactly once: before asking the platform, a ``RewardSettled`` event is written to the event
log with the redemption id as its key; a second settlement of the same redemption (a
redelivered event, a restart) finds it there and stops.

Sent at least once: what the platform took is noted on the item (``platform_reward`` in its
result) only once it took it. A settlement whose platform was not there (the crash recovery
runs before platforms start; a shutdown fails the item in hand after the platforms stopped; the
platform refused or could not be reached) has no note, and is sent again when the platform
(re)connects (``platforms_started``), for items that ended in the last ``RESEND_WITHIN``. The
platform itself moves a redemption out of UNFULFILLED only once, so a second send (a crash
between the send and its note, or the streamer settled it by hand) changes nothing there: the
platform refuses it (``SettlementRefused``), which is noted (``REFUSED``) and logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Protocol, runtime_checkable

from sqlalchemy import select

from pixelbot.app.engine import Engine
from pixelbot.config import Config
from pixelbot.db.models import Base
from pixelbot.economy.payloads import payload_of
from pixelbot.economy.redeems import queue_kind
from pixelbot.errors import PixelbotError, RedeemUnavailable, SettlementRefused, WriterStopped
from pixelbot.events import Event, RewardRedemption
from pixelbot.outcomes import ItemQueued, ItemSettled, Outcome, Say
from pixelbot.platforms.base import Platform
from pixelbot.queue.runtime import QueueRuntime

__all__ = ["ChannelPointRewards", "RewardSettled", "SettlesRewards"]

log = logging.getLogger(__name__)

QUEUE_ITEMS = Base.metadata.tables["queue_items"]
ENDED = ("done", "failed", "cancelled")
REFUSED = "REFUSED"  # noted on an item whose redemption the platform will never settle
# How far back ``platforms_started`` looks for settlements never sent: a bot down longer than
# this leaves older ones to the streamer (the log named each when it could not be sent).
RESEND_WITHIN = timedelta(days=7)
NOT_QUEUED_RESTARTING = "the bot is restarting"  # (the reason given with the refund)


@runtime_checkable
class SettlesRewards(Protocol):
    """A platform whose rewards are settled on the platform (Twitch)."""

    async def settle_reward(self, redeem: str, redemption_id: str, fulfilled: bool) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardSettled(Event):
    """The event-log record that a redemption was settled (its ``id`` is the redemption's)."""

    kind: ClassVar[str] = "reward_settled"

    redeem: str
    status: str  # FULFILLED | CANCELED
    item_id: int | None = None
    reason: str = ""

    def payload(self) -> dict[str, object]:
        return {
            "redeem": self.redeem,
            "status": self.status,
            "item": self.item_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _Owed:
    platform: str
    redeem: str
    redemption_id: str
    fulfilled: bool


class ChannelPointRewards:
    def __init__(
        self,
        engine: Engine,
        queue: QueueRuntime,
        settings: Callable[[], Config],
        platforms: Callable[[], Mapping[str, Platform]],
        publish: Callable[[Outcome], Awaitable[None]],
    ) -> None:
        self._engine = engine
        self._queue = queue
        self._settings = settings
        self._platforms = platforms
        self._publish = publish
        self._sending: set[str] = set()  # redemption ids being sent now (not sent twice)
        # ... and those the platform answered for, this run (a resend that read its item
        # before the note was written must not send it again)
        self._done_here: set[str] = set()

    # ------------------------------------------------------------------ redemptions in
    async def redeem(self, event: RewardRedemption) -> None:
        engine = self._engine
        key = event.reward
        try:
            settings = engine.catalog.require_enabled(key)
            unavailable = self._queue.unavailable(settings.action)
            if unavailable is not None:
                raise RedeemUnavailable(key, unavailable)
            free = settings.model_copy(
                update={
                    "cost": 0,
                    "cooldown": timedelta(0),
                    "global_cooldown": timedelta(0),
                    "max_per_stream": None,
                    "max_per_user_per_stream": None,
                }
            )
            kind = queue_kind(settings.action.type)
            session_id, since = await engine.streams.window()
            bought = await engine.redeems.redeem(
                key,
                free,
                event.viewer,
                event.text.strip() or None,
                ref=f"redeem:{event.ref}",  # (event.ref itself is the logged event)
                stream_session_id=session_id,
                counts_since=since,
                channel=event.channel,
                max_pending=self._settings().tts.max_queue if kind == "tts" else None,
                reward=event.redemption_id,
            )
        except WriterStopped as stopped:
            log.warning(
                "the %s redemption %s of %s came as the bot stopped (%s): not queued; "
                "canceling it on %s without a record",
                key,
                event.redemption_id,
                event.viewer.display_name,
                stopped,
                event.platform,
            )
            owed = _Owed(event.platform, key, event.redemption_id, False)
            if await self._send(owed, wait=False) == "CANCELED":
                await self._say(event, f"your channel points are refunded: {NOT_QUEUED_RESTARTING}")
            return
        except PixelbotError as exc:
            reason = str(exc) or type(exc).__name__
            await self._say(event, f"your channel points are refunded: {reason}")
            await self._settle(_Owed(event.platform, key, event.redemption_id, False), reason)
            return
        if bought.duplicate or bought.item_id is None:
            return
        await self._say(event, f"{settings.title} redeemed (queued as #{bought.item_id})")
        await self._publish(
            ItemQueued(kind, bought.item_id, settings.title, event.viewer.display_name, event.text)
        )
        self._queue.wake(kind)

    async def _say(self, event: RewardRedemption, text: str) -> None:
        await self._publish(Say(event.platform, event.channel, text, mention=event.viewer))

    # ------------------------------------------------------------------ items out
    async def item_settled(self, outcome: ItemSettled) -> None:
        async with self._engine.db.read() as conn:
            row = (
                await conn.execute(
                    select(QUEUE_ITEMS.c.kind, QUEUE_ITEMS.c.payload).where(
                        QUEUE_ITEMS.c.id == outcome.item_id
                    )
                )
            ).first()
        if row is None:
            return
        payload = payload_of(row.kind, row.payload)
        if payload.reward is None or payload.redeem is None or payload.viewer is None:
            return  # paid in our points: the queue refunds those itself
        owed = _Owed(
            payload.viewer.platform, payload.redeem, payload.reward, outcome.status == "done"
        )
        await self._settle(owed, outcome.error or outcome.status, outcome.item_id)

    async def _settle(
        self, owed: _Owed, reason: str, item_id: int | None = None, *, again: bool = False
    ) -> None:
        """Record the settlement, send it, and note on the item what the platform took.
        ``again``: a settlement recorded before and never sent (``platforms_started``)."""
        status = "FULFILLED" if owed.fulfilled else "CANCELED"
        record = RewardSettled(
            id=owed.redemption_id,
            platform=owed.platform,
            occurred_at=self._engine.clock.now(),
            redeem=owed.redeem,
            status=status,
            item_id=item_id,
            reason=reason,
        )
        earned = await self._engine.earning.handle(record)
        if earned.skipped == "duplicate" and not again:
            return  # settled before (a redelivery, or a restart)
        if owed.redemption_id in self._sending or owed.redemption_id in self._done_here:
            return
        self._sending.add(owed.redemption_id)
        try:
            outcome = await self._send(owed, wait=item_id is not None)
            if outcome is not None:
                self._done_here.add(owed.redemption_id)
                if item_id is not None:
                    await self._engine.queue.note_on_item(item_id, platform_reward=outcome)
        finally:
            self._sending.discard(owed.redemption_id)

    async def _send(self, owed: _Owed, *, wait: bool) -> str | None:
        """Settle ``owed`` on its platform. Returns what to note on the item: the status the
        platform took, or ``REFUSED`` (it will never take it: settled already, or unknown
        there); None when it may take it later. ``wait``: it is then sent again once the
        platform connects (an item's settlement: ``platforms_started``); otherwise the log asks
        the streamer to settle it by hand."""
        status = "FULFILLED" if owed.fulfilled else "CANCELED"
        platform = self._platforms().get(owed.platform)
        if not isinstance(platform, SettlesRewards):
            if wait:
                log.info(
                    "the %s redemption %s is to be marked %s once %s is connected",
                    owed.redeem,
                    owed.redemption_id,
                    status,
                    owed.platform,
                )
            else:
                log.error(
                    "could not mark the %s redemption %s as %s: %s is not connected; settle "
                    "it by hand there",
                    owed.redeem,
                    owed.redemption_id,
                    status,
                    owed.platform,
                )
            return None
        try:
            await platform.settle_reward(owed.redeem, owed.redemption_id, owed.fulfilled)
        except SettlementRefused as refused:  # (no traceback: nothing is wrong with the bot)
            log.warning(
                "%s would not mark the %s redemption %s as %s (%s): settled already, or "
                "unknown there; not sent again",
                owed.platform,
                owed.redeem,
                owed.redemption_id,
                status,
                refused,
            )
            return REFUSED
        except Exception as exc:  # the platform is unreachable or failing: one line, no trace
            log.warning(
                "could not mark the %s redemption %s as %s on %s (%s)%s",
                owed.redeem,
                owed.redemption_id,
                status,
                owed.platform,
                str(exc) or type(exc).__name__,
                "; it is tried again when the bot reconnects there"
                if wait
                else "; settle it by hand there",
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return None
        return status

    async def platforms_started(self) -> None:
        """Send the settlements of items that ended without their platform taking it (see
        "Sent at least once"). It never fails a platform's start: a fault is logged, and the
        next (re)connect tries again."""
        try:
            await self._send_owed()
        except Exception as exc:
            log.warning(
                "could not send the channel-point settlements still owed (tried again at the "
                "next connect): %s",
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )

    async def _send_owed(self) -> None:
        since = self._engine.clock.now() - RESEND_WITHIN
        async with self._engine.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        QUEUE_ITEMS.c.id,
                        QUEUE_ITEMS.c.kind,
                        QUEUE_ITEMS.c.status,
                        QUEUE_ITEMS.c.payload,
                        QUEUE_ITEMS.c.result,
                        QUEUE_ITEMS.c.error,
                    )
                    .where(QUEUE_ITEMS.c.status.in_(ENDED), QUEUE_ITEMS.c.finished_at >= since)
                    .order_by(QUEUE_ITEMS.c.id)
                )
            ).all()
        connected = self._platforms()
        for row in rows:
            if isinstance(row.result, dict) and "platform_reward" in row.result:
                continue  # the platform took it
            payload = payload_of(row.kind, row.payload)
            if payload.reward is None or payload.redeem is None or payload.viewer is None:
                continue  # paid in our points
            if not isinstance(connected.get(payload.viewer.platform), SettlesRewards):
                continue  # not this time either
            owed = _Owed(
                payload.viewer.platform, payload.redeem, payload.reward, row.status == "done"
            )
            await self._settle(owed, row.error or row.status, row.id, again=True)
