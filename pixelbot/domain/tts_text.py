"""What a viewer's text-to-speech message becomes before a voice reads it. Pure, no I/O.

``clean_for_speech`` runs these steps, in this order:

1. **Normalise**: Unicode NFKC (full-width and styled letters become plain ones), drop
   control, format and zero-width characters (so ``d\\u200barn`` is ``darn``), turn every
   kind of whitespace into a space, and keep at most two combining marks per letter
   ("Zalgo" text).
2. **Links**: drop ``scheme://...`` and ``www....`` links, e-mail addresses, and bare domains
   such as ``example.com`` or ``bit.ly/abc``. A bare domain is a dotted word whose last part
   is a common top-level domain, or any dotted word followed by a path. ``end.Next``,
   ``file.txt`` and ``3.14`` are not links; nor is ``end. Next``.
3. **Repeated characters**: a character repeated more than ``max_repeat`` times (any
   capitalisation) is cut to ``max_repeat`` ("soooooo" -> "sooo", "!!!!!!" -> "!!!").
   Digits are exempt: "100000" is a number, not spam.
4. **Repeated words**: a word said more than ``max_word_repeat`` times in a row (any
   capitalisation, trailing punctuation ignored) is kept ``max_word_repeat`` times
   ("LUL LUL LUL LUL" -> "LUL LUL").
5. **Banned words**: whole words or phrases, any capitalisation, are replaced by
   ``replacement`` ("" removes them). Punctuation around a word does not hide it ("Darn!"),
   but a longer word containing it is not touched ("darnit"). The words of a banned phrase
   may be separated by any spaces or punctuation ("go, away" matches "go away").
6. **Whitespace**: runs of spaces become one; no space before ``, . ! ? ; :``.
7. **Length**: cut to ``max_chars`` at a word boundary; a single longer word is cut hard.

Steps can create work for earlier ones (removing a banned word between two "LUL LUL" makes
four in a row; a hard cut can leave a banned word), so the steps are repeated until the text
stops changing. That makes cleaning idempotent: ``clean(clean(x)) == clean(x)``.

The result is ``""`` when nothing speakable is left: no letter, digit or symbol (emoji and
``$`` are read aloud; punctuation and spaces alone are not).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["clean_for_speech"]

_MAX_PASSES = 6  # the steps settle in one or two passes; this only bounds odd replacements
_MAX_COMBINING_MARKS = 2  # enough for real accents (Vietnamese stacks two)
_DROPPED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}  # control, format/zero-width, private…
_SPEAKABLE_CATEGORIES = ("L", "N", "S")  # letters, numbers, symbols (emoji, currency)

# Top-level domains that make a bare dotted word a link even without a path. Short ones that
# are common English words (in, it, to, me, be, us, so, no, at, gg) are left out: chat often
# skips the space after a full stop ("lol.it was fun"), and a path still catches "youtu.be/x".
# fmt: off
_LINK_TLDS = frozenset({
    "com", "net", "org", "edu", "gov", "io", "co", "tv", "ly", "xyz", "app", "dev", "info",
    "biz", "uk", "de", "fr", "ru", "cn", "jp", "ca", "au", "nl", "eu", "ch", "se", "link",
    "live", "shop", "site", "online", "store", "club", "top", "click", "ws", "cc", "fm", "ai",
    "gl",
})
# fmt: on
_SCHEME_OR_WWW_LINK = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*", re.IGNORECASE)
_DOTTED_WORD = re.compile(
    r"(?<![\w@.-])"  # starts a word
    r"(?P<mail>[\w.+-]+@)?"  # an e-mail address's user part
    r"(?:[a-z0-9-]+\.)+(?P<tld>[a-z][a-z0-9-]*)"  # labels and the last part
    r"(?::\d+)?"  # a port
    r"(?P<path>/\S*)?",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = re.compile(r"[.,!?;:)\]}'\"]+$")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +(?=[,.!?;:])")
_NON_WORD_END = re.compile(r"\W+$")


def clean_for_speech(
    text: str,
    *,
    banned_words: Sequence[str] = (),
    replacement: str = "",
    max_chars: int = 200,
    max_repeat: int = 3,
    max_word_repeat: int = 2,
) -> str:
    """Return ``text`` fit to be read aloud, or ``""`` if nothing speakable is left."""
    if min(max_chars, max_repeat, max_word_repeat) < 1:
        raise ValueError("max_chars, max_repeat and max_word_repeat must be at least 1")
    banned = _banned_pattern(tuple(banned_words))
    for _ in range(_MAX_PASSES):
        cleaned = _one_pass(text, banned, replacement, max_chars, max_repeat, max_word_repeat)
        if cleaned == text:
            break
        text = cleaned
    return text if _is_speakable(text) else ""


def _one_pass(
    text: str,
    banned: re.Pattern[str] | None,
    replacement: str,
    max_chars: int,
    max_repeat: int,
    max_word_repeat: int,
) -> str:
    text = _normalise(text)
    text = _remove_links(text)
    text = _collapse_repeated_chars(text, max_repeat)
    text = _collapse_repeated_words(text, max_word_repeat)
    if banned is not None:
        text = banned.sub(lambda _: replacement, text)
    text = _collapse_whitespace(text)
    return _cut(text, max_chars)


def _normalise(text: str) -> str:
    kept: list[str] = []
    marks_in_a_row = 0
    for char in unicodedata.normalize("NFKC", text):
        if char.isspace():
            kept.append(" ")
            marks_in_a_row = 0
            continue
        category = unicodedata.category(char)
        if category in _DROPPED_CATEGORIES:
            continue
        if category in ("Mn", "Me"):
            marks_in_a_row += 1
            if marks_in_a_row > _MAX_COMBINING_MARKS:
                continue
        else:
            marks_in_a_row = 0
        kept.append(char)
    return "".join(kept)


def _remove_links(text: str) -> str:
    text = _SCHEME_OR_WWW_LINK.sub(_keep_trailing_punctuation, text)
    return _DOTTED_WORD.sub(_drop_if_link, text)


def _keep_trailing_punctuation(match: re.Match[str]) -> str:
    """A link at the end of a sentence keeps the sentence's full stop, not the link."""
    punctuation = _TRAILING_PUNCTUATION.search(match.group(0))
    return " " + (punctuation.group(0) if punctuation else "")


def _drop_if_link(match: re.Match[str]) -> str:
    path = match.group("path")
    tld = match.group("tld").lower()
    if match.group("mail") or tld in _LINK_TLDS or (path and len(tld) >= 2):
        return _keep_trailing_punctuation(match)
    return match.group(0)


def _collapse_repeated_chars(text: str, max_repeat: int) -> str:
    return _char_runs(max_repeat).sub(lambda match: match.group(0)[:max_repeat], text)


@lru_cache(maxsize=16)
def _char_runs(max_repeat: int) -> re.Pattern[str]:
    """One character (not a digit or space) more than ``max_repeat`` times in a row."""
    return re.compile(rf"([^\d ])\1{{{max_repeat},}}", re.IGNORECASE)


def _collapse_repeated_words(text: str, max_word_repeat: int) -> str:
    kept: list[str] = []
    previous_key: str | None = None
    in_a_row = 0
    for word in text.split(" "):
        if not word:
            continue
        key = _NON_WORD_END.sub("", word).casefold() or word
        in_a_row = in_a_row + 1 if key == previous_key else 1
        previous_key = key
        if in_a_row <= max_word_repeat:
            kept.append(word)
    return " ".join(kept)


@lru_cache(maxsize=32)
def _banned_pattern(banned_words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for every banned word or phrase, longest first (a phrase beats its words)."""
    phrases = {tuple(_normalise(entry).split()) for entry in banned_words}
    phrases.discard(())
    if not phrases:
        return None
    alternatives = [
        r"[\W_]+".join(re.escape(word) for word in phrase)
        for phrase in sorted(phrases, key=lambda words: -len(" ".join(words)))
    ]
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


def _collapse_whitespace(text: str) -> str:
    return _SPACE_BEFORE_PUNCTUATION.sub("", " ".join(text.split()))


def _cut(text: str, max_chars: int) -> str:
    """At most ``max_chars``, ending at a word boundary unless one word is longer."""
    if len(text) <= max_chars:
        return text
    if text[max_chars] == " ":
        return text[:max_chars].rstrip()
    last_space = text.rfind(" ", 0, max_chars)
    if last_space <= 0:
        return text[:max_chars]
    return text[:last_space].rstrip()


def _is_speakable(text: str) -> bool:
    return any(unicodedata.category(char).startswith(_SPEAKABLE_CATEGORIES) for char in text)
