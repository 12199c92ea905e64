"""The durable queue and a ``!reload``, through the real console stream on a real database
(SQLite and PostgreSQL): a reload that changes ``queue.timeouts`` applies to the next item
(the runner reads the timeout as each item starts, like workers read their own settings).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelbot.config import load_config
from pixelbot.testing import console_session
from tests.fakes.openai_server import KEY, MODEL, Answer, FakeOpenAI
from tests.integration.test_console_transcripts import write_yaml
from tests.integration.test_queue_console import balances, items

RELOAD_YAML = """\
    commands: {{reply_rate: {{messages: 100, per: 30s}}}}
    redeems:
      ask:
        title: Ask the AI
        cost: 20
        action: {{type: ai}}
    ai:
      enabled: true
      base_url: {base_url}
      model: {model}
      api_key: "${{PIXEL_TEST_AI_KEY}}"
      timeout: {ai_timeout}
    queue:
      timeouts:
        ai: {queue_timeout}
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def test_a_reload_raising_queue_timeouts_applies_to_the_next_item(
    db_path: Path, tmp_path: Path, fake: FakeOpenAI
) -> None:
    """``ai.timeout`` and ``queue.timeouts.ai`` raised together by a ``!reload`` (the config
    check wants the second longer): an answer slower than the old queue timeout but quicker
    than the new one is said, not cut by the timeout the runner started with."""
    path = tmp_path / "pixel.yaml"
    (tmp_path / ".env").write_text(f"PIXEL_TEST_AI_KEY={KEY}\n", encoding="utf-8")
    values = {"base_url": fake.base_url, "model": MODEL}
    write_yaml(path, db_path, RELOAD_YAML.format(ai_timeout="0.5s", queue_timeout="1.2s", **values))
    async with console_session(load_config(path), path, base_dir=tmp_path) as bot:
        assert bot.app.config.queue.timeouts.ai.total_seconds() == 1.2
        write_yaml(path, db_path, RELOAD_YAML.format(ai_timeout="3s", queue_timeout="7s", **values))
        assert await bot.run("/mod mia", "/tip alice 100", "mia: !reload") == [
            "[console] mia is a moderator",
            "Pixel: Thanks for the tip, alice! +100 pixels",
            "Pixel: @mia config reloaded",
        ]
        fake.answers.append(Answer("Slow but sure.", delay=1.6))  # > 1.2 s, < 3 s and 7 s
        lines = await bot.run("alice: !ask take your time")
        assert lines[-2:] == [
            "[ai] #1 answered alice: Slow but sure.",
            "Pixel: @alice Slow but sure.",
        ]
        await bot.verified()
    [item] = items(db_path).values()
    assert (item.status, item.error) == ("done", None)
    assert balances(db_path) == {"alice": 81, "mia": 1}  # 100 + 1 (chat) - 20, no refund
