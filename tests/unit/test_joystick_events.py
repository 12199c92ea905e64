"""Joystick gateway frames to normalized events: the parsing shared by the adapter and replay."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pixelbot.clock import utc
from pixelbot.events import (
    ChatMessage,
    Follow,
    MessageDeleted,
    Presence,
    PresenceLeft,
    StreamOffline,
    StreamOnline,
    Subscription,
    Tip,
)
from pixelbot.platforms.backoff import Backoff
from pixelbot.platforms.joystick_auth import basic_key, install_url
from pixelbot.platforms.joystick_events import (
    GATEWAY_IDENTIFIER,
    FrameError,
    control_of,
    event_from_frame,
    parse_frame,
)
from tests.fakes import joystick_server as js

pytestmark = pytest.mark.no_database
NOW = utc(2026, 1, 1, 12, 0, 0)


def frame(message: dict[str, object]) -> dict[str, object]:
    return {"identifier": GATEWAY_IDENTIFIER, "message": message}


def test_the_identifier_is_a_json_string_naming_the_gateway_channel() -> None:
    assert json.loads(GATEWAY_IDENTIFIER) == {"channel": "GatewayChannel"}


def test_control_frames_are_told_apart_from_data_frames() -> None:
    assert control_of({"type": "welcome"}).kind == "welcome"  # type: ignore[union-attr]
    assert control_of({"type": "ping", "message": 1700000000}).kind == "ping"  # type: ignore[union-attr]
    gone = control_of({"type": "disconnect", "reason": "unauthorized", "reconnect": False})
    assert gone is not None and (gone.reason, gone.reconnect) == ("unauthorized", False)
    assert control_of(frame(js.chat("a", "hi", "m"))) is None
    assert event_from_frame({"type": "ping", "message": 1}, NOW) is None


def test_a_chat_message_carries_author_text_id_channel_time_and_roles() -> None:
    event = event_from_frame(
        frame(
            js.chat(
                "Alice", "hi", "m-1", at="2026-01-01T20:00:05Z", moderator=True, subscriber=True
            )
        ),
        NOW,
    )
    assert isinstance(event, ChatMessage)
    assert (event.id, event.text, event.channel) == ("m-1", "hi", js.CHANNEL)
    assert event.occurred_at == utc(2026, 1, 1, 20, 0, 5)
    assert event.viewer.key == ("joystick", "alice")
    assert event.viewer.display_name == "Alice"
    assert event.viewer.roles == {"moderator", "subscriber"}
    assert event.ref == "joystick:chat:m-1"
    streamer = event_from_frame(frame(js.chat("streamer", "x", "m-2", streamer=True)), NOW)
    assert isinstance(streamer, ChatMessage) and streamer.viewer.roles == {"broadcaster"}


def test_whispers_and_other_chat_kinds_are_not_channel_chat() -> None:
    whisper = js.chat("a", "psst", "m-1") | {"visibility": "private"}
    assert event_from_frame(frame(whisper), NOW) is None
    muted = js.chat("a", "x", "m-2") | {"type": "user_muted"}
    assert event_from_frame(frame(muted), NOW) is None
    deleted = {"event": "ChatMessage", "type": "message_deleted", "messageId": "m-1", "id": "d1"}
    found = event_from_frame(frame(deleted), NOW)
    assert isinstance(found, MessageDeleted) and found.message_id == "m-1"


def test_presence_enters_and_leaves() -> None:
    enter = event_from_frame(frame(js.presence("Bob", "enter_stream", "u-1")), NOW)
    leave = event_from_frame(frame(js.presence("Bob", "leave_stream", "u-2")), NOW)
    assert isinstance(enter, Presence) and enter.viewer.key == ("joystick", "bob")
    assert isinstance(leave, PresenceLeft) and leave.id == "u-2"


@pytest.mark.parametrize(
    ("kind", "metadata", "expected"),
    [
        ("Followed", {"who": "bob"}, Follow),
        ("Subscribed", {"who": "bob", "months": 3}, Subscription),
        ("Tipped", {"who": "bob", "how_much": 25}, Tip),
        ("Tipped", {"who": "bob", "howMuch": 25}, Tip),
        ("StreamStarted", {}, StreamOnline),
        ("Started", {}, StreamOnline),
        ("StreamEnded", {}, StreamOffline),
        ("Ended", {}, StreamOffline),
    ],
)
def test_stream_events_read_their_metadata_json_string(
    kind: str, metadata: dict[str, object], expected: type
) -> None:
    event = event_from_frame(frame(js.stream_event(kind, "se-1", metadata)), NOW)
    assert isinstance(event, expected)
    assert event.id == "se-1"
    if isinstance(event, Tip):
        assert (event.amount, event.currency) == (Decimal(25), "tokens")
    if isinstance(event, Subscription):
        assert event.months == 3


def test_an_event_without_an_id_gets_a_stable_one_from_its_content() -> None:
    message = js.presence("bob", "enter_stream", "x")
    del message["id"]
    first = event_from_frame(frame(message), NOW)
    again = event_from_frame(frame(dict(message)), NOW)
    other = event_from_frame(frame(message | {"createdAt": "2026-01-01T21:00:00Z"}), NOW)
    assert first is not None and again is not None and other is not None
    assert first.id == again.id != other.id


def test_unknown_kinds_are_ignored() -> None:
    assert event_from_frame(frame(js.stream_event("ViewerCountUpdated", "s", {})), NOW) is None
    assert event_from_frame(frame({"event": "Brandnew", "type": "x"}), NOW) is None


@pytest.mark.parametrize(
    "message",
    [
        {"event": "ChatMessage", "type": "new_message", "messageId": "x"},  # no author
        js.chat("a", "x", "") | {"messageId": None},  # no id
        js.stream_event("Tipped", "s", {"who": "a", "how_much": "lots"}),
        js.stream_event("Tipped", "s", {"who": "a", "how_much": -5}),
        js.stream_event("Followed", "s", {}),  # nobody followed
        js.stream_event("Followed", "s", {}) | {"metadata": "{broken"},
        js.stream_event("Subscribed", "s", {"who": "a", "months": "many"}),
        js.stream_event("Followed", "s", {"who": "a"}) | {"createdAt": "yesterday"},
    ],
)
def test_a_malformed_frame_is_a_frame_error(message: dict[str, object]) -> None:
    with pytest.raises(FrameError):
        event_from_frame(frame(message), NOW)


@pytest.mark.parametrize("raw", ["{nope", "[1]", "3", b"\xff\xfe"])
def test_text_that_is_not_a_json_object_is_a_frame_error(raw: str | bytes) -> None:
    with pytest.raises(FrameError):
        parse_frame(raw)


def test_the_basic_key_and_install_url_follow_joysticks_example() -> None:
    assert basic_key("id", "secret") == "aWQ6c2VjcmV0"  # base64("id:secret")
    url = install_url("https://joystick.tv/", "my id", "s1")
    assert url == "https://joystick.tv/api/oauth/authorize?client_id=my+id&scope=bot&state=s1"


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    import random

    backoff = Backoff(first=1.0, cap=8.0, rng=random.Random(1))
    delays = [backoff.delay(n) for n in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
