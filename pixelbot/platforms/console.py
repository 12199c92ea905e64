"""The console stream: a local stand-in for a live chat, for trying Pixel Bot without accounts
and for scripted, deterministic end-to-end runs.

The operator types ``alice: !points`` to speak as alice, and operator lines (``/follow bob``,
``/tick 60``...) to make things happen; ``/help`` lists them. Bot messages print as
``<bot name>: <text>``; ``ConsolePrinter`` prints queue and worker outcomes from the outcome
bus as ``[<kind>] <text>``.

It is a platform like any other: every line becomes a normalized event pushed into the sink
given to ``start`` (``/live`` is a ``StreamOnline``), and the bot answers through ``send``.

The console has no user ids of its own, so here a name is the identity (on real platforms it
never is). In scripted mode (``python bot.py console --script FILE``) the clock starts at a
fixed instant and moves only on ``/tick``.
"""

from __future__ import annotations

import logging
import shlex
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TypedDict

from pixelbot.clock import Clock, FakeClock
from pixelbot.domain.durations import parse_duration
from pixelbot.events import (
    ChatMessage,
    Cheer,
    Event,
    Follow,
    GiftedSubs,
    MessageDeleted,
    Presence,
    Raid,
    StreamOffline,
    StreamOnline,
    Subscription,
    Tip,
    Viewer,
    ViewerBanned,
)
from pixelbot.outcomes import ItemQueued, ItemSettled, Notice, Outcome, StreamChanged
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus

__all__ = ["CAPABILITIES", "OPERATOR_HELP", "ConsolePrinter", "ConsoleStream", "parse_chat_line"]

log = logging.getLogger(__name__)

PLATFORM = "console"
CHANNEL = "console"

OPERATOR_HELP = (
    "name: text (chat as name), /follow NAME, /sub NAME [months] [tier], /gift NAME COUNT, "
    "/tip NAME AMOUNT, /cheer NAME BITS, /raid NAME VIEWERS, /join NAME, /mod NAME, "
    "/vip NAME, /delete NAME (their last message), /ban NAME, /timeout NAME DURATION, "
    "/live, /offline, /tick SECONDS, /drain (wait for the queues), /help, /quit"
)


class _Meta(TypedDict):
    id: str
    platform: str
    occurred_at: datetime


# A terminal takes any length, mentions by name, and has nobody to be rate-limited by.
CAPABILITIES = Capabilities(
    max_message_length=100_000,
    mention_style="at_name",
    messages_per_window=1_000_000,
)


class OperatorError(ValueError):
    """An operator line the console cannot act on (reported, never fatal)."""


def parse_chat_line(line: str) -> tuple[str, str] | None:
    """``"alice: hello"`` -> ``("alice", "hello")``; None when the line is not chat."""
    name, sep, text = line.partition(":")
    name = name.strip()
    if not sep or not name or " " in name or name.startswith("/") or not text.strip():
        return None
    return name, text.strip()


@dataclass
class ConsoleStream:
    """The console as a platform adapter, on the same interface as Twitch or Discord.

    ``bot_name`` labels what the bot says; ``prefix`` is only for the greeting. ``drain``
    (set by whoever runs the console) lets ``/drain`` and scripted runs wait for the queues.
    """

    clock: Clock
    out: Callable[[str], None] = print
    bot_name: str = "Pixel"
    prefix: str = "!"
    name: str = PLATFORM
    default_channel: str = CHANNEL
    capabilities: Capabilities = CAPABILITIES
    roles: dict[str, set[str]] = field(default_factory=dict)
    stopped: bool = False
    # Scripted runs let the queues finish after every line, so a transcript is the same on
    # every run (outcomes print right after the line that caused them).
    drain_each_line: bool = False
    drain: Callable[[], Awaitable[None]] | None = None
    last_message: dict[str, str] = field(default_factory=dict)  # login -> id of their last line
    _sink: EventSink | None = None
    _last_event_at: datetime | None = None

    # -- Platform interface -------------------------------------------------------------------

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None
        self.stopped = True

    async def send(self, channel: str, text: str) -> None:
        self.out(f"{self.bot_name}: {text}")

    async def reply(self, to: ChatMessage, text: str) -> None:
        await self.send(to.channel, text)

    def status(self) -> PlatformStatus:
        return PlatformStatus(self._sink is not None, last_event_at=self._last_event_at)

    # -- input ----------------------------------------------------------------------------------

    def greeting(self) -> str:
        prefix = self.prefix
        return (
            f"Hi! This is the console stream. Chat as anyone: 'alice: hello', then "
            f"'alice: {prefix}points' or '{prefix}redeems'. Operator lines: /help. /quit ends."
        )

    async def run_lines(self, lines: Iterable[str]) -> None:
        """Feed lines one by one (a script, or the keyboard through ``read_lines``)."""
        for line in lines:
            await self.handle_line(line)
            if self.drain_each_line:
                await self.wait_for_queues()
            if self.stopped:
                return

    async def wait_for_queues(self) -> None:
        if self.drain is not None:
            await self.drain()

    async def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line or line.startswith("#"):
            return
        try:
            if line.startswith("/"):
                await self._operator(line)
                return
            parsed = parse_chat_line(line)
            if parsed is None:
                raise OperatorError("type 'name: message' to chat, or /help")
            name, text = parsed
            meta = self._meta()
            self.last_message[name.lower()] = meta["id"]
            await self.emit(
                ChatMessage(viewer=self.viewer(name), text=text, channel=CHANNEL, **meta)
            )
        except OperatorError as problem:
            self.out(f"[console] {problem}")
        except Exception as crash:  # one bad line must not end the stream
            log.exception("console line %r failed", line)
            self.out(f"[console] that line failed: {type(crash).__name__}: {crash}")

    def viewer(self, name: str) -> Viewer:
        login = name.lower()
        return Viewer(PLATFORM, login, login, name, frozenset(self.roles.get(login, ())))

    def _meta(self) -> _Meta:
        return {"id": uuid.uuid4().hex, "platform": PLATFORM, "occurred_at": self.clock.now()}

    async def emit(self, event: Event) -> object:
        """Push an event into the bot, as every line does (tests push their own, too)."""
        if self._sink is None:
            raise OperatorError("the console is not connected to the bot")
        self._last_event_at = event.occurred_at
        return await self._sink(event)

    def _grant_role(self, name: str, role: str) -> None:
        self.roles.setdefault(name.lower(), set()).add(role)

    async def _operator(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        verb, args = words[0].lower(), words[1:]
        handler = _OPERATORS.get(verb)
        if handler is None:
            raise OperatorError(f"unknown operator line {verb}; /help lists them")
        await handler(self, args)

    # -- operator lines -------------------------------------------------------------------------

    async def _follow(self, args: list[str]) -> None:
        (name,) = _args(args, "/follow NAME")
        self._grant_role(name, "follower")
        await self.emit(Follow(viewer=self.viewer(name), **self._meta()))

    async def _sub(self, args: list[str]) -> None:
        name, months, tier = _args(args, "/sub NAME [months] [tier]", optional=2)
        months_n, tier_n = _number(months or "1", "months"), _number(tier or "1", "tier")
        if tier_n not in (1, 2, 3):
            raise OperatorError("tier must be 1, 2 or 3")
        self._grant_role(name, "subscriber")
        await self.emit(
            Subscription(viewer=self.viewer(name), months=months_n, tier=tier_n, **self._meta())
        )

    async def _gift(self, args: list[str]) -> None:
        name, count = _args(args, "/gift NAME COUNT")
        await self.emit(
            GiftedSubs(gifter=self.viewer(name), count=_number(count, "count"), **self._meta())
        )

    async def _tip(self, args: list[str]) -> None:
        name, amount = _args(args, "/tip NAME AMOUNT")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise OperatorError(f"{amount!r} is not an amount") from None
        if not value.is_finite() or not 0 < value <= 1_000_000:
            raise OperatorError("a tip must be more than 0 and at most 1000000")
        await self.emit(Tip(viewer=self.viewer(name), amount=value, **self._meta()))

    async def _cheer(self, args: list[str]) -> None:
        name, bits = _args(args, "/cheer NAME BITS")
        await self.emit(Cheer(viewer=self.viewer(name), bits=_number(bits, "bits"), **self._meta()))

    async def _raid(self, args: list[str]) -> None:
        name, viewers = _args(args, "/raid NAME VIEWERS")
        await self.emit(
            Raid(viewer=self.viewer(name), viewers=_number(viewers, "viewers"), **self._meta())
        )

    async def _join(self, args: list[str]) -> None:
        (name,) = _args(args, "/join NAME")
        await self.emit(Presence(viewer=self.viewer(name), **self._meta()))

    async def _mod(self, args: list[str]) -> None:
        (name,) = _args(args, "/mod NAME")
        self._grant_role(name, "moderator")
        self.out(f"[console] {name} is a moderator")

    async def _vip(self, args: list[str]) -> None:
        (name,) = _args(args, "/vip NAME")
        self._grant_role(name, "vip")
        self.out(f"[console] {name} is a VIP")

    async def _live(self, args: list[str]) -> None:
        await self.emit(StreamOnline(channel=CHANNEL, **self._meta()))

    async def _offline(self, args: list[str]) -> None:
        await self.emit(StreamOffline(channel=CHANNEL, **self._meta()))

    async def _delete(self, args: list[str]) -> None:
        (name,) = _args(args, "/delete NAME")
        message_id = self.last_message.pop(name.lower(), None)
        if message_id is None:
            raise OperatorError(f"{name} has not said anything to delete")
        await self.emit(
            MessageDeleted(message_id=message_id, author=self.viewer(name), **self._meta())
        )
        self.out(f"[console] deleted {name}'s last message")

    async def _ban(self, args: list[str]) -> None:
        (name,) = _args(args, "/ban NAME")
        await self.emit(ViewerBanned(viewer=self.viewer(name), **self._meta()))
        self.out(f"[console] {name} is banned")

    async def _timeout(self, args: list[str]) -> None:
        name, length = _args(args, "/timeout NAME DURATION")
        try:
            duration = parse_duration(length)
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        await self.emit(ViewerBanned(viewer=self.viewer(name), duration=duration, **self._meta()))
        self.out(f"[console] {name} is timed out for {length}")

    async def _drain(self, args: list[str]) -> None:
        _args(args, "/drain")
        await self.wait_for_queues()

    async def _tick(self, args: list[str]) -> None:
        (seconds,) = _args(args, "/tick SECONDS")
        if not isinstance(self.clock, FakeClock):
            raise OperatorError("/tick only works in scripted mode (the clock is real here)")
        try:
            step = float(seconds)
        except ValueError:
            raise OperatorError(f"{seconds!r} is not a number of seconds") from None
        if not 0 <= step <= 10**8:
            raise OperatorError("/tick takes 0 or more seconds")
        self.clock.advance(step)

    async def _help(self, args: list[str]) -> None:
        self.out(f"[console] {OPERATOR_HELP}")

    async def _quit(self, args: list[str]) -> None:
        self.stopped = True


class ConsolePrinter:
    """Prints the bus's outcomes for the operator: ``[tts] #1 pending: ...``."""

    TYPES = (Notice, ItemQueued, ItemSettled, StreamChanged)

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out

    async def show(self, outcome: Outcome) -> None:
        match outcome:
            case Notice(kind, text):
                self.out(f"[{kind}] {text}")
            case ItemQueued():
                what = f": {outcome.text}" if outcome.text else ""
                self.out(
                    f"[{outcome.kind}] #{outcome.item_id} pending: {outcome.title} "
                    f"for {outcome.viewer_name}{what}"
                )
            case ItemSettled():
                self.out(f"[{outcome.kind}] {outcome.summary}")
            case StreamChanged(platform, _channel, live, changed):
                where = "console" if platform == PLATFORM else "stream"
                if live:
                    self.out(f"[{where}] the stream is live")
                elif changed:
                    self.out(f"[{where}] the stream is offline")
                else:
                    self.out(f"[{where}] it was not live")


_OPERATORS = {
    "/follow": ConsoleStream._follow,
    "/sub": ConsoleStream._sub,
    "/gift": ConsoleStream._gift,
    "/tip": ConsoleStream._tip,
    "/cheer": ConsoleStream._cheer,
    "/raid": ConsoleStream._raid,
    "/join": ConsoleStream._join,
    "/mod": ConsoleStream._mod,
    "/vip": ConsoleStream._vip,
    "/delete": ConsoleStream._delete,
    "/ban": ConsoleStream._ban,
    "/timeout": ConsoleStream._timeout,
    "/drain": ConsoleStream._drain,
    "/live": ConsoleStream._live,
    "/offline": ConsoleStream._offline,
    "/tick": ConsoleStream._tick,
    "/help": ConsoleStream._help,
    "/quit": ConsoleStream._quit,
}


def _args(args: list[str], usage: str, optional: int = 0) -> list[str]:
    needed = usage.count(" ") - usage.count("[")
    total = usage.count(" ")
    if not needed <= len(args) <= total:
        raise OperatorError(f"usage: {usage}")
    return args + [""] * (total - len(args)) if optional else args


def _number(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 10**6:
        raise OperatorError(f"{what} must be a whole number from 1 to 1000000")
    return int(text)
