"""The ai: section: defaults, the key read from the environment (never the file), and every
kind of bad value reported with its path and line."""

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from pixelbot.config import load_config
from pixelbot.config.ai import DEFAULT_SYSTEM_PROMPT, is_local_url
from pixelbot.errors import ConfigError

pytestmark = pytest.mark.no_database

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
SECRET = "sk-live-abcdefghijklmnop-SECRET"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[tuple[int | None, str, str]]:
    """(line, path, message) of each issue."""
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env or {})
    return [(issue.line, issue.path, issue.message) for issue in exc.value.issues]


def test_ai_is_off_by_default_and_the_shipped_config_loads() -> None:
    ai = load_config(SHIPPED_CONFIG, env={}).ai
    assert ai.enabled is False
    assert ai.base_url == "https://api.openai.com/v1"
    assert ai.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert (ai.max_reply_chars, ai.max_tokens, ai.timeout) == (300, 150, timedelta(seconds=20))
    assert ai.recheck == timedelta(seconds=10)
    assert ai.temperature is None  # not sent: OpenAI's newer models refuse any other
    assert (ai.token_limit_param, ai.token_limit()) == ("auto", "max_completion_tokens")
    assert ai.api_key is None


def test_the_key_comes_from_the_environment_and_never_shows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ai:
          enabled: true
          model: gpt-4o-mini
          api_key: "${PIXELBOT_AI_API_KEY}"
          timeout: 5s
        """,
    )
    config = load_config(path, env={"PIXELBOT_AI_API_KEY": SECRET})
    ai = config.ai
    assert ai.api_key is not None and ai.api_key.get_secret_value() == SECRET
    assert ai.timeout == timedelta(seconds=5)
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert SECRET not in repr(ai) and SECRET not in str(ai.model_dump())
    assert SECRET not in ai.model_dump_json()


def test_the_key_is_read_from_dotenv_like_every_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ai:
          enabled: true
          model: gpt-4o-mini
          api_key: "${MY_AI_KEY}"
        """,
    )
    (tmp_path / ".env").write_text(f"MY_AI_KEY={SECRET}\n", encoding="utf-8")
    ai = load_config(path).ai  # env=None: the environment over .env, as the bot reads it
    assert ai.api_key is not None and ai.api_key.get_secret_value() == SECRET


def test_the_shipped_config_names_the_key_as_every_other_secret() -> None:
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    assert '  api_key: "${PIXELBOT_AI_API_KEY:-}"' in text
    config = load_config(SHIPPED_CONFIG, env={"PIXELBOT_AI_API_KEY": SECRET})
    assert config.ai.api_key is not None and config.ai.api_key.get_secret_value() == SECRET


def test_the_shipped_key_line_suits_a_local_server_with_no_key(tmp_path: Path) -> None:
    """The most common first setup: Ollama on this machine, the key line left as shipped."""
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    text = text.replace("  enabled: false              # true: needs model", "  enabled: true #", 1)
    text = text.replace(
        "  base_url: https://api.openai.com/v1", "  base_url: http://localhost:11434/v1"
    )
    text = text.replace("  model:                      # e.g.", "  model: llama3.2 #", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    ai = load_config(path, env={}).ai
    assert ai.enabled and ai.model == "llama3.2" and ai.api_key is None


def test_enabled_without_a_model_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        bot:
          name: Pixel
        ai:
          enabled: true
          api_key: "${PIXELBOT_AI_API_KEY}"
        """,
    )
    found = problems(path, {"PIXELBOT_AI_API_KEY": SECRET})
    assert found == [(3, "ai.model", "required when ai is enabled (e.g. gpt-4o-mini)")]


def test_enabled_with_the_variable_unset_names_it_at_api_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ai:
          enabled: true
          model: gpt-4o-mini
          api_key: "${PIXELBOT_AI_API_KEY}"
        """,
    )
    assert problems(path, {}) == [
        (4, "ai.api_key", "environment variable PIXELBOT_AI_API_KEY is not set")
    ]


@pytest.mark.parametrize("key_line", ["", '  api_key: "${PIXELBOT_AI_API_KEY:-}"\n'])
def test_enabled_with_no_key_and_a_remote_server_names_the_variable(
    tmp_path: Path, key_line: str
) -> None:
    path = write(tmp_path, f"ai:\n  enabled: true\n  model: gpt-4o-mini\n{key_line}")
    [(line, where, message)] = problems(path, {"PIXELBOT_AI_API_KEY": "  "})
    assert where == "ai.api_key"
    assert line == (4 if key_line else 1)
    assert message.startswith(
        'required for a server not on this machine: write api_key: "${PIXELBOT_AI_API_KEY}" '
        "and set PIXELBOT_AI_API_KEY in the environment or .env"
    )
    assert "dummy key" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:11434/v1",
        "http://LocalHost:11434/v1",
        "http://127.0.0.1:1234/v1",
        "http://127.0.0.2:1234/v1",  # (all of 127.0.0.0/8 is this machine)
        "http://[::1]:8080/v1",
        "http://0.0.0.0:11434/v1",  # (any address of this machine)
    ],
)
def test_a_local_server_needs_no_key(tmp_path: Path, url: str) -> None:
    path = write(
        tmp_path,
        f"""
        ai:
          enabled: true
          base_url: {url}
          model: llama3.2
        """,
    )
    ai = load_config(path, env={}).ai
    assert ai.enabled and ai.api_key is None and is_local_url(ai.base_url)


def test_disabled_needs_neither_model_nor_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ai:\n  enabled: false\n  base_url: https://example.invalid/v1\n"
        '  api_key: "${PIXELBOT_AI_API_KEY}"\n',
    )
    ai = load_config(path, env={}).ai  # (the variable unset: no error while disabled)
    assert ai.enabled is False and ai.api_key is None


def test_bad_values_are_reported_with_their_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ai:
          enabled: true
          base_url: ftp://example.com
          model: m
          api_key: "${NOT SET}"
          max_reply_chars: 5000
          max_tokens: 0
          temperature: 3
          timeout: 0s
          colour: blue
        """,
    )
    found = problems(path, {"PIXELBOT_AI_API_KEY": SECRET})
    assert [(line, where) for line, where, _ in found] == [
        (3, "ai.base_url"),
        (5, "ai.api_key"),
        (6, "ai.max_reply_chars"),
        (7, "ai.max_tokens"),
        (8, "ai.temperature"),
        (9, "ai.timeout"),
        (10, "ai.colour"),
    ]
    assert "http:// or https://" in found[0][2]


def test_the_shipped_ask_example_loads_once_uncommented(tmp_path: Path) -> None:
    """config.yaml ships an AI redeem commented out: uncommented (with ai on), it is valid."""
    lines = SHIPPED_CONFIG.read_text(encoding="utf-8").splitlines()
    start = lines.index("  # ask:")
    example = [line.replace("  # ", "  ", 1) for line in lines[start : start + 6]]
    assert example[-1].lstrip().startswith("action: {type: ai")
    text = "\n".join(lines[:start] + example + lines[start + 6 :])
    text = text.replace("  enabled: false              # true: needs model", "  enabled: true #", 1)
    text = text.replace("  model:                      # e.g.", "  model: gpt-4o-mini #", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, env={"PIXELBOT_AI_API_KEY": SECRET})
    assert config.ai.enabled and config.ai.model == "gpt-4o-mini"
    ask = config.redeems["ask"]
    assert (ask.title, ask.cost, ask.action.type) == ("Ask the AI", 50, "ai")
    assert ask.action.prompt == "Answer like a friendly pirate."  # type: ignore[union-attr]


def test_the_queue_timeout_must_outlast_the_ai_timeout(tmp_path: Path) -> None:
    """Else the queue would end an AI item first, without the AI's words for it."""
    path = write(
        tmp_path,
        """
        queue:
          timeouts:
            ai: 30s
        ai:
          enabled: true
          model: gpt-4o-mini
          timeout: 28s
          api_key: "${PIXELBOT_AI_API_KEY}"
        """,
    )
    assert problems(path, {"PIXELBOT_AI_API_KEY": SECRET}) == [
        (
            3,
            "queue.timeouts.ai",
            "is 30s; must be longer than ai.timeout (28s) plus 5s to check the service after a "
            "timeout: more than 33s",
        )
    ]
    path.write_text(path.read_text(encoding="utf-8").replace("30s", "34s"), encoding="utf-8")
    assert load_config(path, env={"PIXELBOT_AI_API_KEY": SECRET}).queue.timeouts.ai == (
        timedelta(seconds=34)
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://192.168.1.20:11434/v1",  # Ollama on another PC: any dummy key will do
        "http://localhost.example.com/v1",
        "http://128.0.0.1/v1",
        "https://api.openai.com/v1",
    ],
)
def test_a_server_elsewhere_is_not_local(url: str) -> None:
    assert not is_local_url(url)


@pytest.mark.parametrize("value", ["", "~", "null"])
def test_a_blank_temperature_is_not_sent(tmp_path: Path, value: str) -> None:
    """Before, a blank ``temperature:`` met the 0-2 limits as None: a TypeError traceback."""
    path = write(tmp_path, f"ai:\n  temperature: {value}\n")
    assert load_config(path, env={}).ai.temperature is None


def test_a_base_url_with_a_password_is_refused(tmp_path: Path) -> None:
    """The HTTP library logs request URLs: a password in one would reach the log."""
    path = write(tmp_path, "ai:\n  base_url: http://user:hunter2@example.com/v1\n")
    [(line, where, message)] = problems(path, {})
    assert (line, where) == (2, "ai.base_url")
    assert "put the key in ai.api_key" in message and "hunter2" not in message


def test_a_default_queue_timeout_too_short_for_ai_says_it_is_the_default(tmp_path: Path) -> None:
    """The operator never wrote queue.timeouts.ai: the error says what it is and why."""
    path = write(
        tmp_path,
        "ai:\n  enabled: true\n  model: m\n  base_url: http://localhost/v1\n  timeout: 90s\n",
    )
    [(_, where, message)] = problems(path, {})
    assert where == "queue.timeouts.ai"
    assert message.startswith("is 60s (the default); must be longer than ai.timeout (90s)")


def test_a_bad_token_limit_name_or_recheck_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "ai:\n  token_limit_param: max_length\n  recheck: never\n")
    found = problems(path, {})
    assert [(line, where) for line, where, _ in found] == [
        (2, "ai.token_limit_param"),
        (3, "ai.recheck"),
    ]
    assert "max_completion_tokens" in found[0][2]
