"""Hostile or broken config files are refused with a line and exit 2, quickly and in little
memory, before anything expands them (issue 11). Each file goes through ``bot.py
check-config``; time and memory are measured in a process of their own that only loads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import REPO, bot

pytestmark = pytest.mark.no_database

# The peak is this process's own (VmHWM): ``ru_maxrss`` also counts the memory of the image
# before ``exec``, which for a subprocess started from pytest is the whole test run's.
PROBE = """
import json, sys, time
from pixelbot.config import load_config
from pixelbot.errors import ConfigError
start = time.perf_counter()
try:
    load_config(sys.argv[1], env={})
    issues = []
except ConfigError as exc:
    issues = [str(issue) for issue in exc.issues]
seconds = time.perf_counter() - start
with open("/proc/self/status", encoding="ascii") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_kb": peak, "issues": issues}))
"""


def probe(path: Path) -> dict[str, Any]:
    """Load ``path`` in a fresh process; its time, peak memory and issues."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard; the bomb used to run for minutes
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        refs = ",".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "nul": ('bot:\n  name: "Pi\x00xel"\n', 2, "control character (U+0000)"),
    "escape": ("bot:\n  prefix: '!'\n  name: \x1b[31mPixel\n", 3, "control character (U+001B)"),
    "deep_flow": ("a: " + "[" * 5000 + "]" * 5000 + "\n", 1, "nested more than 64 levels"),
    "deep_block": (
        "".join(" " * i + f"k{i}:\n" for i in range(1000)),
        64,
        "nested more than 64 levels",
    ),
    "alias_bomb": (alias_bomb(9), 5, "expands to more than 50,000 values"),
    "alias_bomb_6": (alias_bomb(6), 5, "expands to more than 50,000 values"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused_with_its_line_fast_and_small(tmp_path: Path, name: str) -> None:
    text, line, phrase = HOSTILE[name]
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    if name == "alias_bomb":
        assert len(text.encode()) < 600  # the 590-byte file of the issue, or smaller

    measured = probe(path)
    assert len(measured["issues"]) == 1, measured["issues"]
    assert phrase in measured["issues"][0] and f"line {line})" in measured["issues"][0]
    assert measured["seconds"] < 1.0, measured  # the bound, with a wide margin in practice
    assert measured["peak_kb"] < 200 * 1024, measured

    result = bot("check-config", "--config", path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert phrase in result.stderr and f"config.yaml line {line})" in result.stderr


def test_a_small_honest_alias_still_works(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "defaults: &slow {cooldown: 30s}\n"
        "economy:\n  earn:\n    chat: {<<: *slow, points: 2}\n    dropin: *slow\n",
        encoding="utf-8",
    )
    result = bot("check-config", "--config", path)
    assert "unknown key" in result.stderr  # `defaults:` itself is not a section...
    assert "nested" not in result.stderr and "expands" not in result.stderr  # ...nothing else


def test_an_integer_the_database_cannot_hold_is_refused_by_check_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "redeems:\n"
        "  huge:\n"
        "    title: Huge\n"
        "    cost: 100000000000000000000000000\n"
        "    action: {type: chat, message: wow}\n"
        "economy:\n  earn:\n    tip: {points_per_unit: 1.0e+300}\n"
        "    chat: {cooldown: 999999999d}\n",
        encoding="utf-8",
    )
    result = bot("check-config", "--config", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "redeems.huge.cost: must be <= 1000000000000 (config.yaml line 4)" in result.stderr
    assert "economy.earn.tip.points_per_unit: must be <= 1000000" in result.stderr
    assert "economy.earn.chat.cooldown: must be at most 3650d" in result.stderr


def test_a_redeem_named_like_a_command_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "redeems:\n"
        "  hello: {title: Hi, cost: 1, action: {type: chat, message: hi}}\n"
        "  give: {title: Give, cost: 1, action: {type: chat, message: hi}}\n",
        encoding="utf-8",
    )
    result = bot("check-config", "--config", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "redeems.give: !give is already a command (of the points cog)" in result.stderr
    assert "(config.yaml line 3)" in result.stderr
    assert "hello" not in result.stderr


def test_a_discord_channel_id_is_not_bounded_like_points(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "platforms:\n  discord: {enabled: false, channels: [1234567890123456789]}\n",
        encoding="utf-8",
    )
    result = bot("check-config", "--config", path)
    assert result.returncode == 0, result.stderr


def test_a_file_too_large_to_be_a_config_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# padding\n" * 200_000, encoding="utf-8")  # 2 MB of comments
    result = bot("check-config", "--config", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "larger than 1,000,000 bytes" in result.stderr
