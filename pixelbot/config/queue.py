"""Config for the durable queue and what its workers perform: ``queue:``, ``tts:``, ``wheels:``.

``queue`` sets how long each kind of item may run and what happens at start to items a crash
left running. ``tts`` is the text-to-speech filter and voice. ``wheels`` are prize wheels a
redeem spins by name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator

from pixelbot.config.types import (
    MAX_RATE,
    Count,
    Duration,
    PositiveInt,
    Section,
    Text,
    check_placeholders,
    integer,
    number,
)

__all__ = ["QueueSettings", "TtsSettings", "WheelPrize", "WheelSettings"]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


class QueueTimeouts(Section):
    """How long one item of each kind may run before it is failed (and refunded)."""

    tts: Duration = timedelta(seconds=60)
    wheel: Duration = timedelta(seconds=30)
    effect: Duration = timedelta(minutes=2)
    # longer than ai.timeout (the whole answer, the SDK's retry included) + 5 s (a check)
    ai: Duration = timedelta(minutes=1)

    @field_validator("tts", "wheel", "effect", "ai")
    @classmethod
    def _longer_than_zero(cls, value: timedelta) -> timedelta:
        return _positive(value)


class QueueSettings(Section):
    timeouts: QueueTimeouts = Field(default_factory=QueueTimeouts)
    # What to do at start with items a crash (or a kill) left running:
    # retry = run them again, refund = fail them and give the points back.
    on_restart: Literal["retry", "refund"] = "refund"


class TtsSettings(Section):
    max_queue: PositiveInt = 5  # pending TTS items; the next redeem is refused before charging
    max_chars: PositiveInt = 200  # spoken text is cut here (after filtering)
    banned_words: list[Text] = Field(default_factory=list)  # whole words, any capitalisation
    banned_replacement: str = ""  # what a banned word becomes ("" drops it)
    max_repeat: Annotated[int, BeforeValidator(integer), Field(ge=1, le=10)] = 3  # sooo
    max_word_repeat: Annotated[int, BeforeValidator(integer), Field(ge=1, le=10)] = 2  # LUL LUL
    prefix: str = "{user} says"  # said before the text when the redeem asks for it
    voice: Text | None = None  # an installed voice id or name; None: the default voice
    rate: Annotated[int, BeforeValidator(integer), Field(ge=50, le=500)] = 175  # words/minute
    volume: Annotated[float, BeforeValidator(number), Field(ge=0, le=1)] = 1.0
    dir: Text = "data/tts"  # where the WAV files go
    keep_files: Count = 50  # newest files kept in dir; 0 keeps all
    # auto: play each file with the first local player found (paplay, aplay, ffplay);
    # none: only write the file; or a command with {file}.
    player: Text = "auto"
    # local: play with ``player`` on this machine; overlay: the TTS overlay page plays it (so
    # OBS captures it), and the item is done when the page reports the end (needs web.enabled).
    output: Literal["local", "overlay"] = "local"

    @field_validator("prefix")
    @classmethod
    def _prefix_placeholders(cls, prefix: str) -> str:
        check_placeholders(prefix, {"user"})
        return prefix


class WheelPrize(Section):
    """One slice of a wheel. At most one of points / xp / effect / message; none: nothing."""

    name: Text
    weight: Annotated[float, BeforeValidator(number), Field(gt=0, le=MAX_RATE)] = 1.0
    points: PositiveInt | None = None
    xp: PositiveInt | None = None
    effect: Text | None = None  # a name from `effects:`
    message: Text | None = None  # a chat line; may use {user} and {prize}

    @field_validator("message")
    @classmethod
    def _message_placeholders(cls, message: str | None) -> str | None:
        if message is not None:
            check_placeholders(message, {"user", "prize"})
        return message

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [k for k in ("points", "xp", "effect", "message") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"a prize is one thing; this one has {' and '.join(given)}")
        return self

    @property
    def kind(self) -> str:
        for kind in ("points", "xp", "effect", "message"):
            if getattr(self, kind) is not None:
                return kind
        return "nothing"


class WheelSettings(Section):
    prizes: Annotated[list[WheelPrize], Field(min_length=1)]
    # One of each is picked at random per spin.
    spin_lines: Annotated[list[Text], Field(min_length=1)] = Field(
        default_factory=lambda: ["{user} is spinning the wheel!"]
    )
    prize_lines: Annotated[list[Text], Field(min_length=1)] = Field(
        default_factory=lambda: ["{user} won {prize}!"]
    )

    @field_validator("spin_lines", "prize_lines")
    @classmethod
    def _line_placeholders(cls, lines: list[str]) -> list[str]:
        for line in lines:
            check_placeholders(line, {"user", "prize"})
        return lines
