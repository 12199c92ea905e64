"""Words for queue outcomes: the operator's ``[kind]`` line and what chat is told.

A viewer whose redeem failed or was cancelled is told why and that the points are back; a
moderator reading the operator line sees the item, the reason and the refund.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelbot.config import Currency
from pixelbot.economy.payloads import payload_of
from pixelbot.queue.runner import Outcome

__all__ = ["Announcement", "announce"]


@dataclass(frozen=True)
class Announcement:
    notice: str  # "[kind]" line for the operator (without the tag)
    chat: tuple[str, ...]  # said in the viewer's channel, in order
    to_viewer: str | None = None  # said to the viewer (with their mention), after ``chat``


def announce(outcome: Outcome, currency: Currency) -> Announcement | None:
    """None when there is nothing to say (the item had been settled already)."""
    settled = outcome.settled
    if settled.already_settled:
        return None
    payload = payload_of(outcome.kind, outcome.payload)
    name = payload.viewer_name
    title = payload.title or outcome.kind

    def points(amount: int) -> str:
        return f"{amount:,} {currency.singular if amount == 1 else currency.plural}"

    if outcome.done is not None:
        extras = []
        if settled.paid_points:
            extras.append(f"+{points(settled.paid_points)}")
        if settled.paid_xp:
            extras.append(f"+{settled.paid_xp:,} XP")
        kinds = [follow_up.kind for follow_up in outcome.done.follow_ups]  # (in the same order)
        extras += [
            f"{kind} queued as #{item_id}"
            for kind, item_id in zip(kinds, settled.follow_up_ids, strict=False)
        ]
        notice = outcome.done.summary + (f"; {', '.join(extras)}" if extras else "")
        return Announcement(notice, outcome.done.chat)

    refund = f"; refunded {points(settled.refunded)} to {name}" if settled.refunded else ""
    back = f" Your {points(settled.refunded)} are back." if settled.refunded else ""
    if settled.status == "cancelled":
        notice = f"#{outcome.item_id} cancelled: {outcome.error}{refund}"
        chat = f"your {title} was cancelled ({outcome.error}).{back}"
    else:
        notice = f"#{outcome.item_id} failed: {outcome.error}{refund}"
        chat = f"your {title} didn't happen: {outcome.error}.{back}"
    if outcome.summarized:  # one of many (an outage's refunds): chat hears one summary line
        return Announcement(notice, ())
    return Announcement(notice, (), chat)
