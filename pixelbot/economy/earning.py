"""Earning rules: what a normalized event pays, applied through the ledger in one operation.

Every event that enters here is appended to the event log (once: a redelivered event is
recognized by its ref and changes nothing). Then the rule for its kind decides points and XP;
the award is ledgered with an idempotency ref, so even a rule-level repeat (a second follow of
the same person, the same sub month announced twice) pays once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NamedTuple

from pixelbot.config import EconomySettings
from pixelbot.domain.earning import cheer_award, per_unit, raid_award, sub_award
from pixelbot.economy.batch import EARN, Batch, LevelUp, Needs, user_scope
from pixelbot.economy.writer import Writer
from pixelbot.events import (
    ChatMessage,
    Cheer,
    Event,
    Follow,
    GiftedSubs,
    Presence,
    Raid,
    Subscription,
    Tip,
)

__all__ = ["Award", "Earned", "EarningRules"]


class Award(NamedTuple):
    """What one event is worth under the rules, before it is checked against the ledger.

    (Award and Earned are NamedTuples: immutable like frozen dataclasses, and several times
    cheaper to build, which counts at one of each per chat message.)"""

    points: int
    xp: int
    ref: str  # the idempotency key of the payment
    cooldown_key: str | None = None
    cooldown: timedelta | None = None


class Earned(NamedTuple):
    """The outcome of one event. ``skipped`` says why nothing was paid, if nothing was."""

    event_ref: str
    user_id: int | None = None
    points: int = 0
    xp: int = 0
    level_up: LevelUp | None = None
    skipped: str | None = (
        None  # duplicate | ignored | anonymous | cooldown | already_paid | zero | unsaved
    )
    # The viewer's balance as this event left it (its earn included), as committed with it:
    # ``!points`` answers from it instead of reading the wallet again. None: no wallet.
    balance: int | None = None


def award_for(event: Event, settings: EconomySettings) -> Award | None:
    """The rule for each kind of event. None: this kind earns nothing."""
    earn = settings.earn
    match event:
        case ChatMessage():
            rule = earn.chat
            return Award(rule.points, rule.xp, event.ref, "earn:chat", rule.cooldown)
        case Follow():
            return Award(earn.follow.points, earn.follow.xp, f"follow:{_identity(event)}")
        case Subscription():
            sub = earn.sub
            ref = f"sub:{_identity(event)}:{event.months}" if sub.per_month else event.ref
            points = sub_award(sub.points, event.tier, sub.tiers)
            return Award(points, sub_award(sub.xp, event.tier, sub.tiers), ref)
        case GiftedSubs():
            gift, tiers = earn.gift, earn.sub.tiers
            points = sub_award(gift.points_per_sub * event.count, event.tier, tiers)
            return Award(
                points, sub_award(gift.xp_per_sub * event.count, event.tier, tiers), event.ref
            )
        case Tip():
            tip = earn.tip
            return Award(
                per_unit(event.amount, tip.points_per_unit),
                per_unit(event.amount, tip.xp_per_unit),
                event.ref,
            )
        case Cheer():
            cheer = earn.cheer
            return Award(
                cheer_award(event.bits, cheer.points_per_100_bits),
                cheer_award(event.bits, cheer.xp_per_100_bits),
                event.ref,
            )
        case Raid():
            raid = earn.raid
            return Award(
                raid_award(event.viewers, raid.points_per_viewer, raid.max_points),
                per_unit(max(0, event.viewers), raid.xp_per_viewer),
                event.ref,
            )
        case Presence():
            dropin = earn.dropin
            return Award(dropin.points, dropin.xp, event.ref, "earn:dropin", dropin.cooldown)
    return None


def _identity(event: Event) -> str:
    viewer = event.actor
    return f"{viewer.platform}:{viewer.platform_user_id}" if viewer else ""


class _Earn:
    """The writer operation for one incoming event (computes its award once)."""

    __slots__ = ("award", "event", "ref", "settings", "viewer")

    def __init__(self, event: Event, settings: EconomySettings) -> None:
        self.event = event
        self.settings = settings
        self.ref = event.ref
        viewer = event.actor
        # Ignored accounts (other bots) are logged but get no wallet and earn nothing.
        self.viewer = viewer if viewer and viewer.login.lower() not in settings.ignore else None
        self.award = award_for(event, settings) if self.viewer else None

    def __repr__(self) -> str:
        return f"_Earn({self.ref})"

    def needs(self, needs: Needs) -> None:
        needs.event_refs.add(self.ref)
        if self.viewer is not None:
            needs.viewer(self.viewer)
            # A payment keyed by the event's own ref is written in the same transaction as the
            # event row, so it cannot exist when the event is new: no lookup needed.
            if self.award is not None and self.award.ref != self.ref:
                needs.tx_refs.add(self.award.ref)

    def apply(self, batch: Batch) -> Earned:
        event, ref, viewer, award = self.event, self.ref, self.viewer, self.award
        if batch.has_event_ref(ref):
            return Earned(ref, skipped="duplicate")
        account = batch.account_for(viewer) if viewer is not None else None
        payload = event.payload()
        if event.actor is not None:
            payload["login"] = event.actor.login
        batch.log(
            event.kind,
            platform=event.platform,
            user_id=account.user_id if account else None,
            ref=ref,
            payload=payload,
        )
        if account is None:
            return Earned(ref, skipped="anonymous" if event.actor is None else "ignored")
        if award is None or (award.points <= 0 and award.xp <= 0):
            return Earned(ref, account.user_id, skipped="zero", balance=account.points)
        scope = user_scope(account.user_id)
        if award.cooldown_key and batch.on_cooldown(scope, award.cooldown_key):
            return Earned(ref, account.user_id, skipped="cooldown", balance=account.points)
        if award.ref != ref and batch.has_tx_ref(award.ref):
            return Earned(ref, account.user_id, skipped="already_paid", balance=account.points)
        points = 0
        if award.points > 0:
            points = batch.credit_up_to_limit(
                account, award.points, kind=EARN, reason=event.kind, ref=award.ref
            )
        level_up = None
        if award.xp > 0:
            level_up = batch.add_xp(
                account, award.xp, reason=event.kind, ref=award.ref, cause_ref=ref
            )
        if award.cooldown_key and award.cooldown:
            batch.start_cooldown(scope, award.cooldown_key, award.cooldown)
        batch.log(
            "award",
            platform=event.platform,
            user_id=account.user_id,
            cause_ref=ref,
            payload={"rule": event.kind, "points": points, "xp": award.xp},
        )
        return Earned(ref, account.user_id, points, award.xp, level_up, balance=account.points)


class EarningRules:
    """Turns normalized events into awards, through the group-commit writer."""

    def __init__(self, writer: Writer, settings: EconomySettings) -> None:
        self._writer = writer
        self.settings = settings

    async def handle(self, event: Event) -> Earned:
        """Log the event and pay what it earns; returns once that is committed."""
        return await self._writer.submit(_Earn(event, self.settings))

    def enqueue(self, event: Event) -> asyncio.Future[Earned]:
        """``handle`` without a coroutine per event, for adapters feeding a busy chat."""
        return self._writer.enqueue(_Earn(event, self.settings))
