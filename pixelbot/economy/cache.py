"""What the writer remembers between batches: identities, wallets and cooldowns as committed.

In a busy chat the same regulars speak in every batch, and loading their identity, wallet and
cooldowns again each time was a third of the writer's database time. The writer is the only
code that changes these rows, so after each commit it keeps their final state here and the next
batch loads only what is missing.

That is only safe while nobody else writes. The writer checks a "changed by another connection"
counter (``Database.data_version``) at the start of every write transaction, when it already
holds the write lock, and forgets everything if it moved: another process, a migration or an
operator's command cannot leave a stale balance behind. Where the database gives no such
counter (PostgreSQL, possibly shared by several bots) there is no cache at all. A failed batch
also forgets everything, since its in-memory state may be ahead of the database.

Memory is bounded crudely but cheaply: a map that grows past ``limit`` entries is emptied and
refills with whoever speaks next. Tracking recency instead cost more per batch than the rare
refill does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pixelbot.economy.batch import GLOBAL_SCOPE, Account, Batch, Needs, user_scope

__all__ = ["NO_COOLDOWN", "WriterCache"]

NO_COOLDOWN = datetime.min.replace(tzinfo=UTC)  # a global cooldown known not to be running


class WriterCache:
    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        # (platform, platform user id) -> (user id, login, display name) as stored
        self.identities: dict[tuple[str, str], tuple[int, str, str]] = {}
        # user id -> (display name, points, xp, level, rewarded level) as committed
        self.accounts: dict[int, tuple[str, int, int, int, int]] = {}
        # "user:<id>" -> every running cooldown of that scope (key -> expiry)
        self.scopes: dict[str, dict[str, datetime]] = {}
        # global cooldown key -> expiry (NO_COOLDOWN: known not to be running)
        self.global_cooldowns: dict[str, datetime] = {}
        self._data_version: int | None = None
        self._now: datetime | None = None  # the instant of the last batch

    def validate(self, data_version: int | None, now: datetime) -> bool:
        """Whether the cache may be used for a transaction that saw ``data_version`` at ``now``.

        Forgets everything when another connection has written since the last batch, or when
        the clock went back: cached cooldowns are those still running at the last batch's
        instant, and one that had ended then may be running again at an earlier one."""
        stale = data_version != self._data_version or (self._now is not None and now < self._now)
        if data_version is None or stale:
            self.clear()
            self._data_version = data_version
        self._now = now
        return data_version is not None

    def clear(self) -> None:
        """Forget everything (and the counter: a new connection counts from its own start)."""
        self._data_version = None
        self._now = None
        for mapping in self._maps():
            mapping.clear()

    def account(self, user_id: int) -> Account | None:
        """A fresh Account (the batch mutates it) from the remembered state."""
        state = self.accounts.get(user_id)
        return None if state is None else Account(user_id, *state)

    def forget_account(self, user_id: int) -> None:
        self.accounts.pop(user_id, None)

    def remember(self, needs: Needs, batch: Batch) -> None:
        """After ``batch`` committed: keep its identities, wallets and cooldowns for the next."""
        for mapping in self._maps():
            if len(mapping) > self.limit:
                mapping.clear()
        identities, viewers = self.identities, needs.viewers
        for identity, user_id in batch.user_ids_by_identity.items():
            seen = viewers[identity]  # as stored now: a rename was written in this batch
            identities[identity] = (user_id, seen.login, seen.display_name)
        accounts = self.accounts
        for a in batch.accounts.values():
            accounts[a.user_id] = (a.display_name, a.points, a.xp, a.level, a.rewarded_level)
        # The batch loaded every running cooldown of its wallets' scopes; with what it started,
        # batch.cooldowns is each of those scopes complete.
        scopes: dict[str, dict[str, datetime]] = {user_scope(uid): {} for uid in batch.accounts}
        for (scope, key), expires in batch.cooldowns.items():
            running = scopes.get(scope)
            if running is not None:
                running[key] = expires
        self.scopes.update(scopes)
        for key in needs.global_cooldowns:
            running_until = batch.cooldowns.get((GLOBAL_SCOPE, key))
            self.global_cooldowns[key] = running_until or NO_COOLDOWN
        # !link and !unlink moved identities between wallets and joined wallets into others:
        # whatever was remembered about those is read again (a joined wallet's id now resolves
        # to the wallet it joined, which only the database knows).
        for identity in batch.forget_identities:
            identities.pop(identity, None)
        for user_id in batch.forget_user_ids:
            accounts.pop(user_id, None)
            self.scopes.pop(user_scope(user_id), None)

    def _maps(self) -> tuple[dict[Any, Any], ...]:
        return (self.identities, self.accounts, self.scopes, self.global_cooldowns)
