"""Watch-time payouts: one writer operation pays every viewer present for one tick.

A tick is the ``n``-th interval of a live stream session. The whole tick is one operation in
one transaction: every award is a ledger row with the ref ``payout:<session>:<tick>:<who>``,
and one ``payout`` event row (ref ``payout:<session>:<tick>``) records the tick itself. A
job that runs again for the same tick (a restart, a retry) finds that row and pays nobody
twice. New viewers get their wallet in the same operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pixelbot.economy.batch import EARN, Account, Batch, LevelUp, Needs
from pixelbot.economy.writer import Writer
from pixelbot.events import Viewer

__all__ = ["Award", "PaidTick", "Payouts"]


@dataclass(frozen=True)
class Award:
    viewer: Viewer
    points: int
    xp: int


@dataclass(frozen=True)
class PaidTick:
    session_id: int
    tick: int
    viewers: int = 0  # paid now
    points: int = 0
    xp: int = 0
    already_paid: bool = False  # the tick was paid before (nothing changed now)
    level_ups: tuple[LevelUp, ...] = field(default=())


@dataclass(frozen=True)
class _PayTick:
    session_id: int
    tick: int
    awards: tuple[Award, ...]

    @property
    def ref(self) -> str:
        return f"payout:{self.session_id}:{self.tick}"

    def needs(self, needs: Needs) -> None:
        needs.event_refs.add(self.ref)
        for award in self.awards:
            needs.viewer(award.viewer)

    def apply(self, batch: Batch) -> PaidTick:
        if batch.has_event_ref(self.ref):
            return PaidTick(self.session_id, self.tick, already_paid=True)
        paid_points = paid_xp = viewers = 0
        level_ups = []
        for account, award in _one_per_wallet(batch, self.awards):
            who = f"{self.ref}:{award.viewer.platform}:{award.viewer.platform_user_id}"
            points = 0
            if award.points > 0:
                points = batch.credit_up_to_limit(
                    account, award.points, kind=EARN, reason="watch", ref=who
                )
            if award.xp > 0:
                level_up = batch.add_xp(account, award.xp, reason="watch", ref=who)
                if level_up is not None:
                    level_ups.append(level_up)
            if points or award.xp:
                viewers += 1
                paid_points += points
                paid_xp += award.xp
        batch.log(
            "payout",
            ref=self.ref,
            payload={
                "session": self.session_id,
                "tick": self.tick,
                "viewers": viewers,
                "points": paid_points,
                "xp": paid_xp,
            },
        )
        return PaidTick(
            self.session_id, self.tick, viewers, paid_points, paid_xp, level_ups=tuple(level_ups)
        )


def _one_per_wallet(batch: Batch, awards: tuple[Award, ...]) -> list[tuple[Account, Award]]:
    """Watching is paid per person: accounts linked into one wallet (``!link``) and present
    on several platforms at once are paid once a tick, the best of their awards (a subscriber
    on one platform keeps the multiplier)."""
    best: dict[int, tuple[Account, Award]] = {}
    for award in awards:
        account = batch.account_for(award.viewer)
        kept = best.get(account.user_id)
        if kept is None or (award.points, award.xp) > (kept[1].points, kept[1].xp):
            best[account.user_id] = (account, award)
    return list(best.values())


class Payouts:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def pay_tick(self, session_id: int, tick: int, awards: list[Award]) -> PaidTick:
        """Pay one tick of one stream session (once, however often it is asked)."""
        return await self._writer.submit(_PayTick(session_id, tick, tuple(awards)))
