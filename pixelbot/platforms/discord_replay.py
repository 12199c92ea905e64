"""Record and replay raw Discord traffic.

Recording (``bot.py run --record FILE.jsonl``): every gateway dispatch the adapter acts on
(``GUILD_CREATE`` of its server, ``MESSAGE_CREATE``, ``INTERACTION_CREATE``,
``GUILD_MEMBER_UPDATE``, ``VOICE_STATE_UPDATE``) is appended to FILE as the op 0 frame Discord
sent (``{"op": 0, "t": ..., "s": ..., "d": ...}``), one a line. Values under a key naming a
credential are replaced by ``"[redacted]"``: an interaction's ``token`` lets anyone answer it
for 15 minutes.

Replay (``bot.py replay discord FILE.jsonl``): ``ReplayStream`` is a platform named "discord"
that feeds each frame through the live adapter's parser (``discord_events.parse_dispatch``)
into the bot; what the bot says prints as ``<bot name>: ...`` lines, like the console, and an
autocomplete prints the choices offered. The clock is simulated and follows the ids' creation
times (a Discord id carries its time; never backwards), so cooldowns behave as they did live.
A line that cannot be parsed is reported with its number and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pixelbot.clock import FakeClock
from pixelbot.domain.command_specs import CommandCatalog
from pixelbot.events import ChatMessage
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus
from pixelbot.platforms.discord_events import (
    HANDLED,
    PLATFORM,
    CompletionRequest,
    FrameError,
    GuildView,
    SlashCall,
    parse_dispatch,
    snowflake_time,
)

__all__ = ["RECORDED", "Recorder", "ReplayStream", "redact"]

RECORDED = HANDLED | {"GUILD_CREATE"}
_SECRET_WORDS = ("token", "secret", "password", "authorization")


def redact(value: Any) -> Any:
    """``value`` with everything under a key that names a credential replaced."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if any(w in k.lower() for w in _SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class Recorder:
    """Appends dispatch frames to a JSONL file (while open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, kind: str, sequence: int | None, data: Any) -> None:
        if self._file is None or kind not in RECORDED:
            return
        frame = {"op": 0, "t": kind, "s": sequence, "d": redact(data)}
        self._file.write(json.dumps(frame, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _frame_time(kind: str, data: Any) -> datetime | None:
    """When a frame happened, where its payload says (the message's or interaction's id)."""
    if kind in ("MESSAGE_CREATE", "INTERACTION_CREATE") and isinstance(data, dict):
        try:
            return snowflake_time(str(data["id"]))
        except (KeyError, ValueError):
            return None
    return None


class ReplayStream:
    """A stand-in for the Discord adapter that plays a recorded file into the bot."""

    name = PLATFORM

    def __init__(
        self,
        clock: FakeClock,
        out: Callable[[str], None],
        *,
        bot_name: str,
        view: GuildView,
    ) -> None:
        self._clock = clock
        self.out = out
        self.bot_name = bot_name
        self.view = view
        self.default_channel = next(iter(sorted(view.channels)), "")
        self.capabilities = Capabilities(
            max_message_length=2000,
            mention_style="user_id_tag",
            messages_per_window=10_000,
        )
        self._sink: EventSink | None = None
        self._catalog: CommandCatalog | None = None
        self.drain: Callable[[], Awaitable[None]] | None = None
        self.skipped = 0

    def use_commands(self, catalog: CommandCatalog) -> None:
        self._catalog = catalog

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        await self.commands_changed()

    async def commands_changed(self) -> None:
        if self._catalog is not None:
            self.view.commands = {spec.name: spec for spec in self._catalog.specs()}

    async def stop(self) -> None:
        return None

    async def send(self, channel: str, text: str) -> None:
        self.out(f"{self.bot_name}: {text}")

    async def reply(self, to: ChatMessage, text: str) -> None:
        await self.send(to.channel, text)

    def status(self) -> PlatformStatus:
        return PlatformStatus(self._sink is not None)

    async def play(self, lines: Iterable[str]) -> None:
        """Feed every dispatch, in order; the queues finish after each one."""
        assert self._sink is not None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
                if not isinstance(frame, dict):
                    raise FrameError("not a JSON object")
                if frame.get("op") != 0:
                    continue  # Hello, heartbeat ACKs and the like: nothing to act on
                kind = str(frame.get("t") or "")
                data = frame.get("d")
                self._follow_clock(_frame_time(kind, data))
                parsed = parse_dispatch(kind, data, self.view, self._clock.now())
            except (ValueError, FrameError) as exc:
                self.skipped += 1
                self.out(f"[replay] line {number} skipped: {exc}")
                continue
            if parsed is None:
                continue
            if isinstance(parsed, CompletionRequest):
                self.out(f"[discord] /{parsed.command} {parsed.option}: {self._choices(parsed)}")
                continue
            await self._sink(parsed.message if isinstance(parsed, SlashCall) else parsed)
            if self.drain is not None:
                await self.drain()

    def _choices(self, request: CompletionRequest) -> list[str]:
        spec = self.view.commands.get(request.command)
        param = next((p for p in spec.params if p.name == request.option), None) if spec else None
        if param is None or self._catalog is None:
            return []
        return self._catalog.choices(param.kind, request.typed)

    def _follow_clock(self, at: datetime | None) -> None:
        if at is not None and at > self._clock.now():
            self._clock.advance(at - self._clock.now())
