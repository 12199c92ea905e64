"""Field types and the base model shared by every section of the configuration."""

from __future__ import annotations

import re
import string
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from pixelbot.domain.durations import parse_duration

__all__ = [
    "MAX_DURATION",
    "MAX_INTEGER",
    "MAX_RATE",
    "Count",
    "Duration",
    "Name",
    "PositiveInt",
    "Rate",
    "Section",
    "Snowflake",
    "Text",
    "check_placeholders",
    "integer",
    "number",
]


# ----------------------------------------------------------------------------- field types

# Every number in the file must fit what the database stores (64-bit integers) with room to
# add them up, and make sense for a stream: a cost or a reward of 10^26 passed validation and
# then crashed the bot at start with OverflowError. 10^12 points is far above any balance
# (``commands.converters.MAX_AMOUNT`` is the same), and a million of them still add up to less
# than 2^63.
MAX_INTEGER = 10**12
MAX_RATE = 1_000_000.0  # points per tip unit, per viewer, a tier's multiplier
# now + a duration must stay a date (datetime ends at year 9999); 10 years is plenty.
MAX_DURATION = timedelta(days=3650)


def to_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
    elif isinstance(value, str | int | float):
        value = parse_duration(value)
    else:
        raise ValueError("must be a duration; use e.g. 30s, 5m, 1h")
    if value > MAX_DURATION:
        raise ValueError("must be at most 3650d (10 years)")
    return value


def integer(value: Any) -> Any:
    # pydantic turns `true` into 1; in a config file that is a mistake, not a number.
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


def number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    return value


Duration = Annotated[timedelta, BeforeValidator(to_duration)]
"""A length of time: ``30s``, ``5m``, ``1h30m``, ``250ms`` or a number of seconds."""

Count = Annotated[int, BeforeValidator(integer), Field(ge=0, le=MAX_INTEGER)]
PositiveInt = Annotated[int, BeforeValidator(integer), Field(gt=0, le=MAX_INTEGER)]
Rate = Annotated[float, BeforeValidator(number), Field(ge=0, le=MAX_RATE)]
Snowflake = Annotated[int, BeforeValidator(integer), Field(gt=0, le=2**63 - 1)]
"""A platform's numeric id (a Discord channel): as large as a signed 64-bit integer."""
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be lowercase letters, digits or _ (starting with a letter)")
    return value


Name = Annotated[str, AfterValidator(_name)]
"""The name of an effect or a wheel, by which redeems and prizes refer to it."""


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, values are read-only."""

    # (durations dump to JSON as seconds, so a stored payload validates back the same)
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, ser_json_timedelta="float"
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        # `earn:` with every child commented out parses as null: read it as "all defaults".
        return {} if data is None else data


def check_placeholders(template: str, allowed: set[str]) -> None:
    """A chat template may use only the ``{placeholders}`` the bot fills in."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(
            f"is not a valid message template ({exc}); write {{{{ for a brace"
        ) from None
    unknown = sorted({name for name in fields if name not in allowed})
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        usable = ", ".join("{" + name + "}" for name in sorted(allowed))
        raise ValueError(f"uses {names}; usable here: {usable}")
