"""How long to wait before the next attempt to reach a platform that is down.

Exponential with a cap and "equal jitter" (half fixed, half random), so a restart of
Joystick's or Twitch's gateway is not met by every bot at the same instant. Hand-written on
purpose: it is one formula, and no retry library is among the dependencies (tenacity and
backoff wrap a *call*; here the loop also updates the adapter's status between attempts and
must stop the moment the bot stops). The randomness is injected so tests are exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0  # seconds before the second attempt (before jitter)
    cap: float = 60.0  # never wait longer than this
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after ``attempt`` failed attempts in a row (0: the first failed)."""
        ceiling = min(self.cap, self.first * 2.0 ** min(attempt, 30))
        return ceiling / 2 + self.rng.random() * ceiling / 2
