"""The streamer's ``config.yaml`` as typed, frozen pydantic models, and ``load_config``.

Every section is optional and has defaults, so an empty file is a valid configuration.
Unknown keys are errors (a typo must not silently fall back to a default). Secrets are
``SecretStr`` so they never show up in a repr or a log line; read them with
``.get_secret_value()``.

``load_config`` never half-succeeds: it collects every problem in the file (type errors, bad
durations, unknown keys, missing ``${ENV}`` variables) and raises one ``ConfigError`` listing
them all with their YAML path and line. The YAML/env/message mechanics live in
``pixelbot.config.loader``.

To add a section: write a ``Section`` subclass whose fields all have defaults, and add one
field to ``Config``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from pixelbot.config.ai import AiSettings
from pixelbot.config.effects import EffectSettings, EffectStep, ObsSettings
from pixelbot.config.loader import (
    FieldProblems,
    env_with_dotenv,
    format_path,
    read_document,
    substitute_env,
    validation_issues,
)
from pixelbot.config.maintenance import BackupSettings, RetentionSettings, ScheduleSettings
from pixelbot.config.queue import QueueSettings, TtsSettings, WheelSettings
from pixelbot.config.redeems import (
    Action,
    ChatAction,
    CommandSettings,
    EffectAction,
    ObsAction,
    RedeemKey,
    RedeemSettings,
    SoundAction,
)
from pixelbot.config.timers import TimerSettings
from pixelbot.config.types import (
    Count,
    Duration,
    Name,
    PositiveInt,
    Rate,
    Section,
    Snowflake,
    Text,
    check_placeholders,
    integer,
    number,
)
from pixelbot.config.web import WebSettings
from pixelbot.domain.permissions import LADDER
from pixelbot.domain.xp import XpCurve as DomainXpCurve
from pixelbot.errors import ConfigError, ConfigIssue

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "BotSettings",
    "Config",
    "ConsolePlatform",
    "Currency",
    "DatabaseSettings",
    "DiscordPlatform",
    "Duration",
    "EarnChat",
    "EarnCheer",
    "EarnDropin",
    "EarnFollow",
    "EarnGift",
    "EarnRaid",
    "EarnSettings",
    "EarnSub",
    "EarnTip",
    "EarnWatch",
    "EconomySettings",
    "JoystickPlatform",
    "LevelReward",
    "PlatformsSettings",
    "TwitchPlatform",
    "XpCurve",
    "XpSettings",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path("config.yaml")


# ------------------------------------------------------------------------------------ bot


class Currency(Section):
    singular: Text = "pixel"
    plural: Text = "pixels"


class BotSettings(Section):
    name: Text = "Pixel"
    prefix: Text = "!"
    currency: Currency = Field(default_factory=Currency)

    @field_validator("prefix")
    @classmethod
    def _no_spaces(cls, prefix: str) -> str:
        if any(char.isspace() for char in prefix):
            raise ValueError("must not contain spaces")
        return prefix


class DatabaseSettings(Section):
    # repr=False: a PostgreSQL URL may carry a password.
    url: Text = Field(default="sqlite+aiosqlite:///data/pixel.db", repr=False)
    busy_timeout: Duration = timedelta(seconds=5)


# ------------------------------------------------------------------------------ platforms

_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


def _auto_or_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "auto":
            return "auto"
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError("must be auto, true or false")


def _require_when_enabled(platform: Section, name: str, fields: tuple[str, ...]) -> None:
    """Blame each missing (or empty) credential of an enabled platform on its own key."""
    if not getattr(platform, "enabled", False):
        return
    missing = []
    for field in fields:
        value = getattr(platform, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or not str(value).strip():
            missing.append(field)
    if missing:
        raise FieldProblems([((field,), f"required when {name} is enabled") for field in missing])


class ConsolePlatform(Section):
    """The local stream simulator. ``auto``: on when no real platform is enabled."""

    enabled: Annotated[Literal["auto"] | bool, BeforeValidator(_auto_or_bool)] = "auto"


class TwitchPlatform(Section):
    # IDs are often written unquoted (`bot_id: 123`); read numbers as text.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    enabled: bool = False
    channel: str | None = None
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    bot_id: str | None = None
    # Where Twitch answers. Only a proxy or a test server changes these.
    api_url: Text = "https://api.twitch.tv/helix/"
    auth_url: Text = "https://id.twitch.tv/"
    eventsub_url: Text = "wss://eventsub.wss.twitch.tv/ws"
    # Append every raw EventSub message to this JSONL file (``bot.py run --record FILE``).
    record: Text | None = None
    # While live, read the chatter list this often: who is in it is watching (watch-time
    # payouts, the drop-in award). Needs moderator:read:chatters; 0s turns it off.
    chatters_every: Duration = timedelta(minutes=1)

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        _require_when_enabled(self, "twitch", ("channel", "client_id", "client_secret", "bot_id"))
        return self


class DiscordRoles(Section):
    """Discord role ids that give the bot's roles (the server owner and administrators are
    always the broadcaster)."""

    moderator: list[Snowflake] = Field(default_factory=list)
    vip: list[Snowflake] = Field(default_factory=list)
    subscriber: list[Snowflake] = Field(default_factory=list)


class DiscordPlatform(Section):
    enabled: bool = False
    token: SecretStr | None = None
    guild_id: Snowflake | None = None
    """The server (guild) the bot serves; slash commands are registered there. None: the one
    server the bot is a member of (it refuses to guess among several)."""
    channels: list[Snowflake] = Field(default_factory=list)
    """Channel IDs the bot listens in (and where chat earns)."""
    voice_channel: Snowflake | None = None
    """Being in this voice channel counts as watching (watch-time payouts); none: off."""
    roles: DiscordRoles = Field(default_factory=DiscordRoles)
    members_intent: bool = False
    """Ask for the privileged Server Members intent: timeouts then cancel waiting TTS."""
    # Where Discord answers. Only a proxy or a test server changes these.
    api_url: Text = "https://discord.com/api/v10"
    gateway_url: Text = "wss://gateway.discord.gg/"
    # Append every raw dispatch the bot acts on to this JSONL file (``bot.py run --record``).
    record: Text | None = None

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        _require_when_enabled(self, "discord", ("token",))
        return self


class JoystickPlatform(Section):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    enabled: bool = False
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    # The bot's own username: its lines come back over the gateway and must not count.
    bot_username: str | None = None
    # A public bot hears every channel that installed it; set this to serve only one.
    channel_id: str | None = None
    # Where Joystick answers. Only a proxy or a test server changes these.
    api_url: Text = "https://joystick.tv"
    gateway_url: Text = "wss://joystick.tv/cable"
    # A gateway that sends nothing (not even its ~3 s ping) for this long is dead: reconnect.
    silence_timeout: Duration = timedelta(seconds=15)
    # Append every raw gateway frame to this JSONL file (``bot.py run --record FILE``).
    record: Text | None = None

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        _require_when_enabled(self, "joystick", ("client_id", "client_secret"))
        return self


class PlatformsSettings(Section):
    console: ConsolePlatform = Field(default_factory=ConsolePlatform)
    twitch: TwitchPlatform = Field(default_factory=TwitchPlatform)
    discord: DiscordPlatform = Field(default_factory=DiscordPlatform)
    joystick: JoystickPlatform = Field(default_factory=JoystickPlatform)

    @property
    def console_enabled(self) -> bool:
        """True if the console is switched on, or is ``auto`` and no real platform is on."""
        if isinstance(self.console.enabled, bool):
            return self.console.enabled
        return not (self.twitch.enabled or self.discord.enabled or self.joystick.enabled)

    def enabled_names(self) -> list[str]:
        """The platforms to start, in a fixed order (the console as ``console_enabled`` says)."""
        names = [n for n in ("twitch", "discord", "joystick") if getattr(self, n).enabled]
        return (["console"] if self.console_enabled else []) + names


# -------------------------------------------------------------------------------- economy


def _sub_tier(tier: int) -> int:
    if tier not in (1, 2, 3):
        raise ValueError("unknown tier; sub tiers are 1, 2 and 3")
    return tier


class EarnChat(Section):
    points: Count = 1
    xp: Count = 1
    cooldown: Duration = timedelta(seconds=60)


class EarnFollow(Section):
    """Paid once per person, ever: unfollow/refollow earns nothing."""

    points: Count = 50
    xp: Count = 10


class EarnSub(Section):
    """``points``/``xp`` times the tier's multiplier; a tier not listed counts as 1.0."""

    points: Count = 200
    xp: Count = 50
    per_month: bool = True
    tiers: dict[Annotated[int, AfterValidator(_sub_tier)], Rate] = Field(
        default_factory=lambda: {1: 1.0, 2: 2.0, 3: 5.0}
    )


class EarnGift(Section):
    """Paid to the gifter, per gifted sub."""

    points_per_sub: Count = 100
    xp_per_sub: Count = 20


class EarnTip(Section):
    points_per_unit: Rate = 1.0
    xp_per_unit: Rate = 0.1


class EarnCheer(Section):
    points_per_100_bits: Count = 100
    xp_per_100_bits: Count = 10


class EarnRaid(Section):
    points_per_viewer: Rate = 1.0
    xp_per_viewer: Rate = 0.0
    max_points: Count | None = None


class EarnDropin(Section):
    points: Count = 25
    xp: Count = 5
    cooldown: Duration = timedelta(hours=1)


def _role(role: str) -> str:
    if role not in LADDER:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(LADDER)}")
    return role


def _at_least_a_minute(value: timedelta) -> timedelta:
    if value < timedelta(minutes=1):
        raise ValueError("must be at least 1m")
    return value


class EarnWatch(Section):
    """Paid while the stream is live, every ``every``, to each viewer present (joined, or
    chatting). ``active_within``: only those who also chatted that recently. ``multipliers``:
    per role (the highest that applies wins), e.g. ``{subscriber: 2.0}``."""

    points: Count = 5
    xp: Count = 1
    every: Annotated[Duration, AfterValidator(_at_least_a_minute)] = timedelta(minutes=5)
    active_within: Duration | None = None
    multipliers: dict[Annotated[str, AfterValidator(_role)], Rate] = Field(default_factory=dict)


class EarnSettings(Section):
    chat: EarnChat = Field(default_factory=EarnChat)
    follow: EarnFollow = Field(default_factory=EarnFollow)
    sub: EarnSub = Field(default_factory=EarnSub)
    gift: EarnGift = Field(default_factory=EarnGift)
    tip: EarnTip = Field(default_factory=EarnTip)
    cheer: EarnCheer = Field(default_factory=EarnCheer)
    raid: EarnRaid = Field(default_factory=EarnRaid)
    dropin: EarnDropin = Field(default_factory=EarnDropin)
    watch: EarnWatch = Field(default_factory=EarnWatch)


class EconomySettings(Section):
    ignore: list[str] = Field(default_factory=list)
    """Bot logins that never earn, stored lowercased (compare with ``name.lower()``)."""
    starting_points: Count = 0
    max_balance: PositiveInt | None = 10_000_000
    earn: EarnSettings = Field(default_factory=EarnSettings)

    @field_validator("ignore")
    @classmethod
    def _lowercase(cls, names: list[str]) -> list[str]:
        return [name.strip().removeprefix("@").lower() for name in names]

    @model_validator(mode="after")
    def _start_within_limit(self) -> Self:
        if self.max_balance is not None and self.starting_points > self.max_balance:
            message = f"must be <= max_balance ({self.max_balance})"
            raise FieldProblems([(("starting_points",), message)])
        return self


# ------------------------------------------------------------------------------------- xp


def _reward_level(level: int) -> int:
    if level < 2:
        raise ValueError("level must be >= 2")
    return level


class XpCurve(Section):
    """Settings of the XP curve; ``pixelbot.domain.xp.XpCurve`` does the arithmetic."""

    kind: Literal["power", "mee6"] = "power"
    base: PositiveInt = 100
    exponent: Annotated[float, BeforeValidator(number), Field(gt=0)] = 1.8
    # The curve precomputes one threshold per level: keep that table a sane size.
    max_level: Annotated[int, BeforeValidator(integer), Field(ge=1, le=100_000)] = 9999

    @model_validator(mode="after")
    def _computable(self) -> Self:
        try:
            DomainXpCurve(self.kind, self.base, self.exponent, self.max_level)
        except OverflowError:
            message = f"is too steep: XP for level {self.max_level} does not fit in a number"
            raise FieldProblems([(("exponent",), message)]) from None
        return self


class LevelReward(Section):
    points: Count = 0
    message: str | None = None

    @field_validator("message")
    @classmethod
    def _known_placeholders(cls, message: str | None) -> str | None:
        if message is not None:
            check_placeholders(message, {"user", "level"})
        return message


class XpSettings(Section):
    curve: XpCurve = Field(default_factory=XpCurve)
    level_rewards: dict[Annotated[int, AfterValidator(_reward_level)], LevelReward] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _rewards_reachable(self) -> Self:
        problems = [
            (("level_rewards", level), f"is above xp.curve.max_level ({self.curve.max_level})")
            for level in self.level_rewards
            if level > self.curve.max_level
        ]
        if problems:
            raise FieldProblems(problems)
        return self


# ---------------------------------------------------------------------------------- root


class Config(Section):
    """The whole ``config.yaml``. Every section is optional."""

    bot: BotSettings = Field(default_factory=BotSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    platforms: PlatformsSettings = Field(default_factory=PlatformsSettings)
    economy: EconomySettings = Field(default_factory=EconomySettings)
    xp: XpSettings = Field(default_factory=XpSettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)
    redeems: dict[RedeemKey, RedeemSettings] = Field(default_factory=dict)
    effects: dict[Name, EffectSettings] = Field(default_factory=dict)
    wheels: dict[Name, WheelSettings] = Field(default_factory=dict)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    obs: ObsSettings = Field(default_factory=ObsSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    timers: list[TimerSettings] = Field(default_factory=list)
    ai: AiSettings = Field(default_factory=AiSettings)

    @model_validator(mode="after")
    def _overlays_served(self) -> Self:
        if self.tts.output == "overlay" and not self.web.enabled:
            raise FieldProblems([(("tts", "output"), "overlay needs the web server (web.enabled)")])
        if self.web.overlays.wheel.wait and not self.web.enabled:
            where = ("web", "overlays", "wheel", "wait")
            raise FieldProblems([(where, "needs the web server (web.enabled)")])
        return self

    @model_validator(mode="after")
    def _ai_ends_before_its_queue_timeout(self) -> Self:
        """The queue's timeout must not end an AI item first: it would fail it without the
        AI's own words ("did not answer in time"), and the check that follows a timeout
        (``GET /models``, up to 5 s) needs time too."""
        if not self.ai.enabled:
            return self
        needed = self.ai.timeout + min(timedelta(seconds=5), self.ai.timeout)
        if self.queue.timeouts.ai <= needed:
            message = (
                f"is {_seconds(self.queue.timeouts.ai)}"
                f"{'' if 'ai' in self.queue.timeouts.model_fields_set else ' (the default)'}; "
                f"must be longer than ai.timeout ({_seconds(self.ai.timeout)}) plus "
                f"{_seconds(needed - self.ai.timeout)} to check the service after a timeout: "
                f"more than {_seconds(needed)}"
            )
            raise FieldProblems([(("queue", "timeouts", "ai"), message)])
        return self

    @model_validator(mode="after")
    def _names_exist(self) -> Self:
        problems = missing_names(self.model_dump(by_alias=True))
        if problems:
            raise FieldProblems(problems)
        return self

    def effect_steps(self, action: Action) -> list[EffectStep]:
        """The steps an effect-kind action performs (``obs``/``sound``/``chat`` are one step)."""
        match action:
            case EffectAction(steps=list() as steps):
                return steps
            case EffectAction(effect=str() as name):
                return self.effects[name].steps
            case ObsAction():
                return _STEP_LIST.validate_python([action.step()])
            case SoundAction(file=file):
                return _STEP_LIST.validate_python([{"play_sound": file}])
            case ChatAction(message=message):
                return _STEP_LIST.validate_python([{"say": message}])
        raise ValueError(f"a {action.type} action is not an effect")


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


_STEP_LIST: TypeAdapter[list[EffectStep]] = TypeAdapter(list[EffectStep])


def missing_names(data: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Redeems and prizes that name a wheel or an effect which does not exist.

    Works on the plain document too (not only on a valid ``Config``), so ``load_config`` can
    list these with every other problem instead of one round later."""
    if not isinstance(data, dict):
        return []

    def section(name: str) -> dict[Any, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    wheels, effects = section("wheels"), section("effects")
    known_effects = ", ".join(map(str, effects)) or "none are configured"
    known_wheels = ", ".join(map(str, wheels)) or "none are configured"
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for key, redeem in section("redeems").items():
        action = redeem.get("action") if isinstance(redeem, dict) else None
        if not isinstance(action, dict):
            continue
        wheel = action.get("wheel", "main")
        if action.get("type") == "wheel" and isinstance(wheel, str) and wheel not in wheels:
            where = ("redeems", key, "action", "wheel")
            problems.append((where, f"no wheel {wheel!r} (wheels: {known_wheels})"))
        effect = action.get("effect")
        if action.get("type") == "effect" and isinstance(effect, str) and effect not in effects:
            problems.append(
                (
                    ("redeems", key, "action", "effect"),
                    f"no effect {effect!r} (effects: {known_effects})",
                )
            )
    for name, wheel in wheels.items():
        prizes = wheel.get("prizes") if isinstance(wheel, dict) else None
        for index, prize in enumerate(prizes if isinstance(prizes, list) else []):
            effect = prize.get("effect") if isinstance(prize, dict) else None
            if isinstance(effect, str) and effect not in effects:
                problems.append(
                    (
                        ("wheels", name, "prizes", index, "effect"),
                        f"no effect {effect!r} (effects: {known_effects})",
                    )
                )
    return problems


CommandNames = Callable[["Config"], Mapping[str, str]]
"""{command name: cog} that a config's cogs declare (``pixelbot.commands.names``)."""


def load_config(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    command_names: CommandNames | None = None,
) -> Config:
    """Load, substitute ``${ENV}`` and validate a config file; raise ``ConfigError`` if bad.

    ``env=None`` reads ``os.environ`` over the ``.env`` file next to the config file (the real
    environment wins). A non-empty ``DATABASE_URL`` overrides ``database.url``.
    ``command_names``: the built-in commands of the configured cogs; a redeem may not take one
    of their names (the config layer cannot import the cogs itself).
    """
    config_path = Path(path)
    file = config_path.name
    data, lines, issues = read_document(config_path)
    if env is None:
        env = env_with_dotenv(config_path)

    data, env_issues = substitute_env(data, env, lines, file)
    database_url = env.get("DATABASE_URL")
    if database_url:
        data = _override_database_url(data, database_url)
        env_issues = [issue for issue in env_issues if issue.path != "database.url"]
    issues += env_issues

    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # A value whose ${VAR} is missing was set to None: don't report it a second time.
        reported = {issue.path for issue in env_issues}
        issues += [
            issue
            for issue in validation_issues(exc, Config, lines, file, data)
            if issue.path not in reported
        ]
    if config is not None and command_names is not None:
        taken = command_names(config)
        prefix = config.bot.prefix
        for key in config.redeems:
            if key in taken:
                path_ = ("redeems", key)
                message = (
                    f"{prefix}{key} is already a command (of the {taken[key]} cog); "
                    "give the redeem another name"
                )
                issues.append(ConfigIssue(format_path(path_), message, lines.line_for(path_), file))
    if config is None:  # (a valid file had these checked by Config itself)
        issues += [
            ConfigIssue(format_path(path), message, lines.line_for(path), file)
            for path, message in missing_names(data)
        ]
    if issues or config is None:
        raise ConfigError(_in_file_order(issues))
    return config


def _override_database_url(data: Any, url: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return data  # validation reports the real problem
    database = data.get("database")
    if database is None:
        database = {}
    if isinstance(database, dict):
        data = {**data, "database": {**database, "url": url}}
    return data


def _in_file_order(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda issue: issue.line or 0)
