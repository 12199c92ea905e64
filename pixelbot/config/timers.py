"""Config for ``timers:``: chat lines the bot says on an interval.

Each timer speaks on every running platform's default channel once its ``every`` has passed
and at least ``min_chat_lines`` chat lines were seen there since it last spoke (so a quiet chat
is not flooded with the same line), and only while the stream is live unless ``offline: true``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import field_validator

from pixelbot.config.types import Count, Duration, Section, Text

__all__ = ["TimerSettings"]


class TimerSettings(Section):
    message: Text
    every: Duration
    min_chat_lines: Count = 0
    offline: bool = False  # also while the stream is offline
    enabled: bool = True

    @field_validator("every")
    @classmethod
    def _every_at_least_a_minute(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least 1m (timers are checked once a minute)")
        return value
