"""Slash commands made from the bot's command registry (``domain/command_specs.py``).

Each chat command becomes a guild application command of the same name, described by its help
line, with one option per parameter: a viewer is a USER option, a whole number an INTEGER, the
rest (amounts such as ``1.5k`` or ``all``, durations, words, text) STRING options; a redeem's
name offers the redeems as autocomplete. The payload is hashed, and Discord is sent the list
only when the hash differs from the one stored after the last sync: registering commands is
rate-limited (200 creates a day per server), so an unchanged bot must not re-register at every
start. Shapes: https://discord.com/developers/docs/interactions/application-commands
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from pixelbot.domain.command_specs import CommandSpec, ParamKind

__all__ = ["commands_digest", "slash_payload"]

log = logging.getLogger(__name__)

# Application command option types (documented "Application Command Option Type")
STRING, INTEGER, USER = 3, 4, 6
CHAT_INPUT = 1
_OPTION_TYPES: dict[ParamKind, int] = {
    "text": STRING,
    "rest": STRING,
    "amount": STRING,
    "duration": STRING,
    "redeem": STRING,
    "integer": INTEGER,
    "viewer": USER,
}
_OPTION_HELP: dict[ParamKind, str] = {
    "text": "one word",
    "rest": "text",
    "amount": "points: a number such as 100 or 1.5k, or all",
    "duration": "a duration such as 30s, 5m or 1h",
    "redeem": "the redeem's name",
    "integer": "a whole number",
    "viewer": "a viewer",
}
# Names: 1-32 lower-case letters, digits, - or _ (the documented pattern, ASCII part)
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")
MAX_COMMANDS = 100  # guild CHAT_INPUT commands


def _description(text: str) -> str:
    text = " ".join(text.split()) or "a Pixel Bot command"
    return text if len(text) <= 100 else text[:99] + "…"


def slash_payload(specs: list[CommandSpec]) -> tuple[list[dict[str, Any]], list[CommandSpec]]:
    """The body of "Bulk Overwrite Guild Application Commands", and the specs it includes (a
    name Discord would refuse is left out, with a log line)."""
    payload: list[dict[str, Any]] = []
    included: list[CommandSpec] = []
    for spec in sorted(specs, key=lambda s: s.name):
        names = [spec.name, *(p.name for p in spec.params)]
        bad = [n for n in names if not _NAME.match(n)]
        if bad:
            log.info("discord: /%s is not offered as a slash command (name %r)", spec.name, bad[0])
            continue
        if len(payload) == MAX_COMMANDS:
            log.warning(
                "discord: more than %d commands; /%s and later left out", MAX_COMMANDS, spec.name
            )
            break
        options: list[dict[str, Any]] = []
        for param in spec.params:
            option: dict[str, Any] = {
                "type": _OPTION_TYPES[param.kind],
                "name": param.name,
                "description": _OPTION_HELP[param.kind],
                "required": param.required,
            }
            if param.kind == "integer":
                option["min_value"] = 0
            if param.kind == "redeem":
                option["autocomplete"] = True
            options.append(option)
        payload.append(
            {
                "type": CHAT_INPUT,
                "name": spec.name,
                "description": _description(spec.description),
                "options": options,
            }
        )
        included.append(spec)
    return payload, included


def commands_digest(application_id: str, guild_id: str, payload: list[dict[str, Any]]) -> str:
    """A hash of what would be registered, where: equal hashes mean nothing to send."""
    text = json.dumps([application_id, guild_id, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
