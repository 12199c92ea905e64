"""Config for stream effects: the steps an effect is made of, named effects, and OBS.

An effect is a list of steps, each a one-key mapping in YAML::

    steps:
      - show_source: {scene: Main, source: HydrateGif, for: 10s}
      - play_sound: splash.wav            # shorthand for {file: splash.wav}
      - switch_scene: {scene: BRB, back_after: 30s}
      - wait: 2s
      - say: "{user} is hydrated!"

A step written as a plain value fills the step's main field (``play_sound: splash.wav``). Each
step becomes a typed model tagged by ``do``; the effect worker runs them in order. The ``obs``,
``sound`` and ``chat`` redeem actions are shorthands for one-step effects (``effect_steps``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from pixelbot.config.types import (
    Duration,
    PositiveInt,
    Section,
    Text,
    check_placeholders,
    integer,
)

__all__ = [
    "OBS_STEPS",
    "ClipStep",
    "EffectSettings",
    "EffectStep",
    "HideSourceStep",
    "ObsSettings",
    "PlaySoundStep",
    "RestartMediaStep",
    "SayStep",
    "SetTextStep",
    "ShowSourceStep",
    "Steps",
    "SwitchSceneStep",
    "ToggleFilterStep",
    "WaitStep",
]

# Placeholders a step's text may use: who redeemed, what they typed, what the redeem is called.
STEP_PLACEHOLDERS = {"user", "text", "title"}


class _Step(Section):
    main: ClassVar[str | None] = None  # the field a plain value fills


class SwitchSceneStep(_Step):
    main: ClassVar[str | None] = "scene"
    do: Literal["switch_scene"]
    scene: Text
    back_after: Duration | None = None  # switch back to the scene that was showing


class ShowSourceStep(_Step):
    do: Literal["show_source"]
    scene: Text
    source: Text
    for_: Duration | None = Field(None, alias="for")  # then hide it again


class HideSourceStep(_Step):
    do: Literal["hide_source"]
    scene: Text
    source: Text
    for_: Duration | None = Field(None, alias="for")  # then show it again


class ClipStep(_Step):
    do: Literal["clip"]
    start_replay_buffer: bool | None = None  # None: obs.start_replay_buffer decides


class RestartMediaStep(_Step):
    main: ClassVar[str | None] = "source"
    do: Literal["restart_media"]
    source: Text


class SetTextStep(_Step):
    do: Literal["set_text"]
    source: Text
    text: str

    @field_validator("text")
    @classmethod
    def _placeholders(cls, text: str) -> str:
        check_placeholders(text, STEP_PLACEHOLDERS)
        return text


class ToggleFilterStep(_Step):
    do: Literal["toggle_filter"]
    source: Text
    filter: Text
    enabled: bool | None = None  # None: flip whatever it is now
    for_: Duration | None = Field(None, alias="for")  # then flip it back


class PlaySoundStep(_Step):
    main: ClassVar[str | None] = "file"
    do: Literal["play_sound"]
    file: Text  # relative to obs.sounds_dir
    source: Text | None = None  # the media source to play it on; None: obs.sound_source


class WaitStep(_Step):
    main: ClassVar[str | None] = "duration"
    do: Literal["wait"]
    duration: Duration


class SayStep(_Step):
    main: ClassVar[str | None] = "message"
    do: Literal["say"]
    message: Text

    @field_validator("message")
    @classmethod
    def _placeholders(cls, message: str) -> str:
        check_placeholders(message, STEP_PLACEHOLDERS)
        return message


_STEP_TYPES: dict[str, type[_Step]] = {
    "switch_scene": SwitchSceneStep,
    "show_source": ShowSourceStep,
    "hide_source": HideSourceStep,
    "clip": ClipStep,
    "restart_media": RestartMediaStep,
    "set_text": SetTextStep,
    "toggle_filter": ToggleFilterStep,
    "play_sound": PlaySoundStep,
    "wait": WaitStep,
    "say": SayStep,
}
OBS_STEPS = frozenset(_STEP_TYPES) - {"wait", "say"}  # the steps that need OBS


def _tag_step(value: Any) -> Any:
    """``{show_source: {...}}`` -> ``{do: show_source, ...}``; plain values fill ``main``."""
    if not isinstance(value, dict) or "do" in value:
        return value
    if len(value) != 1:
        raise ValueError("each step is one of: " + ", ".join(_STEP_TYPES) + " (one per list entry)")
    ((name, body),) = value.items()
    step_type = _STEP_TYPES.get(name)
    if step_type is None:
        raise ValueError(f"unknown step {name!r}; steps are: " + ", ".join(_STEP_TYPES))
    if body is None:
        body = {}
    if not isinstance(body, dict):
        if step_type.main is None:
            raise ValueError(f"{name} takes settings like {{...}}, not a single value")
        body = {step_type.main: body}
    return {"do": name, **body}


EffectStep = Annotated[
    Annotated[
        SwitchSceneStep
        | ShowSourceStep
        | HideSourceStep
        | ClipStep
        | RestartMediaStep
        | SetTextStep
        | ToggleFilterStep
        | PlaySoundStep
        | WaitStep
        | SayStep,
        Field(discriminator="do"),
    ],
    BeforeValidator(_tag_step),
]

Steps = Annotated[list[EffectStep], Field(min_length=1)]


class EffectSettings(Section):
    """A named effect (``effects: {confetti: {steps: [...]}}``), used by wheels and redeems."""

    steps: Steps


class ObsReconnect(Section):
    attempts: PositiveInt = 3  # per item, before it fails and is refunded
    backoff: Duration = timedelta(seconds=1)  # doubled after each failed attempt
    max_backoff: Duration = timedelta(seconds=30)


class ObsSettings(Section):
    enabled: bool = False
    host: Text = "localhost"
    port: Annotated[int, BeforeValidator(integer), Field(ge=1, le=65535)] = 4455
    password: SecretStr | None = None
    timeout: Duration = timedelta(seconds=5)  # connecting and each request
    reconnect: ObsReconnect = Field(default_factory=ObsReconnect)
    sound_source: Text | None = None  # media source that play_sound uses by default
    sounds_dir: Text = "data/sounds"
    start_replay_buffer: bool = True  # a clip starts the replay buffer when it is off
    clip_wait: Duration = timedelta(seconds=10)  # for OBS to write the clip's file
    # While OBS is down: "hold" the effect queue until it is back (for at most hold_limit,
    # then refund what waits), or "refund" what waits at once.
    when_down: Literal["hold", "refund"] = "hold"
    hold_limit: Duration = timedelta(minutes=10)

    @field_validator("timeout", "clip_wait")
    @classmethod
    def _timeout_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value
