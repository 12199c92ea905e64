"""Hostile text at the edge (issue 11): events clip what platforms hand in, replies quote a
short prefix, and amounts and durations take ASCII digits only. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pixelbot.commands.converters import parse_amount, parse_count, parse_duration_arg
from pixelbot.domain.durations import parse_duration
from pixelbot.domain.limits import MESSAGE_MAX_CHARS, NAME_MAX_CHARS, clip, quote
from pixelbot.errors import BadArgument
from pixelbot.events import ChatMessage, Cheer, Tip, Viewer

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HUGE = "x" * 100_000


def test_a_viewer_keeps_at_most_64_characters_of_each_name() -> None:
    viewer = Viewer("twitch", HUGE, HUGE, HUGE)
    assert len(viewer.platform_user_id) == len(viewer.login) == NAME_MAX_CHARS
    assert len(viewer.display_name) == NAME_MAX_CHARS == 64
    assert Viewer("twitch", "1", "alice", "Alice").display_name == "Alice"


def test_chat_text_and_event_messages_keep_at_most_500_characters() -> None:
    viewer = Viewer("twitch", "1", "alice", "Alice")
    message = ChatMessage(id="m", platform="twitch", occurred_at=NOW, viewer=viewer, text=HUGE)
    assert len(message.text) == MESSAGE_MAX_CHARS == 500
    assert message.payload()["text"] == "x" * 500
    tip = Tip(
        id="t", platform="twitch", occurred_at=NOW, viewer=viewer, amount=Decimal(1), message=HUGE
    )
    cheer = Cheer(id="c", platform="twitch", occurred_at=NOW, viewer=viewer, bits=100, message=HUGE)
    assert len(tip.message) == len(cheer.message) == 500


def test_lone_surrogates_become_the_replacement_character() -> None:
    # What a lenient (surrogateescape) stdin makes of a bad byte; SQLite refuses to store it.
    viewer = Viewer("console", "bob\udcff", "bob\udcff", "bob\udcff")
    assert viewer.login == "bob\ufffd"
    message = ChatMessage(id="m", platform="x", occurred_at=NOW, viewer=viewer, text="hi \udcfe")
    assert message.text == "hi \ufffd"
    assert message.text.encode("utf-8")  # storable


def test_nul_characters_become_the_replacement_character() -> None:
    # PostgreSQL refuses NUL in any text: one viewer named so failed a whole payout tick.
    viewer = Viewer("twitch", "1\x00", "al\x00ice", "Al\x00ice")
    assert (viewer.platform_user_id, viewer.login, viewer.display_name) == (
        "1\ufffd",
        "al\ufffdice",
        "Al\ufffdice",
    )
    message = ChatMessage(id="m", platform="x", occurred_at=NOW, viewer=viewer, text="hi\x00")
    assert message.text == "hi\ufffd"
    tip = Tip(
        id="t", platform="x", occurred_at=NOW, viewer=viewer, amount=Decimal(1), message="\x00"
    )
    assert tip.message == "\ufffd"


def test_clip_and_quote() -> None:
    assert clip("short", 10) == "short"
    assert clip("abcdef", 3) == "abc"
    assert quote("a" * 32) == "a" * 32
    assert quote("a" * 33) == "a" * 31 + "…"
    assert len(quote(HUGE)) == 32


@pytest.mark.parametrize(
    "text",
    ["١٠٠", "۱۰۰", "１００", "१००", "10٠", "1.5k٠", "²"],  # Arabic-Indic, Persian, full-width, ...
)
def test_amounts_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(BadArgument):
        parse_amount(text)
    with pytest.raises(BadArgument):
        parse_count(text)


@pytest.mark.parametrize(
    ("text", "said"),
    [("999999999999", "'999999999999' is too large"), ("-1", "'-1' is not a whole number")],
)
def test_a_refused_count_says_why(text: str, said: str) -> None:
    with pytest.raises(BadArgument) as refused:
        parse_count(text)
    assert refused.value.detail == said


def test_ascii_amounts_still_parse() -> None:
    assert parse_amount("100").value == 100
    assert parse_amount("1.5k").value == 1500
    assert parse_count("12") == 12


@pytest.mark.parametrize("text", ["١٠s", "１０m", "١٠"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_refused_argument_quotes_only_a_short_prefix() -> None:
    for parse in (parse_amount, parse_count, parse_duration_arg):
        with pytest.raises(BadArgument) as refused:
            parse(HUGE)
        assert len(refused.value.detail) < 100, refused.value.detail
