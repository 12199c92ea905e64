"""The outage state a queue reads while OBS is down, and its one-line chat summaries."""

from __future__ import annotations

from pixelbot.queue.outage import Outage, summary_lines


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_outage_is_one_state_until_it_ends() -> None:
    ticks = Ticks()
    told: list[bool] = []
    outage = Outage("OBS", when_down="hold", hold_limit=60, monotonic=ticks)
    outage.listeners.append(lambda: told.append(outage.down))

    assert outage.begin("refused") is True
    assert outage.begin("refused again") is False  # the same outage
    assert (outage.down, outage.reason, told) == (True, "refused", [True])
    ticks.now += 12.5
    assert outage.end() == 12.5
    assert outage.end() is None
    assert (outage.down, told) == (False, [True, False])


def test_hold_lasts_until_the_limit_then_refunds() -> None:
    ticks = Ticks()
    outage = Outage("OBS", when_down="hold", hold_limit=60, monotonic=ticks)
    assert not outage.holding() and not outage.refunding()  # up: neither

    outage.begin("gone")
    ticks.now += 59
    assert outage.holding() and outage.hold_left() == 1
    ticks.now += 1
    assert not outage.holding() and outage.refunding()


def test_refund_mode_refunds_from_the_start() -> None:
    outage = Outage("OBS", when_down="refund", hold_limit=60, monotonic=Ticks())
    outage.begin("gone")
    assert outage.refunding() and not outage.holding()


def payload(name: str, channel: str = "main", platform: str = "twitch") -> dict[str, object]:
    return {"channel": channel, "viewer": {"platform": platform, "name": name}}


def test_a_summary_is_one_line_per_channel_naming_a_few() -> None:
    payloads = [payload(f"v{n}") for n in range(1, 8)] + [payload("v1"), payload("x", "other")]

    lines = list(summary_lines(payloads, "OBS is down: refunded {count} {items}"))

    assert [line for _, line in lines] == [
        "OBS is down: refunded 8 effects (@v1, @v2, @v3, @v4, @v5 and 2 more).",
        "OBS is down: refunded 1 effect (@x).",
    ]
    assert [where["channel"] for where, _ in lines] == ["main", "other"]
    assert list(summary_lines([], "{count} {items}")) == []


AI_NOUNS = ("AI reply", "AI replies")


def test_a_summary_names_the_kind_of_item() -> None:
    template = "the AI service is down: refunded {count} {items}"
    nouns = Outage("the AI service", when_down="refund", hold_limit=0, items=AI_NOUNS).items
    one = list(summary_lines([payload("a")], template, nouns))
    two = list(summary_lines([payload("a"), payload("b")], template, nouns))
    assert [line for _, line in one + two] == [
        "the AI service is down: refunded 1 AI reply (@a).",
        "the AI service is down: refunded 2 AI replies (@a, @b).",
    ]
