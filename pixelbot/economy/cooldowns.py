"""Cooldowns per viewer or global, stored in the database so they survive restarts.

The time comes from the writer's clock (one instant per batch), so tests and the scripted
console decide what "now" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.economy.batch import GLOBAL_SCOPE, Batch, Needs, Wallet, user_scope
from pixelbot.economy.store import COOLDOWNS
from pixelbot.economy.writer import Writer
from pixelbot.errors import OnCooldown

__all__ = ["Cooldowns"]


Slot = tuple[Wallet | None, str]  # (a wallet, or None for the global cooldown; key)


def _scope(batch: Batch, wallet: Wallet | None) -> str:
    return GLOBAL_SCOPE if wallet is None else user_scope(batch.wallet(wallet).user_id)


@dataclass(frozen=True)
class _Cooldowns:
    """Refuse (OnCooldown) if any ``check`` slot is running; otherwise start the ``start``
    slots. One operation, so checking and starting see the same instant and state."""

    check: tuple[Slot, ...] = ()
    start: tuple[tuple[Wallet | None, str, timedelta], ...] = ()

    def needs(self, needs: Needs) -> None:
        for wallet, key in (*self.check, *((w, k) for w, k, _ in self.start)):
            if wallet is None:
                needs.global_cooldowns.add(key)
            else:
                needs.wallet(wallet)

    def apply(self, batch: Batch) -> None:
        for wallet, key in self.check:
            remaining = batch.cooldown_remaining(_scope(batch, wallet), key)
            if remaining > 0:
                raise OnCooldown(key, remaining)
        for wallet, key, length in self.start:
            batch.start_cooldown(_scope(batch, wallet), key, length)


class Cooldowns:
    def __init__(self, writer: Writer, db: Database, clock: Clock) -> None:
        self._writer = writer
        self._db = db
        self._clock = clock

    async def check(self, *slots: Slot) -> None:
        """Raise OnCooldown if any (wallet or None for global, key) cooldown is running."""
        await self._writer.submit(_Cooldowns(check=tuple(slots)))

    async def reserve(self, *slots: tuple[Wallet | None, str, timedelta]) -> None:
        """Check and start these cooldowns in one writer operation: of several requests
        arriving together, exactly one gets them; the others get OnCooldown."""
        await self._writer.submit(
            _Cooldowns(check=tuple((w, k) for w, k, _ in slots), start=tuple(slots))
        )

    async def release(self, *slots: tuple[Wallet | None, str, timedelta]) -> None:
        """Give back reserved cooldowns (the command they guarded was refused)."""
        await self._writer.submit(
            _Cooldowns(start=tuple((w, k, timedelta(0)) for w, k, _ in slots))
        )

    async def remaining(self, user_id: int | None, key: str) -> float:
        """Seconds left on a cooldown (0.0 when it is not running)."""
        scope = GLOBAL_SCOPE if user_id is None else user_scope(user_id)
        async with self._db.read() as conn:
            expires = (
                await conn.execute(
                    select(COOLDOWNS.c.expires_at).where(
                        COOLDOWNS.c.scope == scope, COOLDOWNS.c.key == key
                    )
                )
            ).scalar_one_or_none()
        if not isinstance(expires, datetime):
            return 0.0
        return max(0.0, (expires - self._clock.now()).total_seconds())
