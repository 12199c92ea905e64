"""Who is watching, and what watching pays: pure rules, no I/O."""

from __future__ import annotations

from datetime import timedelta

from pixelbot.clock import utc
from pixelbot.domain.earning import watch_award
from pixelbot.economy.presence import PresenceTracker
from pixelbot.events import Viewer

T0 = utc(2026, 1, 1, 20, 0, 0)


def person(login: str, *roles: str) -> Viewer:
    return Viewer("twitch", f"id-{login}", login, login, frozenset(roles))


def test_joined_viewers_watch_until_they_leave_and_chat_alone_is_not_presence() -> None:
    tracker = PresenceTracker()
    tracker.joined(person("alice"), T0)
    tracker.chatted(person("bob"), T0)  # chatting does not make bob present
    assert [w.viewer.login for w in tracker.watching(T0)] == ["alice"]
    tracker.joined(person("bob"), T0)
    tracker.left(person("alice"))
    assert [w.viewer.login for w in tracker.watching(T0)] == ["bob"]
    assert tracker.watching(T0, active_within=timedelta(minutes=5))[0].last_chat_at == T0


def test_active_within_keeps_only_recent_chatters() -> None:
    tracker = PresenceTracker()
    for login in ("ann", "ben", "cid"):
        tracker.joined(person(login), T0)
    tracker.chatted(person("ann"), T0 + timedelta(minutes=9))
    tracker.chatted(person("ben"), T0 + timedelta(minutes=1))
    now = T0 + timedelta(minutes=15)
    recent = tracker.watching(now, active_within=timedelta(minutes=10))
    assert [w.viewer.login for w in recent] == ["ann"]


def test_roles_seen_later_replace_the_ones_at_join() -> None:
    tracker = PresenceTracker()
    tracker.joined(person("alice"), T0)
    tracker.seen(person("alice", "subscriber"))
    assert tracker.watching(T0)[0].viewer.roles == {"subscriber"}


def test_watch_award_takes_the_highest_multiplier_that_applies() -> None:
    multipliers = {"subscriber": 2.0, "vip": 3.0}
    assert watch_award(5, 1, [], multipliers) == (5, 1)
    assert watch_award(5, 1, ["subscriber"], multipliers) == (10, 2)
    assert watch_award(5, 1, ["subscriber", "vip"], multipliers) == (15, 3)
    assert watch_award(5, 1, ["moderator"], multipliers) == (5, 1)  # not listed: 1.0
    assert watch_award(5, 1, ["subscriber"], {"subscriber": 0.5}) == (2, 0)
