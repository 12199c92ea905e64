"""The wheel's draw: weights decide the odds, the roll decides the prize, a seed replays it."""

import random

import pytest

from pixelbot.domain.wheel import draw

WEIGHTS = [30.0, 10.0, 15.0, 15.0, 10.0, 20.0]
SPINS = 100_000
# With 5 degrees of freedom, chi-square exceeds 20.52 by chance once in a thousand runs.
CHI_SQUARE_LIMIT = 20.52
# And each prize's share stays within 1 percentage point of its chance (about 7 standard
# deviations at 100,000 spins for the widest slice).
SHARE_TOLERANCE = 0.01


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_over_many_spins_the_prizes_follow_the_weights(seed: int) -> None:
    rng = random.Random(seed)
    counts = [0] * len(WEIGHTS)
    for _ in range(SPINS):
        counts[draw(WEIGHTS, rng).index] += 1
    total = sum(WEIGHTS)
    expected = [SPINS * weight / total for weight in WEIGHTS]
    chi_square = sum((seen - want) ** 2 / want for seen, want in zip(counts, expected, strict=True))
    assert chi_square < CHI_SQUARE_LIMIT, (counts, chi_square)
    for seen, weight in zip(counts, WEIGHTS, strict=True):
        assert abs(seen / SPINS - weight / total) < SHARE_TOLERANCE


class Fixed(random.Random):
    """An RNG that always rolls the same number."""

    def __init__(self, roll: float) -> None:
        super().__init__()
        self.roll = roll

    def random(self) -> float:
        return self.roll


def test_the_roll_alone_decides_the_prize() -> None:
    # cumulative bounds of WEIGHTS over 100: 30, 40, 55, 70, 80, 100
    cases = {0.0: 0, 0.2999: 0, 0.30: 1, 0.3999: 1, 0.40: 2, 0.55: 3, 0.70: 4, 0.80: 5, 0.9999: 5}
    for roll, index in cases.items():
        result = draw(WEIGHTS, Fixed(roll))
        assert (result.index, result.roll) == (index, roll), roll
        assert result.chance == pytest.approx(WEIGHTS[index] / 100)


def test_the_same_seed_draws_the_same_prizes() -> None:
    first = [draw(WEIGHTS, rng).index for rng in [random.Random(42)] for _ in range(50)]
    second = [draw(WEIGHTS, rng).index for rng in [random.Random(42)] for _ in range(50)]
    assert first == second
    assert len(set(first)) > 1


@pytest.mark.parametrize("weights", [[], [1.0, 0.0], [2.0, -1.0]])
def test_a_wheel_without_positive_weights_is_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="positive weights"):
        draw(weights, random.Random(1))
