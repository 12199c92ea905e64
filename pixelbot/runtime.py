"""The running bot: events in from platforms, earnings and commands, replies out.

One ``Bot`` serves every platform adapter. For each event it runs the earning rules (which
also write the event log), announces level-ups, and for chat lines that start with the prefix,
dispatches the command. Cogs are loaded by name from ``config.yaml``; a cog that fails to load
is reported and the others still start. ``reload()`` re-reads the configuration and keeps the
running one if the file is broken.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from pixelbot.app import Engine
from pixelbot.commands.context import Context
from pixelbot.commands.core import Cog
from pixelbot.commands.dispatcher import CommandRouter
from pixelbot.commands.names import declared_command_names
from pixelbot.commands.ratelimit import ReplyLimiter
from pixelbot.config import Config, load_config
from pixelbot.config.effects import OBS_STEPS
from pixelbot.config.redeems import Action
from pixelbot.economy.batch import LevelUp
from pixelbot.economy.earning import Earned
from pixelbot.economy.queue import Recovered
from pixelbot.economy.redeems import queue_kind
from pixelbot.errors import ConfigError, DatabaseError, PixelbotError
from pixelbot.events import (
    ChatMessage,
    Cheer,
    Event,
    Follow,
    GiftedSubs,
    MessageDeleted,
    Raid,
    Subscription,
    Tip,
    ViewerBanned,
)
from pixelbot.platforms.base import Platform
from pixelbot.queue.announce import announce
from pixelbot.queue.runner import Outcome, QueueRunner
from pixelbot.queue.worker import Worker

__all__ = ["Bot"]

log = logging.getLogger(__name__)

DEFAULT_LEVEL_MESSAGE = "{user} reached level {level}!"
THANKED = (Follow, Subscription, GiftedSubs, Tip, Cheer, Raid)


class Bot:
    def __init__(self, engine: Engine, config_path: Path | None = None) -> None:
        self.engine = engine
        self.config: Config = engine.config
        self.config_path = config_path
        self.router = CommandRouter()
        self.cogs: dict[str, Cog] = {}
        self.cog_errors: dict[str, str] = {}
        self.platforms: list[Platform] = []
        self.queue: QueueRunner | None = None
        self.obs_connected = False  # set when the queue starts
        reply_rate = self.config.commands.reply_rate
        self.limiter = ReplyLimiter(engine.clock, reply_rate.messages, reply_rate.per)

    # -- set-up -----------------------------------------------------------------------------

    async def load_cogs(self) -> dict[str, str]:
        """(Re)load the configured cogs. Returns {cog name: problem} for those that failed
        to load or lost a command to a name clash; the others run regardless."""
        self.router.clear()
        self.cogs.clear()
        self.cog_errors = {}
        for name in self.config.commands.cogs:
            try:
                cog = _cog_class(name)(self)
                skipped = []
                for command in cog.commands():
                    if any(self.router.get(alias) for alias in command.names):
                        skipped.append(command.name)  # e.g. a redeem named like a command
                        continue
                    self.router.add(command)
                await cog.on_load()
            except Exception as exc:  # one broken cog must not stop the others
                log.warning(
                    "cog %s failed to load: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG)
                )
                self.cog_errors[name] = f"did not load: {type(exc).__name__}: {exc}"
                self._drop_commands_of(name)
                continue
            self.cogs[name] = cog
            if skipped:
                taken = ", ".join(f"{self.config.bot.prefix}{n}" for n in skipped)
                self.cog_errors[name] = f"loaded without {taken} (the name is taken)"
        return self.cog_errors

    def _drop_commands_of(self, cog_name: str) -> None:
        survivors = [c for c in self.router.all() if c.cog is not None and c.cog.name != cog_name]
        self.router.clear()
        for command in survivors:
            self.router.add(command)

    async def reload(self) -> list[str]:
        """Re-read config.yaml. Returns its errors (and changes nothing) if it is broken."""
        if self.config_path is None:
            return ["this bot was not started from a config file"]
        try:
            config = load_config(self.config_path, command_names=declared_command_names)
        except ConfigError as exc:
            return [str(issue) for issue in exc.issues]
        try:
            self.engine.apply_config(config)  # builds the new policy first; may refuse
        except Exception as exc:
            log.exception("reloaded config could not be applied")
            return [f"the new configuration could not be applied: {exc}"]
        self.config = config
        rate = config.commands.reply_rate
        self.limiter.messages, self.limiter.per = rate.messages, rate.per
        await self.engine.catalog.load()
        errors = await self.load_cogs()
        return [f"cog {name} {error}" for name, error in errors.items()]

    async def start_queue(
        self, workers: dict[str, Worker], *, only_while_draining: bool = False
    ) -> Recovered:
        """Start one queue loop per worker. Returns what was recovered from a crash."""
        # Whether OBS can be used is decided by the client the effect worker got at start
        # (a reload that switches OBS on needs a restart to connect).
        self.obs_connected = self.config.obs.enabled
        settings = self.config.queue
        self.queue = QueueRunner(
            self.engine.queue,
            workers,
            timeouts={
                kind: getattr(settings.timeouts, kind).total_seconds()
                for kind in workers
                if hasattr(settings.timeouts, kind)
            },
            report=self._report_outcome,
            say_for=self._say_for,
            retry_on_restart=settings.on_restart == "retry",
            only_while_draining=only_while_draining,
        )
        return await self.queue.start()

    def redeem_unavailable(self, action: Action) -> str | None:
        """Why a redeem with this action cannot be performed now (it is refused before
        anyone is charged), or None."""
        kind = queue_kind(action.type)
        if kind == "ai":
            return "AI replies are not set up yet"
        if (
            kind == "effect"
            and not self.obs_connected
            and any(step.do in OBS_STEPS for step in self.config.effect_steps(action))
        ):
            return "it needs OBS, and OBS is not enabled"
        if self.queue is not None and kind not in self.queue.workers:
            return f"nothing performs {kind} items here"
        return None

    async def stop_queue(self) -> None:
        if self.queue is not None:
            await self.queue.stop()

    # -- events in, replies out -------------------------------------------------------------

    async def handle(self, event: Event, platform: Platform) -> Earned:
        """Everything that happens for one incoming event."""
        try:
            earned = await self.engine.earning.handle(event)
        except DatabaseError:
            if not isinstance(event, ChatMessage):
                raise
            # Nothing was paid (the operator hears the cause once, from db/faults.py); a
            # command on this line still gets its answer, if only "can't save right now".
            earned = Earned(event.ref, skipped="unsaved")
        if earned.skipped in ("duplicate", "ignored"):  # a redelivery, or another bot
            return earned
        channel = event.channel if isinstance(event, ChatMessage) else platform.default_channel
        if earned.points > 0 and isinstance(event, THANKED):
            await self.send(platform, channel, self._thanks(event, earned))
        if earned.level_up is not None:
            await self._announce_level_up(earned.level_up, platform, channel)
        if isinstance(event, MessageDeleted | ViewerBanned):
            await self._cancel_tts_of(event)
        if isinstance(event, ChatMessage):
            prefix = self.config.bot.prefix
            if event.text.startswith(prefix) and len(event.text) > len(prefix):
                ctx = Context(self, platform, event, "")
                await self.router.dispatch(ctx, event.text[len(prefix) :])
        return earned

    async def send(self, platform: Platform, channel: str, text: str) -> None:
        if not self.limiter.allow(f"{platform.name}:{channel}"):
            log.info("reply dropped (rate limit) in %s:%s: %s", platform.name, channel, text)
            return
        try:
            await platform.send(channel, text)
        except Exception:
            log.exception("could not send a reply on %s", platform.name)

    def _thanks(self, event: Event, earned: Earned) -> str:
        who = event.actor.display_name if event.actor else "someone"
        currency = self.config.bot.currency
        noun = currency.singular if earned.points == 1 else currency.plural
        what = {
            "follow": "the follow",
            "sub": "the sub",
            "gift": "the gifted subs",
            "tip": "the tip",
            "cheer": "the bits",
            "raid": "the raid",
        }[event.kind]
        return f"Thanks for {what}, {who}! +{earned.points:,} {noun}"

    def notice(self, kind: str, text: str) -> None:
        """A queue or worker outcome, for the operator (the console prints ``[kind] text``)."""
        log.info("[%s] %s", kind, text)
        for platform in self.platforms:
            show = getattr(platform, "notice", None)
            if show is not None:
                show(kind, text)

    async def _announce_level_up(self, level_up: LevelUp, platform: Platform, channel: str) -> None:
        messages = {level: message for level, _points, message in level_up.rewards if message}
        template = messages.get(level_up.new_level, DEFAULT_LEVEL_MESSAGE)
        values = {"user": level_up.display_name, "level": level_up.new_level}
        try:
            text = template.format(**values)
        except (KeyError, IndexError, ValueError):  # validated at load; never lose the line
            text = DEFAULT_LEVEL_MESSAGE.format(**values)
        await self.send(platform, channel, text)

    # -- the queue's outcomes and moderation --------------------------------------------------

    def _platform_and_channel(self, payload: dict[str, object]) -> tuple[Platform, str] | None:
        viewer = payload.get("viewer")
        wanted = viewer.get("platform") if isinstance(viewer, dict) else None
        for platform in self.platforms:
            if wanted is None or platform.name == wanted:
                channel = payload.get("channel")
                return platform, str(channel) if channel else platform.default_channel
        return None

    def _say_for(self, payload: dict[str, object]) -> Callable[[str], Awaitable[None]]:
        async def say(text: str) -> None:
            where = self._platform_and_channel(payload)
            if where is not None:
                await self.send(where[0], where[1], text)

        return say

    async def _report_outcome(self, outcome: Outcome) -> None:
        words = announce(outcome, self.config.bot.currency)
        if words is None:
            return
        self.notice(outcome.kind, words.notice)
        where = self._platform_and_channel(outcome.payload)
        if where is None:
            return
        for line in words.chat:
            await self.send(where[0], where[1], line)
        if outcome.settled.level_up is not None:
            await self._announce_level_up(outcome.settled.level_up, *where)

    async def _cancel_tts_of(self, event: MessageDeleted | ViewerBanned) -> None:
        """A deleted message's TTS, or a banned viewer's, is not spoken: cancel and refund."""
        if self.queue is None:
            return
        if isinstance(event, MessageDeleted):
            pending = [
                item
                for item in await self.engine.queue.pending("tts")
                if item.payload.get("message") == event.message_id
            ]
            reason = "the message was deleted"
            for item in self.queue.running():  # being spoken right now: stop it
                if item.kind == "tts" and item.payload.get("message") == event.message_id:
                    self.queue.skip("tts", reason=reason)
        else:
            try:
                user_id = await self.engine.wallets.find_identity(event.viewer)
            except PixelbotError:
                return  # never seen: nothing of theirs can be queued
            pending = await self.engine.queue.pending("tts", user_id=user_id)
            reason = "timed out by a moderator" if event.duration else "banned by a moderator"
            running = [item for item in self.queue.running() if item.kind == "tts"]
            if any(item.user_id == user_id for item in running):
                self.queue.skip("tts", reason=reason)
        await self.queue.cancel_pending(pending, reason=reason)


def _cog_class(name: str) -> type[Cog]:
    """``points`` -> the Cog subclass defined in ``cogs/points.py``."""
    module = importlib.import_module(f"cogs.{name}")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Cog)
        and value is not Cog
        and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise LookupError(f"cogs/{name}.py must define exactly one Cog (found {len(found)})")
    return found[0]
