"""The console stream end to end, in-process: scripted lines in, the exact transcript out.

Every test runs the real engine on a real SQLite file with the real console adapter; only the
clock is fake (scripted runs start at ``SCRIPT_START`` and move on ``/tick``). Transcripts are
compared whole. Refusals are checked twice: the reply a viewer sees, and the database, which
must be exactly as it was (the refused chat line itself is logged as an event, nothing else).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pixelbot.app.console_run import run_console
from pixelbot.config import Config, load_config
from pixelbot.db.verify import verify
from pixelbot.events import ChatMessage
from pixelbot.testing import console_session, make_config, open_test_engine
from pixelbot.testing_db import database_url, query

GREETING = (
    "Pixel: Hi! This is the console stream. Chat as anyone: 'alice: hello', then "
    "'alice: !points' or '!redeems'. Operator lines: /help. /quit ends."
)

REDEEMS: dict[str, Any] = {
    "tts": {
        "title": "Text-to-Speech",
        "cost": 25,
        "cooldown": "10s",
        "action": {"type": "tts", "max_chars": 20},
    },
    "spin": {"title": "Prize Wheel", "cost": 100, "action": {"type": "wheel", "wheel": "main"}},
    "clip": {
        "title": "Save Clip",
        "permission": "subscriber",
        "action": {"type": "obs", "do": "clip"},
    },
    "hydrate": {
        "title": "Hydrate!",
        "cost": 1,
        "max_per_stream": 2,
        "action": {"type": "chat", "message": "drink some water"},
    },
    "wave": {
        "title": "Wave",
        "cost": 1,
        "max_per_user_per_stream": 1,
        "action": {"type": "chat", "message": "o/"},
    },
}
ROOMY = {"reply_rate": {"messages": 100, "per": "30s"}}  # no reply is dropped unless a test asks


def config_for(db_path: Path, **sections: Any) -> Config:
    return make_config(db_path, **{"redeems": REDEEMS, "commands": ROOMY, **sections})


@pytest.fixture
def config(db_path: Path) -> Config:
    return config_for(db_path)


async def transcript(
    config: Config, script: Iterable[str], config_path: Path | None = None
) -> list[str]:
    """What ``python bot.py console --script`` prints, as a list of lines."""
    lines: list[str] = []
    await run_console(config, config_path, script=list(script), out=lines.append)
    return lines


# ----------------------------------------------------------------------------- database state


def rows(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """What is committed in the database the test names by ``db_path`` (either backend)."""
    return query(database_url(db_path), sql, *params)


def count(db_path: Path, table: str) -> int:
    return int(rows(db_path, f"SELECT count(*) FROM {table}")[0][0])


def balances(db_path: Path) -> dict[str, int]:
    return dict(rows(db_path, "SELECT display_name, points FROM users ORDER BY id"))


def state(db_path: Path) -> dict[str, Any]:
    """Everything a refusal must leave alone (events are compared separately)."""
    return {
        "wallets": rows(db_path, "SELECT id, display_name, points, xp, level FROM users"),
        "transactions": rows(
            db_path, "SELECT user_id, amount, balance_after, kind, reason FROM transactions"
        ),
        "xp_transactions": count(db_path, "xp_transactions"),
        "queue_items": rows(
            db_path, "SELECT id, kind, status, redeem_key, user_id, cost FROM queue_items"
        ),
        "cooldowns": rows(db_path, "SELECT scope, key, expires_at FROM cooldowns ORDER BY 1, 2"),
        "redeems": rows(db_path, "SELECT key, cost, enabled_override FROM redeems ORDER BY 1"),
        "stream_sessions": count(db_path, "stream_sessions"),
    }


async def assert_verified(config: Config) -> None:
    async with open_test_engine(config) as engine:
        report = await verify(engine.db)
    assert report.ok, report.violations


# ----------------------------------------------------------------------------- a stream


async def test_earning_thanks_and_a_redeem(config: Config, db_path: Path) -> None:
    lines = await transcript(
        config,
        [
            "alice: hello",  # +1 point, +1 XP
            "alice: again",  # the 60 s chat cooldown: nothing
            "/tick 61",
            "alice: still here",  # +1
            "/follow alice",  # +50, +10 XP
            "/sub alice",  # +200, +50 XP
            "/tip alice 12.50",  # +12 (fractions round down), +1 XP
            "/follow alice",  # a refollow pays nothing and is not thanked
            "alice: !points",
            "alice: !tts hello",
            "alice: !points",
            "bob: !points alice",
            "/cheer alice 1000",  # +1,000 and +100 XP: 163 XP is level 2
        ],
    )
    assert lines == [
        GREETING,
        "Pixel: Thanks for the follow, alice! +50 pixels",
        "Pixel: Thanks for the sub, alice! +200 pixels",
        "Pixel: Thanks for the tip, alice! +12 pixels",
        "Pixel: @alice you have 264 pixels",
        "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
        "[tts] #1 pending: Text-to-Speech for alice: hello",
        "[tts] #1 spoke tts-1.wav: alice says, hello",
        "Pixel: @alice you have 239 pixels",
        "Pixel: @bob alice has 239 pixels",
        "Pixel: Thanks for the bits, alice! +1,000 pixels",
        "Pixel: alice reached level 2!",
    ]

    assert balances(db_path) == {"alice": 1239, "bob": 1}
    assert rows(db_path, "SELECT xp, level FROM users WHERE display_name = 'alice'") == [(163, 2)]
    alice_ledger = rows(
        db_path,
        "SELECT amount, balance_after, kind, reason FROM transactions t "
        "JOIN users u ON u.id = t.user_id WHERE u.display_name = 'alice' ORDER BY t.id",
    )
    assert alice_ledger == [
        (1, 1, "earn", "chat"),
        (1, 2, "earn", "chat"),
        (50, 52, "earn", "follow"),
        (200, 252, "earn", "sub"),
        (12, 264, "earn", "tip"),
        (-25, 239, "spend", "redeem:tts"),
        (1000, 1239, "earn", "cheer"),
    ]
    [item] = rows(
        db_path,
        "SELECT q.id, q.kind, q.status, q.redeem_key, u.display_name, q.cost, q.charge_ref, "
        "q.payload FROM queue_items q JOIN users u ON u.id = q.user_id",
    )
    assert item[:6] == (1, "tts", "done", "tts", "alice", 25)
    charge_ref, text = item[6], json.loads(item[7])["text"]
    assert charge_ref.startswith("redeem:console:chat:")
    assert text == "hello"
    assert rows(db_path, "SELECT amount, kind FROM transactions WHERE ref = ?", charge_ref) == [
        (-25, "spend")
    ]
    await assert_verified(config)


# ----------------------------------------------------------------------------- refusals

# alice: follower + subscriber with 251 pixels; bob and mia: 1 pixel each; mia moderates.
SETUP = ["/follow alice", "/sub alice", "alice: hi", "bob: hi", "/mod mia", "mia: hi"]
GIVE_USAGE = "Usage: !give <viewer> <amount>"

REFUSALS = [
    ("unknown-command", [], "alice: !dance", "@alice I don't know !dance. Try !help"),
    (
        "give-negative",
        [],
        "alice: !give bob -5",
        f"@alice '-5' is not an amount (try 100, 1.5k or all). {GIVE_USAGE}",
    ),
    (
        "give-1e99",
        [],
        "alice: !give bob 1e99",
        f"@alice '1e99' is not an amount (try 100, 1.5k or all). {GIVE_USAGE}",
    ),
    (
        "give-abc",
        [],
        "alice: !give bob abc",
        f"@alice 'abc' is not an amount (try 100, 1.5k or all). {GIVE_USAGE}",
    ),
    ("give-zero", [], "alice: !give bob 0", f"@alice the amount must be more than 0. {GIVE_USAGE}"),
    (
        "give-fraction",
        [],
        "alice: !give bob 1.5",
        f"@alice '1.5' is not a whole number of points. {GIVE_USAGE}",
    ),
    (
        "give-too-large",
        [],
        "alice: !give bob 99999999999999",
        f"@alice '99999999999999' is too large. {GIVE_USAGE}",
    ),
    ("give-missing-amount", [], "alice: !give bob", f"@alice <amount> is missing. {GIVE_USAGE}"),
    ("give-extra-words", [], "alice: !give bob 5 now", f"@alice too many words. {GIVE_USAGE}"),
    ("give-self", [], "alice: !give alice 5", "@alice you can't give points to yourself"),
    ("give-self-mention", [], "alice: !give @ALICE 5", "@alice you can't give points to yourself"),
    (
        "give-more-than-you-have",
        [],
        "bob: !give alice 500",
        "@bob you need 499 more pixels (you have 1)",
    ),
    ("give-to-a-stranger", [], "alice: !give nobody 5", "@alice I don't know anyone called nobody"),
    ("subscriber-only-redeem", [], "bob: !clip", "@bob !clip is for subscribers only"),
    (
        "addpoints-by-a-viewer",
        [],
        "bob: !addpoints bob 100",
        "@bob !addpoints is for moderators only",
    ),
    (
        "toggle-by-a-viewer",
        [],
        "alice: !redeem disable spin",
        "@alice !redeem enable|disable is for moderators only",
    ),
    ("redeem-unaffordable", [], "bob: !spin", "@bob you need 99 more pixels (you have 1)"),
    (
        "on-cooldown",
        ["alice: !tts hello", "/tick 4"],
        "alice: !tts again",
        "@alice !tts is on cooldown for 6s",
    ),
    (
        "disabled",
        ["mia: !redeem disable spin"],
        "alice: !spin",
        "@alice !spin is switched off right now",
    ),
    (
        "disabled-via-redeem",
        ["mia: !redeem off spin"],
        "alice: !redeem spin",
        "@alice !spin is switched off right now",
    ),
    (
        "max-per-stream",
        ["/live", "alice: !hydrate", "alice: !hydrate"],
        "mia: !hydrate",
        "@mia !hydrate has reached its limit of 2 this stream",
    ),
    (
        "max-per-user-per-stream",
        ["/live", "alice: !wave"],
        "alice: !wave",
        "@alice !wave has reached its limit of 1 per viewer this stream",
    ),
    ("tts-without-text", [], "alice: !tts", "@alice tts needs some text. Usage: !tts <text>"),
    (
        "tts-too-long",
        [],
        "alice: !tts " + "x" * 21,
        "@alice that text is too long (21/20 characters). Usage: !tts <text>",
    ),
]


@pytest.mark.parametrize(
    ("before", "line", "reply"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
async def test_a_refusal_replies_and_changes_nothing(
    config: Config, db_path: Path, before: list[str], line: str, reply: str
) -> None:
    async with console_session(config) as bot:
        await bot.run(*SETUP, *before)
        assert balances(db_path)["alice"] >= 200
        was, events = state(db_path), count(db_path, "events")

        assert await bot.run(line) == [f"Pixel: {reply}"]

        assert state(db_path) == was
        assert count(db_path, "events") == events + 1  # the chat line itself, nothing more
        assert (await verify(bot.app.engine.db)).ok


async def test_an_unknown_redeem_is_named_clearly(config: Config, db_path: Path) -> None:
    async with console_session(config) as bot:
        await bot.run(*SETUP)
        was = state(db_path)
        replies = await bot.run("alice: !redeem nosuch", "mia: !redeem disable nosuch")
        assert state(db_path) == was
        assert replies == [
            "Pixel: @alice there is no redeem called !nosuch; !redeems lists them",
            "Pixel: @mia there is no redeem called !nosuch; !redeems lists them",
        ]


async def test_refusals_in_one_script_leave_the_balances_alone(
    config: Config, db_path: Path
) -> None:
    """The same refusals through ``run_console``: the transcript, then the books."""
    lines = await transcript(
        config,
        [
            *SETUP,
            "alice: !give bob -5",
            "alice: !give bob 1e99",
            "alice: !give alice 5",
            "bob: !give alice 500",
            "bob: !addpoints bob 100",
            "alice: !give bob 10",  # the one that goes through
            "alice: !points",
            "bob: !points",
        ],
    )
    assert lines == [
        GREETING,
        "Pixel: Thanks for the follow, alice! +50 pixels",
        "Pixel: Thanks for the sub, alice! +200 pixels",
        "[console] mia is a moderator",
        f"Pixel: @alice '-5' is not an amount (try 100, 1.5k or all). {GIVE_USAGE}",
        f"Pixel: @alice '1e99' is not an amount (try 100, 1.5k or all). {GIVE_USAGE}",
        "Pixel: @alice you can't give points to yourself",
        "Pixel: @bob you need 499 more pixels (you have 1)",
        "Pixel: @bob !addpoints is for moderators only",
        "Pixel: @alice gave 10 pixels to bob (you have 241 left)",
        "Pixel: @alice you have 241 pixels",
        "Pixel: @bob you have 11 pixels",
    ]
    assert balances(db_path) == {"alice": 241, "bob": 11, "mia": 1}
    assert rows(db_path, "SELECT kind, count(*) FROM transactions GROUP BY kind ORDER BY 1") == [
        ("earn", 5),
        ("transfer", 2),
    ]
    assert count(db_path, "queue_items") == 0
    await assert_verified(config)


# ----------------------------------------------------------------------------- streams


async def test_per_stream_limits_reset_on_a_new_stream(config: Config, db_path: Path) -> None:
    lines = await transcript(
        config,
        [
            *SETUP,
            "/live",
            "alice: !hydrate",
            "alice: !hydrate",
            "mia: !hydrate",  # 2 per stream, for everyone together
            "alice: !wave",
            "alice: !wave",  # 1 per viewer
            "mia: !wave",
            "/tick 60",
            "/offline",
            "/tick 60",
            "/live",
            "mia: !hydrate",
            "alice: !wave",
        ],
    )
    assert lines == [
        GREETING,
        "Pixel: Thanks for the follow, alice! +50 pixels",
        "Pixel: Thanks for the sub, alice! +200 pixels",
        "[console] mia is a moderator",
        "[console] the stream is live",
        "Pixel: @alice Hydrate! redeemed for 1 pixel (queued as #1)",
        "[effect] #1 pending: Hydrate! for alice",
        "Pixel: drink some water",
        "[effect] #1 Hydrate! for alice: say",
        "Pixel: @alice Hydrate! redeemed for 1 pixel (queued as #2)",
        "[effect] #2 pending: Hydrate! for alice",
        "Pixel: drink some water",
        "[effect] #2 Hydrate! for alice: say",
        "Pixel: @mia !hydrate has reached its limit of 2 this stream",
        "Pixel: @alice Wave redeemed for 1 pixel (queued as #3)",
        "[effect] #3 pending: Wave for alice",
        "Pixel: o/",
        "[effect] #3 Wave for alice: say",
        "Pixel: @alice !wave has reached its limit of 1 per viewer this stream",
        "Pixel: @mia Wave redeemed for 1 pixel (queued as #4)",
        "[effect] #4 pending: Wave for mia",
        "Pixel: o/",
        "[effect] #4 Wave for mia: say",
        "[console] the stream is offline",
        "[console] the stream is live",
        "Pixel: @mia Hydrate! redeemed for 1 pixel (queued as #5)",
        "[effect] #5 pending: Hydrate! for mia",
        "Pixel: drink some water",
        "[effect] #5 Hydrate! for mia: say",
        "Pixel: @alice Wave redeemed for 1 pixel (queued as #6)",
        "[effect] #6 pending: Wave for alice",
        "Pixel: o/",
        "[effect] #6 Wave for alice: say",
    ]
    assert rows(
        db_path, "SELECT stream_session_id, count(*) FROM queue_items GROUP BY 1 ORDER BY 1"
    ) == [
        (1, 4),
        (2, 2),
    ]
    # mia: 1 (chat) - 1 (wave); the hydrate of stream 2 came from the chat of /tick 120
    assert balances(db_path) == {"alice": 248, "bob": 1, "mia": 0}
    await assert_verified(config)


async def test_a_new_stream_resets_limits_even_at_the_same_instant(config: Config) -> None:
    lines = await transcript(
        config,
        [*SETUP, "/live", "alice: !wave", "/offline", "/live", "alice: !wave"],
    )
    assert lines[-4:] == [
        "Pixel: @alice Wave redeemed for 1 pixel (queued as #2)",
        "[effect] #2 pending: Wave for alice",
        "Pixel: o/",
        "[effect] #2 Wave for alice: say",
    ]


# ----------------------------------------------------------------------------- reload


def write_yaml(path: Path, db_path: Path, body: str) -> Path:
    header = f'database:\n  url: "{database_url(db_path)}"\n'
    footer = f'tts:\n  dir: "{db_path.parent / "tts"}"\n'  # spoken files stay with the test
    path.write_text(header + textwrap.dedent(body) + footer, encoding="utf-8")
    return path


GOOD_YAML = """\
    redeems:
      tts:
        title: Text-to-Speech
        cost: 25
        action: {type: tts, max_chars: 20}
      spin:
        title: Prize Wheel
        cost: 100
        action: {type: wheel}
    wheels:
      main:
        prizes: [{name: Nothing}]
    """

BROKEN_YAML = """\
    redeems:
      tts:
        title: Text-to-Speech
        cost: -5
        action: {type: tts}
      spin:
        title: Prize Wheel
        cots: 10
        action: {type: wheel}
    wheels:
      main:
        prizes: [{name: Nothing}]
    """


async def test_reload_with_a_broken_file_keeps_the_running_config(
    tmp_path: Path, db_path: Path
) -> None:
    path = write_yaml(tmp_path / "pixel.yaml", db_path, GOOD_YAML)
    async with console_session(load_config(path), path) as bot:
        assert await bot.run("/follow alice", "alice: hi", "/mod mia", "mia: hi") == [
            "Pixel: Thanks for the follow, alice! +50 pixels",
            "[console] mia is a moderator",
        ]
        write_yaml(path, db_path, BROKEN_YAML)
        was = state(db_path)

        assert await bot.run("mia: !reload") == [
            "Pixel: @mia config not reloaded, the running one stays: "
            "redeems.tts.cost: must be >= 0 (pixel.yaml line 6); "
            "redeems.spin.cots: unknown key; did you mean 'cost'? (pixel.yaml line 10)"
        ]
        assert state(db_path) == was
        assert await bot.run("alice: !redeems", "alice: !tts hello") == [
            "Pixel: Redeems: !tts (25), !spin (100)",
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: hello",
            "[tts] #1 spoke tts-1.wav: alice says, hello",
        ]
        assert balances(db_path) == {"alice": 26, "mia": 1}


async def test_a_reload_that_cannot_be_stored_changes_nothing(
    tmp_path: Path, db_path: Path
) -> None:
    """A cost the database cannot hold (if validation lets it through) fails while the new
    redeems are stored: the running config, the redeems and the commands all stay."""
    path = write_yaml(tmp_path / "pixel.yaml", db_path, GOOD_YAML)
    async with console_session(load_config(path), path) as bot:
        await bot.run("/mod mia", "mia: hi")
        write_yaml(path, db_path, GOOD_YAML.replace("cost: 25", f"cost: {10**26}"))
        was = state(db_path)
        stored = rows(db_path, "SELECT key, cost FROM redeems ORDER BY key")

        reply = (await bot.run("mia: !reload"))[0]
        assert reply.startswith("Pixel: @mia config not reloaded, the running one stays: ")
        assert state(db_path) == was
        assert rows(db_path, "SELECT key, cost FROM redeems ORDER BY key") == stored
        assert bot.app.config.redeems["tts"].cost == 25
        assert await bot.run("mia: !redeems") == ["Pixel: Redeems: !tts (25), !spin (100)"]


async def test_reload_lists_at_most_three_problems(tmp_path: Path, db_path: Path) -> None:
    path = write_yaml(tmp_path / "pixel.yaml", db_path, GOOD_YAML)
    async with console_session(load_config(path), path) as bot:
        await bot.run("/mod mia")
        write_yaml(
            path,
            db_path,
            """\
            bot:
              colour: red
            economy:
              starting_pionts: 5
              earn:
                chat:
                  points: -1
                  cooldown: 5x
            """,
        )
        assert await bot.run("mia: !reload") == [
            "Pixel: @mia config not reloaded, the running one stays: "
            "bot.colour: unknown key (pixel.yaml line 4); "
            "economy.starting_pionts: unknown key; did you mean 'starting_points'? "
            "(pixel.yaml line 6); "
            "economy.earn.chat.points: must be >= 0 (pixel.yaml line 9) (+1 more)"
        ]


async def test_a_reload_that_applies_but_loses_a_cog_says_so(tmp_path: Path, db_path: Path) -> None:
    """The new config is running even though one cog it lists did not load: the reply says
    "reloaded, but", not "not reloaded"."""
    path = write_yaml(tmp_path / "pixel.yaml", db_path, GOOD_YAML)
    async with console_session(load_config(path), path) as bot:
        await bot.run("/mod mia")
        write_yaml(
            path,
            db_path,
            GOOD_YAML.replace("cost: 25", "cost: 30").rstrip(" ")
            + "    commands:\n      cogs: [points, moderation, redeems, nosuchcog]\n",
        )
        assert await bot.run("mia: !reload", "alice: !redeems") == [
            "Pixel: @mia config reloaded, but: cog nosuchcog did not load: "
            "ModuleNotFoundError: No module named 'cogs.nosuchcog'",
            "Pixel: Redeems: !tts (30), !spin (100)",
        ]


async def test_a_good_reload_takes_effect(tmp_path: Path, db_path: Path) -> None:
    path = write_yaml(tmp_path / "pixel.yaml", db_path, GOOD_YAML)
    async with console_session(load_config(path), path) as bot:
        await bot.run("/cheer alice 200", "/mod mia", "alice: !spin")
        assert balances(db_path) == {"alice": 101}  # 200 + 1 (chat) - 100
        write_yaml(
            path,
            db_path,
            """\
            redeems:
              spin:
                title: Prize Wheel
                cost: 10
                action: {type: wheel}
              confetti:
                title: Confetti
                cost: 5
                action: {type: effect, steps: [{say: "confetti for {user}!"}]}
            wheels:
              main:
                prizes: [{name: 5 Points, points: 5}]
            """,
        )
        assert await bot.run(
            "mia: !reload", "alice: !redeems", "alice: !spin", "alice: !confetti", "alice: !tts hi"
        ) == [
            "Pixel: @mia config reloaded",
            "Pixel: Redeems: !spin (10), !confetti (5)",
            "Pixel: @alice Prize Wheel redeemed for 10 pixels (queued as #2)",
            "[wheel] #2 pending: Prize Wheel for alice",
            "[wheel] #2 alice won 5 Points (roll 0.5025); +5 pixels",  # the reloaded wheel
            "Pixel: alice is spinning the wheel!",
            "Pixel: alice won 5 Points!",
            "Pixel: @alice Confetti redeemed for 5 pixels (queued as #3)",
            "[effect] #3 pending: Confetti for alice",
            "Pixel: confetti for alice!",
            "[effect] #3 Confetti for alice: say",
            "Pixel: @alice I don't know !tts. Try !help",
        ]
        assert balances(db_path) == {"alice": 91, "mia": 1}  # 200 + 1 - 100 - 10 + 5 - 5
        assert rows(db_path, "SELECT key, cost FROM redeems ORDER BY key") == [
            ("confetti", 5),
            ("spin", 10),
            ("tts", 25),  # no longer configured: its row stays, untouched
        ]
        assert rows(db_path, "SELECT cost FROM queue_items ORDER BY id") == [(100,), (10,), (5,)]
        assert (await verify(bot.app.engine.db)).ok


async def test_reload_without_a_config_file(config: Config) -> None:
    lines = await transcript(config, ["/mod mia", "mia: !reload"])
    assert lines == [
        GREETING,
        "[console] mia is a moderator",
        "Pixel: @mia config not reloaded, the running one stays: "
        "this bot was not started from a config file",
    ]


# ----------------------------------------------------------------------------- reply rate


def flooding(db_path: Path) -> Config:
    return config_for(db_path, commands={"reply_rate": {"messages": 5, "per": "30s"}})


async def test_a_flood_gets_at_most_the_reply_rate(db_path: Path) -> None:
    config = flooding(db_path)
    lines = await transcript(
        config,
        ["alice: !points"] * 100 + ["/tick 29", "alice: !points", "/tick 2", "alice: !points"],
    )
    assert lines == [GREETING] + ["Pixel: @alice you have 1 pixel"] * 5 + [
        "Pixel: @alice you have 1 pixel"  # only after /tick 31: the window has moved on
    ]
    assert count(db_path, "events") == 103  # every line was heard, once; one award
    assert balances(db_path) == {"alice": 1}


async def test_thanks_count_against_the_same_reply_rate(db_path: Path) -> None:
    lines = await transcript(flooding(db_path), ["alice: !points"] * 5 + ["/follow bob"])
    assert lines == [GREETING] + ["Pixel: @alice you have 1 pixel"] * 5


# ----------------------------------------------------------------------------- restarts


async def test_balances_and_toggles_survive_a_restart(config: Config, db_path: Path) -> None:
    first = await transcript(
        config,
        [
            "/follow alice",
            "alice: hi",
            "/mod mia",
            "mia: !redeem disable spin",
            "alice: !spin",
            "alice: !tts hello",
            "alice: !points",
        ],
    )
    assert first == [
        GREETING,
        "Pixel: Thanks for the follow, alice! +50 pixels",
        "[console] mia is a moderator",
        "Pixel: @mia !spin is now off",
        "Pixel: @alice !spin is switched off right now",
        "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
        "[tts] #1 pending: Text-to-Speech for alice: hello",
        "[tts] #1 spoke tts-1.wav: alice says, hello",
        "Pixel: @alice you have 26 pixels",
    ]
    second = await transcript(
        config,
        [
            "alice: !points",  # same simulated instant: the chat cooldown is still on
            "alice: !spin",
            "alice: !redeems",
            "alice: !tts again",  # the redeem cooldown outlived the restart too
            "/mod mia",  # roles are the console's, not the database's
            "mia: !redeem enable spin",
            "alice: !redeems",
        ],
    )
    assert second == [
        GREETING,
        "Pixel: @alice you have 26 pixels",
        "Pixel: @alice !spin is switched off right now",
        "Pixel: Redeems: !tts (25), !spin (100, off), !clip (0, unavailable), !hydrate (1), "
        "!wave (1)",
        "Pixel: @alice !tts is on cooldown for 10s",
        "[console] mia is a moderator",
        "Pixel: @mia !spin is now on",
        "Pixel: Redeems: !tts (25), !spin (100), !clip (0, unavailable), !hydrate (1), !wave (1)",
    ]
    assert rows(db_path, "SELECT key, enabled_override FROM redeems WHERE key = 'spin'") == [
        ("spin", 1)
    ]
    assert count(db_path, "queue_items") == 1
    await assert_verified(config)


# ----------------------------------------------------------------------------- start-up


async def test_a_cog_that_fails_to_load_is_reported_and_the_rest_start(db_path: Path) -> None:
    config = config_for(db_path, commands={"cogs": ["points", "nosuchcog"]})
    lines = await transcript(config, ["alice: hi", "alice: !points", "alice: !tts hi"])
    assert lines == [
        "[console] cog nosuchcog did not load: ModuleNotFoundError: "
        "No module named 'cogs.nosuchcog'",
        GREETING,
        "Pixel: @alice you have 1 pixel",
        "Pixel: @alice I don't know !tts",  # the redeems cog is not listed
    ]


async def test_a_redeem_named_like_a_command_is_left_out(db_path: Path) -> None:
    redeems = {
        **REDEEMS,
        "top": {"title": "Top Hat", "cost": 5, "action": {"type": "chat", "message": "hat"}},
    }
    config = config_for(db_path, redeems=redeems)
    lines = await transcript(config, ["alice: hi", "alice: !top", "alice: !redeem top"])
    assert lines == [
        "[console] cog redeems loaded without !top (the name is taken)",
        GREETING,
        "Pixel: Top 1: 1. alice (1)",
        "Pixel: @alice you need 4 more pixels (you have 1)",
    ]


async def test_other_bots_run_no_commands(db_path: Path) -> None:
    config = config_for(db_path, economy={"ignore": ["nightbot"]})
    lines = await transcript(config, ["nightbot: !points", "NightBot: !tts hi", "alice: !points"])
    assert lines == [GREETING, "Pixel: @alice you have 1 pixel"]
    assert balances(db_path) == {"alice": 1}
    assert count(db_path, "events") == 4  # three chat lines and alice's award


# ----------------------------------------------------------------------------- operator lines


async def test_bad_operator_lines_are_reported_and_the_script_goes_on(
    config: Config, db_path: Path
) -> None:
    lines = await transcript(
        config,
        [
            "/tip bob abc",
            "/sub bob x",
            "/frobnicate",
            "/tip bob -5",
            "/tip bob nan",
            "/sub bob 1 4",
            "/gift bob 0",
            "/raid bob 1000001",
            "/follow",
            "/tick -1",
            '/tip bob "5',
            "hello there",
            "/offline",
            "/tip bob 5",
            "/quit",
            "bob: !points",  # after /quit: never read
        ],
    )
    assert lines == [
        GREETING,
        "[console] 'abc' is not an amount",
        "[console] months must be a whole number from 1 to 1000000",
        "[console] unknown operator line /frobnicate; /help lists them",
        "[console] a tip must be more than 0 and at most 1000000",
        "[console] a tip must be more than 0 and at most 1000000",
        "[console] tier must be 1, 2 or 3",
        "[console] count must be a whole number from 1 to 1000000",
        "[console] viewers must be a whole number from 1 to 1000000",
        "[console] usage: /follow NAME",
        "[console] /tick takes 0 or more seconds",
        "[console] No closing quotation",
        "[console] type 'name: message' to chat, or /help",
        "[console] it was not live",
        "Pixel: Thanks for the tip, bob! +5 pixels",
    ]
    assert balances(db_path) == {"bob": 5}
    assert count(db_path, "events") == 3  # /offline (logged like any event), the tip, its award


async def test_a_line_that_crashes_changes_nothing_and_the_stream_goes_on(
    config: Config, db_path: Path
) -> None:
    lines = await transcript(config, ["/tip bob 1e400", "/tip bob 5", "bob: !points"])
    assert lines[0] == GREETING
    assert lines[1].startswith("[console] ")  # its wording: see the xfail below
    assert lines[2:] == [
        "Pixel: Thanks for the tip, bob! +5 pixels",
        "Pixel: @bob you have 6 pixels",
    ]
    assert balances(db_path) == {"bob": 6}
    assert count(db_path, "events") == 4  # the good tip, the chat line, and their awards
    await assert_verified(config)


async def test_an_absurd_tip_is_refused_clearly(config: Config, db_path: Path) -> None:
    lines = await transcript(config, ["/tip bob 1e400", "/tip bob 5"])
    assert len(lines) == 3
    assert lines[0] == GREETING
    assert lines[1].startswith("[console] ")
    assert "failed" not in lines[1]
    assert lines[2] == "Pixel: Thanks for the tip, bob! +5 pixels"


# ----------------------------------------------------------------------------- redelivery


async def test_the_same_redeem_request_delivered_twice_charges_once(
    config: Config, db_path: Path
) -> None:
    async with console_session(config) as bot:
        await bot.run("/follow alice")
        alice = bot.console.viewer("alice")
        request = ChatMessage(
            viewer=alice,
            text="!tts hello",
            channel="console",
            id="msg-1",
            platform="console",
            occurred_at=bot.clock.now(),
        )
        before = len(bot.out)
        first = await bot.console.emit(request)
        again = await bot.console.emit(request)
        assert (first.skipped, again.skipped) == (None, "duplicate")
        await bot.console.wait_for_queues()
        assert bot.out[before:] == [
            "Pixel: @alice Text-to-Speech redeemed for 25 pixels (queued as #1)",
            "[tts] #1 pending: Text-to-Speech for alice: hello",
            "[tts] #1 spoke tts-1.wav: alice says, hello",  # once
        ]
        assert balances(db_path) == {"alice": 26}
        assert rows(db_path, "SELECT kind, charge_ref FROM queue_items") == [
            ("tts", "redeem:console:chat:msg-1")
        ]
        assert rows(db_path, "SELECT amount FROM transactions WHERE kind = 'spend'") == [(-25,)]
        assert (await verify(bot.app.engine.db)).ok


async def test_the_same_give_delivered_twice_transfers_once(config: Config, db_path: Path) -> None:
    async with console_session(config) as bot:
        await bot.run("/follow alice", "bob: hi")
        request = ChatMessage(
            viewer=bot.console.viewer("alice"),
            text="!give bob 20",
            channel="console",
            id="msg-2",
            platform="console",
            occurred_at=bot.clock.now(),
        )
        await bot.console.emit(request)
        await bot.console.emit(request)
        assert balances(db_path) == {"alice": 31, "bob": 21}
        assert bot.out[-1] == "Pixel: @alice gave 20 pixels to bob (you have 31 left)"
        assert bot.out.count(bot.out[-1]) == 1


async def test_help_leaves_out_switched_off_redeems(config: Config) -> None:
    lines = await transcript(config, ["/mod carol", "carol: !redeem disable tts", "bob: !help"])
    [listing] = [line for line in lines if line.startswith("Pixel: @bob commands:")]
    assert "!tts" not in listing.split()
    assert "!redeems" in listing.split()
