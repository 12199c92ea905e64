"""Drawing a prize from a weighted wheel, with the randomness passed in.

``draw`` takes one uniform number in [0, 1) from the given ``random.Random`` and maps it onto
the cumulative weights, so a spin is fully described by that number (the roll): recording it
lets anyone replay the spin and check the prize. A seeded RNG makes spins reproducible in tests.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Draw", "draw"]


@dataclass(frozen=True)
class Draw:
    index: int  # which prize
    roll: float  # the uniform number drawn, in [0, 1)
    chance: float  # the prize's weight over the total


def draw(weights: Sequence[float], rng: random.Random) -> Draw:
    if not weights or any(weight <= 0 for weight in weights):
        raise ValueError("a wheel needs prizes with positive weights")
    total = float(sum(weights))
    bounds = list(itertools.accumulate(weights))
    roll = rng.random()
    index = min(bisect.bisect_right(bounds, roll * total), len(weights) - 1)
    return Draw(index, roll, weights[index] / total)
