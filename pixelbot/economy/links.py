"""One wallet across platforms: ``!link`` joins identities into one wallet, ``!unlink`` splits.

The flow: a viewer types ``!link`` on platform A and gets a one-time code; within
``CODE_LIFETIME`` they type ``!link CODE`` on platform B. B's wallet (with every identity it
has) is then joined into A's: its points and XP move there as ``link`` rows in both ledgers
(``link:<code id>:out`` on B's wallet, ``:in`` on A's), its identities point at A's wallet, its
row is marked ``merged_into`` A and nothing is deleted. The level is recomputed from the summed
XP; level rewards are paid for levels neither wallet had been paid for.

Everything happens in ONE writer operation (group commit, see ``writer.py``): the code is
checked and spent, the balances move, the identities change owner and B's running cooldowns
and per-stream redeem counts carry over, atomically with respect to every earn and spend
queued around it. An operation for B that runs after the link in the same batch, or in any
later one, finds A's wallet; anything that still names B's old wallet id (a refund of a charge
B paid before linking, a queue item's prize) lands on A's wallet too (``store._load_accounts``).

Threat model (why the code is shaped as it is). The code is answered in chat, and on most
platforms chat is public: not every platform lets a bot whisper, so the reply may be seen by
the whole audience. Whoever types the code first joins *their* wallet into the asker's, and
from then on can spend the asker's points. So a code:

- is random from ``rng`` (a ``secrets.SystemRandom`` unless a test injects one): 8 characters
  of a 32-letter alphabet, 40 bits, far beyond guessing within its lifetime;
- works only for an identity on a *different platform* than the one it was asked on (an
  onlooker in the same chat cannot use it from the same platform, which is where they see it);
- works once, and only for ``CODE_LIFETIME`` (10 minutes on the injected clock), and asking
  for a new one ends the identity's earlier codes (one live code per identity);
- is stored as its SHA-256 only, so a copy of the database or a backup reveals no live code.

An onlooker who also watches on another platform can still race the owner within those ten
minutes; the README tells viewers to type the code at once. A moderator undoes a link the owner
did not make (``!unlink <viewer> <platform>``), which splits the stranger's identity off with an
empty wallet (what the stranger brought stays, ledgered). Two rules keep a stranger from doing
worse meanwhile: a viewer's own ``!unlink`` splits off only the account typing it (the cog), so
a stranger cannot push the owner out at 0; and a code works only while the account that asked
for it is still in that wallet, so a stranger split off cannot come back with a code they took
while inside. Every refusal of a code reads the same, and keeps ``!link``'s cooldown, so
guessing learns nothing and costs 10 seconds a try.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pixelbot.economy.batch import (
    Account,
    Batch,
    IdentityRow,
    LevelUp,
    Needs,
    Wallet,
    user_scope,
)
from pixelbot.economy.writer import Writer
from pixelbot.errors import LinkRefused
from pixelbot.events import Viewer

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CODE_LIFETIME",
    "LinkCode",
    "Linked",
    "Links",
    "Unlinked",
    "hash_code",
    "normalize_code",
]

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and retyped
CODE_LENGTH = 8  # 32 ** 8 = 2 ** 40 codes
CODE_LIFETIME = timedelta(minutes=10)


def normalize_code(code: str) -> str:
    """What a viewer typed, as the code was issued: any case, dashes and spaces ignored."""
    return "".join(code.split()).replace("-", "").upper()


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


NOT_VALID = (
    "that link code is not valid here: a code works once, for 10 minutes, typed on another "
    "platform than the one that gave it"
)
# The refusals of a code itself (as opposed to a wallet clash), answered alike.
CODE_REFUSALS = frozenset({"unknown", "used", "expired", "same_platform", "issuer_left"})


@dataclass(frozen=True)
class LinkCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Linked:
    """A wallet joined into another: ``user_id`` is the wallet both now share."""

    user_id: int
    display_name: str
    joined_user_id: int
    identities: tuple[str, ...]  # the identities that moved ("discord:123")
    points_moved: int
    xp_moved: int
    points: int  # the shared wallet's balance after
    level: int
    level_up: LevelUp | None = None


@dataclass(frozen=True)
class Unlinked:
    """An identity split off into ``new_user_id``, an empty wallet."""

    identity: str
    from_user_id: int
    new_user_id: int


def _identity(viewer: Viewer | IdentityRow) -> str:
    return f"{viewer.platform}:{viewer.platform_user_id}"


@dataclass(frozen=True)
class _CreateCode:
    viewer: Viewer
    code_hash: str
    lifetime: timedelta

    def needs(self, needs: Needs) -> None:
        needs.viewer(self.viewer)

    def apply(self, batch: Batch) -> datetime:
        account = batch.account_for(self.viewer)
        expires = batch.now + self.lifetime
        batch.stage(
            batch.new_link_codes,
            {
                "code_hash": self.code_hash,
                "user_id": account.user_id,
                "platform": self.viewer.platform,
                "platform_user_id": self.viewer.platform_user_id,
                "created_at": batch.now,
                "expires_at": expires,
            },
        )
        batch.log(
            "link_code",
            platform=self.viewer.platform,
            user_id=account.user_id,
            payload={"identity": _identity(self.viewer), "expires_at": expires.isoformat()},
        )
        return expires


@dataclass(frozen=True)
class _Link:
    viewer: Viewer  # the identity typing the code (platform B)
    code_hash: str

    def needs(self, needs: Needs) -> None:
        needs.viewer(self.viewer)
        needs.link_codes.add(self.code_hash)
        needs.identity_lists = True

    def apply(self, batch: Batch) -> Linked:
        # Unknown, used, expired, from the wrong platform or from an account that has left
        # the wallet since: one answer for all, so a guesser learns nothing about which
        # codes exist (the cog also keeps !link's cooldown on these refusals).
        code = batch.link_codes.get(self.code_hash)
        if code is None:
            raise LinkRefused("unknown", NOT_VALID)
        if code.used_at is not None:
            raise LinkRefused("used", NOT_VALID)
        if batch.now >= code.expires_at:
            raise LinkRefused("expired", NOT_VALID)
        if code.platform == self.viewer.platform:
            raise LinkRefused("same_platform", NOT_VALID)
        target = batch.account(code.user_id)  # the wallet it joined since, if it did
        if (code.platform, code.platform_user_id) not in {
            identity.key for identity in batch.identities_of[target.user_id]
        }:
            # The account that asked for the code was split off that wallet since (an
            # intruder who raced a code and was unlinked must not get back in with a code
            # they took while inside).
            raise LinkRefused("issuer_left", NOT_VALID)
        joining = batch.account_for(self.viewer)
        if joining.user_id == target.user_id:
            raise LinkRefused("already_linked", "these accounts already share one wallet")
        mine, theirs = batch.identities_of[target.user_id], batch.identities_of[joining.user_id]
        taken = sorted({i.platform for i in mine} & {i.platform for i in theirs})
        if taken:
            raise LinkRefused(
                "platform_taken",
                f"that wallet already has a {taken[0]} account; unlink it first",
            )
        limit = batch.policy.max_balance
        if limit is not None and target.points + joining.points > limit:
            # The maximum is per person: an account unlinked to fill a second wallet up to it
            # does not get back in over it. Nothing moves; the code stays usable.
            raise LinkRefused(
                "over_limit",
                f"together these wallets would hold {target.points + joining.points:,}, over "
                f"the maximum of {limit:,}; spend some first",
            )
        batch.set_item(batch.link_codes, self.code_hash, replace(code, used_at=batch.now))
        batch.stage(
            batch.used_link_codes,
            {"b_id": code.id, "used_at": batch.now, "used_by": _identity(self.viewer)},
        )
        return _merge(batch, joining, target, f"link:{code.id}", self.viewer, theirs, mine)


def _merge(
    batch: Batch,
    source: Account,
    target: Account,
    ref: str,
    by: Viewer,
    moving: tuple[IdentityRow, ...],
    staying: tuple[IdentityRow, ...],
) -> Linked:
    points, xp = source.points, source.xp
    curve = batch.policy.curve
    start = curve.start_level
    # Points: both sides ledgered, the joined wallet down to zero.
    batch.post_link(source, -points, reason="link_out", ref=f"{ref}:out", actor=_identity(by))
    batch.post_link(target, points, reason="link_in", ref=f"{ref}:in", actor=None)
    # XP: the same, and the level follows the sum (never below either wallet's level).
    level = max(target.level, source.level, curve.level_for(target.xp + xp))
    batch.post_link_xp(source, -xp, level=start, reason="link_out", ref=f"{ref}:out")
    old_level = target.level
    batch.post_link_xp(target, xp, level=level, reason="link_in", ref=f"{ref}:in")
    # Level rewards: those either wallet was paid stay paid; levels new to both pay now.
    batch.raise_rewarded_level(target, source.rewarded_level)
    level_up = None
    if level > old_level:
        batch.log(
            "level_up",
            user_id=target.user_id,
            cause_ref=ref,
            payload={"from": old_level, "to": level},
        )
        rewards = batch.pay_level_rewards(target, level)
        level_up = LevelUp(target.user_id, target.display_name, old_level, level, rewards)
    _carry_limits(batch, source, target)
    # Identities of the joined wallet now point at the target; its row names the target.
    for identity in moving:
        batch.stage(
            batch.identity_moves,
            {
                "b_platform": identity.platform,
                "b_platform_user_id": identity.platform_user_id,
                "user_id": target.user_id,
                "updated_at": batch.now,
            },
        )
        if identity.key in batch.user_ids_by_identity:
            batch.set_item(batch.user_ids_by_identity, identity.key, target.user_id)
        batch.forget_identities.add(identity.key)
    batch.set_item(batch.identities_of, target.user_id, staying + moving)
    batch.set_item(batch.identities_of, source.user_id, ())
    batch.stage(batch.user_merges, {"b_id": source.user_id, "merged_into": target.user_id})
    batch.stage_joined(source)
    for user_id, account in list(batch.accounts.items()):
        if account is source:
            batch.set_item(batch.accounts, user_id, target)
    batch.forget_user_ids.add(source.user_id)
    moved = tuple(i.label() for i in moving)
    batch.log(
        "link",
        platform=by.platform,
        user_id=target.user_id,
        ref=ref,
        payload={
            "joined_user": source.user_id,
            "into_user": target.user_id,
            "identities": list(moved),
            "kept": [i.label() for i in staying],
            "points": points,
            "xp": xp,
            "level": level,
        },
    )
    return Linked(
        target.user_id,
        target.display_name,
        source.user_id,
        moved,
        points,
        xp,
        target.points,  # with any level reward the summed XP paid
        level,
        level_up,
    )


def _carry_limits(batch: Batch, source: Account, target: Account) -> None:
    """Cooldowns and per-stream limits are per person: what ran for the joined wallet keeps
    running for the one it joined (the later of the two ends wins), and what it redeemed this
    stream counts there. Otherwise linking would let a message or a redeem count twice."""
    _copy_cooldowns(batch, source.user_id, target.user_id)
    for (key, user_id), count in list(batch.redeem_counts.items()):
        if user_id == source.user_id and count:
            joined = batch.redeem_counts.get((key, target.user_id), 0)
            batch.set_item(batch.redeem_counts, (key, target.user_id), joined + count)
            batch.set_item(batch.redeem_counts, (key, source.user_id), 0)


def _copy_cooldowns(batch: Batch, from_user: int, to_user: int) -> None:
    source_scope, target_scope = user_scope(from_user), user_scope(to_user)
    for (scope, key), expires in list(batch.cooldowns.items()):
        if scope != source_scope or expires <= batch.now:
            continue
        if batch.cooldown_remaining(target_scope, key) < (expires - batch.now).total_seconds():
            batch.start_cooldown(target_scope, key, expires - batch.now)


@dataclass(frozen=True)
class _Unlink:
    wallet: Wallet  # the wallet to split an identity off (a viewer, or a user id)
    platform: str
    ref: str
    actor: str

    def needs(self, needs: Needs) -> None:
        needs.wallet(self.wallet)
        needs.identity_lists = True
        needs.new_users += 1
        needs.tx_refs.add(self.ref)

    def apply(self, batch: Batch) -> Unlinked:
        account = batch.wallet(self.wallet)
        if batch.has_tx_ref(self.ref):  # the same request delivered twice
            raise LinkRefused("duplicate", "that unlink was done already")
        identities = batch.identities_of[account.user_id]
        leaving = next((i for i in identities if i.platform == self.platform), None)
        if leaving is None:
            raise LinkRefused("not_linked", f"no {self.platform} account is linked to that wallet")
        if len(identities) < 2:
            raise LinkRefused(
                "only_identity", f"the {self.platform} account is that wallet's only one"
            )
        new = batch.new_account(leaving.display_name)
        # The person was paid the wallet's level rewards: splitting an account off and earning
        # its levels again must not pay them a second time (nor after linking back).
        batch.raise_rewarded_level(new, account.rewarded_level)
        batch.stage(
            batch.identity_moves,
            {
                "b_platform": leaving.platform,
                "b_platform_user_id": leaving.platform_user_id,
                "user_id": new.user_id,
                "updated_at": batch.now,
            },
        )
        if leaving.key in batch.user_ids_by_identity:
            batch.set_item(batch.user_ids_by_identity, leaving.key, new.user_id)
        batch.forget_identities.add(leaving.key)
        staying = tuple(i for i in identities if i is not leaving)
        batch.set_item(batch.identities_of, account.user_id, staying)
        batch.set_item(batch.identities_of, new.user_id, (leaving,))
        # Running cooldowns go along: splitting off must not make a message earn twice.
        _copy_cooldowns(batch, account.user_id, new.user_id)
        # The new wallet's ledger starts with a row saying where it came from (0 points:
        # everything stays with the wallet it leaves).
        batch.post_link(new, 0, reason="unlink", ref=self.ref, actor=self.actor)
        batch.log(
            "unlink",
            platform=leaving.platform,
            user_id=account.user_id,
            cause_ref=self.ref,
            payload={
                "identity": leaving.label(),
                "from_user": account.user_id,
                "new_user": new.user_id,
                "by": self.actor,
            },
        )
        return Unlinked(leaving.label(), account.user_id, new.user_id)


class Links:
    """``!link`` and ``!unlink`` through the group-commit writer (see the module docstring).

    ``rng``: where codes come from; a cryptographic source unless a test injects its own."""

    def __init__(self, writer: Writer, rng: random.Random | None = None) -> None:
        self._writer = writer
        self.rng = rng or secrets.SystemRandom()
        self.lifetime = CODE_LIFETIME

    def new_code(self) -> str:
        return "".join(self.rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))

    async def create_code(self, viewer: Viewer) -> LinkCode:
        """A one-time code for ``viewer``'s wallet (creating the wallet on first sight)."""
        code = self.new_code()
        expires = await self._writer.submit(_CreateCode(viewer, hash_code(code), self.lifetime))
        return LinkCode(code, expires)

    async def link(self, viewer: Viewer, code: str) -> Linked:
        """Join ``viewer``'s wallet into the wallet that asked for ``code``. LinkRefused if the
        code is unknown, used, expired or from ``viewer``'s own platform, or if the wallets
        are one already or both have an account on the same platform."""
        return await self._writer.submit(_Link(viewer, hash_code(code)))

    async def unlink(
        self, wallet: Wallet, platform: str, *, actor: str, ref: str | None = None
    ) -> Unlinked:
        """Split the wallet's ``platform`` identity off into a new, empty wallet. ``ref``: the
        idempotency key of the request (the chat message's); a repeat is refused."""
        ref = f"unlink:{ref or uuid.uuid4().hex}"
        return await self._writer.submit(_Unlink(wallet, platform.lower(), ref, actor))
