"""What the dashboard can see and do, as plain JSON-ready values: the same services and the
same code paths as the chat commands, so a dashboard skip and ``!skip`` refund the same way.

- the queue: ``QueueControl.skip/pause/resume/cancel_pending`` (what ``cogs/queue.py`` calls);
- a points adjustment: ``Ledger.adjust`` (what ``!addpoints``/``!removepoints`` call), with
  the operator's reason and ``dashboard:<operator>`` as the actor;
- redeem toggles: ``RedeemCatalog.set_enabled`` (what ``!redeem disable`` calls);
- viewers, their ledger and the latest events: ``economy/history.py`` (read-only);
- ``db verify``, backups and jobs: the functions ``bot.py db verify``, ``bot.py backup`` and
  the scheduler use (a backup taken here is a run of the ``backup`` job, recorded like one).

Whatever an operator changes is also told on the outcome bus as a ``Notice("dashboard", ...)``
so the console and the other open dashboards hear of it. A request that cannot be done as
asked raises ``BadArgument`` (a sentence for the operator, nothing changed); anything the
economy refuses (``InsufficientFunds``...) is passed on as it is, with its own message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pixelbot.clock import Clock
from pixelbot.commands.converters import MAX_AMOUNT
from pixelbot.commands.services import Services
from pixelbot.db.backup import list_backups
from pixelbot.db.engine import Database
from pixelbot.db.verify import verify
from pixelbot.economy.history import EventEntry, History, ViewerEntry
from pixelbot.economy.payloads import payload_of
from pixelbot.errors import BadArgument
from pixelbot.outcomes import Notice
from pixelbot.scheduler.jobs import JOBS
from pixelbot.scheduler.runner import JobScheduler, last_runs

__all__ = ["DashboardService", "describe_event", "describe_schedule"]

REASON_MAX = 64  # the ledger's reason column
SHOWN_PENDING = 50  # waiting items listed per queue
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _actor(operator: str) -> str:
    return f"dashboard:{operator}"


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class DashboardService:
    def __init__(
        self,
        services: Services,
        db: Database,
        clock: Clock,
        scheduler: JobScheduler | None = None,
    ) -> None:
        self._services = services
        self._db = db
        self._clock = clock
        self._scheduler = scheduler
        self.history = History(db)
        self.last_verify: dict[str, Any] | None = None
        self._verifying = asyncio.Lock()
        self._backing_up = asyncio.Lock()

    @property
    def _publish(self) -> Callable[[Any], Awaitable[None]]:
        return self._services.publish

    # -- the queue ------------------------------------------------------------------------------

    async def queue(self) -> dict[str, Any]:
        control = self._services.queue
        pending = await self._services.queue_items.pending()
        running = {item.kind: item for item in control.running()}
        paused = control.paused
        kinds = []
        for kind in control.kinds:
            waiting = [item for item in pending if item.kind == kind]
            current = running.get(kind)
            kinds.append(
                {
                    "kind": kind,
                    "paused": kind in paused,
                    "running": None
                    if current is None
                    else _item(current.id, current.kind, current.payload, None),
                    "pending": [
                        _item(item.id, item.kind, item.payload, item.cost)
                        for item in waiting[:SHOWN_PENDING]
                    ],
                    "pending_count": len(waiting),
                }
            )
        return {"kinds": kinds}

    def _kinds(self, kind: str | None) -> list[str]:
        kinds = self._services.queue.kinds
        if not kinds:
            raise BadArgument("the queue is not running")
        if kind is None or kind == "all":
            return kinds
        if kind not in kinds:
            raise BadArgument(f"there is no {kind} queue (queues: {', '.join(kinds)})")
        return [kind]

    async def skip(self, operator: str, kind: str | None, item_id: int | None) -> dict[str, Any]:
        """Skip what is playing (of ``kind``): cancelled and refunded as ``!skip`` does.
        With ``item_id``, only if that item is still the one playing (a click on a row the
        operator saw must not skip the next item)."""
        control = self._services.queue
        for name in self._kinds(kind):
            current = next((item for item in control.running() if item.kind == name), None)
            if current is None or (item_id is not None and current.id != item_id):
                continue
            # (no await between the check and the skip: nothing else runs in between)
            skipped = control.skip(name, by=_actor(operator), reason=f"skipped by {operator}")
            if skipped is not None:
                title = payload_of(skipped.kind, skipped.payload).title or "item"
                await self._publish(
                    Notice("dashboard", f"{operator} skipped #{skipped.id} {title}")
                )
                return {"skipped": skipped.id, "message": f"skipping #{skipped.id} {title}"}
        if item_id is not None:
            raise BadArgument(f"#{item_id} is not playing any more")
        return {"skipped": None, "message": "nothing is playing"}

    async def pause(self, operator: str, kind: str | None) -> dict[str, Any]:
        kinds = self._kinds(kind)
        for name in kinds:
            await self._services.queue.pause(name, by=_actor(operator))
        await self._publish(Notice("dashboard", f"{operator} paused: {', '.join(kinds)}"))
        return {"paused": kinds, "message": f"paused: {', '.join(kinds)}"}

    async def resume(self, operator: str, kind: str | None) -> dict[str, Any]:
        kinds = self._kinds(kind)
        for name in kinds:
            await self._services.queue.resume(name, by=_actor(operator))
        await self._publish(Notice("dashboard", f"{operator} resumed: {', '.join(kinds)}"))
        return {"resumed": kinds, "message": f"resumed: {', '.join(kinds)}"}

    async def clear(self, operator: str, kind: str | None) -> dict[str, Any]:
        """Cancel and refund everything waiting (of ``kind``), as ``!clearqueue`` does."""
        kinds = self._kinds(kind)
        pending = [
            item for item in await self._services.queue_items.pending() if item.kind in kinds
        ]
        settled = await self._services.queue.cancel_pending(
            pending, reason="the queue was cleared by a moderator", by=_actor(operator)
        )
        refunded = sum(result.refunded for result in settled)
        message = f"cleared {len(settled)} item(s), refunded {self._points(refunded)}"
        await self._publish(Notice("dashboard", f"{operator} {message}"))
        return {"cleared": len(settled), "refunded": refunded, "message": message}

    # -- viewers --------------------------------------------------------------------------------

    async def search(self, text: str) -> dict[str, Any]:
        if len(text) > 100:
            raise BadArgument("search for at most 100 characters")
        return {"viewers": [_viewer(v) for v in await self.history.search(text)]}

    async def viewer(self, user_id: int, before: int | None, size: int = 20) -> dict[str, Any]:
        found = await self.history.viewer(user_id)
        if found is None:
            raise BadArgument(f"there is no viewer #{user_id}")
        page = await self.history.ledger(user_id, before=before, size=size)
        return {
            "viewer": _viewer(found),
            "ledger": [
                {**asdict(entry), "created_at": _when(entry.created_at)} for entry in page.entries
            ],
            "next_before": page.next_before,
        }

    async def adjust(
        self, operator: str, user_id: int, amount: int, reason: str, key: str
    ) -> dict[str, Any]:
        """Add (or, negative, remove) points with a reason, ledgered with the operator as
        the actor. ``key`` names this one request (made by the page), so a double click or a
        resent form pays once."""
        reason = " ".join(reason.split())
        if not reason:
            raise BadArgument("say why (the reason is kept in the ledger)")
        if len(reason) > REASON_MAX:
            raise BadArgument(f"the reason is too long ({len(reason)}/{REASON_MAX})")
        if abs(amount) > MAX_AMOUNT:  # (the same cap as !addpoints)
            raise BadArgument(f"at most {MAX_AMOUNT:,} points at once")
        if not _IDEMPOTENCY_KEY.match(key):
            raise BadArgument("the form is out of date: reload the page")
        found = await self.history.viewer(user_id)
        if found is None:
            raise BadArgument(f"there is no viewer #{user_id}")
        if not found.identities:  # a wallet joined into another by !link: adjust that one
            raise BadArgument(f"viewer #{user_id} was linked into another wallet; adjust that")
        # The form's key makes a double click pay once; with the wallet and the amount in the
        # ref, a key left over from another viewer's form cannot swallow this adjustment.
        ref = f"adjust:dashboard:{user_id}:{amount}:{key}"
        entry = await self._services.ledger.adjust(
            user_id, amount, actor=_actor(operator), reason=reason, ref=ref
        )
        verb = "gave" if amount > 0 else "took"
        where = "to" if amount > 0 else "from"
        message = (
            f"{verb} {self._points(abs(amount))} {where} {found.display_name} "
            f"(now {entry.balance:,}): {reason}"
        )
        if entry.duplicate:
            message = f"already done (a repeated click): {message}"
        if not entry.duplicate:
            await self._publish(Notice("dashboard", f"{operator} {message}"))
        return {"balance": entry.balance, "duplicate": entry.duplicate, "message": message}

    # -- redeems --------------------------------------------------------------------------------

    def redeems(self) -> dict[str, Any]:
        catalog, control = self._services.catalog, self._services.queue
        return {
            "redeems": [
                {
                    "key": key,
                    "title": redeem.title,
                    "cost": redeem.cost,
                    "action": redeem.action.type,
                    "enabled": catalog.is_enabled(key),
                    "unavailable": control.unavailable(redeem.action),
                }
                for key, redeem in catalog.redeems.items()
            ]
        }

    async def toggle(self, operator: str, key: str, enabled: bool) -> dict[str, Any]:
        catalog = self._services.catalog
        if key not in catalog.redeems:
            raise BadArgument(f"there is no redeem {key!r}")
        await catalog.set_enabled(key, enabled)
        message = f"{key} is now {'on' if enabled else 'off'}"
        await self._publish(Notice("dashboard", f"{operator} switched {message}"))
        return {"key": key, "enabled": enabled, "message": message}

    # -- events ---------------------------------------------------------------------------------

    async def events(self, limit: int = 50) -> dict[str, Any]:
        return {"events": [_event(entry) for entry in await self.history.events(limit=limit)]}

    # -- the system: db verify, backups, jobs ---------------------------------------------------

    async def run_verify(self) -> dict[str, Any]:
        async with self._verifying:
            report = await verify(self._db)
            self.last_verify = {**report.as_dict(), "checked_at": _when(self._clock.now())}
        return self.last_verify

    async def system(self) -> dict[str, Any]:
        return {
            "verify": self.last_verify,
            "backups": self._backups(),
            "jobs": await self._jobs(),
            "sqlite": self._db.is_sqlite,
        }

    def _backups(self) -> list[dict[str, Any]]:
        folder = Path(self._services.settings().backup.dir)
        return [
            {"name": found.path.name, "taken_at": _when(found.taken_at), "bytes": found.size}
            for found in reversed(list_backups(folder))
        ]

    async def _jobs(self) -> list[dict[str, Any]]:
        if self._scheduler is None:
            return []
        previous = await last_runs(self._db)
        upcoming = self._scheduler.next_runs()
        jobs = []
        for name, schedule in self._scheduler.schedules().items():
            last = previous.get(name)
            jobs.append(
                {
                    "name": name,
                    "what": JOBS[name].what if name in JOBS else "",
                    "enabled": schedule.enabled,
                    "schedule": describe_schedule(schedule.every, schedule.cron),
                    "next_run": _when(upcoming.get(name)),
                    "last_run": None
                    if last is None
                    else {
                        "started_at": _when(last.started_at),
                        "finished_at": _when(last.finished_at),
                        "outcome": last.outcome,
                        "figures": last.figures,
                        "error": last.error,
                    },
                }
            )
        return jobs

    async def backup_now(self, operator: str) -> dict[str, Any]:
        """A run of the ``backup`` job now (the same function as the nightly one, recorded
        in ``job_runs`` like it)."""
        if self._scheduler is None:
            raise BadArgument("the scheduler is not running")
        if self._backing_up.locked():
            raise BadArgument("a backup is being taken already")
        async with self._backing_up:
            ok = await self._scheduler.run("backup")
        last = (await last_runs(self._db)).get("backup")
        error = None if last is None else last.error
        message = "backup taken" if ok else f"the backup failed: {error}"
        await self._publish(Notice("dashboard", f"{operator}: {message}"))
        return {"ok": ok, "message": message, "backups": self._backups()}

    def _points(self, amount: int) -> str:
        currency = self._services.settings().bot.currency
        return f"{amount:,} {currency.singular if amount == 1 else currency.plural}"


def _item(item_id: int, kind: str, stored: dict[str, Any], cost: int | None) -> dict[str, Any]:
    payload = payload_of(kind, stored)
    return {
        "id": item_id,
        "kind": kind,
        "title": payload.title or kind,
        "viewer": payload.viewer_name,
        "text": payload.text,
        "cost": cost,
    }


def _viewer(found: ViewerEntry) -> dict[str, Any]:
    return {
        "id": found.user_id,
        "name": found.display_name,
        "points": found.points,
        "xp": found.xp,
        "level": found.level,
        "identities": [asdict(identity) for identity in found.identities],
    }


def _event(entry: EventEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "platform": entry.platform,
        "viewer": entry.viewer_name or entry.payload.get("login"),
        "text": describe_event(entry.kind, entry.payload),
        "at": _when(entry.created_at),
    }


def describe_event(kind: str, payload: dict[str, Any]) -> str:
    """One line about a logged event, from its stored payload (unknown shapes: key: value)."""
    get = payload.get
    signed = _signed(get("amount"))
    known: dict[str, Callable[[], str]] = {
        "follow": lambda: "followed",
        "sub": lambda: (
            "gifted a sub"
            if get("gifted")
            else f"subscribed (tier {get('tier')}, {get('months')} months)"
        ),
        "gift": lambda: f"gifted {get('count')} subs (tier {get('tier')})",
        "tip": lambda: f"tipped {get('amount')} {get('currency')}" + _said(get("message")),
        "cheer": lambda: f"cheered {get('bits')} bits" + _said(get("message")),
        "raid": lambda: f"raided with {get('viewers')} viewers",
        "redeem": lambda: f"redeemed {get('redeem')} for {get('cost')} (#{get('item')})",
        "grant": lambda: f"{signed} ({get('reason')})",
        "spend": lambda: f"{signed} ({get('reason')})",
        "adjust": lambda: f"{signed} adjusted: {get('reason')}",
        "refund": lambda: f"{signed} refunded ({get('reason')})",
        "transfer": lambda: f"gave {get('amount')} to wallet #{get('to')}",
        "payout": lambda: f"watch payout: {get('points')} points to {get('viewers')} viewers",
    }
    if kind in known:
        return known[kind]()
    if kind.startswith("queue_"):
        status = kind.removeprefix("queue_")
        line = f"#{get('item')} {get('kind')} {status}"
        if get("error"):
            line += f": {get('error')}"
        if get("refund"):
            line += f", refunded {get('refund')}"
        return line
    shown = {
        key: value
        for key, value in payload.items()
        if key not in ("login", "result") and value not in (None, "", [], {})
    }
    return ", ".join(f"{key}: {value}" for key, value in shown.items())


def _signed(amount: Any) -> str:
    return f"{amount:+,}" if isinstance(amount, int) else str(amount)


def _said(message: Any) -> str:
    return f": {message}" if message else ""


def describe_schedule(every: timedelta | None, cron: str | None) -> str | None:
    """``every 5 min``, ``every 1 h 30 min``, ``cron 0 3 * * *``."""
    if cron is not None:
        return f"cron {cron}"
    if every is None:
        return None
    seconds = int(every.total_seconds())
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return "every " + " ".join(parts or ["0 s"])
