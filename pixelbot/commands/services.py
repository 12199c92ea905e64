"""What cogs may use: the economy services, a handle on the queue, and the command catalog.

Cogs never see the app, the database or a platform. They get one ``Services`` with the narrow
pieces they call; the app fills it in. The queue is reached through ``QueueControl`` (what
moderators can do to it), so the command layer does not depend on the queue runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pixelbot.config import Config
from pixelbot.config.redeems import Action
from pixelbot.domain.xp import XpCurve
from pixelbot.economy.cooldowns import Cooldowns
from pixelbot.economy.ledger import Ledger
from pixelbot.economy.links import Links
from pixelbot.economy.queries import Wallets
from pixelbot.economy.queue import ClaimedItem, PendingItem, QueueStore, Settled
from pixelbot.economy.redeems import RedeemCatalog, Redeems
from pixelbot.economy.streams import StreamSessions
from pixelbot.outcomes import Outcome

if TYPE_CHECKING:
    from pixelbot.commands.core import Command

__all__ = ["CommandCatalog", "QueueControl", "ReloadResult", "Services"]


@dataclass(frozen=True)
class ReloadResult:
    """What ``!reload`` did: ``applied`` is False when the file was refused (the running config
    stays); ``problems`` lists why, or what went wrong after applying it (a cog that did not
    load, a platform that could not mirror the new redeems)."""

    applied: bool
    problems: list[str]


class QueueControl(Protocol):
    """The running queue as moderators and redeems see it."""

    @property
    def kinds(self) -> list[str]: ...

    @property
    def paused(self) -> set[str]: ...

    def running(self) -> list[ClaimedItem]: ...

    def skip(
        self, kind: str | None = None, *, by: str | None = None, reason: str | None = None
    ) -> ClaimedItem | None: ...

    async def pause(self, kind: str, *, by: str | None = None) -> None: ...

    async def resume(self, kind: str, *, by: str | None = None) -> None: ...

    async def cancel_pending(
        self, items: list[PendingItem], *, reason: str, by: str | None = None
    ) -> list[Settled]: ...

    def wake(self, kind: str) -> None: ...

    def unavailable(self, action: Action) -> str | None:
        """Why a redeem with this action cannot be performed now, or None."""
        ...

    def waits(self, action: Action) -> str | None:
        """Why a redeem with this action is taken now but will play later, or None."""
        ...


class CommandCatalog(Protocol):
    def get(self, name: str) -> Command | None: ...

    def all(self) -> list[Command]: ...


@dataclass
class Services:
    settings: Callable[[], Config]  # the running configuration (it changes on !reload)
    wallets: Wallets
    ledger: Ledger
    cooldowns: Cooldowns
    redeems: Redeems
    catalog: RedeemCatalog
    streams: StreamSessions
    queue_items: QueueStore  # what is waiting (read by !queue and !clearqueue)
    queue: QueueControl
    commands: CommandCatalog
    xp_curve: Callable[[], XpCurve]
    publish: Callable[[Outcome], Awaitable[None]]
    reload: Callable[[], Awaitable[ReloadResult]]
    links: Links  # !link / !unlink: one wallet across platforms
