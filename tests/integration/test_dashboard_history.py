"""The read-only views behind the dashboard (``economy/history.py``) on a real database: find a
viewer by part of a name (LIKE's wildcards taken literally), page through a ledger newest
first without losing or repeating a row, and the latest events without the chatter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pixelbot.app import Engine
from pixelbot.economy.history import History
from pixelbot.testing import EventFactory, viewer
from pixelbot.web.dashboard_service import describe_event, describe_schedule


async def test_search_finds_part_of_a_login_or_display_name_in_any_case(engine: Engine) -> None:
    await engine.ledger.grant(viewer("alice_w", display_name="AliceWonder"), 30, reason="t")
    await engine.ledger.grant(viewer("bob", display_name="Bobby 100%"), 70, reason="t")
    await engine.ledger.grant(viewer("carol", platform="discord"), 50, reason="t")
    history = History(engine.db)

    assert [v.display_name for v in await history.search("WONDER")] == ["AliceWonder"]
    assert [v.display_name for v in await history.search("@alice")] == ["AliceWonder"]
    # richest first; "o" is in all three
    assert [v.points for v in await history.search("o")] == [70, 50, 30]
    # LIKE's wildcards are plain characters here
    assert [v.display_name for v in await history.search("100%")] == ["Bobby 100%"]
    assert [v.display_name for v in await history.search("%")] == ["Bobby 100%"]
    assert [v.display_name for v in await history.search("_w")] == ["AliceWonder"]
    assert await history.search("   ") == []
    [carol] = await history.search("carol")
    assert [(i.platform, i.login) for i in carol.identities] == [("discord", "carol")]


async def test_the_ledger_pages_newest_first_without_gaps_or_repeats(engine: Engine) -> None:
    alice = viewer("alice")
    for n in range(1, 8):
        await engine.ledger.grant(alice, n, reason=f"gift {n}")
    user_id = await engine.wallets.find_identity(alice)
    history = History(engine.db)
    seen: list[int] = []
    before = None
    pages = 0
    while True:
        page = await history.ledger(user_id, before=before, size=3)
        seen += [entry.amount for entry in page.entries]
        pages += 1
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert pages == 3
    assert (await history.ledger(user_id, size=7)).next_before is None  # exactly one page


async def test_events_leave_out_the_chatter_unless_asked(
    engine: Engine, events: EventFactory
) -> None:
    alice = viewer("alice")
    await engine.earning.handle(events.chat(alice, "hello"))
    await engine.earning.handle(events.follow(alice))
    history = History(engine.db)
    kinds = [entry.kind for entry in await history.events()]
    assert "follow" in kinds and "chat" not in kinds and "award" not in kinds
    everything = [entry.kind for entry in await history.events(quiet=True)]
    assert "chat" in everything
    [follow] = [entry for entry in await history.events() if entry.kind == "follow"]
    assert follow.viewer_name == "alice"


@pytest.mark.no_database
@pytest.mark.parametrize(
    ("kind", "payload", "line"),
    [
        ("follow", {}, "followed"),
        ("tip", {"amount": "5.00", "currency": "USD", "message": "gg"}, "tipped 5.00 USD: gg"),
        ("redeem", {"redeem": "tts", "cost": 25, "item": 3}, "redeemed tts for 25 (#3)"),
        ("adjust", {"amount": -40, "reason": "spam"}, "-40 adjusted: spam"),
        (
            "queue_cancelled",
            {"item": 4, "kind": "tts", "error": "skipped by Mia", "refund": 25},
            "#4 tts cancelled: skipped by Mia, refunded 25",
        ),
        ("mystery", {"a": 1, "login": "x", "b": None}, "a: 1"),
    ],
)
def test_events_in_words(kind: str, payload: dict[str, object], line: str) -> None:
    assert describe_event(kind, payload) == line


@pytest.mark.no_database
def test_schedules_in_words() -> None:
    assert describe_schedule(timedelta(minutes=5), None) == "every 5 min"
    assert describe_schedule(timedelta(hours=1, minutes=30), None) == "every 1 h 30 min"
    assert describe_schedule(timedelta(days=1), None) == "every 1 d"
    assert describe_schedule(None, "0 3 * * *") == "cron 0 3 * * *"
    assert describe_schedule(None, None) is None
