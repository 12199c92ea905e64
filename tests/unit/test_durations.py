from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelbot.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5s", timedelta(seconds=1.5)),
        (" 5M ", timedelta(minutes=5)),
        ("0s", timedelta(0)),
        ("90", timedelta(seconds=90)),
        ("2.5", timedelta(seconds=2.5)),
        (45, timedelta(seconds=45)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_parse_duration_accepts(text: str | int | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5x", "'5x' is not a duration; use e.g. 30s, 5m, 1h"),
        ("abc", "'abc' is not a duration; use e.g. 30s, 5m, 1h"),
        ("1h30", "'1h30' is not a duration; use e.g. 30s, 5m, 1h"),
        ("s", "'s' is not a duration; use e.g. 30s, 5m, 1h"),
        ("", "a duration cannot be empty; use e.g. 30s, 5m, 1h"),
        ("   ", "a duration cannot be empty; use e.g. 30s, 5m, 1h"),
        ("-5s", "a duration cannot be negative (got '-5s')"),
        (-3, "a duration cannot be negative (got -3)"),
        (float("nan"), "nan is not a duration; use e.g. 30s, 5m, 1h"),
        (True, "True is not a duration; use e.g. 30s, 5m, 1h"),
        ("1e99d", "'1e99d' is not a duration; use e.g. 30s, 5m, 1h"),
        (1e20, "1e+20 is too long for a duration"),
    ],
)
def test_parse_duration_rejects(text: str | int | float, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=12), "12s"),
        (timedelta(hours=1, minutes=5), "1h 5m"),
        (timedelta(days=2, seconds=3), "2d 3s"),
        (timedelta(minutes=4, seconds=59.9), "4m 59s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(microseconds=1), "1ms"),
        (timedelta(seconds=-90), "-1m 30s"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@given(st.integers(min_value=0, max_value=10**8))
def test_format_then_parse_round_trips_whole_seconds(seconds: int) -> None:
    td = timedelta(seconds=seconds)
    assert parse_duration(format_duration(td)) == td
