"""XP curves: how much XP each level takes. Pure arithmetic, no I/O.

``power``: XP from level L to L+1 is ``round(base * L ** exponent)``, starting at level 1 (the
original Pixel Bot: base 100, exponent 1.8). ``mee6``: ``5 L^2 + 50 L + 100``, starting at
level 0, as the MEE6 Discord bot does.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["XpCurve"]


@dataclass(frozen=True)
class XpCurve:
    kind: Literal["power", "mee6"] = "power"
    base: int = 100
    exponent: float = 1.8
    max_level: int = 9999
    _thresholds: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # thresholds[i] = total XP needed to stand at level (start_level + i)
        thresholds = [0]
        for level in range(self.start_level, self.max_level):
            thresholds.append(thresholds[-1] + self.xp_to_next(level))
        object.__setattr__(self, "_thresholds", thresholds)

    @property
    def start_level(self) -> int:
        return 0 if self.kind == "mee6" else 1

    def xp_to_next(self, level: int) -> int:
        """XP it takes to go from ``level`` to ``level + 1``."""
        if self.kind == "mee6":
            return 5 * level * level + 50 * level + 100
        need: float = self.base * float(level) ** self.exponent
        return max(1, round(need))

    def total_xp_for(self, level: int) -> int:
        """Total XP a viewer needs to have reached ``level``."""
        if level <= self.start_level:
            return 0
        return self._thresholds[min(level, self.max_level) - self.start_level]

    def level_for(self, total_xp: int) -> int:
        """The level a viewer with ``total_xp`` stands at (capped at ``max_level``)."""
        if total_xp <= 0:
            return self.start_level
        return self.start_level + bisect_right(self._thresholds, total_xp) - 1
