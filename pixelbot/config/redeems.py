"""Config sections for chat commands and redeems (``commands:`` and ``redeems:`` in YAML).

A redeem is something a viewer buys with points. Its ``action`` says what happens on stream;
the action's ``type`` picks the shape of the rest (a tts action has ``max_chars``, a wheel
action names a wheel, and so on). Redeems become queue items that workers perform.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from pixelbot.config.effects import Steps
from pixelbot.config.types import Count, Duration, PositiveInt, Section, Text
from pixelbot.domain.permissions import LADDER, Role

__all__ = [
    "PERMISSIONS",
    "Action",
    "AiAction",
    "ChatAction",
    "CommandSettings",
    "EffectAction",
    "ObsAction",
    "RedeemInput",
    "RedeemKey",
    "RedeemSettings",
    "ReplyRate",
    "SoundAction",
    "TtsAction",
    "TwitchReward",
    "WheelAction",
]

# Lowest to highest: each level includes everyone above it.
PERMISSIONS = LADDER  # the role ladder is defined once, in domain.permissions
Permission = Role

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DEFAULT_COGS = ("points", "xp", "redeems", "queue", "moderation", "links", "help")


class TtsAction(Section):
    type: Literal["tts"]
    max_chars: PositiveInt = 200
    prefix_username: bool = True


class WheelAction(Section):
    type: Literal["wheel"]
    wheel: Text = "main"


class EffectAction(Section):
    """Steps written here, or the name of an effect from ``effects:`` (one of the two)."""

    type: Literal["effect"]
    steps: Steps | None = None
    effect: Text | None = None

    @model_validator(mode="after")
    def _steps_or_name(self) -> Self:
        if (self.steps is None) == (self.effect is None):
            raise ValueError("give either steps or the name of an effect (one of the two)")
        return self


class ObsAction(Section):
    """One OBS step as a redeem: ``{type: obs, do: clip}``, ``{do: switch_scene, scene: BRB}``."""

    type: Literal["obs"]
    do: Literal["clip", "switch_scene", "show_source", "hide_source"]
    scene: Text | None = None
    source: Text | None = None
    for_: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _needs(self) -> Self:
        wanted = {"clip": (), "switch_scene": ("scene",)}.get(self.do, ("scene", "source"))
        missing = [name for name in wanted if getattr(self, name) is None]
        if missing:
            raise ValueError(f"do: {self.do} needs {' and '.join(missing)}")
        return self

    def step(self) -> dict[str, Any]:
        """This action as an effect step (validated by the effect step models)."""
        body: dict[str, Any] = {}
        if self.do == "switch_scene":
            body = {"scene": self.scene, "back_after": self.for_}
        elif self.do != "clip":
            body = {"scene": self.scene, "source": self.source, "for": self.for_}
        return {self.do: body}


class SoundAction(Section):
    type: Literal["sound"]
    file: Text


class AiAction(Section):
    type: Literal["ai"]
    prompt: str | None = None  # the streamer's extra instruction for this redeem
    speak: bool = False  # also read the reply aloud (a free TTS item after it)


class ChatAction(Section):
    type: Literal["chat"]
    message: Text


Action = Annotated[
    TtsAction | WheelAction | EffectAction | ObsAction | SoundAction | AiAction | ChatAction,
    Field(discriminator="type"),
]


class RedeemInput(Section):
    """Text the viewer types after the command (``!tts hello``)."""

    required: bool = False
    max_length: PositiveInt = 200


class TwitchReward(Section):
    """The redeem as a Twitch channel-point reward too (``twitch_reward: true`` or these keys).
    Its title defaults to the redeem's; its cost is in channel points."""

    title: Text | None = None
    cost: PositiveInt = 100
    prompt: str = ""
    user_input: bool = False  # Twitch asks the viewer for text (the TTS line)


def _reward_switch(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


class RedeemSettings(Section):
    title: Text
    cost: Count = 0
    action: Action
    enabled: bool = True
    permission: Permission = "everyone"
    cooldown: Duration = timedelta(0)  # per viewer
    global_cooldown: Duration = timedelta(0)
    max_per_stream: PositiveInt | None = None
    max_per_user_per_stream: PositiveInt | None = None
    input: RedeemInput | None = None  # None: input optional, up to the action's needs
    twitch_reward: Annotated[TwitchReward | None, BeforeValidator(_reward_switch)] = None

    @model_validator(mode="before")
    @classmethod
    def _tts_needs_input(cls, data: Any) -> Any:
        # A TTS redeem with nothing to say makes no sense: require input unless configured.
        if isinstance(data, dict) and "input" not in data:
            action = data.get("action")
            if isinstance(action, dict) and action.get("type") == "tts":
                limit = action.get("max_chars", 200)
                return {**data, "input": {"required": True, "max_length": limit}}
        return data


class ReplyRate(Section):
    """At most ``messages`` bot replies per channel in any ``per`` window."""

    messages: PositiveInt = 20
    per: Duration = timedelta(seconds=30)

    @field_validator("per")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class CommandSettings(Section):
    cogs: list[Text] = Field(default_factory=lambda: list(DEFAULT_COGS))
    reply_rate: ReplyRate = Field(default_factory=ReplyRate)
    top_size: Annotated[int, Field(ge=1, le=25)] = 5

    @field_validator("cogs")
    @classmethod
    def _no_duplicate_cogs(cls, cogs: list[str]) -> list[str]:
        if len(set(cogs)) != len(cogs):
            raise ValueError("lists a cog twice")
        return cogs


def _redeem_key(key: str) -> str:
    """Redeem keys become chat commands (``!tts``): lowercase letters, digits, underscores."""
    if not _KEY.match(key):
        raise ValueError("must be lowercase letters, digits or _ (it becomes a command)")
    return key


RedeemKey = Annotated[str, AfterValidator(_redeem_key)]
