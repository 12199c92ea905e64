import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from pixelbot.config import Config, load_config
from pixelbot.errors import ConfigError

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    """Write YAML whose first line is line 1 (the leading newline of a literal is dropped)."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, env: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={} if env is None else env)
    return [str(issue) for issue in exc.value.issues]


# ----------------------------------------------------------------------------- valid files


def test_shipped_config_loads_with_empty_env() -> None:
    config = load_config(SHIPPED_CONFIG, env={})
    assert config.bot.prefix == "!"
    assert config.economy.ignore == ["nightbot", "streamelements"]
    assert config.economy.earn.chat.cooldown == timedelta(seconds=60)
    assert config.xp.curve.kind == "power"
    assert config.xp.level_rewards[5].points == 500
    assert config.platforms.twitch.enabled is False
    assert config.platforms.twitch.client_id is None
    assert config.platforms.console_enabled is True


def test_empty_file_gives_all_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}) == Config()


def test_null_section_means_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          earn:
    """,
    )
    assert load_config(path, env={}).economy.earn.chat.points == 1


def test_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot: {prefix: "?"}
        economy:
          ignore: [NightBot, "@StreamElements"]
          max_balance:
          earn:
            chat: {points: 3, cooldown: 1h30m}
            raid: {max_points: 500}
    """,
    )
    config = load_config(path, env={})
    assert config.bot.prefix == "?"
    assert config.economy.ignore == ["nightbot", "streamelements"]
    assert config.economy.max_balance is None
    assert config.economy.earn.chat.points == 3
    assert config.economy.earn.chat.cooldown == timedelta(hours=1, minutes=30)
    assert config.economy.earn.raid.max_points == 500


def test_console_auto_turns_off_when_a_real_platform_is_enabled(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          discord: {enabled: true, token: "${DISCORD_TOKEN}", channels: [123]}
    """,
    )
    config = load_config(path, env={"DISCORD_TOKEN": "abc"})
    assert config.platforms.console_enabled is False
    assert config.platforms.discord.token is not None
    assert config.platforms.discord.token.get_secret_value() == "abc"


def test_console_can_be_forced_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          console: {enabled: true}
          discord: {enabled: true, token: abc}
    """,
    )
    assert load_config(path, env={}).platforms.console_enabled is True


# --------------------------------------------------------------------------- exact messages


def test_wrong_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          earn:
            chat:
              points: lots
              cooldown: 60s
            sub: {per_month: maybe}
        bot:
          name: [a, b]
          currency: plenty
    """,
    )
    assert problems(path) == [
        "economy.earn.chat.points: must be an integer (config.yaml line 4)",
        "economy.earn.sub.per_month: must be true or false (config.yaml line 6)",
        "bot.name: must be a string (config.yaml line 8)",
        "bot.currency: must be a mapping (config.yaml line 9)",
    ]


def test_booleans_are_not_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          earn:
            chat: {points: yes}
            tip: {points_per_unit: true}
    """,
    )
    assert problems(path) == [
        "economy.earn.chat.points: must be an integer (config.yaml line 3)",
        "economy.earn.tip.points_per_unit: must be a number (config.yaml line 4)",
    ]


def test_negative_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          max_balance: 0
          earn:
            chat:
              points: -5
    """,
    )
    assert problems(path) == [
        "economy.max_balance: must be > 0 (config.yaml line 2)",
        "economy.earn.chat.points: must be >= 0 (config.yaml line 5)",
    ]


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          earn:
            chatt:
              points: 1
        nonsense: 1
    """,
    )
    assert problems(path) == [
        "economy.earn.chatt: unknown key; did you mean 'chat'? (config.yaml line 3)",
        "nonsense: unknown key (config.yaml line 5)",
    ]


def test_unknown_key_inside_a_level_reward(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        xp:
          level_rewards:
            5: {points: 500, mesage: hi}
    """,
    )
    assert problems(path) == [
        "xp.level_rewards.5.mesage: unknown key; did you mean 'message'? (config.yaml line 3)"
    ]


def test_bad_duration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          earn:
            chat:
              cooldown: 5x
    """,
    )
    assert problems(path) == [
        "economy.earn.chat.cooldown: '5x' is not a duration; use e.g. 30s, 5m, 1h "
        "(config.yaml line 4)"
    ]


def test_bad_literal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        xp:
          curve:
            kind: linear
    """,
    )
    assert problems(path) == ["xp.curve.kind: must be one of 'power', 'mee6' (config.yaml line 3)"]


def test_bad_dict_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          earn:
            sub:
              tiers: {1: 1.0, 4: 2.0}
        xp:
          level_rewards:
            1: {points: 5}
    """,
    )
    assert problems(path) == [
        "economy.earn.sub.tiers.4: unknown tier; sub tiers are 1, 2 and 3 (config.yaml line 4)",
        "xp.level_rewards.1: level must be >= 2 (config.yaml line 7)",
    ]


def test_list_items_are_located_by_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          discord:
            channels:
              - 123
              - general
    """,
    )
    assert problems(path) == [
        "platforms.discord.channels.1: must be an integer (config.yaml line 5)"
    ]


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: A
          name: B
    """,
    )
    assert problems(path) == [
        "bot.name: duplicate key (the later one would silently win) (config.yaml line 3)"
    ]


def test_several_errors_are_listed_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          prefix: ""
        economy:
          starting_points: -1
          earn:
            chatt: {}
            dropin: {cooldown: soon}
        xp:
          curve: {kind: linear, base: 0}
        platforms:
          twitch:
            enabled: true
            client_id: ${TWITCH_CLIENT_ID}
    """,
    )
    assert problems(path) == [
        "bot.prefix: must not be empty (config.yaml line 2)",
        "economy.starting_points: must be >= 0 (config.yaml line 4)",
        "economy.earn.chatt: unknown key; did you mean 'chat'? (config.yaml line 6)",
        "economy.earn.dropin.cooldown: 'soon' is not a duration; use e.g. 30s, 5m, 1h "
        "(config.yaml line 7)",
        "xp.curve.kind: must be one of 'power', 'mee6' (config.yaml line 9)",
        "xp.curve.base: must be > 0 (config.yaml line 9)",
        "platforms.twitch.channel: required when twitch is enabled (config.yaml line 11)",
        "platforms.twitch.client_secret: required when twitch is enabled (config.yaml line 11)",
        "platforms.twitch.bot_id: required when twitch is enabled (config.yaml line 11)",
        "platforms.twitch.client_id: environment variable TWITCH_CLIENT_ID is not set "
        "(config.yaml line 13)",
    ]


def test_cross_field_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          starting_points: 50
          max_balance: 10
        xp:
          curve: {max_level: 8}
          level_rewards:
            10: {points: 1}
    """,
    )
    assert problems(path) == [
        "economy.starting_points: must be <= max_balance (10) (config.yaml line 2)",
        "xp.level_rewards.10: is above xp.curve.max_level (8) (config.yaml line 7)",
    ]


# -------------------------------------------------------------------------------- platforms


def test_enabled_twitch_without_credentials(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          twitch:
            enabled: true
            channel: mychannel
            client_secret: ""
    """,
    )
    assert problems(path) == [
        "platforms.twitch.client_id: required when twitch is enabled (config.yaml line 2)",
        "platforms.twitch.bot_id: required when twitch is enabled (config.yaml line 2)",
        "platforms.twitch.client_secret: required when twitch is enabled (config.yaml line 5)",
    ]


def test_enabled_twitch_with_credentials(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          twitch:
            enabled: true
            channel: mychannel
            client_id: ${TWITCH_CLIENT_ID}
            client_secret: ${TWITCH_CLIENT_SECRET}
            bot_id: 123
    """,
    )
    env = {"TWITCH_CLIENT_ID": "id-1", "TWITCH_CLIENT_SECRET": "s3cret-value"}
    twitch = load_config(path, env=env).platforms.twitch
    assert twitch.bot_id == "123"
    assert twitch.client_secret is not None
    assert twitch.client_secret.get_secret_value() == "s3cret-value"


def test_secrets_never_show_in_repr(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          discord: {enabled: true, token: "${DISCORD_TOKEN}"}
    """,
    )
    config = load_config(path, env={"DISCORD_TOKEN": "hunter2-token"})
    assert "hunter2-token" not in repr(config)
    assert "hunter2-token" not in str(config)


def test_database_password_not_in_repr(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    config = load_config(path, env={"DATABASE_URL": "postgresql+asyncpg://u:pa55word@h/db"})
    assert "pa55word" not in repr(config)


# -------------------------------------------------------------------------------- env vars


def test_missing_env_var(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: Pixel
        platforms:
          twitch:
            enabled: true
            channel: me
            client_id: ${TWITCH_CLIENT_ID}
            client_secret: s
            bot_id: "1"
    """,
    )
    assert problems(path) == [
        "platforms.twitch.client_id: environment variable TWITCH_CLIENT_ID is not set "
        "(config.yaml line 7)"
    ]


def test_env_var_inside_disabled_platform_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          twitch:
            enabled: false
            client_id: ${TWITCH_CLIENT_ID}
            client_secret: "prefix-${TWITCH_CLIENT_SECRET}"
    """,
    )
    twitch = load_config(path, env={}).platforms.twitch
    assert twitch.client_id is None
    assert twitch.client_secret is None


def test_enabled_can_come_from_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        platforms:
          joystick:
            enabled: ${JOYSTICK_ENABLED:-false}
            client_id: ${JOYSTICK_CLIENT_ID}
            client_secret: ${JOYSTICK_CLIENT_SECRET}
    """,
    )
    assert load_config(path, env={}).platforms.joystick.enabled is False
    assert problems(path, env={"JOYSTICK_ENABLED": "true", "JOYSTICK_CLIENT_ID": "x"}) == [
        "platforms.joystick.client_secret: environment variable JOYSTICK_CLIENT_SECRET is not "
        "set (config.yaml line 5)"
    ]


def test_env_default_and_partial_substitution(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: "${BOT_NAME:-Pixel} v${VERSION}"
          prefix: "${PREFIX:-!}"
          currency: {singular: "$${literal}"}
    """,
    )
    config = load_config(path, env={"VERSION": "2", "PREFIX": ""})
    assert config.bot.name == "Pixel v2"
    assert config.bot.prefix == "!"  # empty counts as unset for a default, as in a shell
    assert config.bot.currency.singular == "${literal}"


def test_malformed_reference_is_reported_even_when_disabled(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: "${BOT_NAME"
        platforms:
          twitch: {enabled: false, client_id: "${TWITCH_CLIENT_ID"}
    """,
    )
    assert problems(path) == [
        "bot.name: a '${' must be written ${NAME} or ${NAME:-default} (config.yaml line 2)",
        "platforms.twitch.client_id: a '${' must be written ${NAME} or ${NAME:-default} "
        "(config.yaml line 4)",
    ]


def test_database_url_env_overrides_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        database:
          url: "sqlite+aiosqlite:///${MISSING_DIR}/x.db"
    """,
    )
    url = "postgresql+asyncpg://pixel@localhost/pixel"
    assert load_config(path, env={"DATABASE_URL": url}).database.url == url
    assert load_config(write(tmp_path, ""), env={"DATABASE_URL": ""}).database.url == (
        "sqlite+aiosqlite:///data/pixel.db"
    )


def test_dotenv_file_next_to_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: ${PIXEL_TEST_NAME}
          prefix: ${PIXEL_TEST_PREFIX}
    """,
    )
    write(tmp_path, "PIXEL_TEST_NAME=FromDotenv\nPIXEL_TEST_PREFIX=?\n", name=".env")
    monkeypatch.delenv("PIXEL_TEST_NAME", raising=False)
    monkeypatch.setenv("PIXEL_TEST_PREFIX", "$")  # the real environment wins
    config = load_config(path)
    assert config.bot.name == "FromDotenv"
    assert config.bot.prefix == "$"


# ------------------------------------------------------------------------ unreadable files


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: Pixel
          prefix: "!
        economy: {}
    """,
    )
    assert problems(path) == [
        "YAML syntax error: found unexpected end of stream (config.yaml line 5)"
    ]


def test_yaml_syntax_error_bad_indent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: Pixel
         prefix: "!"
    """,
    )
    [message] = problems(path)
    assert message.startswith("YAML syntax error: ")
    assert message.endswith("(config.yaml line 3)")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert problems(path) == [
        f"cannot read config file: No such file or directory: {path} (nope.yaml)"
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        - bot
        - economy
    """,
    )
    assert problems(path) == ["must be a mapping (config.yaml line 1)"]


def test_two_documents_are_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot: {}
        ---
        bot: {}
    """,
    )
    assert problems(path) == [
        "YAML syntax error: expected a single document in the stream but found another "
        "document (config.yaml line 2)"
    ]


def test_recursive_anchor_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        economy:
          ignore: &names [a, *names]
    """,
    )
    assert problems(path) == [
        "YAML syntax error: an anchor is used inside itself (config.yaml line 2)"
    ]


# ----------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "schedule:\n  backup: {every: 1h, cron: '0 * * * *'}\n",
            "schedule.backup: give either every (e.g. 1h) or cron (e.g. '30 3 * * *'), not both",
        ),
        (
            "schedule:\n  backup: {cron: 'every tuesday'}\n",
            "schedule.backup.cron: 'every tuesday' is not a cron expression",
        ),
        ("schedule:\n  backup: {every: 10s}\n", "schedule.backup.every: must be at least 1m"),
        ("schedule:\n  defrag: {every: 1h}\n", "schedule.defrag: unknown key"),
    ],
)
def test_a_bad_schedule_is_refused_with_its_path(tmp_path: Path, yaml: str, expected: str) -> None:
    (found,) = problems(write(tmp_path, yaml))
    assert found.startswith(expected), found


def test_a_job_can_be_switched_off_without_a_schedule(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "schedule:\n  backup: {enabled: false}\n"), env={})
    assert not config.schedule.backup.enabled


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "economy:\n  earn:\n    watch: {every: 10s}\n",
            "economy.earn.watch.every: must be at least 1m (config.yaml line 3)",
        ),
        (
            "economy:\n  earn:\n    watch:\n      multipliers: {wizard: 2}\n",
            "economy.earn.watch.multipliers.wizard: unknown role 'wizard'",
        ),
        (
            "economy:\n  earn:\n    watch: {points: -5}\n",
            "economy.earn.watch.points: must be >= 0 (config.yaml line 3)",
        ),
        (
            "backup:\n  keep: {hourly: -1}\n",
            "backup.keep.hourly: must be >= 0 (config.yaml line 2)",
        ),
        ("backup:\n  colour: blue\n", "backup.colour: unknown key"),
    ],
)
def test_bad_watch_and_backup_settings_name_their_path_and_line(
    tmp_path: Path, yaml: str, expected: str
) -> None:
    (found,) = problems(write(tmp_path, yaml))
    assert found.startswith(expected), found


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        ("retention:\n  chat_events: soon\n", "retention.chat_events: "),
        ("retention:\n  keep_everything: true\n", "retention.keep_everything: unknown key"),
        ("timers:\n  - {message: hi, every: 30s}\n", "timers.0.every: must be at least 1m"),
        ("timers:\n  - {every: 5m}\n", "timers.0.message: "),
        ("timers:\n  - {message: hi, every: 5m, min_chat_lines: -1}\n", "timers.0.min_chat_lines"),
    ],
)
def test_bad_retention_and_timers_are_refused_with_their_path(
    tmp_path: Path, yaml: str, expected: str
) -> None:
    (found,) = problems(write(tmp_path, yaml))
    assert found.startswith(expected), found
    assert "line 2" in found or "line 1" in found, found


def test_retention_and_timers_have_defaults_and_null_keeps_forever(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "retention:\n  tts_files: null\n"), env={})
    assert config.retention.chat_events == timedelta(days=90)
    assert config.retention.tts_files is None
    assert config.timers == []
    assert config.schedule.cleanup.cron == "30 3 * * *"


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "platforms:\n  twitch:\n    chatters_every: soon\n",
            "platforms.twitch.chatters_every: 'soon' is not a duration; use e.g. 30s, 5m, 1h "
            "(config.yaml line 3)",
        ),
        (
            "platforms:\n  discord:\n    roles: {wizard: [1]}\n",
            "platforms.discord.roles.wizard: unknown key (config.yaml line 3)",
        ),
        (
            "platforms:\n  discord:\n    guild_id: abc\n",
            "platforms.discord.guild_id: must be an integer (config.yaml line 3)",
        ),
        (
            "platforms:\n  joystick:\n    silence_timeout: forever\n",
            "platforms.joystick.silence_timeout: 'forever' is not a duration; use e.g. 30s, 5m, "
            "1h (config.yaml line 3)",
        ),
    ],
)
def test_bad_platform_settings_name_their_path_and_line(
    tmp_path: Path, yaml: str, expected: str
) -> None:
    (found,) = problems(write(tmp_path, yaml))
    assert found == expected, found
