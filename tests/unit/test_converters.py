"""Command arguments, reply rate limiting and the permission ladder: pure parts of the
command layer, no database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pixelbot.clock import FakeClock, utc
from pixelbot.commands.context import Context
from pixelbot.commands.converters import (
    MAX_AMOUNT,
    Amount,
    Duration,
    Rest,
    Target,
    Word,
    parse_amount,
    parse_target,
)
from pixelbot.commands.core import Command
from pixelbot.commands.dispatcher import convert_arguments
from pixelbot.domain.permissions import LADDER, has_permission, highest_role
from pixelbot.domain.rate_limit import ReplyLimiter
from pixelbot.errors import BadArgument
from pixelbot.platforms.base import Capabilities, split_message

# ----------------------------------------------------------------------------- parse_amount


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250", 250),
        ("10k", 10_000),
        ("1.5k", 1_500),
        ("2m", 2_000_000),
        ("1,000", 1_000),
        ("1_000", 1_000),
        ("10K", 10_000),
        (" 7 ", 7),
        ("1.1k", 1_100),
        ("0.25k", 250),
        (str(MAX_AMOUNT), MAX_AMOUNT),
        ("1000000m", MAX_AMOUNT),
    ],
)
def test_parse_amount_accepts(text: str, value: int) -> None:
    amount = parse_amount(text)
    assert amount == Amount(value)
    assert not amount.is_all
    assert amount.resolve(5) == value


@pytest.mark.parametrize("text", ["all", "ALL", "everything"])
def test_parse_amount_all_is_the_whole_balance(text: str) -> None:
    amount = parse_amount(text)
    assert amount == Amount(None)
    assert amount.is_all
    assert amount.resolve(123) == 123
    assert amount.resolve(0) == 0


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("-5", "'-5' is not an amount (try 100, 1.5k or all)"),
        ("1e99", "'1e99' is not an amount (try 100, 1.5k or all)"),
        ("abc", "'abc' is not an amount (try 100, 1.5k or all)"),
        ("", "'' is not an amount (try 100, 1.5k or all)"),
        ("   ", "'   ' is not an amount (try 100, 1.5k or all)"),
        ("1.k", "'1.k' is not an amount (try 100, 1.5k or all)"),
        (".5k", "'.5k' is not an amount (try 100, 1.5k or all)"),
        ("5b", "'5b' is not an amount (try 100, 1.5k or all)"),
        ("nan", "'nan' is not an amount (try 100, 1.5k or all)"),
        ("inf", "'inf' is not an amount (try 100, 1.5k or all)"),
        ("0", "the amount must be more than 0"),
        ("0k", "the amount must be more than 0"),
        ("0.0", "the amount must be more than 0"),
        ("1.5", "'1.5' is not a whole number of points"),
        ("0.0001k", "'0.0001k' is not a whole number of points"),
        ("99999999999999", "'99999999999999' is too large"),
        (str(MAX_AMOUNT + 1), f"'{MAX_AMOUNT + 1}' is too large"),
        ("1000001m", "'1000001m' is too large"),
    ],
)
def test_parse_amount_refuses(text: str, detail: str) -> None:
    with pytest.raises(BadArgument) as refused:
        parse_amount(text)
    assert refused.value.detail == detail
    assert refused.value.usage == ""  # the dispatcher adds the command's usage


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4.1m", 4_100_000), ("2.01k", 2_010), ("8.2m", 8_200_000), ("9" * 400, "too large")],
    ids=["4.1m", "2.01k", "8.2m", "400-digits"],
)
def test_parse_amount_decimal_suffixes_are_exact(text: str, expected: int | str) -> None:
    if isinstance(expected, int):
        assert parse_amount(text) == Amount(expected)
    else:
        with pytest.raises(BadArgument) as refused:
            parse_amount(text)
        assert refused.value.detail == f"{text!r} is too large"


# ----------------------------------------------------------------------------- parse_target


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("@alice", "alice"),
        ("alice", "alice"),
        ("Alice_99", "Alice_99"),
        ("@d.j-x", "d.j-x"),
        ("a" * 50, "a" * 50),
    ],
)
def test_parse_target_accepts(text: str, name: str) -> None:
    assert parse_target(text) == Target(name)


@pytest.mark.parametrize("text", ["", "@", "@@alice", "al!ce", "a b", "<bob>", "a" * 51, "#x"])
def test_parse_target_refuses(text: str) -> None:
    with pytest.raises(BadArgument) as refused:
        parse_target(text)
    assert refused.value.detail == f"{text!r} is not a viewer's name"


# ----------------------------------------------------------------------------- convert_arguments


async def _give(ctx: Context, to: Target, amount: Amount) -> None: ...


async def _points(ctx: Context, who: Target | None = None) -> None: ...


async def _redeem(ctx: Context, key: Word, text: Rest | None = None) -> None: ...


async def _say(ctx: Context, text: Rest) -> None: ...


async def _top(ctx: Context, count: int | None = None) -> None: ...


async def _timeout(ctx: Context, who: Target, length: Duration) -> None: ...


def cmd(callback: Any, usage: str) -> Command:
    return Command(name=usage.split()[0], callback=callback, usage=usage, help="")


GIVE = cmd(_give, "give <viewer> <amount>")


def refusal(command: Command, text: str) -> tuple[str, str]:
    with pytest.raises(BadArgument) as refused:
        convert_arguments(command, text)
    return refused.value.detail, refused.value.usage


def test_convert_arguments_by_annotation() -> None:
    assert convert_arguments(GIVE, "@bob 1.5k") == [Target("bob"), Amount(1_500)]
    assert convert_arguments(GIVE, "  bob   all ") == [Target("bob"), Amount(None)]


def test_missing_argument_names_it_and_carries_the_usage() -> None:
    assert refusal(GIVE, "bob") == ("<amount> is missing", "give <viewer> <amount>")
    assert refusal(GIVE, "") == ("<to> is missing", "give <viewer> <amount>")


def test_too_many_words() -> None:
    assert refusal(GIVE, "bob 10 please") == ("too many words", "give <viewer> <amount>")


def test_a_bad_word_is_refused_with_the_usage() -> None:
    assert refusal(GIVE, "bob 1e99") == (
        "'1e99' is not an amount (try 100, 1.5k or all)",
        "give <viewer> <amount>",
    )
    assert refusal(GIVE, "b!b 5") == ("'b!b' is not a viewer's name", "give <viewer> <amount>")


def test_optional_parameters_take_their_default() -> None:
    points = cmd(_points, "points [viewer]")
    assert convert_arguments(points, "") == [None]
    assert convert_arguments(points, "@carol") == [Target("carol")]
    top = cmd(_top, "top [n]")
    assert convert_arguments(top, "") == [None]
    assert convert_arguments(top, "3") == [3]
    assert refusal(top, "three") == ("'three' is not a whole number", "top [n]")


def test_rest_takes_the_rest_of_the_line() -> None:
    redeem = cmd(_redeem, "redeem <name> [text]")
    assert convert_arguments(redeem, "tts  hello   there, world ") == [
        "tts",
        "hello   there, world",
    ]
    assert convert_arguments(redeem, "spin") == ["spin", None]
    say = cmd(_say, "say <text>")
    assert convert_arguments(say, "  hi  there ") == ["hi  there"]
    assert refusal(say, "   ") == ("<text> is missing", "say <text>")


def test_duration_parameters() -> None:
    timeout = cmd(_timeout, "timeout <viewer> <length>")
    assert convert_arguments(timeout, "bob 5m") == [Target("bob"), timedelta(minutes=5)]
    detail, usage = refusal(timeout, "bob soon")
    assert usage == "timeout <viewer> <length>"
    assert detail  # the duration parser's own message


# ----------------------------------------------------------------------------- ReplyLimiter


def test_reply_limiter_allows_n_per_window_and_drops_the_rest() -> None:
    clock = FakeClock(utc(2026, 1, 1))
    limiter = ReplyLimiter(clock, 3, timedelta(seconds=30))
    assert [limiter.allow("console:a") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.dropped == 2
    assert limiter.allow("console:b")  # another channel has its own budget
    clock.advance(29)
    assert not limiter.allow("console:a")
    clock.advance(1)  # the first three leave the window together
    assert [limiter.allow("console:a") for _ in range(4)] == [True, True, True, False]
    assert limiter.dropped == 4


def test_reply_limiter_window_slides() -> None:
    clock = FakeClock(utc(2026, 1, 1))
    limiter = ReplyLimiter(clock, 2, timedelta(seconds=10))
    outcomes = []
    for step in (0, 5, 0, 5, 0, 4, 1, 0):  # t = 0, 5, 5, 10, 10, 14, 15, 15
        clock.advance(step)
        outcomes.append(limiter.allow("c"))
    # t0 ok, t5 ok, t5 full, t10 (t0 left) ok, t10 full, t14 full, t15 (t5 left) ok, t15 full
    assert outcomes == [True, True, False, True, False, False, True, False]
    assert limiter.dropped == 4


def test_reply_limiter_takes_new_settings() -> None:
    clock = FakeClock(utc(2026, 1, 1))
    limiter = ReplyLimiter(clock, 1, timedelta(seconds=10))
    assert [limiter.allow("c"), limiter.allow("c")] == [True, False]
    limiter.messages = 3  # what Bot.reload does
    assert [limiter.allow("c"), limiter.allow("c"), limiter.allow("c")] == [True, True, False]


# ----------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("role", LADDER)
@pytest.mark.parametrize("required", LADDER)
def test_each_role_includes_every_role_below_it(role: str, required: str) -> None:
    expected = LADDER.index(role) >= LADDER.index(required)
    assert has_permission({role}, required) is expected
    assert has_permission(["follower", role], required) is (expected or required == "follower")


def test_no_roles_means_everyone() -> None:
    assert has_permission(set(), "everyone")
    assert not has_permission(set(), "follower")
    assert not has_permission({"admin", "owner"}, "follower")  # unknown roles count for nothing
    assert highest_role({"admin"}) == "everyone"
    assert highest_role({"subscriber", "vip", "follower"}) == "vip"
    assert highest_role(frozenset()) == "everyone"


# ----------------------------------------------------------------------------- mentions


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("alice", Target("alice")),
        ("@alice", Target("alice")),
        ("<@1234>", Target("1234", user_id="1234")),  # Discord
        ("<@!1234>", Target("1234", user_id="1234")),  # Discord, nickname form
    ],
)
def test_a_viewer_is_named_the_way_each_platform_mentions(typed: str, expected: Target) -> None:
    assert parse_target(typed) == expected


@pytest.mark.parametrize("typed", ["<@>", "<@abc>", "<#1234>", "<@1234"])
def test_a_broken_mention_is_not_a_viewer(typed: str) -> None:
    with pytest.raises(BadArgument):
        parse_target(typed)


def test_split_message_fits_words_and_cuts_a_word_too_long() -> None:
    caps = Capabilities(max_message_length=10)
    assert split_message("short", caps) == ["short"]
    assert split_message("one two three four", caps) == ["one two", "three four"]
    assert split_message("abcdefghijklmno", caps) == ["abcdefghij", "klmno"]
    cut = Capabilities(max_message_length=10, long_messages="cut")
    assert split_message("one two three four", cut) == ["one two…"]
    assert all(len(part) <= 10 for part in split_message("x " * 40, caps))
