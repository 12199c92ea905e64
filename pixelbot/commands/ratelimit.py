"""Outgoing replies per channel are limited, so a flood of commands cannot make the bot spam
(or get it rate-limited by the platform)."""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta

from pixelbot.clock import Clock

__all__ = ["ReplyLimiter"]


class ReplyLimiter:
    """At most ``messages`` replies per channel in any sliding window of ``per``."""

    def __init__(self, clock: Clock, messages: int, per: timedelta) -> None:
        self._clock = clock
        self.messages = messages
        self.per = per
        self._sent: dict[str, deque[datetime]] = defaultdict(deque)
        self.dropped = 0

    def allow(self, channel: str) -> bool:
        """Record a reply about to be sent; False (and not recorded) if over the limit."""
        now = self._clock.now()
        sent = self._sent[channel]
        while sent and now - sent[0] >= self.per:
            sent.popleft()
        if len(sent) >= self.messages:
            self.dropped += 1
            return False
        sent.append(now)
        return True
