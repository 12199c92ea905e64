"""Earning maths: how many points and XP an event is worth. Pure, no I/O.

Fractional results round down: a viewer is never paid a point the rule did not earn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_FLOOR, Decimal

__all__ = [
    "MAX_AWARD",
    "cheer_award",
    "clamp_to_limit",
    "per_unit",
    "raid_award",
    "sub_award",
    "watch_award",
]


def sub_award(points: int, tier: int, tiers: dict[int, float]) -> int:
    """A subscription's points: the base amount times the tier's multiplier (1.0 if unknown)."""
    return per_unit(points, tiers.get(tier, 1.0))


MAX_AWARD = 10**12  # no platform payload, however odd, pays more than this in one go


def per_unit(amount: Decimal | int, rate: float) -> int:
    """``amount * rate`` rounded down, computed in decimal so 0.1 + 0.2 stays exact."""
    value = Decimal(amount) * Decimal(str(rate))
    if not value.is_finite() or value <= 0:
        return 0
    capped = value if value < MAX_AWARD else Decimal(MAX_AWARD)
    return int(capped.to_integral_value(rounding=ROUND_FLOOR))


def cheer_award(bits: int, per_100_bits: int) -> int:
    return min(max(0, bits) * per_100_bits // 100, MAX_AWARD)


def raid_award(viewers: int, per_viewer: float, max_points: int | None) -> int:
    award = per_unit(max(0, viewers), per_viewer)
    return award if max_points is None else min(award, max_points)


def clamp_to_limit(balance: int, amount: int, limit: int | None) -> int:
    """How much of ``amount`` fits under ``limit`` (earnings stop at the cap, not fail)."""
    if limit is None:
        return amount
    return max(0, min(amount, limit - balance))


def watch_award(
    points: int, xp: int, roles: Iterable[str], multipliers: Mapping[str, float]
) -> tuple[int, int]:
    """One viewer's watch-time award: the base times the highest multiplier of their roles
    (1.0 when none applies)."""
    factor = max((multipliers[role] for role in roles if role in multipliers), default=1.0)
    return min(MAX_AWARD, int(points * factor)), min(MAX_AWARD, int(xp * factor))
