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
    "Count",
    "Duration",
    "Name",
    "PositiveInt",
    "Rate",
    "Section",
    "Text",
    "check_placeholders",
    "integer",
    "number",
]


# ----------------------------------------------------------------------------- field types


def to_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError("must be a duration; use e.g. 30s, 5m, 1h")


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

Count = Annotated[int, BeforeValidator(integer), Field(ge=0)]
PositiveInt = Annotated[int, BeforeValidator(integer), Field(gt=0)]
Rate = Annotated[float, BeforeValidator(number), Field(ge=0)]
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
