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
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pixelbot.clock import FakeClock
from pixelbot.domain.command_specs import CommandCatalog
from pixelbot.platforms.base import Capabilities, EventSink
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
from pixelbot.platforms.recording import FrameLog, ReplayPlatform

__all__ = ["RECORDED", "Recorder", "ReplayStream"]

RECORDED = HANDLED | {"GUILD_CREATE"}


class Recorder:
    """Appends dispatch frames to a JSONL file (while open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log = FrameLog(path)

    def open(self) -> None:
        self._log.open()

    def write(self, kind: str, sequence: int | None, data: Any) -> None:
        if kind in RECORDED:
            self._log.write({"op": 0, "t": kind, "s": sequence, "d": data})

    def close(self) -> None:
        self._log.close()


def _frame_time(kind: str, data: Any) -> datetime | None:
    """When a frame happened, where its payload says (the message's or interaction's id)."""
    if kind in ("MESSAGE_CREATE", "INTERACTION_CREATE") and isinstance(data, dict):
        try:
            return snowflake_time(str(data["id"]))
        except (KeyError, ValueError):
            return None
    return None


class ReplayStream(ReplayPlatform):
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
        super().__init__(
            clock,
            out,
            bot_name=bot_name,
            default_channel=next(iter(sorted(view.channels)), ""),
            capabilities=Capabilities(
                max_message_length=2000,
                mention_style="user_id_tag",
                messages_per_window=10_000,
            ),
        )
        self.view = view
        self._catalog: CommandCatalog | None = None

    def use_commands(self, catalog: CommandCatalog) -> None:
        self._catalog = catalog

    async def start(self, sink: EventSink) -> None:
        await super().start(sink)
        await self.commands_changed()

    async def commands_changed(self) -> None:
        if self._catalog is not None:
            self.view.commands = {spec.name: spec for spec in self._catalog.specs()}

    async def play(self, lines: Iterable[str]) -> None:
        """Feed every dispatch, in order; the queues finish after each one."""
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
                self.follow_clock(_frame_time(kind, data))
                parsed = parse_dispatch(kind, data, self.view, self._clock.now())
            except (ValueError, FrameError) as exc:
                self.skip(number, exc)
                continue
            if parsed is None:
                continue
            if isinstance(parsed, CompletionRequest):
                self.out(f"[discord] /{parsed.command} {parsed.option}: {self._choices(parsed)}")
                continue
            await self.feed(parsed.message if isinstance(parsed, SlashCall) else parsed)

    def _choices(self, request: CompletionRequest) -> list[str]:
        spec = self.view.commands.get(request.command)
        param = next((p for p in spec.params if p.name == request.option), None) if spec else None
        if param is None or self._catalog is None:
            return []
        return self._catalog.choices(param.kind, request.typed)
