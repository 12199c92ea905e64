"""The one exception tree of Pixel Bot.

Every error the engine raises on purpose is a ``PixelbotError``. Each carries the numbers a
caller needs (a balance, a cost, seconds remaining) as attributes, and a readable message, so
one place can render any of them to chat or to the operator::

    PixelbotError
    ├── ConfigError                 config.yaml is invalid; .issues lists every problem
    ├── DatabaseError               the database cannot be opened, written or trusted; .where
    │   ├── DatabaseLocked          another program held the write lock past busy_timeout
    │   │   └── DatabaseConflict    PostgreSQL gave up on a transaction to let another go
    │   │                           (serialization failure, deadlock): safe to run it again
    │   ├── DatabaseFull            the disk (or the quota) is full
    │   ├── DatabaseReadOnly        the file, its folder or the disk is read-only
    │   ├── DatabaseUnreachable     the file cannot be opened (its folder is missing or is a
    │   │                           file) or the server cannot be reached (down, restarting,
    │   │                           the connection lost, too many connections, refused login)
    │   ├── DatabaseVanished        the file at the path is no longer the one the bot opened
    │   ├── DatabaseDamaged         the file is corrupt, truncated or not a database
    │   └── CopyError               ``db copy`` refused: the target is not empty nor a prefix
    ├── VaultError                  stored platform tokens cannot be read (wrong or missing key)
    ├── ImportFileError             ``bot.py import``: the file is not an export it can read
    ├── PlatformError               a platform cannot be used; one line the streamer can act on
    │   ├── PlatformAuthError       no token, a revoked token, or a missing scope (.scope)
    │   └── SettlementRefused       the platform will not settle that redemption (settled
    │                               already, or unknown there): sending it again cannot help
    ├── EconomyError                a points/XP rule refused an operation (nothing changed)
    │   ├── InsufficientFunds       .balance, .cost, .missing
    │   ├── BalanceLimitExceeded    .balance, .amount, .limit
    │   ├── InvalidAmount           .amount, .reason
    │   ├── SelfTransfer            .user_id
    │   ├── UnknownViewer           .name, .platform
    │   ├── AmbiguousViewer         .name (several viewers go by it)
    │   ├── UnknownCharge           .ref
    │   ├── NotRefundable           .ref, .reason
    │   ├── RedeemRefused           .key
    │   │   ├── UnknownRedeem
    │   │   ├── RedeemDisabled
    │   │   ├── LimitReached        .limit, .per_user
    │   │   ├── QueueFull           .limit (pending items of its kind), .kind
    │   │   └── RedeemUnavailable   .reason (e.g. it needs OBS, which is off)
    │   ├── OnCooldown              .key, .remaining (seconds)
    │   └── LinkRefused             !link / !unlink refused; .reason (unknown, used, expired,
    │                               same_platform, already_linked, platform_taken, not_linked,
    │                               only_identity, duplicate)
    ├── CommandError                a chat command was refused before anything happened
    │   ├── BadArgument             .usage (the command's usage line), .detail
    │   └── NotPermitted            .required (the role needed), .what
    ├── WriterStopped               the economy writer is not running (not started yet, or
    │                               stopping): the operation never ran, nothing of it saved
    └── ItemFailed                  a queue item could not be performed (it is refunded)
        ├── ItemTimedOut            .seconds
        ├── SpeechFailed            text-to-speech could not render or play
        ├── AiFailed                the AI service gave no usable reply; .cause (timeout,
        │                           connection, auth, rate_limit, model, refused, server,
        │                           bad_answer, empty, disabled)
        ├── OverlayUnavailable      no overlay page showed it (none open, or no end reported);
        │                           .overlay
        └── EffectFailed            an effect step failed; .step
            └── ObsUnavailable      OBS cannot be reached (after reconnecting with backoff);
                                    .untouched (nothing changed on stream yet)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AiFailed",
    "AmbiguousViewer",
    "BadArgument",
    "BalanceLimitExceeded",
    "CommandError",
    "ConfigError",
    "ConfigIssue",
    "CopyError",
    "DatabaseConflict",
    "DatabaseDamaged",
    "DatabaseError",
    "DatabaseFull",
    "DatabaseLocked",
    "DatabaseReadOnly",
    "DatabaseUnreachable",
    "DatabaseVanished",
    "EconomyError",
    "EffectFailed",
    "ImportFileError",
    "InsufficientFunds",
    "InvalidAmount",
    "ItemFailed",
    "ItemTimedOut",
    "LimitReached",
    "LinkRefused",
    "NotPermitted",
    "NotRefundable",
    "ObsUnavailable",
    "OnCooldown",
    "OverlayUnavailable",
    "PixelbotError",
    "PlatformAuthError",
    "PlatformError",
    "QueueFull",
    "RedeemDisabled",
    "RedeemRefused",
    "RedeemUnavailable",
    "SelfTransfer",
    "SettlementRefused",
    "SpeechFailed",
    "UnknownCharge",
    "UnknownRedeem",
    "UnknownViewer",
    "VaultError",
    "WriterStopped",
]


class PixelbotError(Exception):
    """Root of every error Pixel Bot raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file, located by its YAML path and line."""

    path: str
    message: str
    line: int | None = None
    file: str = "config.yaml"

    def __str__(self) -> str:
        where = f" ({self.file} line {self.line})" if self.line is not None else f" ({self.file})"
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message}{where}"


class ConfigError(PixelbotError):
    """The configuration is invalid. ``issues`` holds every problem found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class DatabaseError(PixelbotError):
    """The database cannot be opened, migrated, written, or fails its integrity checks.

    ``where`` names the file (or the server) and the message says what to do, in one line for
    the operator. Chat never sees the message: a viewer is told the bot can't save right now.
    ``pixelbot.db.faults`` turns driver errors into these, once, for every caller."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        super().__init__(message)


class DatabaseLocked(DatabaseError):
    """Another program held the database's write lock for longer than ``busy_timeout``."""


class DatabaseConflict(DatabaseLocked):
    """PostgreSQL rolled the transaction back so that a concurrent one could go on (a
    serialization failure, a deadlock, a lock it could not get). Nothing of it was saved, so
    running it again is safe; the writer does so a few times before giving up."""


class DatabaseFull(DatabaseError):
    """The disk or quota holding the database is full."""


class DatabaseReadOnly(DatabaseError):
    """The database file, its folder or its disk does not allow writing."""


class DatabaseUnreachable(DatabaseError):
    """The database cannot be opened: a missing folder, a path through a file, no server."""


class DatabaseVanished(DatabaseError):
    """The file at the database's path is gone or replaced: writes would be lost."""


class DatabaseDamaged(DatabaseError):
    """The database file is corrupt, truncated, or not a SQLite database at all."""


class VaultError(PixelbotError):
    """The token vault cannot decrypt what it stored, or has no key to do it with."""


class ImportFileError(PixelbotError):
    """The file given to ``bot.py import`` is not an export it can read: nothing was
    imported. (A single bad row is reported with its line and skipped, not raised.)"""


class PlatformError(PixelbotError):
    """A platform cannot be used; the message is one line the streamer can act on."""


class PlatformAuthError(PlatformError):
    """No stored token, a revoked one, or one without a needed scope (``scope``)."""

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class SettlementRefused(PlatformError):
    """The platform refused to settle a channel-point redemption: it is settled already (by
    the streamer, or by an earlier send whose answer was lost), or it is not known there (its
    reward was removed). Sending it again cannot help."""


class CopyError(DatabaseError):
    """``db copy`` refused to write: the target holds rows that are not a copy of the source
    (only an empty target, or one an interrupted copy of the same source left, is taken)."""


class EconomyError(PixelbotError):
    """A points or XP rule refused an operation. Nothing was changed."""


class InsufficientFunds(EconomyError):
    def __init__(self, balance: int, cost: int) -> None:
        self.balance = balance
        self.cost = cost
        self.missing = cost - balance
        super().__init__(f"needs {cost} points but has {balance} ({self.missing} more needed)")


class BalanceLimitExceeded(EconomyError):
    def __init__(self, balance: int, amount: int, limit: int) -> None:
        self.balance = balance
        self.amount = amount
        self.limit = limit
        super().__init__(f"a balance of {balance} + {amount} would exceed the maximum of {limit}")


class InvalidAmount(EconomyError):
    def __init__(self, amount: int, reason: str) -> None:
        self.amount = amount
        self.reason = reason
        super().__init__(f"invalid amount {amount}: {reason}")


class SelfTransfer(EconomyError):
    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        super().__init__("cannot transfer points to yourself")


class UnknownViewer(EconomyError):
    def __init__(self, name: str, platform: str | None = None) -> None:
        self.name = name
        self.platform = platform
        where = f" on {platform}" if platform else ""
        super().__init__(f"no viewer named {name!r}{where}")


class AmbiguousViewer(EconomyError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"several viewers are called {name!r}")


class UnknownCharge(EconomyError):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no charge with ref {ref!r}")


class NotRefundable(EconomyError):
    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"{ref!r} cannot be refunded: {reason}")


class OnCooldown(EconomyError):
    def __init__(self, key: str, remaining: float) -> None:
        self.key = key
        self.remaining = remaining
        super().__init__(f"{key} is on cooldown for {remaining:.0f}s")


class LinkRefused(EconomyError):
    """Linking or unlinking identities was refused; the message says why, for chat."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class RedeemRefused(EconomyError):
    """A redeem cannot be bought right now; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class UnknownRedeem(RedeemRefused):
    def __init__(self, key: str) -> None:
        super().__init__(key, f"there is no redeem called {key!r}")


class RedeemDisabled(RedeemRefused):
    def __init__(self, key: str) -> None:
        super().__init__(key, f"{key} is switched off right now")


class LimitReached(RedeemRefused):
    def __init__(self, key: str, limit: int, *, per_user: bool) -> None:
        self.limit = limit
        self.per_user = per_user
        who = "per viewer " if per_user else ""
        super().__init__(key, f"{key} has reached its limit of {limit} {who}this stream")


class QueueFull(RedeemRefused):
    def __init__(self, key: str, limit: int, kind: str = "tts") -> None:
        self.limit = limit
        self.kind = kind  # the queue that is full (a redeem's key need not name it)
        super().__init__(key, f"the {kind} queue is full ({limit} waiting), try again soon")


class RedeemUnavailable(RedeemRefused):
    def __init__(self, key: str, reason: str) -> None:
        self.reason = reason
        super().__init__(key, f"{key} is not available: {reason}")


class CommandError(PixelbotError):
    """A chat command was refused before it changed anything."""


class BadArgument(CommandError):
    def __init__(self, detail: str, usage: str = "") -> None:
        self.detail = detail
        self.usage = usage
        super().__init__(detail)


class NotPermitted(CommandError):
    def __init__(self, required: str, what: str | None = None) -> None:
        self.required = required
        self.what = what  # what was refused (a redeem's name); None: the command itself
        super().__init__(f"only for {required}s and up")


class WriterStopped(PixelbotError):
    """The economy writer is not running: not started yet, or shutting down. The operation
    never ran, so nothing of it was saved. The message is for the log; a viewer is told the
    bot is restarting (``commands/dispatcher.py``)."""


class ItemFailed(PixelbotError):
    """A queue item could not be performed. The message is what the viewer and the
    moderators are told; the item is failed and its charge refunded."""


class ItemTimedOut(ItemFailed):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"it took longer than {seconds:g}s")


class SpeechFailed(ItemFailed):
    """Text-to-speech could not render or play the text."""


class AiFailed(ItemFailed):
    """The AI service gave no reply that can be said in chat. ``cause`` is a short word for
    logs and tests (``timeout``, ``auth``, ``empty``...); the message is for people and never
    carries the key or the service's own error text."""

    def __init__(self, message: str, cause: str) -> None:
        self.cause = cause
        super().__init__(message)


class OverlayUnavailable(ItemFailed):
    """The overlay page that must show an item (the wheel, TTS audio) is not open, or did not
    report the end in time. ``overlay`` names it (``wheel``, ``tts``)."""

    def __init__(self, message: str, overlay: str) -> None:
        self.overlay = overlay
        super().__init__(message)


class EffectFailed(ItemFailed):
    """An effect step failed; ``step`` names it (e.g. ``show_source``)."""

    def __init__(self, message: str, step: str | None = None) -> None:
        self.step = step
        super().__init__(message)


class ObsUnavailable(EffectFailed):
    """OBS could not be reached, even after reconnecting with backoff (or it is down: one
    outage, see ``ObsClient``). ``untouched``: the item changed nothing on stream before
    this, so it can wait for OBS and run later instead of being refunded."""

    def __init__(self, message: str, step: str | None = None, *, untouched: bool = False) -> None:
        self.untouched = untouched
        super().__init__(message, step)
