"""The in-memory side of one write transaction: loaded state, the rules that change it, and the
rows those changes stage for the database.

A ``Batch`` is filled by ``store.load`` with everything the batch's operations declared they
need (``Needs``), then each operation runs against it in order. Every mutation registers an
undo step, so an operation that is refused (``EconomyError``) or crashes is rolled back to its
checkpoint and the others in the batch still commit. ``store.flush`` writes the staged rows with
set-based statements. Nothing here awaits or touches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pixelbot.domain.earning import clamp_to_limit
from pixelbot.domain.xp import XpCurve
from pixelbot.errors import (
    BalanceLimitExceeded,
    InsufficientFunds,
    InvalidAmount,
    NotRefundable,
    UnknownCharge,
    UnknownViewer,
)
from pixelbot.events import Viewer

__all__ = [
    "Account",
    "Batch",
    "Charge",
    "IdentityRow",
    "LevelReward",
    "LevelUp",
    "LinkCodeRow",
    "Needs",
    "OpenItem",
    "Policy",
    "Wallet",
    "user_scope",
]

GLOBAL_SCOPE = "global"

# Kinds of points-ledger entries. Only a SPEND is a charge that can be refunded.
EARN = "earn"  # paid by an earning rule or a level reward
GRANT = "grant"  # given by the bot or an operator (welcome points, giveaways)
SPEND = "spend"  # paid for something: refundable, exactly once
TRANSFER = "transfer"  # viewer to viewer, both sides
ADJUST = "adjust"  # a moderator's correction
REFUND = "refund"  # a spend returned
LINK = "link"  # a wallet joined into another by !link (both sides), or split off by !unlink

Wallet = Viewer | int  # a viewer as seen on a platform (created on first sight), or a user id


def user_scope(user_id: int) -> str:
    return f"user:{user_id}"


@dataclass(frozen=True)
class LevelReward:
    points: int = 0
    message: str | None = None


@dataclass(frozen=True)
class Policy:
    """The economy rules a batch enforces (built from config by the app)."""

    curve: XpCurve = field(default_factory=XpCurve)
    max_balance: int | None = None
    starting_points: int = 0
    level_rewards: dict[int, LevelReward] = field(default_factory=dict)


@dataclass(slots=True)
class Account:
    """A wallet as loaded for this batch; mutated in memory, written back at flush."""

    user_id: int
    display_name: str
    points: int
    xp: int
    level: int
    rewarded_level: int
    dirty: bool = False


@dataclass(frozen=True, slots=True)
class Charge:
    """A ledger entry a refund may name (only ``spend`` entries can actually be refunded)."""

    ref: str
    user_id: int
    amount: int  # negative: what was taken
    refunded: bool
    kind: str = "spend"


@dataclass(frozen=True, slots=True)
class OpenItem:
    """A queue item that is pending or running, as loaded for settling."""

    id: int
    kind: str
    status: str
    user_id: int | None
    charge_ref: str | None
    payload: dict[str, Any]
    lease_owner: str | None = None  # the process running it (see queue.py), and until when
    lease_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IdentityRow:
    """One identity of a wallet, as loaded for linking (``Needs.identity_lists``)."""

    platform: str
    platform_user_id: str
    login: str
    display_name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.platform_user_id)

    def label(self) -> str:
        return f"{self.platform}:{self.platform_user_id}"


@dataclass(frozen=True, slots=True)
class LinkCodeRow:
    """A ``!link`` code as loaded (by its hash) for the operation that uses it."""

    id: int
    user_id: int
    platform: str
    platform_user_id: str
    expires_at: datetime
    used_at: datetime | None


DEFAULT_LEVEL_MESSAGE = "{user} reached level {level}!"


@dataclass(frozen=True)
class LevelUp:
    user_id: int
    display_name: str
    old_level: int
    new_level: int
    rewards: tuple[tuple[int, int, str | None], ...] = ()  # (level, points paid, message)

    def announcement(self) -> str:
        """What chat is told: the configured message for the new level, or the default."""
        messages = {level: message for level, _points, message in self.rewards if message}
        template = messages.get(self.new_level, DEFAULT_LEVEL_MESSAGE)
        values = {"user": self.display_name, "level": self.new_level}
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):  # validated at load; never lose the line
            return DEFAULT_LEVEL_MESSAGE.format(**values)


@dataclass
class Needs:
    """What the operations of a batch will touch, so it can be loaded with a few queries."""

    viewers: dict[tuple[str, str], Viewer] = field(default_factory=dict)
    user_ids: set[int] = field(default_factory=set)
    tx_refs: set[str] = field(default_factory=set)
    event_refs: set[str] = field(default_factory=set)
    charges: set[str] = field(default_factory=set)
    global_cooldowns: set[str] = field(default_factory=set)
    # redeem key -> (live stream session id, or None with the instant the offline stretch
    # began): the window its per-stream limits count in (see economy/redeems.py)
    redeem_counts: dict[str, tuple[int | None, datetime]] = field(default_factory=dict)
    queue_items: int = 0  # how many queue item ids to reserve
    pending_kinds: set[str] = field(default_factory=set)  # count pending items of these kinds
    settle_items: set[int] = field(default_factory=set)  # queue items to finish or fail
    link_codes: set[str] = field(default_factory=set)  # hashes of !link codes to load
    identity_lists: bool = False  # load every identity of each wallet in the batch (linking)
    new_users: int = 0  # how many wallet ids to reserve (!unlink makes a new wallet)

    def viewer(self, viewer: Viewer) -> None:
        # The latest sighting wins, so a rename within a batch lands too.
        self.viewers[viewer.key] = viewer

    def wallet(self, wallet: Wallet) -> None:
        if isinstance(wallet, Viewer):
            self.viewer(wallet)
        else:
            self.user_ids.add(wallet)


class Batch:
    def __init__(self, now: datetime, policy: Policy) -> None:
        self.now = now
        self.policy = policy
        # loaded state (filled by store.load)
        self.user_ids_by_identity: dict[tuple[str, str], int] = {}
        self.accounts: dict[int, Account] = {}
        self.cooldowns: dict[tuple[str, str], datetime] = {}
        self.charges: dict[str, Charge] = {}
        self.tx_refs: set[str] = set()  # points-ledger refs known to exist (loaded or staged)
        self.xp_refs: set[str] = set()  # XP-ledger refs known to exist
        self.event_refs: set[str] = set()
        self.checked_tx_refs: set[str] = set()  # refs whose existence was looked up
        self.checked_event_refs: set[str] = set()
        # staged rows (written by store.flush)
        self.transactions: list[dict[str, Any]] = []
        self.xp_transactions: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.cooldown_rows: dict[tuple[str, str], datetime] = {}
        self.queue_items: list[dict[str, Any]] = []
        self.queue_ids: list[int] = []  # reserved at load, handed out by enqueue()
        self.open_items: dict[int, OpenItem] = {}  # loaded: queue items still to settle
        self.settled_items: list[dict[str, Any]] = []  # staged: their final state
        # (redeem key, user id or None for everyone) -> live queue items this stream
        self.redeem_counts: dict[tuple[str, int | None], int] = {}
        self.pending_counts: dict[str, int] = {}  # kind -> pending items (as loaded + staged)
        # linking (see economy/links.py): loaded when an operation asks for it
        self.link_codes: dict[str, LinkCodeRow] = {}  # code hash -> code
        self.identities_of: dict[int, tuple[IdentityRow, ...]] = {}  # user id -> identities
        self.new_user_ids: list[int] = []  # reserved at load, handed out by new_account()
        self.new_users: list[dict[str, Any]] = []  # staged wallets
        self.new_link_codes: list[dict[str, Any]] = []
        self.used_link_codes: list[dict[str, Any]] = []
        self.identity_moves: list[dict[str, Any]] = []  # identities given to another wallet
        self.user_merges: list[dict[str, Any]] = []  # wallets joined into another
        # What the writer's cache must forget after the commit (a superset is harmless).
        self.forget_user_ids: set[int] = set()
        self.joined_accounts: list[Account] = []  # wallets joined into another (still flushed)
        self.forget_identities: set[tuple[str, str]] = set()
        # Undo log: (function, argument) pairs, applied in reverse by rollback(). Pairs rather
        # than closures because every chat message adds several and closures cost more. No
        # entry may refer to the batch itself: a batch in a reference cycle (tens of thousands
        # of rows under load) would wait for a full GC pass to be freed instead of going at once.
        self._undo: list[tuple[Callable[[Any], object], Any]] = []

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint(self) -> int:
        return len(self._undo)

    def rollback(self, checkpoint: int) -> None:
        while len(self._undo) > checkpoint:
            undo, argument = self._undo.pop()
            undo(argument)

    def _append(self, rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
        rows.append(row)
        self._undo.append((_pop_last, rows))

    def stage(self, rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
        """Stage a row in one of the batch's lists (undone with the operation)."""
        self._append(rows, row)

    def stage_joined(self, account: Account) -> None:
        """``account`` was joined into another: still written at flush (see dirty_accounts)."""
        self.joined_accounts.append(account)
        self._undo.append((_pop_last, self.joined_accounts))

    def set_item(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        """``mapping[key] = value``, undone with the operation (for the linking state)."""
        had = key in mapping
        self._undo.append((_restore_item, (mapping, key, had, mapping.get(key))))
        mapping[key] = value

    def _touch(self, account: Account) -> None:
        """Before changing ``account``: remember its state for rollback, mark it for flush."""
        self._undo.append((_restore_account, (account, _snapshot(account))))
        account.dirty = True

    # -- lookups ----------------------------------------------------------------------------

    def account_for(self, viewer: Viewer) -> Account:
        return self.accounts[self.user_ids_by_identity[viewer.key]]

    def account(self, user_id: int) -> Account:
        return self.accounts[user_id]

    def wallet(self, wallet: Wallet) -> Account:
        """The account behind a wallet declared with ``Needs.wallet``."""
        if isinstance(wallet, Viewer):
            return self.account_for(wallet)
        try:
            return self.accounts[wallet]
        except KeyError:
            raise UnknownViewer(f"#{wallet}") from None

    def has_tx_ref(self, ref: str) -> bool:
        """Whether a payment with this ref exists in either ledger (points or XP)."""
        known = ref in self.tx_refs or ref in self.xp_refs
        if not known and ref not in self.checked_tx_refs:
            raise LookupError(f"ref {ref!r} was not declared in Needs.tx_refs")
        return known

    def has_event_ref(self, ref: str) -> bool:
        if ref not in self.checked_event_refs and ref not in self.event_refs:
            raise LookupError(f"ref {ref!r} was not declared in Needs.event_refs")
        return ref in self.event_refs

    def _remember(self, refs: set[str], ref: str) -> None:
        refs.add(ref)
        self._undo.append((refs.discard, ref))

    # -- points -----------------------------------------------------------------------------

    def credit(
        self,
        account: Account,
        amount: int,
        *,
        kind: str,
        reason: str,
        ref: str,
        actor: str | None = None,
    ) -> int:
        """Add points; refuses to pass the maximum balance. Returns the new balance."""
        _require_positive(amount)
        limit = self.policy.max_balance
        if limit is not None and account.points + amount > limit:
            raise BalanceLimitExceeded(account.points, amount, limit)
        return self._post(account, amount, kind, reason, ref, actor, None)

    def credit_up_to_limit(
        self, account: Account, amount: int, *, kind: str, reason: str, ref: str
    ) -> int:
        """Add what fits under the maximum balance (earnings stop at the cap). Returns it."""
        fitting = clamp_to_limit(account.points, amount, self.policy.max_balance)
        if fitting > 0:
            self._post(account, fitting, kind, reason, ref, None, None)
        return fitting

    def debit(
        self,
        account: Account,
        amount: int,
        *,
        kind: str,
        reason: str,
        ref: str,
        actor: str | None = None,
    ) -> int:
        """Take points; refuses to go below zero. Returns the new balance.

        A debit of kind ``spend`` is a charge: it can be refunded later (exactly once)."""
        _require_positive(amount)
        if account.points < amount:
            raise InsufficientFunds(account.points, amount)
        balance = self._post(account, -amount, kind, reason, ref, actor, None)
        if kind == SPEND:
            self._set_charge(Charge(ref, account.user_id, -amount, refunded=False, kind=kind))
        return balance

    def _post(
        self,
        account: Account,
        amount: int,
        kind: str,
        reason: str,
        ref: str,
        actor: str | None,
        refund_of: str | None,
    ) -> int:
        if ref in self.tx_refs:
            raise ValueError(f"duplicate ledger ref {ref!r}")
        balance = account.points + amount
        self._touch(account)
        account.points = balance
        self._remember(self.tx_refs, ref)
        self._append(
            self.transactions,
            {
                "user_id": account.user_id,
                "amount": amount,
                "balance_after": balance,
                "kind": kind,
                "reason": reason,
                "ref": ref,
                "actor": actor,
                "refund_of": refund_of,
                "created_at": self.now,
            },
        )
        return balance

    def post_link(
        self, account: Account, amount: int, *, reason: str, ref: str, actor: str | None
    ) -> int:
        """A ``link`` ledger row of any sign (zero too: an unlink's new wallet starts with one).

        Not capped by the maximum balance: joining two wallets creates no points, and refusing
        it would leave a viewer unable to link. It may not take a balance below zero."""
        if account.points + amount < 0:
            raise InsufficientFunds(account.points, -amount)
        return self._post(account, amount, LINK, reason, ref, actor, None)

    def post_link_xp(
        self, account: Account, amount: int, *, level: int, reason: str, ref: str
    ) -> None:
        """A ``link`` XP ledger row: XP leaving a joined wallet or arriving in the one it
        joined, with the level set from the new total (see links.py)."""
        if ref in self.xp_refs:
            raise ValueError(f"duplicate XP ref {ref!r}")
        xp = account.xp + amount
        if xp < 0:
            raise InvalidAmount(amount, "would take XP below zero")
        self._touch(account)
        account.xp, account.level = xp, level
        self._remember(self.xp_refs, ref)
        self._append(
            self.xp_transactions,
            {
                "user_id": account.user_id,
                "amount": amount,
                "xp_after": xp,
                "level_after": level,
                "reason": reason,
                "ref": ref,
                "created_at": self.now,
            },
        )

    def new_account(self, display_name: str) -> Account:
        """A new, empty wallet (its id reserved with ``Needs.new_users``), flushed first."""
        start = self.policy.curve.start_level
        user_id = self.new_user_ids[len(self.new_users)]
        self._append(
            self.new_users,
            {
                "id": user_id,
                "display_name": display_name,
                "points": 0,
                "xp": 0,
                "level": start,
                "rewarded_level": start,
                "created_at": self.now,
                "updated_at": self.now,
            },
        )
        account = Account(user_id, display_name, 0, 0, start, start)
        self.set_item(self.accounts, user_id, account)
        return account

    def raise_rewarded_level(self, account: Account, level: int) -> None:
        """Level rewards up to ``level`` count as paid for ``account`` (a joined wallet's)."""
        if level > account.rewarded_level:
            self._touch(account)
            account.rewarded_level = level

    def pay_level_rewards(self, account: Account, new_level: int) -> tuple[Any, ...]:
        """Level rewards for levels above the wallet's high-water mark, up to ``new_level``."""
        return self._pay_level_rewards(account, new_level)

    def _set_charge(self, charge: Charge) -> None:
        previous = self.charges.get(charge.ref)
        self.charges[charge.ref] = charge
        self._undo.append((_restore_charge, (self.charges, charge.ref, previous)))

    def refund(self, charge_ref: str, *, reason: str, actor: str | None = None) -> int | None:
        """Return a charge to its payer, exactly once. None if it was refunded already.

        Only spends are charges: refunding a transfer or a moderator's adjustment would create
        points out of nothing, so those are refused."""
        charge = self.charges.get(charge_ref)
        if charge is None:
            raise UnknownCharge(charge_ref)
        if charge.kind != SPEND:
            raise NotRefundable(charge_ref, f"a {charge.kind} entry is not a charge")
        if charge.refunded:
            return None
        self._set_charge(Charge(charge.ref, charge.user_id, charge.amount, True, charge.kind))
        account = self.accounts[charge.user_id]
        # A refund restores what was taken even above the cap: the cap is for earning.
        return self._post(
            account, -charge.amount, REFUND, reason, f"refund:{charge_ref}", actor, charge_ref
        )

    # -- XP ---------------------------------------------------------------------------------

    def add_xp(
        self, account: Account, amount: int, *, reason: str, ref: str, cause_ref: str | None = None
    ) -> LevelUp | None:
        """Add XP, detect level-ups (several at once if need be), pay level rewards once.

        ``cause_ref`` names what caused the award in the event log (default: ``ref``)."""
        _require_positive(amount)
        if ref in self.xp_refs:
            raise ValueError(f"duplicate XP ref {ref!r}")
        curve = self.policy.curve
        xp = account.xp + amount
        old_level = account.level
        new_level = max(old_level, curve.level_for(xp))
        self._touch(account)
        account.xp, account.level = xp, new_level
        self._remember(self.xp_refs, ref)
        self._append(
            self.xp_transactions,
            {
                "user_id": account.user_id,
                "amount": amount,
                "xp_after": xp,
                "level_after": new_level,
                "reason": reason,
                "ref": ref,
                "created_at": self.now,
            },
        )
        if new_level == old_level:
            return None
        self.log(
            "level_up",
            user_id=account.user_id,
            cause_ref=cause_ref or ref,
            payload={"from": old_level, "to": new_level},
        )
        return LevelUp(
            account.user_id,
            account.display_name,
            old_level,
            new_level,
            self._pay_level_rewards(account, new_level),
        )

    def _pay_level_rewards(
        self, account: Account, new_level: int
    ) -> tuple[tuple[int, int, str | None], ...]:
        paid: list[tuple[int, int, str | None]] = []
        if new_level <= account.rewarded_level:
            return ()
        for level in range(account.rewarded_level + 1, new_level + 1):
            reward = self.policy.level_rewards.get(level)
            if reward is None:
                continue
            points = 0
            if reward.points > 0:
                points = self.credit_up_to_limit(
                    account,
                    reward.points,
                    kind=EARN,
                    reason="level_reward",
                    ref=f"level:{account.user_id}:{level}",
                )
            paid.append((level, points, reward.message))
        self._touch(account)
        account.rewarded_level = new_level
        return tuple(paid)

    # -- cooldowns --------------------------------------------------------------------------

    def cooldown_remaining(self, scope: str, key: str) -> float:
        expires = self.cooldowns.get((scope, key))
        if expires is None or expires <= self.now:
            return 0.0
        return (expires - self.now).total_seconds()

    def on_cooldown(self, scope: str, key: str) -> bool:
        """``cooldown_remaining(scope, key) > 0``, without the arithmetic (once per chat line)."""
        expires = self.cooldowns.get((scope, key))
        return expires is not None and expires > self.now

    def start_cooldown(self, scope: str, key: str, duration: timedelta) -> None:
        slot = (scope, key)
        previous_loaded = self.cooldowns.get(slot)
        previous_staged = self.cooldown_rows.get(slot)
        expires = self.now + duration
        self.cooldowns[slot] = expires
        self.cooldown_rows[slot] = expires

        self._undo.append(
            (
                _restore_cooldown,
                (self.cooldowns, self.cooldown_rows, slot, previous_loaded, previous_staged),
            )
        )

    # -- queue ------------------------------------------------------------------------------

    def enqueue(self, row: dict[str, Any]) -> int:
        """Stage a queue item (committed with the charge that pays for it). Returns its id."""
        item_id = self.queue_ids[len(self.queue_items)]
        self._append(self.queue_items, {**row, "id": item_id, "created_at": self.now})
        kind = row["kind"]
        if kind in self.pending_counts:
            before = self.pending_counts[kind]
            self.pending_counts[kind] = before + 1
            self._undo.append((_restore_count, (self.pending_counts, kind, before)))
        return item_id

    def settle(
        self,
        item_id: int,
        status: str,
        error: str | None,
        result: dict[str, Any] | None = None,
        *,
        only_if_pending: bool = False,
    ) -> OpenItem | None:
        """Stage the final state of a pending or running queue item. None if it was settled
        already (by another operation, or earlier in this batch), or, with
        ``only_if_pending``, if it is running."""
        item = self.open_items.get(item_id)
        if item is None or (only_if_pending and item.status != "pending"):
            return None
        del self.open_items[item_id]
        self._undo.append((_reopen_item, (self.open_items, item)))
        self._append(
            self.settled_items,
            {
                "b_id": item_id,
                "status": status,
                "error": error,
                "result": result,
                "finished_at": self.now,
            },
        )
        return item

    def count_redeem(self, key: str, user_id: int) -> None:
        for slot in ((key, None), (key, user_id)):
            before = self.redeem_counts.get(slot, 0)
            self.redeem_counts[slot] = before + 1
            self._undo.append((_restore_count, (self.redeem_counts, slot, before)))

    # -- event log --------------------------------------------------------------------------

    def log(
        self,
        kind: str,
        *,
        platform: str | None = None,
        user_id: int | None = None,
        ref: str | None = None,
        cause_ref: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        if ref is not None:
            if ref in self.event_refs:
                raise ValueError(f"duplicate event ref {ref!r}")
            self.event_refs.add(ref)
        self._undo.append((_unlog, (self.events, self.event_refs, ref)))
        self.events.append(
            {
                "kind": kind,
                "platform": platform,
                "user_id": user_id,
                "stream_session_id": None,
                "ref": ref,
                "cause_ref": cause_ref,
                "payload": {} if payload is None else payload,
                "created_at": self.now,
            },
        )

    # -- for store.flush --------------------------------------------------------------------

    def dirty_accounts(self) -> Iterable[Account]:
        if not self.joined_accounts:
            return (account for account in self.accounts.values() if account.dirty)
        # A wallet joined into another is no longer reachable by its id (that now finds the
        # wallet it joined), yet its emptied state must be written; each wallet once.
        unique = {a.user_id: a for a in (*self.accounts.values(), *self.joined_accounts)}
        return (account for account in unique.values() if account.dirty)


def _require_positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(amount, "must be a whole number")
    if amount <= 0:
        raise InvalidAmount(amount, "must be more than zero")


def _restore_count(saved: tuple[dict[Any, int], Any, int]) -> None:
    counts, slot, before = saved
    counts[slot] = before


def _reopen_item(saved: tuple[dict[int, OpenItem], OpenItem]) -> None:
    items, item = saved
    items[item.id] = item


def _unlog(saved: tuple[list[dict[str, Any]], set[str], str | None]) -> None:
    events, event_refs, ref = saved
    events.pop()
    if ref is not None:
        event_refs.discard(ref)


def _restore_item(saved: tuple[dict[Any, Any], Any, bool, Any]) -> None:
    mapping, key, had, value = saved
    if had:
        mapping[key] = value
    else:
        mapping.pop(key, None)


def _pop_last(rows: list[Any]) -> None:
    rows.pop()


def _snapshot(account: Account) -> tuple[int, int, int, int, bool]:
    return (account.points, account.xp, account.level, account.rewarded_level, account.dirty)


def _restore_account(saved: tuple[Account, tuple[int, int, int, int, bool]]) -> None:
    account, (points, xp, level, rewarded_level, dirty) = saved
    account.points, account.xp, account.level = points, xp, level
    account.rewarded_level, account.dirty = rewarded_level, dirty


def _restore_charge(saved: tuple[dict[str, Charge], str, Charge | None]) -> None:
    charges, ref, previous = saved
    if previous is None:
        charges.pop(ref, None)
    else:
        charges[ref] = previous


def _restore_cooldown(
    saved: tuple[dict[tuple[str, str], datetime], dict[tuple[str, str], datetime], Any, Any, Any],
) -> None:
    cooldowns, cooldown_rows, slot, loaded, staged = saved
    for mapping, value in ((cooldowns, loaded), (cooldown_rows, staged)):
        if value is None:
            mapping.pop(slot, None)
        else:
            mapping[slot] = value
