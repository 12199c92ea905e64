"""The text-to-speech filter, one table per step, and the properties that hold for any text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelbot.domain.tts_text import clean_for_speech


def clean(text: str, **options: object) -> str:
    return clean_for_speech(text, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ｈｅｌｌｏ ｗｏｒｌｄ", "hello world"),  # full-width letters
        ("𝐛𝐨𝐥𝐝 text", "bold text"),  # mathematical bold
        ("hel\u200blo", "hello"),  # zero-width space
        ("hel\u200dlo\ufeff", "hello"),  # zero-width joiner, byte order mark
        ("soft\u00adhyphen", "softhyphen"),
        ("bell\x07 and\x00 null", "bell and null"),
        ("line\nbreak\ttab\r\nend", "line break tab end"),
        ("z\u0336\u0336\u0336\u0336\u0336x", "z\u0336\u0336x"),  # Zalgo: two marks kept
        ("caf\u00e9", "café"),
    ],
)
def test_normalises_unicode_and_drops_invisible_characters(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("look https://example.com/a?b=c now", "look now"),
        ("look http://example.com now", "look now"),
        ("HTTPS://EXAMPLE.COM/X shouting", "shouting"),
        ("ftp://files.example.org/x old", "old"),
        ("go to www.something.example now", "go to now"),
        ("see example.com/x here", "see here"),
        ("see bit.ly/abc here", "see here"),
        ("see youtu.be/dQw4w9WgXcQ here", "see here"),  # short TLD, but a path
        ("join discord.gg/abc", "join"),
        ("visit google.com today", "visit today"),
        ("visit sub.domain.twitch.tv", "visit"),
        ("visit google.com.", "visit."),  # the sentence keeps its full stop
        ("read https://x.com/post, then", "read, then"),
        ("mail bob.smith+tts@example.com please", "mail please"),
        ("localhost:8080/x is fine", "localhost:8080/x is fine"),  # no dot: not a domain
        # not links
        ("the end. Next one", "the end. Next one"),
        ("the end.Next one", "the end.Next one"),
        ("open file.txt and node.js", "open file.txt and node.js"),
        ("pi is 3.14", "pi is 3.14"),
        ("Mr.Smith and e.g. this", "Mr.Smith and e.g. this"),
        ("lol.it was fun", "lol.it was fun"),
        ("and/or", "and/or"),
    ],
)
def test_removes_links(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize(
    ("text", "max_repeat", "expected"),
    [
        ("soooooo good", 3, "sooo good"),
        ("wow!!!!!!", 3, "wow!!!"),
        ("sooo good", 3, "sooo good"),  # at the limit: unchanged
        ("SoOoOoOo", 3, "SoOo"),  # any capitalisation
        ("aaaa bbbb", 1, "a b"),
        ("hmmmmmmm??????", 2, "hmm??"),
        ("100000 points", 3, "100000 points"),  # digits are exempt: it is a number
    ],
)
def test_collapses_repeated_characters(text: str, max_repeat: int, expected: str) -> None:
    assert clean(text, max_repeat=max_repeat) == expected


@pytest.mark.parametrize(
    ("text", "max_word_repeat", "expected"),
    [
        ("LUL LUL LUL LUL", 2, "LUL LUL"),
        ("LUL LUL", 2, "LUL LUL"),
        ("LUL lul Lul! LUL. nice", 2, "LUL lul nice"),  # capitalisation and punctuation
        ("Kappa Kappa Kappa PogChamp Kappa Kappa Kappa", 1, "Kappa PogChamp Kappa"),
        ("hi hi hi hi hi", 3, "hi hi hi"),
        ("no no yes no no", 2, "no no yes no no"),  # only runs in a row count
    ],
)
def test_collapses_repeated_words(text: str, max_word_repeat: int, expected: str) -> None:
    assert clean(text, max_word_repeat=max_word_repeat) == expected


@pytest.mark.parametrize(
    ("text", "banned", "replacement", "expected"),
    [
        ("oh darn it", ["darn"], "", "oh it"),
        ("oh DARN it", ["darn"], "", "oh it"),  # any capitalisation
        ("oh Darn! it", ["darn"], "", "oh! it"),  # punctuation does not hide it
        ("(darn) it", ["darn"], "", "() it"),
        ("darnit and undarn", ["darn"], "", "darnit and undarn"),  # not inside other words
        ("oh darn it", ["darn"], "beep", "oh beep it"),
        ("oh d\u200barn it", ["darn"], "", "oh it"),  # zero-width trick
        ("oh ｄａｒｎ it", ["darn"], "", "oh it"),  # full-width trick
        ("go away now", ["go away"], "", "now"),  # a phrase
        ("go,  away now", ["go away"], "", "now"),  # its words split by punctuation
        ("go there and away", ["go away"], "", "go there and away"),
        ("heck and darn", ["darn", "HECK"], "", "and"),  # banned entries any case
        ("oh darn", ["  ", ""], "", "oh darn"),  # blank entries ignore
        ("f*ck this", ["f*ck"], "", "this"),  # punctuation in an entry is literal
    ],
)
def test_replaces_banned_words(
    text: str, banned: list[str], replacement: str, expected: str
) -> None:
    assert clean(text, banned_words=banned, replacement=replacement) == expected


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("one two three four", 9, "one two"),  # never half a word
        ("one two three four", 7, "one two"),  # the cut falls on a space
        ("one two three four", 8, "one two"),
        ("one two three four", 100, "one two three four"),
        ("abcdefghijkl", 5, "abcde"),  # one longer word: cut hard
        ("abcdefghijkl more", 5, "abcde"),
    ],
)
def test_cuts_to_max_chars_at_a_word_boundary(text: str, max_chars: int, expected: str) -> None:
    assert clean(text, max_chars=max_chars) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "!!! ???", "...", "\u200b\u200b", "https://example.com", "darn DARN", "- , ;"],
)
def test_nothing_speakable_is_empty(text: str) -> None:
    assert clean(text, banned_words=["darn"]) == ""


@pytest.mark.parametrize("text", ["😀", "$$$", "7"])
def test_symbols_and_numbers_are_speakable(text: str) -> None:
    assert clean(text) == text


def test_whitespace_is_collapsed() -> None:
    assert clean("  so   many \t spaces , really  ") == "so many spaces, really"


def test_steps_repeat_until_the_text_settles() -> None:
    # removing the banned word makes three LULs in a row, which the next pass collapses
    assert clean("LUL LUL darn LUL", banned_words=["darn"]) == "LUL LUL"
    # a hard cut that leaves a banned word is caught too
    assert clean("darnation", banned_words=["darn"], max_chars=4) == ""


def test_rejects_limits_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        clean("hi", max_chars=0)


BANNED = ["darn", "heck", "go away"]
_fragments = st.one_of(
    st.sampled_from(
        [
            "darn",
            "DARN!",
            "d\u200barn",
            "heck",
            "Heck,",
            "go away",
            "go, away",
            "LUL",
            "soooooo",
            "!!!!!",
            "example.com/x",
            "https://a.b/c",
            "end.",
            "100000",
            "\u200d",
            " ",
        ]
    ),
    st.text(max_size=12),
)
_messages = st.lists(_fragments, max_size=20).map(" ".join)


def _whole_words(text: str) -> str:
    """The text's words, lowercase, one space between: a banned phrase is a substring of it."""
    return " " + " ".join(re.findall(r"[^\W_]+", text.lower())) + " "


@settings(max_examples=300, deadline=None)
@given(
    text=_messages,
    max_chars=st.integers(1, 80),
    max_repeat=st.integers(1, 4),
    max_word_repeat=st.integers(1, 3),
    replacement=st.sampled_from(["", "beep"]),
)
def test_properties_hold_for_any_text(
    text: str, max_chars: int, max_repeat: int, max_word_repeat: int, replacement: str
) -> None:
    options = {
        "banned_words": BANNED,
        "replacement": replacement,
        "max_chars": max_chars,
        "max_repeat": max_repeat,
        "max_word_repeat": max_word_repeat,
    }
    cleaned = clean(text, **options)

    assert len(cleaned) <= max_chars
    for phrase in BANNED:
        assert f" {phrase} " not in _whole_words(cleaned)
    assert clean(cleaned, **options) == cleaned  # idempotent
    assert cleaned == cleaned.strip()
