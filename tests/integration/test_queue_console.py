"""The durable queue end to end through the real console stream: exact transcripts, then the
database.

Every test opens the console the way ``python bot.py console --script`` does (scripted: a fake
clock, the wheel's fixed seed, no audio), with the real engine on a real SQLite file, the real
cogs and the real workers: TTS renders with espeak-ng, the wheel draws, effects talk to a fake
obs-websocket v5 server through the real client. In scripted mode the queue only runs inside
``console.drain()``, which ``run_lines`` calls after every line, so each outcome prints right
after the line that caused it.

A failed or cancelled item must be refunded exactly once: one ``kind='refund'`` row whose
``refund_of`` is the item's ``charge_ref``, and ``verify`` agrees with every balance.
"""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelbot.config import Config
from pixelbot.testing import console_session, make_config
from pixelbot.testing_db import database_url, query
from tests.fakes.obs_server import FakeObs

ROOMY = {"reply_rate": {"messages": 100, "per": "30s"}}  # no reply is dropped
TTS_REDEEM = {"title": "Text-to-Speech", "cost": 25, "action": {"type": "tts"}}
REDEEMS: dict[str, Any] = {
    "tts": TTS_REDEEM,
    "spin": {"title": "Prize Wheel", "cost": 10, "action": {"type": "wheel", "wheel": "main"}},
}
NOTHING_LEFT = "nothing left to say after the filter"


def config_for(db_path: Path, **sections: Any) -> Config:
    return make_config(db_path, **{"redeems": REDEEMS, "commands": ROOMY, **sections})


def tts_section(db_path: Path, **settings: Any) -> dict[str, Any]:
    """A ``tts:`` section that keeps the spoken files with the test (like ``make_config``)."""
    return {"dir": str(db_path.parent / "tts"), **settings}


# ----------------------------------------------------------------------------- database state


def rows(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """What is committed in the database the test names by ``db_path`` (either backend)."""
    return query(database_url(db_path), sql, *params)


def balances(db_path: Path) -> dict[str, int]:
    return dict(rows(db_path, "SELECT display_name, points FROM users ORDER BY id"))


@dataclass(frozen=True)
class Item:
    id: int
    kind: str
    status: str
    error: str | None
    result: dict[str, Any] | None
    charge_ref: str | None
    cost: int
    payload: dict[str, Any]


def items(db_path: Path) -> dict[int, Item]:
    found = rows(
        db_path,
        "SELECT id, kind, status, error, result, charge_ref, cost, payload "
        "FROM queue_items ORDER BY id",
    )
    return {
        row[0]: Item(
            row[0],
            row[1],
            row[2],
            row[3],
            None if row[4] is None else json.loads(row[4]),
            row[5],
            row[6],
            json.loads(row[7]),
        )
        for row in found
    }


def statuses(db_path: Path) -> dict[int, tuple[str, str | None]]:
    return {item.id: (item.status, item.error) for item in items(db_path).values()}


def refunds(db_path: Path) -> list[tuple[str, int, str]]:
    """Every refund: (who, amount, the charge it refunds)."""
    return rows(
        db_path,
        "SELECT u.display_name, t.amount, t.refund_of FROM transactions t "
        "JOIN users u ON u.id = t.user_id WHERE t.kind = 'refund' ORDER BY t.id",
    )


def assert_refunded_once(db_path: Path, item_id: int, who: str, amount: int) -> None:
    item = items(db_path)[item_id]
    assert item.charge_ref is not None
    assert [r for r in refunds(db_path) if r[2] == item.charge_ref] == [
        (who, amount, item.charge_ref)
    ]
    charge = rows(db_path, "SELECT amount, kind FROM transactions WHERE ref = ?", item.charge_ref)
    assert charge == [(-amount, "spend")]


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def state(db_path: Path) -> dict[str, Any]:
    """Everything a refusal must leave alone (the refused chat line itself is an event)."""
    return {
        "wallets": rows(db_path, "SELECT id, display_name, points, xp, level FROM users"),
        "transactions": rows(
            db_path, "SELECT user_id, amount, balance_after, kind, reason, ref FROM transactions"
        ),
        "queue_items": rows(db_path, "SELECT id, kind, status, user_id, cost FROM queue_items"),
        "cooldowns": rows(db_path, "SELECT scope, key, expires_at FROM cooldowns ORDER BY 1, 2"),
    }


# ----------------------------------------------------------------------------- TTS


async def test_tts_filters_the_text_and_writes_a_real_wav(db_path: Path, tmp_path: Path) -> None:
    config = config_for(db_path)
    async with console_session(config, base_dir=tmp_path) as bot:
        lines = await bot.run(
            "/tip alice 100",
            "alice: !tts hello https://spam.example.com LUL LUL LUL LUL",
            "alice: !points",
        )
        assert lines == [
            "Pixel: Thanks for the tip, alice! +100 pixels",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            # the operator sees what was asked for; only the filtered text is spoken
            "[tts] #1 pending: Text-to-Speech for alice: "
            "hello https://spam.example.com LUL LUL LUL LUL",
            "[tts] #1 spoke tts-1.wav: alice says, hello LUL LUL",
            "Pixel: @alice you have 76 pixels",
        ]
        await bot.verified()

    [item] = items(db_path).values()
    assert (item.kind, item.status, item.error, item.cost) == ("tts", "done", None, 25)
    assert item.result is not None
    wav = tmp_path / "tts" / "tts-1.wav"
    assert item.result["file"] == str(wav)
    assert item.result["spoken"] == "alice says, hello LUL LUL"
    assert item.result["seconds"] > 0
    with wave.open(str(wav), "rb") as audio:
        assert audio.getnframes() > 0
        assert audio.getnchannels() == 1
        assert audio.getframerate() > 0
    assert balances(db_path) == {"alice": 76}  # 100 + 1 (chat) - 25
    assert refunds(db_path) == []


async def test_banned_words_are_not_spoken_and_nothing_left_is_refunded(
    db_path: Path, tmp_path: Path
) -> None:
    config = config_for(db_path, tts=tts_section(db_path, banned_words=["darn"]))
    async with console_session(config, base_dir=tmp_path) as bot:
        lines = await bot.run(
            "/tip alice 100",
            "alice: !tts darn it is DARN good",
            "alice: !tts darn https://spam.example.com Darn! www.example.org",
            "/tip darn 100",  # a banned display name is not said either
            "darn: !tts hello",
            "alice: !points",
        )
        assert lines == [
            "Pixel: Thanks for the tip, alice! +100 pixels",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: darn it is DARN good",
            "[tts] #1 spoke tts-1.wav: alice says, it is good",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #2)",
            "[tts] #2 pending: Text-to-Speech for alice: "
            "darn https://spam.example.com Darn! www.example.org",
            f"[tts] #2 failed: {NOTHING_LEFT}; refunded 25 pixels to alice",
            f"Pixel: @alice your Text-to-Speech didn't happen: {NOTHING_LEFT}. "
            "Your 25 pixels are back.",
            "Pixel: Thanks for the tip, darn! +100 pixels",
            "Pixel: @darn Text-to-Speech redeemed for 25 pixels (queued as #3)",
            "[tts] #3 pending: Text-to-Speech for darn: hello",
            "[tts] #3 spoke tts-3.wav: someone says, hello",
            "Pixel: @alice you have 76 pixels",
        ]
        await bot.verified()

    assert statuses(db_path) == {1: ("done", None), 2: ("failed", NOTHING_LEFT), 3: ("done", None)}
    assert items(db_path)[2].result is None
    assert not (tmp_path / "tts" / "tts-2.wav").exists()
    assert balances(db_path) == {"alice": 76, "darn": 76}  # 100 + 1 - 25 (- 25 + 25)
    assert len(refunds(db_path)) == 1
    assert_refunded_once(db_path, 2, "alice", 25)


# ----------------------------------------------------------------------------- moderation


QUEUED_THREE = (
    "Pixel: Queue: #1 Text-to-Speech for alice; #2 Text-to-Speech for alice; "
    "#3 Text-to-Speech for alice; paused: tts"
)
CLEARED = "the queue was cleared by a moderator"


async def test_moderators_pause_list_clear_and_resume_the_queue(
    db_path: Path, tmp_path: Path
) -> None:
    config = config_for(db_path)
    async with console_session(config, base_dir=tmp_path) as bot:
        assert await bot.run("/mod mia", "mia: !pause tts", "/tip alice 100") == [
            "[console] mia is a moderator",
            "Pixel: @mia paused: tts",
            "Pixel: Thanks for the tip, alice! +100 pixels",
        ]
        assert await bot.run("alice: !tts one", "alice: !tts two", "alice: !tts three") == [
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: one",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #2)",
            "[tts] #2 pending: Text-to-Speech for alice: two",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #3)",
            "[tts] #3 pending: Text-to-Speech for alice: three",
        ]
        assert statuses(db_path) == {n: ("pending", None) for n in (1, 2, 3)}
        assert balances(db_path)["alice"] == 26

        # everyone may look; only moderators act
        was = state(db_path)
        assert await bot.run(
            "alice: !queue",
            "alice: !skip",
            "alice: !clearqueue",
            "alice: !pause",
            "alice: !resume tts",
            "mia: !skip",
            "mia: !queue wheel",
        ) == [
            QUEUED_THREE,
            "Pixel: @alice !skip is for moderators only",
            "Pixel: @alice !clearqueue is for moderators only",
            "Pixel: @alice !pause is for moderators only",
            "Pixel: @alice !resume is for moderators only",
            "Pixel: @mia nothing is playing",
            "Pixel: Queue: nothing waiting",
        ]
        assert state(db_path) == was

        assert await bot.run("mia: !clearqueue") == [
            f"[tts] #1 cancelled: {CLEARED}; refunded 25 pixels to alice",
            f"Pixel: @alice your Text-to-Speech was cancelled ({CLEARED}). "
            "Your 25 pixels are back.",
            f"[tts] #2 cancelled: {CLEARED}; refunded 25 pixels to alice",
            f"Pixel: @alice your Text-to-Speech was cancelled ({CLEARED}). "
            "Your 25 pixels are back.",
            f"[tts] #3 cancelled: {CLEARED}; refunded 25 pixels to alice",
            f"Pixel: @alice your Text-to-Speech was cancelled ({CLEARED}). "
            "Your 25 pixels are back.",
            "Pixel: @mia cleared 3 item(s), refunded 75 pixels",
        ]
        # a second clear finds nothing: nobody is refunded twice
        assert await bot.run("mia: !clearqueue") == [
            "Pixel: @mia cleared 0 item(s), refunded 0 pixels"
        ]
        assert await bot.run("mia: !resume tts", "mia: !queue") == [
            "Pixel: @mia resumed: tts",
            "Pixel: Queue: nothing waiting",  # the cancelled items never play
        ]
        assert await bot.run("mia: !pause nosuch", "mia: !resume nosuch") == [
            "Pixel: @mia there is no nosuch queue (queues: tts, wheel, effect, ai). "
            "Usage: !pause [tts|wheel|effect|ai]",
            "Pixel: @mia there is no nosuch queue (queues: tts, wheel, effect, ai). "
            "Usage: !resume [tts|wheel|effect|ai]",
        ]
        assert await bot.run("mia: !pause", "mia: !queue", "mia: !resume") == [
            "Pixel: @mia paused: tts, wheel, effect, ai",
            "Pixel: Queue: paused: ai, effect, tts, wheel",
            "Pixel: @mia resumed: tts, wheel, effect, ai",
        ]
        await bot.verified()

    assert statuses(db_path) == {n: ("cancelled", CLEARED) for n in (1, 2, 3)}
    assert balances(db_path) == {"mia": 1, "alice": 101}
    assert len(refunds(db_path)) == 3
    for item_id in (1, 2, 3):
        assert_refunded_once(db_path, item_id, "alice", 25)
    assert rows(db_path, "SELECT kind, paused FROM queue_controls ORDER BY kind") == [
        ("ai", 0),
        ("effect", 0),
        ("tts", 0),
        ("wheel", 0),
    ]


async def test_a_full_tts_queue_refuses_before_charging(db_path: Path, tmp_path: Path) -> None:
    config = config_for(db_path, tts=tts_section(db_path, max_queue=2))
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run("/mod mia", "mia: !pause tts", "/tip alice 100")
        assert await bot.run("alice: !tts one", "alice: !tts two") == [
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: one",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #2)",
            "[tts] #2 pending: Text-to-Speech for alice: two",
        ]
        was = state(db_path)

        assert await bot.run("alice: !tts three") == [
            "Pixel: @alice the tts queue is full (2 waiting), try again soon"
        ]
        assert state(db_path) == was  # not charged, not queued
        assert await bot.run("alice: !points") == ["Pixel: @alice you have 51 pixels"]

        # once one plays, there is room again
        assert await bot.run("mia: !resume tts", "alice: !tts three") == [
            "Pixel: @mia resumed: tts",
            "[tts] #1 spoke tts-1.wav: alice says, one",
            "[tts] #2 spoke tts-2.wav: alice says, two",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #3)",
            "[tts] #3 pending: Text-to-Speech for alice: three",
            "[tts] #3 spoke tts-3.wav: alice says, three",
        ]
        await bot.verified()

    assert balances(db_path) == {"mia": 1, "alice": 26}
    assert rows(db_path, "SELECT count(*) FROM transactions WHERE kind = 'spend'") == [(3,)]
    assert refunds(db_path) == []


async def test_a_full_tts_queue_names_the_tts_queue_for_any_tts_redeem(
    db_path: Path, tmp_path: Path
) -> None:
    redeems = {
        "tts": TTS_REDEEM,
        "shout": {"title": "Shout", "cost": 25, "action": {"type": "tts"}},
    }
    config = config_for(db_path, redeems=redeems, tts=tts_section(db_path, max_queue=1))
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run("/mod mia", "mia: !pause tts", "/tip alice 100", "alice: !tts one")
        was = state(db_path)
        assert await bot.run("alice: !shout two") == [
            "Pixel: @alice the tts queue is full (1 waiting), try again soon"
        ]
        assert state(db_path) == was


DELETED = "the message was deleted"
TIMED_OUT = "timed out by a moderator"
BANNED = "banned by a moderator"


def cancelled(item_id: int, who: str, reason: str) -> list[str]:
    return [
        f"[tts] #{item_id} cancelled: {reason}; refunded 25 pixels to {who}",
        f"Pixel: @{who} your Text-to-Speech was cancelled ({reason}). Your 25 pixels are back.",
    ]


async def test_deleting_timing_out_or_banning_cancels_their_tts(
    db_path: Path, tmp_path: Path
) -> None:
    config = config_for(db_path)
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run(
            "/mod mia",
            "mia: !pause tts",
            *(f"/tip {name} 100" for name in ("alice", "bob", "carol", "dave")),
        )
        # alice's last message is her second redeem: only that one is cancelled
        assert await bot.run("alice: !tts one", "alice: !tts two", "/delete alice") == [
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: one",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #2)",
            "[tts] #2 pending: Text-to-Speech for alice: two",
            *cancelled(2, "alice", DELETED),
            "[console] deleted alice's last message",
        ]
        assert await bot.run("bob: !tts three", "/timeout bob 10m") == [
            "Pixel: @bob Text-to-Speech redeemed for 25 pixels (queued as #3)",
            "[tts] #3 pending: Text-to-Speech for bob: three",
            *cancelled(3, "bob", TIMED_OUT),
            "[console] bob is timed out for 10m",
        ]
        # a ban cancels every TTS of theirs that is waiting
        assert await bot.run("carol: !tts four", "carol: !tts five", "/ban carol") == [
            "Pixel: @carol Text-to-Speech redeemed for 25 pixels (queued as #4)",
            "[tts] #4 pending: Text-to-Speech for carol: four",
            "Pixel: @carol Text-to-Speech redeemed for 25 pixels (queued as #5)",
            "[tts] #5 pending: Text-to-Speech for carol: five",
            *cancelled(4, "carol", BANNED),
            *cancelled(5, "carol", BANNED),
            "[console] carol is banned",
        ]
        # nothing of theirs is left: doing it again refunds nothing
        assert await bot.run("/ban carol", "/timeout bob 1h", "/ban nobody") == [
            "[console] carol is banned",
            "[console] bob is timed out for 1h",
            "[console] nobody is banned",
        ]
        assert await bot.run("dave: !tts six", "mia: !resume tts") == [
            "Pixel: @dave Text-to-Speech redeemed for 25 pixels (queued as #6)",
            "[tts] #6 pending: Text-to-Speech for dave: six",
            "Pixel: @mia resumed: tts",
            "[tts] #1 spoke tts-1.wav: alice says, one",
            "[tts] #6 spoke tts-6.wav: dave says, six",
        ]
        assert await bot.run("/delete alice") == ["[console] alice has not said anything to delete"]
        await bot.verified()

    assert statuses(db_path) == {
        1: ("done", None),
        2: ("cancelled", DELETED),
        3: ("cancelled", TIMED_OUT),
        4: ("cancelled", BANNED),
        5: ("cancelled", BANNED),
        6: ("done", None),
    }
    # 100 + 1 (chat) - spent, refunds back
    assert balances(db_path) == {"mia": 1, "alice": 76, "bob": 101, "carol": 101, "dave": 76}
    assert len(refunds(db_path)) == 4
    assert_refunded_once(db_path, 2, "alice", 25)
    assert_refunded_once(db_path, 3, "bob", 25)
    assert_refunded_once(db_path, 4, "carol", 25)
    assert_refunded_once(db_path, 5, "carol", 25)


async def test_a_pause_survives_a_restart(db_path: Path, tmp_path: Path) -> None:
    config = config_for(db_path)
    async with console_session(config, base_dir=tmp_path) as bot:
        assert await bot.run("/mod mia", "mia: !pause tts", "/tip alice 100") == [
            "[console] mia is a moderator",
            "Pixel: @mia paused: tts",
            "Pixel: Thanks for the tip, alice! +100 pixels",
        ]
    assert rows(db_path, "SELECT kind, paused, updated_by FROM queue_controls") == [
        ("tts", 1, "mia")
    ]

    async with console_session(config, base_dir=tmp_path) as bot:
        assert await bot.run("/mod mia", "mia: !queue", "alice: !tts hello") == [
            "[console] mia is a moderator",  # roles are the console's: given again
            "Pixel: Queue: paused: tts",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: hello",
        ]
        assert await bot.run("/drain", "/tick 60", "/drain", "mia: !queue") == [
            "Pixel: Queue: #1 Text-to-Speech for alice; paused: tts"
        ]
        assert statuses(db_path) == {1: ("pending", None)}
        assert await bot.run("mia: !resume tts", "mia: !queue") == [
            "Pixel: @mia resumed: tts",
            "[tts] #1 spoke tts-1.wav: alice says, hello",
            "Pixel: Queue: nothing waiting",
        ]
        await bot.verified()

    assert statuses(db_path) == {1: ("done", None)}
    assert rows(db_path, "SELECT kind, paused FROM queue_controls") == [("tts", 0)]
    async with console_session(config, base_dir=tmp_path) as bot:  # and resumed stays resumed
        assert await bot.run("/tick 60", "mia: !queue") == ["Pixel: Queue: nothing waiting"]
    # every run's clock starts at the same instant and the chat cooldown is stored: mia earned
    # at the first start and after the first /tick 60, never twice in one minute
    assert balances(db_path) == {"mia": 2, "alice": 76}


# ----------------------------------------------------------------------------- the wheel

WHEELS = {
    "main": {
        "prizes": [
            {"name": "50 Points", "points": 50},
            {"name": "20 XP", "xp": 20},
            {"name": "Confetti", "effect": "confetti"},
            {"name": "Shout-out", "message": "shout-out to {user}!"},
            {"name": "Nothing"},
        ]
    }
}
EFFECTS = {"confetti": {"steps": [{"say": "confetti for {user}!"}]}}
SPUN = [
    "Pixel: Thanks for the tip, alice! +200 pixels",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #1)",
    "[wheel] #1 pending: Prize Wheel for alice",
    "[wheel] #1 alice won 50 Points (roll 0.1191); +50 pixels",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won 50 Points!",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #2)",
    "[wheel] #2 pending: Prize Wheel for alice",
    "[wheel] #2 alice won Confetti (roll 0.5025); effect queued as #3",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won Confetti!",
    "Pixel: confetti for alice!",  # the follow-up effect's say step
    "[effect] #3 Confetti for alice: say",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #4)",
    "[wheel] #4 pending: Prize Wheel for alice",
    "[wheel] #4 alice won Confetti (roll 0.5118); effect queued as #5",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won Confetti!",
    "Pixel: confetti for alice!",
    "[effect] #5 Confetti for alice: say",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #6)",
    "[wheel] #6 pending: Prize Wheel for alice",
    "[wheel] #6 alice won Nothing (roll 0.8600)",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won Nothing!",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #7)",
    "[wheel] #7 pending: Prize Wheel for alice",
    "[wheel] #7 alice won 50 Points (roll 0.1026); +50 pixels",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won 50 Points!",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #8)",
    "[wheel] #8 pending: Prize Wheel for alice",
    "[wheel] #8 alice won 20 XP (roll 0.2233); +20 XP",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won 20 XP!",
    "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #9)",
    "[wheel] #9 pending: Prize Wheel for alice",
    "[wheel] #9 alice won Shout-out (roll 0.6010)",
    "Pixel: alice is spinning the wheel!",
    "Pixel: alice won Shout-out!",
    "Pixel: shout-out to alice!",
    "Pixel: @alice you have 231 pixels",
]


async def spin_seven_times(db_path: Path) -> list[str]:
    config = config_for(db_path, wheels=WHEELS, effects=EFFECTS)
    async with console_session(config, base_dir=db_path.parent) as bot:
        lines = await bot.run("/tip alice 200", *["alice: !spin"] * 7, "alice: !points")
        await bot.verified()
    return lines


async def test_the_wheel_draws_pays_and_queues_its_effect(db_path: Path, tmp_path: Path) -> None:
    assert await spin_seven_times(db_path) == SPUN

    spins = {n: item for n, item in items(db_path).items() if item.kind == "wheel"}
    assert list(spins) == [1, 2, 4, 6, 7, 8, 9]
    prizes = {}
    for n, spin in spins.items():
        assert (spin.status, spin.error, spin.cost) == ("done", None, 10)
        assert spin.result is not None
        assert spin.result["wheel"] == "main"
        assert 0 <= spin.result["roll"] < 1
        assert spin.result["chance"] == 0.2
        prizes[n] = (spin.result["prize"], spin.result["prize_kind"], spin.result["prize_index"])
    assert prizes == {
        1: ("50 Points", "points", 0),
        2: ("Confetti", "effect", 2),
        4: ("Confetti", "effect", 2),
        6: ("Nothing", "nothing", 4),
        7: ("50 Points", "points", 0),
        8: ("20 XP", "xp", 1),
        9: ("Shout-out", "message", 3),
    }
    assert [f"{spin.result['roll']:.4f}" for spin in spins.values() if spin.result] == [
        "0.1191",  # the rolls the transcript shows
        "0.5025",
        "0.5118",
        "0.8600",
        "0.1026",
        "0.2233",
        "0.6010",
    ]

    # prizes are ledgered with the spin as their reference
    assert rows(
        db_path,
        "SELECT amount, kind, reason, ref FROM transactions "
        "WHERE reason LIKE 'wheel:%' ORDER BY id",
    ) == [
        (50, "grant", "wheel:main:50 Points", "queue:1:prize:0"),
        (50, "grant", "wheel:main:50 Points", "queue:7:prize:0"),
    ]
    assert rows(
        db_path, "SELECT amount, reason, ref FROM xp_transactions WHERE reason LIKE 'wheel:%'"
    ) == [(20, "wheel:main:20 XP", "queue:8:prize:0")]

    # an effect prize is a free follow-up item, performed after its spin
    effects = {n: item for n, item in items(db_path).items() if item.kind == "effect"}
    assert list(effects) == [3, 5]
    for n, spin_id in ((3, 2), (5, 4)):
        effect = effects[n]
        assert (effect.status, effect.cost, effect.charge_ref) == ("done", 0, None)
        assert effect.payload["prize_of"] == spin_id
        assert effect.payload["title"] == "Confetti"
        assert effect.result == {"steps": [{"do": "say", "message": "confetti for alice!"}]}

    assert balances(db_path) == {"alice": 231}  # 200 + 1 - 7 * 10 + 2 * 50
    assert rows(db_path, "SELECT xp FROM users") == [(41,)]  # 20 (tip) + 1 (chat) + 20
    assert refunds(db_path) == []

    # the same script on a fresh database: the same draws, the same transcript
    again = tmp_path / "again" / "pixel.db"
    again.parent.mkdir()
    assert await spin_seven_times(again) == SPUN


# ----------------------------------------------------------------------------- OBS

OBS_PASSWORD = "hunter2"
OBS_REDEEMS: dict[str, Any] = {
    "gaming": {
        "title": "Gaming Scene",
        "cost": 10,
        "action": {"type": "obs", "do": "switch_scene", "scene": "Gaming"},
    },
    "nowhere": {
        "title": "Nowhere",
        "cost": 10,
        "action": {"type": "obs", "do": "switch_scene", "scene": "Nowhere"},
    },
}


def obs_config(db_path: Path, port: int, *, enabled: bool = True, **settings: Any) -> Config:
    obs = {
        **settings,
        "enabled": enabled,
        "host": "127.0.0.1",
        "port": port,
        "password": OBS_PASSWORD,
        "reconnect": {"attempts": 1, "backoff": "0s"},
        "timeout": "2s",
    }
    return config_for(db_path, redeems=OBS_REDEEMS, obs=obs)


async def test_an_obs_redeem_switches_the_scene(db_path: Path, tmp_path: Path) -> None:
    async with FakeObs(password=OBS_PASSWORD) as obs:
        obs.add_scene("Gaming", ["Webcam"])
        obs.current_scene = "Main"
        async with console_session(obs_config(db_path, obs.port), base_dir=tmp_path) as bot:
            assert await bot.run("/tip alice 100", "alice: !gaming") == [
                "Pixel: Thanks for the tip, alice! +100 pixels",
                "Pixel: @alice Gaming Scene redeemed for 10 pixels (queued as #1)",
                "[effect] #1 pending: Gaming Scene for alice",
                "[effect] #1 Gaming Scene for alice: switch_scene",
            ]
            assert obs.current_scene == "Gaming"
            assert ("SetCurrentProgramScene", {"sceneName": "Gaming"}) in obs.requests
            await bot.verified()

    [item] = items(db_path).values()
    assert (item.status, item.error) == ("done", None)
    assert item.result == {"steps": [{"do": "switch_scene", "scene": "Gaming"}]}
    assert balances(db_path) == {"alice": 91}
    assert refunds(db_path) == []


async def test_a_scene_obs_does_not_have_fails_and_refunds(db_path: Path, tmp_path: Path) -> None:
    no_scene = "OBS has no scene named 'Nowhere'"
    async with (
        FakeObs(password=OBS_PASSWORD) as obs,
        console_session(obs_config(db_path, obs.port), base_dir=tmp_path) as bot,
    ):
        assert await bot.run("/tip alice 100", "alice: !nowhere", "alice: !points") == [
            "Pixel: Thanks for the tip, alice! +100 pixels",
            "Pixel: @alice Nowhere redeemed for 10 pixels (queued as #1)",
            "[effect] #1 pending: Nowhere for alice",
            f"[effect] #1 failed: {no_scene}; refunded 10 pixels to alice",
            f"Pixel: @alice your Nowhere didn't happen: {no_scene}. Your 10 pixels are back.",
            "Pixel: @alice you have 101 pixels",
        ]
        assert obs.current_scene == "Main"
        await bot.verified()

    assert statuses(db_path) == {1: ("failed", no_scene)}
    assert items(db_path)[1].result is None
    assert balances(db_path) == {"alice": 101}
    assert len(refunds(db_path)) == 1
    assert_refunded_once(db_path, 1, "alice", 10)


async def test_obs_going_away_refunds_the_redeem_and_the_bot_goes_on(
    db_path: Path, tmp_path: Path
) -> None:
    """``obs.when_down: refund``; holding is tested in test_obs_outage.py."""
    async with FakeObs(password=OBS_PASSWORD) as obs:
        obs.add_scene("Gaming", ["Webcam"])
        config = obs_config(db_path, obs.port, when_down="refund")
        async with console_session(config, base_dir=tmp_path) as bot:
            await bot.run("/tip alice 100", "/tip bob 100", "alice: !gaming")
            assert obs.current_scene == "Gaming"
            obs.current_scene = "Main"

            await obs.stop()  # OBS quits while the bot is connected
            assert await bot.run("bob: !gaming", "/tick 60", "bob: !points", "alice: !gaming") == [
                "Pixel: @bob Gaming Scene redeemed for 10 pixels (queued as #2)",
                "[effect] #2 pending: Gaming Scene for bob",
                "[effect] #2 failed: OBS is down; refunded 10 pixels to bob",
                "Pixel: OBS is down: refunded 1 effect (@bob).",
                "Pixel: @bob you have 102 pixels",
                "Pixel: @alice gaming is not available: OBS is down",  # nothing charged
            ]
            assert statuses(db_path)[2] == ("failed", "OBS is down")

            await obs.start()  # back on the same port: the probe finds it, redeems work again
            # (the probe's wait doubles up to 5 s: the 5 s this waited by default was too close)
            await until(lambda: not bot.app.queue.runner.outage("effect").down, seconds=15)  # type: ignore[union-attr]
            assert await bot.run("bob: !gaming") == [
                "Pixel: @bob Gaming Scene redeemed for 10 pixels (queued as #3)",
                "[effect] #3 pending: Gaming Scene for bob",
                "[effect] #3 Gaming Scene for bob: switch_scene",
            ]
            assert obs.current_scene == "Gaming"
            await bot.verified()

    assert statuses(db_path) == {1: ("done", None), 2: ("failed", "OBS is down"), 3: ("done", None)}
    assert balances(db_path) == {"alice": 92, "bob": 92}
    assert len(refunds(db_path)) == 1
    assert_refunded_once(db_path, 2, "bob", 10)


async def test_a_redeem_that_needs_obs_is_refused_when_obs_is_off(
    db_path: Path, tmp_path: Path
) -> None:
    config = obs_config(db_path, 4455, enabled=False)
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run("/tip alice 100", "alice: hi")
        was = state(db_path)
        assert await bot.run("alice: !gaming", "alice: !redeem nowhere", "alice: !redeems") == [
            "Pixel: @alice gaming is not available: it needs OBS, and OBS is not enabled",
            "Pixel: @alice nowhere is not available: it needs OBS, and OBS is not enabled",
            "Pixel: Redeems: !gaming (10, unavailable), !nowhere (10, unavailable)",
        ]
        assert state(db_path) == was  # nothing charged, nothing queued
        assert await bot.run("alice: !points") == ["Pixel: @alice you have 101 pixels"]
        await bot.verified()

    assert items(db_path) == {}
    assert balances(db_path) == {"alice": 101}
