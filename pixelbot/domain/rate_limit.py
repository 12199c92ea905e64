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
        if self.room(channel) <= 0:
            self.dropped += 1
            return False
        self._sent[channel].append(self._clock.now())
        return True

    def room(self, channel: str) -> int:
        """How many replies may go out in ``channel`` right now."""
        now = self._clock.now()
        sent = self._sent[channel]
        while sent and now - sent[0] >= self.per:
            sent.popleft()
        if not sent:
            del self._sent[channel]  # (a key per client would otherwise stay forever)
            return self.messages
        return max(0, self.messages - len(sent))

    def retry_after(self, channel: str) -> float:
        """Seconds until the next reply may go out in ``channel`` (0 if one may now)."""
        if self.room(channel) > 0:
            return 0.0
        oldest = self._sent[channel][0]
        return max(0.0, (oldest + self.per - self._clock.now()).total_seconds())
