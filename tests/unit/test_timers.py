"""The timer board: a line is due once its interval has passed AND enough chat came in on
that platform, and only while live unless the timer says ``offline: true``."""

from datetime import datetime, timedelta

from pixelbot.clock import utc
from pixelbot.config.timers import TimerSettings
from pixelbot.scheduler.timers import DueLine, TimerBoard

START = utc(2026, 1, 1, 20)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def timer(**fields: object) -> TimerSettings:
    return TimerSettings.model_validate({"message": "Follow!", "every": "10m", **fields})


def test_a_timer_waits_for_its_interval_and_its_chat_lines() -> None:
    board = TimerBoard(START)
    lines = {"twitch": 0}
    timers = [timer(min_chat_lines=3)]

    def due(minutes: int) -> list[DueLine]:
        return board.due(timers, at(minutes), live=True, platforms=["twitch"], lines_on=lines.get)

    lines["twitch"] = 5
    assert due(9) == []  # the interval has not passed
    assert due(10) == [DueLine("twitch", "Follow!")]
    lines["twitch"] = 7  # two lines since: not enough, even long after
    assert due(25) == []
    lines["twitch"] = 8  # the third line: it speaks at the next check
    assert due(26) == [DueLine("twitch", "Follow!")]
    lines["twitch"] = 20
    assert due(35) == []  # 10 minutes from when it last spoke, not from when it was due
    assert due(36) == [DueLine("twitch", "Follow!")]


def test_each_platform_counts_its_own_chat() -> None:
    board = TimerBoard(START)
    lines = {"twitch": 4, "discord": 1}
    said = board.due(
        [timer(min_chat_lines=2)],
        at(10),
        live=True,
        platforms=["twitch", "discord"],
        lines_on=lambda p: lines.get(p, 0),
    )
    assert said == [DueLine("twitch", "Follow!")]


def test_offline_only_a_timer_that_says_so_speaks() -> None:
    board = TimerBoard(START)
    timers = [timer(message="live only"), timer(message="always", offline=True)]
    said = board.due(timers, at(10), live=False, platforms=["console"], lines_on=lambda _: 0)
    assert said == [DueLine("console", "always")]
    # the live-only timer speaks as soon as the stream is live
    said = board.due(timers, at(11), live=True, platforms=["console"], lines_on=lambda _: 0)
    assert said == [DueLine("console", "live only")]


def test_a_switched_off_timer_never_speaks() -> None:
    board = TimerBoard(START)
    said = board.due(
        [timer(enabled=False)], at(60), live=True, platforms=["console"], lines_on=lambda _: 99
    )
    assert said == []
