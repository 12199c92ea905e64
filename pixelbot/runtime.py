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
from pathlib import Path

from pixelbot.app import Engine
from pixelbot.commands.context import Context
from pixelbot.commands.core import Cog
from pixelbot.commands.dispatcher import CommandRouter
from pixelbot.commands.ratelimit import ReplyLimiter
from pixelbot.config import Config, load_config
from pixelbot.economy.earning import Earned
from pixelbot.errors import ConfigError
from pixelbot.events import ChatMessage, Cheer, Event, Follow, GiftedSubs, Raid, Subscription, Tip
from pixelbot.platforms.base import Platform

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
            config = load_config(self.config_path)
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

    # -- events in, replies out -------------------------------------------------------------

    async def handle(self, event: Event, platform: Platform) -> Earned:
        """Everything that happens for one incoming event."""
        earned = await self.engine.earning.handle(event)
        if earned.skipped in ("duplicate", "ignored"):  # a redelivery, or another bot
            return earned
        channel = event.channel if isinstance(event, ChatMessage) else platform.default_channel
        if earned.points > 0 and isinstance(event, THANKED):
            await self.send(platform, channel, self._thanks(event, earned))
        if earned.level_up is not None:
            await self._announce_level_up(earned, platform, channel)
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

    async def _announce_level_up(self, earned: Earned, platform: Platform, channel: str) -> None:
        level_up = earned.level_up
        assert level_up is not None
        messages = {level: message for level, _points, message in level_up.rewards if message}
        template = messages.get(level_up.new_level, DEFAULT_LEVEL_MESSAGE)
        values = {"user": level_up.display_name, "level": level_up.new_level}
        try:
            text = template.format(**values)
        except (KeyError, IndexError, ValueError):  # validated at load; never lose the line
            text = DEFAULT_LEVEL_MESSAGE.format(**values)
        await self.send(platform, channel, text)


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
