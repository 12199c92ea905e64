"""XP curves and earning maths: the pure arithmetic behind levels and awards."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelbot.domain.earning import cheer_award, clamp_to_limit, per_unit, raid_award, sub_award
from pixelbot.domain.xp import XpCurve

POWER = XpCurve()  # the original Pixel Bot: base 100, exponent 1.8, from level 1
MEE6 = XpCurve(kind="mee6")  # 5 L^2 + 50 L + 100, from level 0

# Small tables for property tests: every level of the curve is reachable in a few draws.
SMALL_CURVES = {
    "power": XpCurve(max_level=60),
    "power-steep": XpCurve(base=7, exponent=2.5, max_level=60),
    "mee6": XpCurve(kind="mee6", max_level=60),
}


# ------------------------------------------------------------------------------ power curve


@pytest.mark.parametrize(("level", "xp"), [(1, 100), (2, 348), (3, 722), (4, 1213)])
def test_power_xp_to_next_level(level: int, xp: int) -> None:
    assert POWER.xp_to_next(level) == xp


def test_power_level_two_to_three_is_the_rounded_power() -> None:
    assert POWER.xp_to_next(2) == round(100 * 2**1.8) == 348


@pytest.mark.parametrize(("level", "total"), [(1, 0), (2, 100), (3, 448), (4, 1170)])
def test_power_total_xp_for_level(level: int, total: int) -> None:
    assert POWER.total_xp_for(level) == total


@pytest.mark.parametrize(
    ("total_xp", "level"),
    [(0, 1), (1, 1), (99, 1), (100, 2), (447, 2), (448, 3), (1169, 3), (1170, 4)],
)
def test_power_level_for_total_xp(total_xp: int, level: int) -> None:
    assert POWER.level_for(total_xp) == level


def test_power_curve_follows_its_settings() -> None:
    curve = XpCurve(base=50, exponent=2.0)
    assert [curve.xp_to_next(level) for level in (1, 2, 3)] == [50, 200, 450]
    assert curve.total_xp_for(4) == 700
    assert curve.level_for(699) == 3
    assert curve.level_for(700) == 4


# ------------------------------------------------------------------------------- mee6 curve


@pytest.mark.parametrize(("level", "xp"), [(0, 100), (1, 155), (2, 220), (10, 1100)])
def test_mee6_xp_to_next_level(level: int, xp: int) -> None:
    assert MEE6.xp_to_next(level) == xp


@pytest.mark.parametrize(("level", "total"), [(0, 0), (1, 100), (2, 255), (3, 475)])
def test_mee6_total_xp_for_level(level: int, total: int) -> None:
    assert MEE6.total_xp_for(level) == total


@pytest.mark.parametrize(("total_xp", "level"), [(0, 0), (99, 0), (100, 1), (254, 1), (255, 2)])
def test_mee6_level_for_total_xp(total_xp: int, level: int) -> None:
    assert MEE6.level_for(total_xp) == level


# --------------------------------------------------------------------- start levels and caps


def test_start_levels() -> None:
    assert POWER.start_level == 1
    assert MEE6.start_level == 0


@pytest.mark.parametrize("curve", [POWER, MEE6], ids=["power", "mee6"])
def test_no_xp_and_negative_xp_stand_at_the_start_level(curve: XpCurve) -> None:
    assert curve.level_for(0) == curve.start_level
    assert curve.level_for(-50) == curve.start_level
    assert curve.total_xp_for(curve.start_level) == 0
    assert curve.total_xp_for(curve.start_level - 1) == 0


@pytest.mark.parametrize("kind", ["power", "mee6"])
def test_max_level_caps_level_and_total(kind: str) -> None:
    curve = XpCurve(kind=kind, max_level=5)  # type: ignore[arg-type]
    assert curve.level_for(10**15) == 5
    assert curve.level_for(curve.total_xp_for(5)) == 5
    assert curve.level_for(curve.total_xp_for(5) - 1) == 4
    assert curve.total_xp_for(9) == curve.total_xp_for(5)


def test_default_max_level_is_reachable() -> None:
    assert POWER.max_level == 9999
    assert POWER.level_for(POWER.total_xp_for(9999)) == 9999
    assert POWER.level_for(POWER.total_xp_for(9999) * 2) == 9999


# --------------------------------------------------------------------------------- properties


@given(
    name=st.sampled_from(sorted(SMALL_CURVES)),
    a=st.integers(min_value=-1000, max_value=10**7),
    b=st.integers(min_value=-1000, max_value=10**7),
)
def test_level_for_is_monotonic(name: str, a: int, b: int) -> None:
    curve = SMALL_CURVES[name]
    low, high = sorted((a, b))
    assert curve.level_for(low) <= curve.level_for(high)


@given(name=st.sampled_from(sorted(SMALL_CURVES)), data=st.data())
def test_level_threshold_is_exact(name: str, data: st.DataObject) -> None:
    curve = SMALL_CURVES[name]
    level = data.draw(st.integers(min_value=curve.start_level + 1, max_value=curve.max_level))
    threshold = curve.total_xp_for(level)
    assert curve.level_for(threshold) == level
    assert curve.level_for(threshold - 1) == level - 1
    assert threshold - curve.total_xp_for(level - 1) == curve.xp_to_next(level - 1)


@given(name=st.sampled_from(sorted(SMALL_CURVES)), total=st.integers(min_value=0, max_value=10**7))
def test_level_for_stays_within_bounds(name: str, total: int) -> None:
    curve = SMALL_CURVES[name]
    level = curve.level_for(total)
    assert curve.start_level <= level <= curve.max_level
    assert curve.total_xp_for(level) <= total


# -------------------------------------------------------------------------- earning maths

TIERS = {1: 1.0, 2: 2.0, 3: 5.0}


@pytest.mark.parametrize(("tier", "points"), [(1, 200), (2, 400), (3, 1000), (4, 200)])
def test_sub_award_multiplies_by_tier(tier: int, points: int) -> None:
    assert sub_award(200, tier, TIERS) == points


def test_sub_award_rounds_down() -> None:
    assert sub_award(5, 1, {1: 1.5}) == 7
    assert sub_award(3, 2, {2: 0.5}) == 1


def test_sub_award_tier_multiplier_is_decimal_exact() -> None:
    assert sub_award(100, 2, {2: 1.15}) == 115
    assert sub_award(100, 1, {1: 0.29}) == 29


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (Decimal("4.99"), 1.0, 4),
        (Decimal("10.00"), 0.1, 1),
        (Decimal("9.99"), 0.1, 0),
        (Decimal("0.30"), 0.1, 0),  # 0.03 rounds down to nothing
        (Decimal("0.30"), 10, 3),  # 0.1 + 0.2 style float error must not cost a point
        (100, 0.29, 29),  # in float, 100 * 0.29 = 28.999999999999996
        (Decimal("3"), 0.1, 0),
        (0, 1.0, 0),
        (Decimal("-5"), 1.0, 0),  # a chargeback never pays negative points
    ],
)
def test_per_unit_rounds_down_in_decimal(amount: Decimal | int, rate: float, expected: int) -> None:
    assert per_unit(amount, rate) == expected


@pytest.mark.parametrize(
    ("bits", "per_100", "expected"),
    [(100, 100, 100), (250, 100, 250), (99, 10, 9), (1, 100, 1), (150, 10, 15), (-100, 100, 0)],
)
def test_cheer_award_per_hundred_bits(bits: int, per_100: int, expected: int) -> None:
    assert cheer_award(bits, per_100) == expected


@pytest.mark.parametrize(
    ("viewers", "per_viewer", "cap", "expected"),
    [
        (37, 1.0, None, 37),
        (10, 2.5, None, 25),
        (3, 0.5, None, 1),
        (500, 1.0, 100, 100),
        (50, 1.0, 100, 50),
        (-3, 1.0, None, 0),
        (500, 1.0, 0, 0),
    ],
)
def test_raid_award_per_viewer_with_cap(
    viewers: int, per_viewer: float, cap: int | None, expected: int
) -> None:
    assert raid_award(viewers, per_viewer, cap) == expected


@pytest.mark.parametrize(
    ("balance", "amount", "limit", "expected"),
    [
        (0, 5, None, 5),
        (10, 5, 1000, 5),
        (900, 200, 1000, 100),
        (1000, 5, 1000, 0),
        (1200, 5, 1000, 0),  # already above the cap (a refund may do that): earns nothing
    ],
)
def test_clamp_to_limit(balance: int, amount: int, limit: int | None, expected: int) -> None:
    assert clamp_to_limit(balance, amount, limit) == expected
