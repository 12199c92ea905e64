"""Reading other bots' exports of their viewers' points: StreamElements and Firebot.

- **StreamElements**: the loyalty points export, a CSV (comma, semicolon or tab separated)
  whose header names a ``Username`` column and a ``Current Points`` (or ``Points``) column,
  and often a ``Twitch User ID`` column. Other columns (``All Time Points``, watch time) are
  ignored: the balance a viewer can spend is the current one.
- **Firebot**: its viewer database ``users.db`` (NeDB: one JSON document per line; a later
  line for the same ``_id`` replaces an earlier one, ``{"$$deleted": true}`` removes it).
  ``_id`` is the Twitch user id, ``username`` the login, ``currency`` maps each currency's id
  to the viewer's amount; with several currencies, the caller says which one.

A row that cannot be read is reported with its line number and skipped; every other row is
still read. A file that cannot be read at all (no such columns, not a Firebot database) raises
``ImportFileError``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelbot.config.types import MAX_INTEGER
from pixelbot.errors import ImportFileError

__all__ = [
    "BadRow",
    "ImportRow",
    "ParsedExport",
    "read_firebot",
    "read_streamelements",
]

_LOGIN = re.compile(r"^[A-Za-z0-9_]{1,50}$")  # what Twitch allows in a login (and a bit more)
_USER_ID = re.compile(r"^[0-9]{1,30}$")
_LOGIN_COLUMNS = ("username", "user", "user name", "login", "name")
_ID_COLUMNS = ("twitch user id", "user id", "userid", "twitch id", "id")
_POINTS_COLUMNS = ("current points", "points", "current")


@dataclass(frozen=True)
class ImportRow:
    line: int
    login: str
    display_name: str
    platform_user_id: str | None
    points: int


@dataclass(frozen=True)
class BadRow:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass
class ParsedExport:
    rows: list[ImportRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def read_streamelements(path: Path) -> ParsedExport:
    text = _read_text(path)
    lines = text.splitlines()
    if not lines:
        raise ImportFileError(f"{path.name} is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = [cell.strip().lower() for cell in next(reader)]
    login_at = _column(header, _LOGIN_COLUMNS)
    points_at = _column(header, _POINTS_COLUMNS)
    id_at = _column(header, _ID_COLUMNS)
    if login_at is None or points_at is None:
        raise ImportFileError(
            f"{path.name}: the first line must name a Username and a Current Points column "
            f"(found: {', '.join(header) or 'nothing'})"
        )
    parsed = ParsedExport()
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        try:
            login = _login(_cell(cells, login_at))
            points = _points(_cell(cells, points_at))
            user_id = _user_id(_cell(cells, id_at)) if id_at is not None else None
        except ValueError as exc:
            parsed.bad.append(BadRow(line, str(exc)))
            continue
        if _duplicate(parsed, seen, (user_id or login.lower()), line, login):
            continue
        parsed.rows.append(ImportRow(line, login.lower(), login, user_id, points))
    return parsed


def read_firebot(path: Path, currency: str | None = None) -> ParsedExport:
    """``currency``: the id (or, when the documents carry names, the name) of the currency to
    import; may be left out when the database holds only one."""
    documents: dict[str, tuple[int, dict[str, Any]]] = {}
    parsed = ParsedExport()
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            parsed.bad.append(BadRow(number, f"not a JSON document ({exc.msg})"))
            continue
        if not isinstance(document, dict):
            parsed.bad.append(BadRow(number, "not a JSON object"))
            continue
        if "$$indexCreated" in document or "$$indexRemoved" in document:
            continue  # NeDB's own bookkeeping
        key = document.get("_id")
        if not isinstance(key, str) or not key:
            parsed.bad.append(BadRow(number, "no _id"))
            continue
        if document.get("$$deleted") is True:
            documents.pop(key, None)
        else:
            documents[key] = (number, document)
    if not documents:
        raise ImportFileError(
            f"{path.name} holds no viewers ({len(parsed.bad)} unreadable line(s)): "
            "is it Firebot's users.db?"
        )
    chosen = _firebot_currency(path, [doc for _, doc in documents.values()], currency)
    for key, (number, document) in sorted(documents.items(), key=lambda item: item[1][0]):
        try:
            user_id = _user_id(key)
            login = _login(str(document.get("username") or ""))
            display = str(document.get("displayName") or login)[:100]
            wallet = document.get("currency")
            amount = wallet.get(chosen, 0) if isinstance(wallet, dict) and chosen else 0
            points = _points(amount)
        except ValueError as exc:
            parsed.bad.append(BadRow(number, str(exc)))
            continue
        parsed.rows.append(ImportRow(number, login.lower(), display, user_id, points))
    parsed.bad.sort(key=lambda bad: bad.line)
    return parsed


# -- helpers -----------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _cell(cells: list[str], at: int | None) -> str:
    if at is None or at >= len(cells):
        return ""
    return cells[at].strip()


def _login(value: str) -> str:
    value = value.strip().removeprefix("@")
    if not _LOGIN.match(value):
        shown = value[:40] or "(empty)"
        raise ValueError(f"{shown!r} is not a login (letters, digits and _ only)")
    return value


def _user_id(value: str) -> str | None:
    if not value:
        return None
    if not _USER_ID.match(value):
        raise ValueError(f"{value[:40]!r} is not a user id (digits only)")
    return value


def _points(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of points")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if not re.fullmatch(r"-?[0-9]+", text):
            raise ValueError(f"{value[:40]!r} is not a whole number of points")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number of points")
    if value < 0:
        raise ValueError(f"{value} points: a balance cannot be negative")
    if value > MAX_INTEGER:
        raise ValueError(f"{value} points is more than the bot can hold ({MAX_INTEGER:,})")
    return value


def _duplicate(parsed: ParsedExport, seen: dict[str, int], key: str, line: int, who: str) -> bool:
    first = seen.get(key)
    if first is None:
        seen[key] = line
        return False
    parsed.bad.append(BadRow(line, f"{who} again (first on line {first}); the first is used"))
    return True


def _firebot_currency(
    path: Path, documents: list[dict[str, Any]], wanted: str | None
) -> str | None:
    found: set[str] = set()
    for document in documents:
        wallet = document.get("currency")
        if isinstance(wallet, dict):
            found.update(str(key) for key in wallet)
    if wanted is not None:
        if wanted not in found:
            raise ImportFileError(
                f"{path.name}: no currency {wanted!r} (found: {', '.join(sorted(found)) or 'none'})"
            )
        return wanted
    if len(found) > 1:
        raise ImportFileError(
            f"{path.name} holds several currencies; name one with --currency "
            f"(found: {', '.join(sorted(found))})"
        )
    return next(iter(found), None)
