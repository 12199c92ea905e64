"""The redeems: and commands: sections: shapes, defaults and every kind of bad value."""

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from pixelbot.config import load_config
from pixelbot.config.redeems import TtsAction, WheelAction
from pixelbot.errors import ConfigError

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    return [str(issue) for issue in exc.value.issues]


def test_shipped_redeems_and_commands() -> None:
    config = load_config(SHIPPED_CONFIG, env={})
    assert list(config.redeems) == ["tts", "spin", "clip", "hydrate"]
    tts = config.redeems["tts"]
    assert (tts.cost, tts.cooldown, tts.permission) == (25, timedelta(seconds=10), "everyone")
    assert isinstance(tts.action, TtsAction)
    assert tts.input is not None and tts.input.required and tts.input.max_length == 200
    assert isinstance(config.redeems["spin"].action, WheelAction)
    assert config.redeems["clip"].permission == "subscriber"
    assert config.redeems["hydrate"].max_per_stream == 5
    assert config.commands.cogs == [
        "points",
        "xp",
        "redeems",
        "queue",
        "moderation",
        "links",
        "help",
    ]
    assert config.commands.reply_rate.messages == 20


def test_a_tts_redeem_requires_text_unless_configured(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          say: {title: Say, action: {type: tts, max_chars: 80}}
          quiet: {title: Q, input: {required: false}, action: {type: tts}}
        """,
    )
    config = load_config(path, env={})
    say, quiet = config.redeems["say"].input, config.redeems["quiet"].input
    assert say is not None and (say.required, say.max_length) == (True, 80)
    assert quiet is not None and quiet.required is False


def test_every_bad_redeem_value_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          tts:
            title: Text-to-Speech
            cost: -5
            cooldown: 5x
            permission: admin
            action: {type: tts}
          spin:
            title: Wheel
            action: {type: whee}
          Bad-Key:
            title: x
            action: {type: chat}
          nothing:
            title: y
            action: {wheel: main}
          free:
            title: Free
            colour: red
            action: {type: sound, file: a.wav}
        """,
    )
    assert problems(path) == [
        "redeems.tts.cost: must be >= 0 (config.yaml line 4)",
        "redeems.tts.cooldown: '5x' is not a duration; use e.g. 30s, 5m, 1h (config.yaml line 5)",
        "redeems.tts.permission: must be one of 'everyone', 'follower', 'subscriber', 'vip', "
        "'moderator', 'broadcaster' (config.yaml line 6)",
        "redeems.spin.action.type: must be one of 'tts', 'wheel', 'effect', 'obs', 'sound', "
        "'ai', 'chat' (config.yaml line 10)",
        "redeems.Bad-Key: must be lowercase letters, digits or _ (it becomes a command) "
        "(config.yaml line 11)",
        "redeems.Bad-Key.action.message: is required (config.yaml line 13)",
        "redeems.nothing.action: needs a 'type' (config.yaml line 16)",
        "redeems.free.colour: unknown key (config.yaml line 19)",
    ]


def test_bad_command_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        commands:
          cogs: [points, points]
          reply_rate: {messages: 0, per: 0s}
          top_size: 99
        """,
    )
    assert problems(path) == [
        "commands.cogs: lists a cog twice (config.yaml line 2)",
        "commands.reply_rate.messages: must be > 0 (config.yaml line 3)",
        "commands.reply_rate.per: must be longer than 0s (config.yaml line 3)",
        "commands.top_size: must be <= 25 (config.yaml line 4)",
    ]


def test_chat_templates_and_the_curve_are_checked_before_start(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        xp:
          curve: {exponent: 100}
          level_rewards:
            2: {points: 1, message: "GG {username} at {level}"}
            3: {message: "oops {"}
        """,
    )
    assert problems(path) == [
        "xp.curve.exponent: is too steep: XP for level 9999 does not fit in a number "
        "(config.yaml line 2)",
        "xp.level_rewards.2.message: uses {username}; usable here: {level}, {user} "
        "(config.yaml line 4)",
        "xp.level_rewards.3.message: is not a valid message template (Single '{' encountered "
        "in format string); write {{ for a brace (config.yaml line 5)",
    ]
