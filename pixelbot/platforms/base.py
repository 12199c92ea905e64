"""What every platform adapter offers the bot. Adapters turn their platform's payloads into
``pixelbot.events`` and hand them to ``Bot.handle``; the bot answers through ``send``."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Platform"]


class Platform(Protocol):
    name: str
    # Where announcements about non-chat events (a follow, a raid) go.
    default_channel: str

    async def send(self, channel: str, text: str) -> None:
        """Say ``text`` in ``channel`` (already rate-limited by the bot)."""
        ...
