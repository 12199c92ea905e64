"""How much text from a viewer the bot takes in, and how much of it it says back.

Platforms cap chat at a few hundred characters, but nothing stops a script, a relay or a
buggy adapter from handing the bot a 100 KB "message" or display name: it would be stored in
the event log and echoed back in full. So normalized events clip every text to a platform-sized
limit when they are built, before anything else sees them, and replies quote at most a short
prefix of what a viewer typed. Lone surrogates (undecodable bytes smuggled through
``surrogateescape``) and NUL characters become U+FFFD here too: the database refuses to store
them (PostgreSQL refuses NUL in any text; a NUL in one viewer's name failed a whole watch-time
payout tick, for everyone present). Pure, no I/O.
"""

from __future__ import annotations

import re

__all__ = ["MESSAGE_MAX_CHARS", "NAME_MAX_CHARS", "QUOTE_MAX_CHARS", "clip", "quote"]

MESSAGE_MAX_CHARS = 500  # Twitch's limit; Discord allows more, but chat needs no more
NAME_MAX_CHARS = 64  # logins, display names and platform user ids
QUOTE_MAX_CHARS = 32  # what a reply repeats of a viewer's words

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with any lone surrogate or NUL replaced by
    U+FFFD."""
    if not text.isascii() or "\x00" in text:
        text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[:limit]


def quote(text: str, limit: int = QUOTE_MAX_CHARS) -> str:
    """A viewer's words as a reply repeats them: at most ``limit`` characters, ``…`` if cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
