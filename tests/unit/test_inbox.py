"""The bounded inbox between a platform library and its adapter's pump: a full inbox makes the
receive path wait (``room``) or drops only what may be dropped, counts it, and warns at most
once a minute. (End to end through the real libraries: ``test_twitch_inbox.py`` and
``test_discord_inbox.py``.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from twitchio.models.eventsub_ import create_event_instance

from pixelbot.clock import FakeClock, utc
from pixelbot.platforms.inbox import WARN_EVERY, Inbox, InboxClosed
from pixelbot.platforms.twitch_events import plain_chat
from tests.fakes import twitch_payloads as twitch

pytestmark = pytest.mark.no_database


def chat_only(item: str) -> bool:
    return item.startswith("chat")


async def test_a_full_inbox_drops_only_what_may_be_dropped_and_keeps_the_order() -> None:
    inbox: Inbox[str] = Inbox(
        "twitch", FakeClock(utc(2026, 12, 1, 20)), limit=2, sheddable=chat_only
    )
    assert [inbox.put(item) for item in ("chat 1", "follow", "chat 2", "sub", "chat 3")] == [
        True,
        True,
        False,  # full: a chat line goes
        True,  # a follow or a sub never does, past the bound if need be
        False,
    ]
    assert (len(inbox), inbox.shed) == (3, 2)
    assert [await inbox.get() for _ in range(3)] == ["chat 1", "follow", "sub"]
    assert inbox.put("chat 4") and await inbox.get() == "chat 4"


async def test_room_waits_until_the_pump_takes_one() -> None:
    inbox: Inbox[int] = Inbox("discord", FakeClock(), limit=2)
    await inbox.room()  # empty: at once
    inbox.put(1)
    inbox.put(2)
    assert inbox.full and "the bot is behind: 2 events waiting" in inbox.detail()
    waiting = asyncio.create_task(inbox.room())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert await inbox.get() == 1
    await asyncio.wait_for(waiting, 1)
    assert inbox.detail() == ""
    assert await inbox.get() == 2
    taker = asyncio.create_task(inbox.get())  # an empty inbox: the pump waits for the next
    await asyncio.sleep(0.01)
    assert not taker.done()
    inbox.put(3)
    assert await asyncio.wait_for(taker, 1) == 3


def test_drops_are_counted_in_the_status_and_warned_about_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(utc(2026, 12, 1, 20))
    inbox: Inbox[str] = Inbox("twitch", clock, limit=1, sheddable=chat_only)
    inbox.put("chat 0")
    for _ in range(30):
        inbox.put("chat")
        clock.advance(timedelta(seconds=1))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "twitch: the bot is behind (1 events waiting: the database is slow, or a flood), so "
        "plain chat lines are dropped to catch up: 1, 1 in all; no other kind of event is "
        "dropped"
    ]
    assert inbox.detail() == (
        "the bot is behind: 1 events waiting; plain chat lines dropped while the bot was "
        "behind: 30 (the last at 20:00:29 UTC)"
    )
    clock.advance(WARN_EVERY)
    inbox.put("chat")
    last = caplog.records[-1].getMessage()
    assert last.endswith(": 30 since 20:00:00 UTC, 31 in all; no other kind of event is dropped")
    inbox.put("chat")
    inbox.close()  # the bot stops: the last drop no warning named yet is told
    assert (
        caplog.records[-1]
        .getMessage()
        .endswith(": 1 since 20:01:30 UTC, 32 in all; no other kind of event is dropped")
    )
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 3


def twitch_line(**changes: Any) -> object:
    """A ``channel.chat.message`` notification as twitchio parses it, with ``changes`` made."""
    sub_type, version, condition, event = twitch.chat("77", "alice", "hi", "m-1")
    frame = {
        "metadata": {
            "message_id": "n-1",
            "message_type": "notification",
            "message_timestamp": "2026-12-01T20:00:00.5Z",
            "subscription_type": sub_type,
            "subscription_version": version,
        },
        "payload": {
            "subscription": {
                "id": "s-1",
                "type": sub_type,
                "version": version,
                "status": "enabled",
                "cost": 0,
                "condition": condition,
                "transport": {"method": "websocket", "session_id": "x"},
                "created_at": "2026-12-01T19:00:00Z",
            },
            "event": {**event, **changes},
        },
    }
    return create_event_instance(sub_type, frame, http=None)


def test_only_twitch_chat_lines_that_pay_nothing_may_be_dropped() -> None:
    assert plain_chat(twitch_line())
    assert plain_chat(twitch_line(message_type="user_intro"))  # a first-time chatter says hi
    assert not plain_chat(twitch_line(cheer={"bits": 100}))  # bits cheered in the line
    assert not plain_chat(twitch_line(channel_points_custom_reward_id="r-1"))  # a reward's line
    assert not plain_chat(twitch_line(message_type="channel_points_highlighted"))
    assert not plain_chat(twitch_line(message_type="power_ups_gigantified_emote"))  # bits


async def test_a_stopped_inbox_gives_out_what_it_holds_then_ends_and_counts_the_rest() -> None:
    inbox: Inbox[str] = Inbox("twitch", FakeClock(utc(2026, 12, 1, 20)), limit=2)
    assert inbox.put("chat 1") and inbox.put("chat 2")
    waiting = asyncio.create_task(inbox.room())  # the receive path, held by the bound
    await asyncio.sleep(0)
    inbox.stop_taking()
    await asyncio.wait_for(waiting, 1)  # let go at once: nothing more is taken anyway
    assert not inbox.put("chat 3")  # refused and counted, not dropped silently
    assert (inbox.refused, inbox.shed) == (1, 0)
    assert [await inbox.get(), await inbox.get()] == ["chat 1", "chat 2"]
    with pytest.raises(InboxClosed):  # the pump ends by itself
        await inbox.get()
    assert inbox.close() == 0


async def test_a_pump_waiting_for_an_item_hears_the_stop() -> None:
    inbox: Inbox[str] = Inbox("discord", FakeClock(utc(2026, 12, 1, 20)))
    pump = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.stop_taking()
    with pytest.raises(InboxClosed):
        await asyncio.wait_for(pump, 1)


async def test_close_counts_what_was_never_given_out_and_a_start_reopens() -> None:
    inbox: Inbox[str] = Inbox("twitch", FakeClock(utc(2026, 12, 1, 20)))
    inbox.put("chat 1")
    inbox.put("sub")
    inbox.stop_taking()
    assert inbox.close() == 2
    assert len(inbox) == 0
    inbox.reopen()  # (a platform started again by the supervisor)
    assert inbox.put("chat 2") and await inbox.get() == "chat 2"


async def test_what_must_still_be_settled_is_kept_when_a_stop_loses_it() -> None:
    """Refused while stopping, or never given out: the items ``kept_when_lost`` picks (Twitch:
    channel-point redemptions, to be canceled) stay in ``lost`` for the adapter; a start
    forgets them with the refusals."""
    inbox: Inbox[str] = Inbox(
        "twitch",
        FakeClock(utc(2026, 12, 1, 20)),
        kept_when_lost=lambda item: item.startswith("redemption"),
    )
    inbox.put("chat 1")
    inbox.put("redemption 1")
    inbox.stop_taking()
    assert not inbox.put("redemption 2") and not inbox.put("chat 2")
    assert inbox.lost == ["redemption 2"]
    assert await inbox.get() == "chat 1"  # (given out: the adapter handles it)
    assert inbox.close() == 1
    assert inbox.lost == ["redemption 2", "redemption 1"]
    inbox.reopen()
    assert (inbox.lost, inbox.refused) == ([], 0)
