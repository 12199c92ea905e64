"""An OBS that goes away, through the real console stream, engine and SQLite file, against the
fake obs-websocket server (tests/fakes/obs_server.py). The same scenarios run against a real
OBS in test_obs_real.py.

- ``obs.when_down: hold`` holds the effect queue until OBS is back, then plays what waited;
- ``refund`` refunds a backlog at once, with one summary line in chat;
- a timed change OBS could not undo is put back when OBS returns, unless the stream changed.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pixelbot.config import Config
from pixelbot.economy.obs_undos import ObsUndoStore
from pixelbot.queue.outage import Outage
from pixelbot.testing import ConsoleSession, console_session
from tests.fakes.obs_server import FakeObs
from tests.integration.test_queue_console import (
    assert_refunded_once,
    balances,
    config_for,
    refunds,
    rows,
    statuses,
    until,
)

PASSWORD = "hunter2"
REDEEMS: dict[str, Any] = {
    "alert": {
        "title": "Alert",
        "cost": 10,
        "action": {
            "type": "effect",
            "steps": [{"set_text": {"source": "Alert", "text": "{user}"}}],
        },
    },
    "brb": {
        "title": "BRB",
        "cost": 10,
        "action": {
            "type": "effect",
            "steps": [{"switch_scene": {"scene": "BRB", "back_after": "1s"}}],
        },
    },
    "hello": {"title": "Hello", "cost": 1, "action": {"type": "chat", "message": "hi {user}"}},
}
VIEWERS = [f"v{n:02d}" for n in range(1, 21)]


def outage_config(db_path: Path, port: int, **obs: Any) -> Config:
    settings = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "password": PASSWORD,
        "reconnect": {"attempts": 2, "backoff": "50ms", "max_backoff": "200ms"},
        "timeout": "2s",
        **obs,
    }
    return config_for(db_path, redeems=REDEEMS, obs=settings)


async def until_undos(bot: ConsoleSession, expected: list[tuple[int, str]]) -> None:
    """Wait until ``obs_undos`` holds ``expected`` (item, outcome) rows (a hang guard)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        async with bot.app.engine.db.read() as conn:
            found = [
                (int(item), str(outcome))
                for item, outcome in await conn.execute(
                    text("SELECT item_id, outcome FROM obs_undos ORDER BY id")
                )
            ]
        if found == expected:
            return
        assert loop.time() < deadline, f"obs_undos holds {found}, not {expected}"
        await asyncio.sleep(0.02)


def outage_of(bot: ConsoleSession) -> Outage:
    assert bot.app.queue.runner is not None
    outage = bot.app.queue.runner.outage("effect")
    assert outage is not None
    return outage


def chat(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("Pixel: ")]


async def queue_backlog(bot: ConsoleSession) -> None:
    """Twenty viewers redeem an alert while a moderator has the effect queue paused."""
    await bot.run("/mod mod", "mod: !pause effect")
    for viewer in VIEWERS:
        await bot.run(f"/tip {viewer} 100", f"{viewer}: !alert")


async def test_hold_waits_for_obs_then_plays_everything(db_path: Path, tmp_path: Path) -> None:
    async with (
        FakeObs(password=PASSWORD) as obs,
        console_session(outage_config(db_path, obs.port), base_dir=tmp_path) as bot,
    ):
        await queue_backlog(bot)
        await obs.stop()

        lines = await bot.run("mod: !resume effect")
        assert chat(lines) == [
            "Pixel: @mod resumed: effect",
            "Pixel: OBS is down: 20 waiting effects will play when it is back "
            "(@v01, @v02, @v03, @v04, @v05 and 15 more).",
        ]
        assert outage_of(bot).holding()
        assert await bot.run("v01: !redeems", "v01: !alert", "v01: !hello") == [
            "Pixel: Redeems: !alert (10, unavailable until OBS is back), "
            "!brb (10, unavailable until OBS is back), !hello (1)",
            "Pixel: @v01 Alert redeemed for 10 pixels (queued as #21); "
            "OBS is down, it will play when OBS is back",
            "[effect] #21 pending: Alert for v01",
            "Pixel: @v01 Hello redeemed for 1 pixel (queued as #22)",
            "[effect] #22 pending: Hello for v01",
        ]  # the held queue holds the chat-only effect too, and says nothing more
        assert {status for status, _ in statuses(db_path).values()} == {"pending"}

        await obs.start()
        await until(lambda: not outage_of(bot).down)
        played = await bot.run("/drain")
        await bot.verified()

    assert len([line for line in played if line.startswith("[effect] #")]) == 22
    assert obs.inputs["Alert"].settings["text"] == "v01"  # #21, the last alert
    assert {status for status, _ in statuses(db_path).values()} == {"done"}
    assert refunds(db_path) == []


async def test_refund_settles_a_backlog_of_twenty_at_once_with_one_chat_line(
    db_path: Path, tmp_path: Path
) -> None:
    async with FakeObs(password=PASSWORD) as obs:
        config = outage_config(db_path, obs.port, when_down="refund")
        async with console_session(config, base_dir=tmp_path) as bot:
            await queue_backlog(bot)
            await obs.stop()

            started = time.monotonic()
            lines = await bot.run("mod: !resume effect")
            settled_in = time.monotonic() - started

            assert chat(lines) == [
                "Pixel: @mod resumed: effect",
                "Pixel: OBS is down: refunded 20 effects (@v01, @v02, @v03, @v04, @v05 "
                "and 15 more).",
            ]
            notices = [line for line in lines if line.startswith("[effect]")]
            assert len(notices) == 20  # the operator still sees every item
            assert notices[0] == "[effect] #1 failed: OBS is down; refunded 10 pixels to v01"
            assert await bot.run("v01: !redeems", "v01: !alert") == [
                "Pixel: Redeems: !alert (10, unavailable), !brb (10, unavailable), !hello (1)",
                "Pixel: @v01 alert is not available: OBS is down",
            ]
            await bot.verified()

    assert settled_in < 10
    assert {status for status, _ in statuses(db_path).values()} <= {"failed", "cancelled"}
    assert len(refunds(db_path)) == 20
    for item_id, viewer in enumerate(VIEWERS, start=1):
        assert_refunded_once(db_path, item_id, viewer, 10)
    assert {balances(db_path)[viewer] for viewer in VIEWERS} == {101}  # tipped 100, chatted 1


async def test_a_hold_that_runs_out_refunds_what_waits(db_path: Path, tmp_path: Path) -> None:
    async with FakeObs(password=PASSWORD) as obs:
        config = outage_config(db_path, obs.port, hold_limit="1s")
        async with console_session(config, base_dir=tmp_path) as bot:
            await bot.run("/tip alice 100", "/tip bob 100")
            await obs.stop()
            assert chat(await bot.run("alice: !alert")) == [
                "Pixel: @alice Alert redeemed for 10 pixels (queued as #1)",
                "Pixel: OBS is down: 1 waiting effect will play when it is back (@alice).",
            ]
            await asyncio.sleep(1.1)
            assert chat(await bot.run("/drain", "bob: !alert")) == [
                "Pixel: OBS is down: refunded 1 effect (@alice).",
                "Pixel: @bob alert is not available: OBS is down",
            ]
            await bot.verified()

    assert statuses(db_path) == {1: ("cancelled", "OBS is down")}
    assert_refunded_once(db_path, 1, "alice", 10)


async def test_a_scene_obs_could_not_switch_back_is_switched_back_when_obs_returns(
    db_path: Path, tmp_path: Path
) -> None:
    async with (
        FakeObs(password=PASSWORD) as obs,
        console_session(outage_config(db_path, obs.port), base_dir=tmp_path) as bot,
    ):
        await bot.run("/tip alice 100")
        redeem = asyncio.create_task(bot.run("alice: !brb"))
        await until(lambda: obs.current_scene == "BRB")
        await obs.stop()  # OBS goes away during back_after (it keeps its scene: BRB)
        lines = await redeem
        why = "OBS went away before the bot could switch back to scene 'Main'"
        assert chat(lines)[1:] == [
            f"Pixel: @alice your BRB didn't happen: {why} (it will when OBS is back). "
            "Your 10 pixels are back."
        ]
        assert obs.current_scene == "BRB"

        await obs.start()
        await until(lambda: not outage_of(bot).down)
        await bot.verified()

    assert obs.current_scene == "Main"
    assert rows(db_path, "SELECT item_id, outcome FROM obs_undos") == [(1, "applied")]
    undone = rows(db_path, "SELECT payload FROM events WHERE kind = 'obs_undo'")
    assert [json.loads(payload)["outcome"] for (payload,) in undone] == ["applied"]
    assert_refunded_once(db_path, 1, "alice", 10)


async def test_an_undo_the_streamer_overtook_is_left_alone(db_path: Path, tmp_path: Path) -> None:
    async with FakeObs(password=PASSWORD) as obs:
        obs.add_scene("Gaming", ["Webcam"])
        obs.current_scene = "Main"
        async with console_session(outage_config(db_path, obs.port), base_dir=tmp_path) as bot:
            await bot.run("/tip alice 100")
            redeem = asyncio.create_task(bot.run("alice: !brb"))
            await until(lambda: obs.current_scene == "BRB")
            await obs.stop()
            await redeem

            obs.current_scene = "Gaming"  # the streamer picked a scene while the bot was cut off
            await obs.start()
            await until(lambda: not outage_of(bot).down)
            await bot.verified()

    assert obs.current_scene == "Gaming"
    assert ("SetCurrentProgramScene", {"sceneName": "Main"}) not in obs.requests
    assert rows(db_path, "SELECT item_id, outcome FROM obs_undos") == [(1, "stale")]
    assert_refunded_once(db_path, 1, "alice", 10)


async def stop_while_obs_is_down_mid_effect(config: Config, obs: FakeObs, tmp_path: Path) -> None:
    """A bot that switched to BRB for alice's !brb, then lost OBS and stopped: the undo (back
    to Main) is left pending in the database, and OBS is left down."""
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run("/tip alice 100")
        redeem = asyncio.create_task(bot.run("alice: !brb"))
        await until(lambda: obs.current_scene == "BRB")
        await obs.stop()
        await redeem


async def test_a_pending_undo_survives_a_restart_of_the_bot(db_path: Path, tmp_path: Path) -> None:
    async with FakeObs(password=PASSWORD) as obs:
        config = outage_config(db_path, obs.port)
        await stop_while_obs_is_down_mid_effect(config, obs, tmp_path)
        # the bot stopped while OBS was down; both come back
        await obs.start()
        async with console_session(config, base_dir=tmp_path) as bot:
            await until(lambda: obs.current_scene == "Main")  # at start, no effect needed
            # (the undo is recorded after OBS has switched: a stop before that would cut it)
            await until_undos(bot, [(1, "applied")])
            await bot.verified()

    assert obs.request_types()[-2:] == ["GetCurrentProgramScene", "SetCurrentProgramScene"]
    assert rows(db_path, "SELECT item_id, outcome FROM obs_undos") == [(1, "applied")]


async def test_a_stop_during_the_put_back_at_start_lets_it_be_recorded(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the stop cancelled the put-back between OBS switching back and the record of
    it: the undo stayed pending, and the next start called it stale ("the stream changed")."""
    async with FakeObs(password=PASSWORD) as obs:
        config = outage_config(db_path, obs.port)
        await stop_while_obs_is_down_mid_effect(config, obs, tmp_path)
        await obs.start()
        recording = asyncio.Event()
        settle = ObsUndoStore.settle

        async def slow_settle(self: ObsUndoStore, undo_id: int, outcome: Any, detail: str) -> None:
            recording.set()
            await asyncio.sleep(0.5)  # a busy database: the record comes after the stop
            await settle(self, undo_id, outcome, detail)

        monkeypatch.setattr(ObsUndoStore, "settle", slow_settle)
        async with console_session(config, base_dir=tmp_path):
            await asyncio.wait_for(recording.wait(), 10)  # OBS switched back; stop now
        assert obs.current_scene == "Main"
        assert rows(db_path, "SELECT item_id, outcome FROM obs_undos") == [(1, "applied")]
