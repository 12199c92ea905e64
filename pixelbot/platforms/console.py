"""The console stream: a local stand-in for a live chat, for trying Pixel Bot without accounts.

Type ``alice: hello`` to chat as alice. The console has no user ids of its own, so a name is
the identity here (on real platforms it never is).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from typing import TextIO

from pixelbot.app import Engine
from pixelbot.config import Config
from pixelbot.events import ChatMessage, Viewer

__all__ = ["parse_chat_line", "run_console"]

PLATFORM = "console"


def console_viewer(name: str) -> Viewer:
    login = name.strip().lower()
    return Viewer(PLATFORM, login, login, name.strip())


def parse_chat_line(line: str) -> tuple[str, str] | None:
    """``"alice: hello"`` -> ``("alice", "hello")``; None when the line is not chat."""
    name, sep, text = line.partition(":")
    if not sep or not name.strip() or " " in name.strip() or not text.strip():
        return None
    return name.strip(), text.strip()


async def run_console(
    config: Config,
    stdin: TextIO | None = None,
    say: Callable[[str], None] = print,
) -> None:
    source = stdin or sys.stdin
    bot = config.bot.name
    async with Engine.open(config) as engine:
        say(f"{bot}: Hi! Type 'alice: hello' to chat as alice. /quit (or Ctrl-D) ends.")
        while True:
            line = await asyncio.to_thread(source.readline)
            if not line or line.strip() == "/quit":
                break
            parsed = parse_chat_line(line)
            if parsed is None:
                if line.strip():
                    say(f"{bot}: I did not understand that. Try 'alice: hello'.")
                continue
            name, text = parsed
            event = ChatMessage(
                id=uuid.uuid4().hex,
                platform=PLATFORM,
                occurred_at=engine.clock.now(),
                viewer=console_viewer(name),
                text=text,
            )
            earned = await engine.earning.handle(event)
            if earned.level_up is not None:
                say(f"{bot}: {name} reached level {earned.level_up.new_level}!")
        say(f"{bot}: Bye!")
