"""Typed command arguments. A command's parameters are annotated with these types and the
dispatcher converts the words a viewer typed, or answers with the command's usage line.

- ``Amount``: a whole number of points: ``250``, ``10k``, ``1.5k``, ``2m``, or ``all``.
- ``Target``: another viewer by name or ``@mention`` (resolved to a wallet by the dispatcher).
- ``Word``: one word; ``Rest``: the rest of the line; ``RedeemName``: one word naming a redeem
  (a platform may offer the redeems as completions).
- ``int`` and ``Duration`` (``30s``, ``5m``) as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import NewType

from pixelbot.domain.durations import parse_duration
from pixelbot.domain.limits import quote
from pixelbot.errors import BadArgument

__all__ = [
    "MAX_AMOUNT",
    "Amount",
    "Duration",
    "RedeemName",
    "Rest",
    "Target",
    "Word",
    "parse_amount",
    "parse_count",
    "parse_duration_arg",
]

MAX_AMOUNT = 10**12  # far above any sane balance; stops 1e99 and friends at the door

Word = NewType("Word", str)
Rest = NewType("Rest", str)
RedeemName = NewType("RedeemName", str)
Duration = NewType("Duration", timedelta)

# [0-9], not \d: \d also matches Arabic-Indic, full-width and other digits, which int() and
# Decimal() accept ("١٠٠" is 100) but no viewer means as an amount.
_AMOUNT = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([km]?)$")
_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000}


@dataclass(frozen=True)
class Amount:
    """A number of points, or everything the viewer has (``all``)."""

    value: int | None  # None means "all"

    @property
    def is_all(self) -> bool:
        return self.value is None

    def resolve(self, balance: int) -> int:
        return balance if self.value is None else self.value


@dataclass(frozen=True)
class Target:
    """A viewer named in a command: ``alice``, ``@alice``, or a platform's id mention
    (``<@1234>``, ``<@!1234>`` on Discord), which names the viewer by platform user id."""

    name: str
    user_id: str | None = None  # set for an id mention


def parse_amount(text: str) -> Amount:
    word = text.strip().lower().replace(",", "").replace("_", "")
    if word in ("all", "everything"):
        return Amount(None)
    match = _AMOUNT.match(word)
    if match is None:
        raise BadArgument(f"{quote(text)!r} is not an amount (try 100, 1.5k or all)")
    number, suffix = match.groups()
    if len(number) > 20:
        raise BadArgument(f"{quote(text)!r} is too large")
    scaled = Decimal(number) * _SUFFIX[suffix]  # decimal: 4.1m is exactly 4,100,000
    if scaled > MAX_AMOUNT:
        raise BadArgument(f"{quote(text)!r} is too large")
    if scaled % 1 != 0:
        raise BadArgument(f"{quote(text)!r} is not a whole number of points")
    if scaled <= 0:
        raise BadArgument("the amount must be more than 0")
    return Amount(int(scaled))


def parse_count(text: str) -> int:
    word = text.strip()
    if re.fullmatch(r"[0-9]{10,}", word):  # a number, just not one a count could be
        raise BadArgument(f"{quote(text)!r} is too large")
    if not re.fullmatch(r"[0-9]{1,9}", word):
        raise BadArgument(f"{quote(text)!r} is not a whole number")
    return int(text)


_ID_MENTION = re.compile(r"^<@!?([0-9]{1,30})>$")


def parse_target(text: str) -> Target:
    by_id = _ID_MENTION.match(text.strip())
    if by_id is not None:
        return Target(by_id.group(1), user_id=by_id.group(1))
    name = text.strip().removeprefix("@")
    if not re.fullmatch(r"[\w.\-]{1,50}", name):
        raise BadArgument(f"{quote(text)!r} is not a viewer's name")
    return Target(name)


def parse_duration_arg(text: str) -> Duration:
    try:
        return Duration(parse_duration(text))
    except ValueError as exc:
        if quote(text) != text:  # its message would repeat all of it
            raise BadArgument(f"{quote(text)!r} is not a duration; use e.g. 30s, 5m, 1h") from None
        raise BadArgument(str(exc)) from None
