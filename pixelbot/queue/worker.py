"""What a worker is: it performs one claimed queue item and says how it went.

A worker never touches the database. It returns ``Done`` (with anything to pay, enqueue or
say, which the runner commits in the same transaction that marks the item done) or raises
``ItemFailed`` with a message for the viewer and the moderators; the runner then fails the
item and refunds its charge, exactly once. Anything else a worker raises is a bug: the item
is failed and refunded the same way, and the traceback is logged.

Optional extras the runner looks for: ``async start()`` (called once before the loops start)
and ``outage`` (a ``pixelbot.queue.outage.Outage``: what the queue does while the service the
worker needs is down).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pixelbot.economy.payloads import ItemPayload
from pixelbot.economy.queue import FollowUp, Payout

__all__ = ["Done", "FollowUp", "Job", "Payout", "Worker"]


@dataclass(frozen=True)
class Done:
    summary: str  # one line for the operator: "[wheel] #4 done: alice won 50 Points"
    result: dict[str, Any] = field(default_factory=dict)  # recorded on the item and in events
    chat: tuple[str, ...] = ()  # said in the viewer's channel after the item is settled
    payouts: tuple[Payout, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()


@dataclass(frozen=True)
class Job:
    """One claimed item as a worker sees it."""

    item_id: int
    kind: str
    payload: ItemPayload
    user_id: int | None
    attempts: int
    say: Callable[[str], Awaitable[None]]  # a chat line in the viewer's channel, right now

    @property
    def viewer_name(self) -> str:
        return self.payload.viewer_name

    @property
    def text(self) -> str | None:
        return self.payload.text


class Worker(Protocol):
    kind: str  # the queue kind it claims: "tts", "wheel", "effect", "ai"

    async def perform(self, job: Job) -> Done:
        """Do the item. Raise ItemFailed (with a message people can read) when it cannot."""
        ...

    async def close(self) -> None:
        """Release threads, connections and processes. Called once, at shutdown."""
        ...
