"""The points ledger: grant, spend, transfer, moderator adjust, refund.

Each call is one atomic change through the group-commit writer, recorded as append-only
``transactions`` rows with the balance after, a reason, the actor and an idempotency ``ref``.
Calling again with a ref that already exists changes nothing and reports ``duplicate=True``.
Wallets are named by ``Viewer`` (created on first sight) or by user id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pixelbot.economy.batch import ADJUST, GRANT, SPEND, TRANSFER, Batch, Needs, Wallet
from pixelbot.economy.writer import Writer
from pixelbot.errors import InsufficientFunds, InvalidAmount, SelfTransfer

__all__ = ["Ledger", "LedgerEntry", "Transfer", "Wallet"]


@dataclass(frozen=True)
class LedgerEntry:
    user_id: int
    amount: int
    balance: int
    ref: str
    duplicate: bool = False


@dataclass(frozen=True)
class Transfer:
    sent: LedgerEntry
    received: LedgerEntry


def new_ref(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex}"


@dataclass(frozen=True)
class _Post:
    """A grant (amount > 0, refused above the cap), spend or adjust (either sign)."""

    wallet: Wallet
    amount: int | None  # None (adjust only): everything the wallet holds
    reason: str
    ref: str
    actor: str | None
    kind: str  # GRANT | SPEND | ADJUST

    def needs(self, needs: Needs) -> None:
        needs.wallet(self.wallet)
        needs.tx_refs.add(self.ref)

    def apply(self, batch: Batch) -> LedgerEntry:
        account = batch.wallet(self.wallet)
        if batch.has_tx_ref(self.ref):
            return LedgerEntry(account.user_id, 0, account.points, self.ref, duplicate=True)
        if self.amount is None:  # take everything, decided here, on the locked balance
            if account.points == 0:
                return LedgerEntry(account.user_id, 0, 0, self.ref)
            cost = account.points
            balance = batch.debit(
                account, cost, kind=self.kind, reason=self.reason, ref=self.ref, actor=self.actor
            )
            signed = -cost
        elif self.amount > 0 and self.kind != SPEND:
            balance = batch.credit(
                account,
                self.amount,
                kind=self.kind,
                reason=self.reason,
                ref=self.ref,
                actor=self.actor,
            )
            signed = self.amount
        else:
            cost = self.amount if self.kind == SPEND else -self.amount
            balance = batch.debit(
                account, cost, kind=self.kind, reason=self.reason, ref=self.ref, actor=self.actor
            )
            signed = -cost
        batch.log(
            self.kind,
            user_id=account.user_id,
            cause_ref=self.ref,
            payload={"amount": signed, "balance": balance, "reason": self.reason},
        )
        return LedgerEntry(account.user_id, signed, balance, self.ref)


@dataclass(frozen=True)
class _Transfer:
    sender: Wallet
    receiver: Wallet
    amount: int | None  # None: everything the sender holds
    ref: str

    def needs(self, needs: Needs) -> None:
        needs.wallet(self.sender)
        needs.wallet(self.receiver)
        needs.tx_refs.add(f"{self.ref}:out")

    def apply(self, batch: Batch) -> Transfer:
        sender = batch.wallet(self.sender)
        receiver = batch.wallet(self.receiver)
        if sender.user_id == receiver.user_id:
            raise SelfTransfer(sender.user_id)
        if batch.has_tx_ref(f"{self.ref}:out"):
            return Transfer(
                LedgerEntry(sender.user_id, 0, sender.points, self.ref, duplicate=True),
                LedgerEntry(receiver.user_id, 0, receiver.points, self.ref, duplicate=True),
            )
        amount = sender.points if self.amount is None else self.amount
        if amount == 0:
            raise InsufficientFunds(0, 1)
        out = batch.debit(
            sender, amount, kind=TRANSFER, reason="transfer_out", ref=f"{self.ref}:out"
        )
        into = batch.credit(
            receiver, amount, kind=TRANSFER, reason="transfer_in", ref=f"{self.ref}:in"
        )
        batch.log(
            "transfer",
            user_id=sender.user_id,
            cause_ref=self.ref,
            payload={"to": receiver.user_id, "amount": amount},
        )
        return Transfer(
            LedgerEntry(sender.user_id, -amount, out, f"{self.ref}:out"),
            LedgerEntry(receiver.user_id, amount, into, f"{self.ref}:in"),
        )


@dataclass(frozen=True)
class _Refund:
    charge_ref: str
    reason: str
    actor: str | None

    def needs(self, needs: Needs) -> None:
        needs.charges.add(self.charge_ref)

    def apply(self, batch: Batch) -> LedgerEntry | None:
        balance = batch.refund(self.charge_ref, reason=self.reason, actor=self.actor)
        if balance is None:
            return None
        charge = batch.charges[self.charge_ref]
        payer = batch.account(charge.user_id).user_id  # the wallet it joined, if it was linked
        batch.log(
            "refund",
            user_id=payer,
            cause_ref=self.charge_ref,
            payload={"amount": -charge.amount, "balance": balance, "reason": self.reason},
        )
        return LedgerEntry(payer, -charge.amount, balance, f"refund:{self.charge_ref}")


class Ledger:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def grant(
        self,
        wallet: Wallet,
        amount: int,
        *,
        reason: str,
        ref: str | None = None,
        actor: str | None = None,
    ) -> LedgerEntry:
        _positive(amount)
        op = _Post(wallet, amount, reason, ref or new_ref("grant"), actor, GRANT)
        return await self._writer.submit(op)

    async def spend(
        self,
        wallet: Wallet,
        amount: int,
        *,
        reason: str,
        ref: str | None = None,
        actor: str | None = None,
    ) -> LedgerEntry:
        """Take ``amount`` points. Raises InsufficientFunds (with balance and cost) if short."""
        _positive(amount)
        op = _Post(wallet, amount, reason, ref or new_ref("spend"), actor, SPEND)
        return await self._writer.submit(op)

    async def adjust(
        self,
        wallet: Wallet,
        delta: int,
        *,
        actor: str,
        reason: str = "adjust",
        ref: str | None = None,
    ) -> LedgerEntry:
        """A moderator's correction, either sign. It may not take a balance below zero."""
        if not isinstance(delta, int) or delta == 0:
            raise InvalidAmount(delta, "must be a non-zero whole number")
        op = _Post(wallet, delta, reason, ref or new_ref("adjust"), actor, ADJUST)
        return await self._writer.submit(op)

    async def remove_all(
        self, wallet: Wallet, *, actor: str, reason: str = "adjust", ref: str | None = None
    ) -> LedgerEntry:
        """A moderator empties a wallet (amount 0 and no ledger row if it was empty)."""
        op = _Post(wallet, None, reason, ref or new_ref("adjust"), actor, ADJUST)
        return await self._writer.submit(op)

    async def transfer(
        self, sender: Wallet, receiver: Wallet, amount: int | None, *, ref: str | None = None
    ) -> Transfer:
        """Move points between wallets; ``amount=None`` moves everything the sender has."""
        if amount is not None:
            _positive(amount)
        return await self._writer.submit(
            _Transfer(sender, receiver, amount, ref or new_ref("transfer"))
        )

    async def refund(
        self, charge_ref: str, *, reason: str = "refund", actor: str | None = None
    ) -> LedgerEntry | None:
        """Return a spend to its payer. Exactly once: None if it was refunded already.

        Raises UnknownCharge for a ref that names nothing, NotRefundable for an entry that is
        not a spend (a transfer or an adjustment)."""
        return await self._writer.submit(_Refund(charge_ref, reason, actor))


def _positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(amount, "must be a whole number")
    if amount <= 0:
        raise InvalidAmount(amount, "must be more than zero")
