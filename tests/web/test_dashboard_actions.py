"""The dashboard's queue and redeem buttons run the chat commands' code paths: a pause is
stored like ``!pause`` (and holds the queue), a clear cancels and refunds everything waiting
like ``!clearqueue``, a redeem toggle is ``!redeem off``. Over HTTP, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from pixelbot.commands.dispatcher import RESTARTING
from pixelbot.db.models import QueueControl
from pixelbot.testing import assert_verified
from tests.web.dashboard_rig import (
    ALICE,
    OPERATOR,
    Rig,
    dashboard_config,
    eventually,
    http_session,
    log_in,
    running_dashboard,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def post(http: aiohttp.ClientSession, rig: Rig, csrf: str, path: str, body: Any) -> Any:
    async with http.post(
        f"{rig.url}/dashboard/api{path}", json=body, headers={"X-CSRF-Token": csrf}
    ) as response:
        data = await response.json()
        assert response.status == 200, data
        return data


@pytest.mark.both_backends
async def test_pause_clear_and_resume_act_like_the_chat_commands(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        csrf = await log_in(http, rig.url)
        await rig.give(ALICE, 100)
        paused = await post(http, rig, csrf, "/queue/pause", {"kind": "tts"})
        assert paused["paused"] == ["tts"]
        assert rig.app.queue.paused == {"tts"}
        async with rig.app.engine.db.read() as conn:  # stored, so it outlives a restart
            row = (await conn.execute(select(QueueControl.paused, QueueControl.updated_by))).one()
        assert tuple(row) == (True, f"dashboard:{OPERATOR}")

        await rig.chat(ALICE, "!tts one")
        await rig.chat(ALICE, "!tts two")
        assert await rig.balance(ALICE) == 50
        assert not rig.gate.started.is_set()  # held by the pause
        async with http.get(f"{rig.url}/dashboard/api/queue") as queue:
            [tts] = (await queue.json())["kinds"]
        assert tts["paused"] is True and tts["running"] is None
        assert [item["text"] for item in tts["pending"]] == ["one", "two"]

        cleared = await post(http, rig, csrf, "/queue/clear", {"kind": "all"})
        assert (cleared["cleared"], cleared["refunded"]) == (2, 50)
        assert await rig.balance(ALICE) == 100
        refunds = [row for row in await rig.ledger(ALICE) if row.kind == "refund"]
        assert [(row.amount, row.actor) for row in refunds] == [
            (25, f"dashboard:{OPERATOR}"),
            (25, f"dashboard:{OPERATOR}"),
        ]
        assert any("cleared by a moderator" in text for text in rig.platform.texts())

        await post(http, rig, csrf, "/queue/resume", {"kind": "tts"})
        assert rig.app.queue.paused == set()
        await rig.chat(ALICE, "!tts three")

        async def playing() -> bool:
            return rig.gate.started.is_set()

        await eventually(playing, "the resumed queue to play")
        # asking for a queue that does not exist is refused with the list
        async with http.post(
            f"{rig.url}/dashboard/api/queue/pause",
            json={"kind": "karaoke"},
            headers={"X-CSRF-Token": csrf},
        ) as refused:
            assert refused.status == 400
            assert "queues: tts" in (await refused.json())["error"]
        await assert_verified(rig.app.engine)


@pytest.mark.both_backends
async def test_a_redeem_toggle_is_the_same_as_redeem_off(db_path: Path) -> None:
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        csrf = await log_in(http, rig.url)
        await rig.give(ALICE, 500)
        await post(http, rig, csrf, "/redeems/tts", {"enabled": False})
        assert not rig.app.engine.catalog.is_enabled("tts")
        async with http.get(f"{rig.url}/dashboard/api/redeems") as listed:
            redeems = {r["key"]: r for r in (await listed.json())["redeems"]}
        assert redeems["tts"]["enabled"] is False and redeems["hydrate"]["enabled"] is True
        await rig.chat(ALICE, "!tts not now")
        assert await rig.balance(ALICE) == 500  # refused: nothing charged
        await post(http, rig, csrf, "/redeems/tts", {"enabled": True})
        await rig.chat(ALICE, "!tts now")
        assert await rig.balance(ALICE) == 475
        for key, body, why in (
            ("tts", {"enabled": "yes"}, "true or false"),
            ("karaoke", {"enabled": True}, "no redeem"),
        ):
            async with http.post(
                f"{rig.url}/dashboard/api/redeems/{key}", json=body, headers={"X-CSRF-Token": csrf}
            ) as refused:
                assert refused.status == 400
                assert why in (await refused.json())["error"]


@pytest.mark.both_backends
async def test_an_action_that_meets_a_stopped_writer_says_the_bot_is_restarting(
    db_path: Path,
) -> None:
    """A 503 with a plain sentence, not the writer's own words (those go to the log); nothing
    was changed."""
    async with running_dashboard(dashboard_config(db_path)) as rig, http_session() as http:
        csrf = await log_in(http, rig.url)
        await rig.give(ALICE, 100)
        user_id = await rig.app.engine.wallets.find_identity(ALICE)
        before = await rig.balance(ALICE)
        await rig.app.engine.writer.stop()
        try:
            async with http.post(
                f"{rig.url}/dashboard/api/viewers/{user_id}/adjust",
                json={"amount": -30, "reason": "spam", "key": "stopped-writer-1"},
                headers={"X-CSRF-Token": csrf},
            ) as refused:
                assert refused.status == 503
                assert (await refused.json())["error"] == RESTARTING
        finally:
            await rig.app.engine.writer.start()
        assert await rig.balance(ALICE) == before
