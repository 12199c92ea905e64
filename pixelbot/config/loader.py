"""The mechanics behind ``pixelbot.config.load_config``: YAML, line numbers, ``${ENV}``, messages.

Nothing here knows the config models; ``pixelbot.config.model`` passes its root model in. The steps:

1. ``read_document`` parses the file once into plain data plus a ``LineMap`` (YAML path ->
   1-based line of its key), built from ``yaml`` nodes, so every later problem can point at a
   line. A hostile or broken file is refused before it can cost time or memory: control
   characters, nesting deeper than ``MAX_DEPTH``, and anchors/aliases that would expand to more
   than ``MAX_NODES`` nodes (a "billion laughs" file is a few hundred bytes). The alias count is
   kept while the nodes are composed, so nothing is ever expanded to find out.
2. ``substitute_env`` replaces ``${VAR}`` / ``${VAR:-default}`` inside string scalars.
3. ``validation_issues`` turns a pydantic ``ValidationError`` into short human messages
   ("must be an integer") located by path and line, instead of pydantic's wording.

Each step returns its problems as ``ConfigIssue`` values, so the caller can report them all
at once; only a file that cannot be read or parsed at all raises ``ConfigError`` straight away.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pixelbot.errors import ConfigError, ConfigIssue

__all__ = [
    "FieldProblems",
    "LineMap",
    "YamlPath",
    "env_with_dotenv",
    "format_path",
    "read_document",
    "substitute_env",
    "validation_issues",
]

YamlPath = tuple[str | int, ...]

MAX_FILE_BYTES = 1_000_000  # a real config is a few KB; a huge file would be read whole
MAX_DEPTH = 64  # mappings and lists inside each other; a real config needs about 6
MAX_NODES = 50_000  # keys, values and items with every alias expanded; a real config has ~1,000
# What PyYAML refuses to read (it raises before any line number is known): C0 controls but
# tab, newline and carriage return, DEL, C1 controls but NEL, surrogates, U+FFFE and U+FFFF.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


class _TooComplex(yaml.YAMLError):
    def __init__(self, problem: str, line: int) -> None:
        self.problem = problem
        self.line = line
        super().__init__(problem)


class _GuardedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses deep nesting and alias bombs while composing.

    Every node's size, counted with its aliases expanded, is the sum of its children's sizes,
    and an alias is the node it names, whose size is already known: so the size of the whole
    document, however many times it repeats itself, is counted in one linear pass."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its size (nodes stay alive in the tree)

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The scanner keeps one pending "simple key" per open ``[`` / ``{`` and checks them all
        # at every token: 5,000 open brackets cost it seconds before the composer sees any.
        if self.flow_level >= MAX_DEPTH:
            line = self.get_mark().line + 1
            raise _TooComplex(f"nested more than {MAX_DEPTH} levels deep", line)
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            raise _TooComplex(f"nested more than {MAX_DEPTH} levels deep", line)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None and id(node) not in self._sizes:
            size = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
            self._sizes[id(node)] = size
            if size > MAX_NODES:
                raise _TooComplex(
                    f"this expands to more than {MAX_NODES:,} values through its aliases (*name)",
                    node.start_mark.line + 1,
                )
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def format_path(path: Sequence[str | int]) -> str:
    """``("timers", 0, "every")`` -> ``"timers.0.every"``."""
    return ".".join(str(part) for part in path)


class FieldProblems(ValueError):
    """Raised by a model validator to blame keys *below* the model, not the model itself.

    pydantic locates an error raised in a model validator at the model; ``validation_issues``
    unpacks this exception so "required when twitch is enabled" lands on
    ``platforms.twitch.client_id``. ``problems`` holds (relative path, message) pairs.
    """

    def __init__(self, problems: Sequence[tuple[YamlPath, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(message for _, message in problems))


class LineMap:
    """The 1-based line of every key (and list item) in a YAML document.

    A path that is not in the file (a missing key, or one filled in by a ``<<`` merge) falls
    back to its nearest ancestor, so "is required" points at the parent mapping.
    """

    def __init__(self, root: yaml.Node | None) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        self.duplicates: list[tuple[YamlPath, int]] = []
        self.cycle_line: int | None = None  # an anchor used inside itself: `a: &x [*x]`
        if root is not None:
            self._lines[()] = root.start_mark.line + 1
            self._walk(root, (), frozenset())

    def _walk(self, node: yaml.Node, path: YamlPath, ancestors: frozenset[int]) -> None:
        if id(node) in ancestors:
            self.cycle_line = node.start_mark.line + 1
            return
        ancestors = ancestors | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = str(key_node.value)
                child = (*path, key)
                if key in seen and key != "<<":
                    self.duplicates.append((child, key_node.start_mark.line + 1))
                seen.add(key)
                self._lines[_key(child)] = key_node.start_mark.line + 1
                self._walk(value_node, child, ancestors)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, index)
                self._lines[_key(child)] = item.start_mark.line + 1
                self._walk(item, child, ancestors)

    def has(self, path: Sequence[str | int]) -> bool:
        return _key(path) in self._lines

    def line_for(self, path: Sequence[str | int]) -> int | None:
        key = _key(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get(())


def _key(path: Sequence[str | int]) -> tuple[str, ...]:
    return tuple(str(part) for part in path)


def read_document(path: Path) -> tuple[Any, LineMap, list[ConfigIssue]]:
    """Read and parse a YAML file into (data, line map, duplicate-key issues).

    An empty file gives ``None`` data (meaning: all defaults). A file that cannot be read or
    parsed raises ``ConfigError`` at once: nothing useful can be said about the rest of it.
    """
    file = path.name
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            message = f"refused: the file is larger than {MAX_FILE_BYTES:,} bytes"
            raise ConfigError([ConfigIssue("", message, None, file)])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue("", f"cannot read config file: {_reason(exc)}", file=file)]
        ) from None
    except UnicodeDecodeError:
        message = "cannot read config file: it is not UTF-8 text"
        raise ConfigError([ConfigIssue("", message, file=file)]) from None

    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        bad_line = text.count("\n", 0, bad.start()) + 1
        message = (
            f"the file contains a control character (U+{ord(bad.group()):04X}), which YAML does "
            "not allow; remove it"
        )
        raise ConfigError([ConfigIssue("", message, bad_line, file)])

    loader = _GuardedLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _TooComplex as exc:
        raise ConfigError([ConfigIssue("", f"refused: {exc.problem}", exc.line, file)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "cannot parse the file"
        if exc.context and problem.startswith("but "):  # "... but found another document"
            problem = f"{exc.context} {problem}"
        issue = ConfigIssue("", f"YAML syntax error: {problem}", line, file)
        raise ConfigError([issue]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"YAML syntax error: {exc}", None, file)]) from None
    finally:
        loader.dispose()

    lines = LineMap(root)
    if lines.cycle_line is not None:
        issue = ConfigIssue(
            "", "YAML syntax error: an anchor is used inside itself", lines.cycle_line, file
        )
        raise ConfigError([issue])
    issues = [
        ConfigIssue(
            format_path(dup), "duplicate key (the later one would silently win)", line, file
        )
        for dup, line in lines.duplicates
    ]
    return data, lines, issues


def _reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a directory"
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def env_with_dotenv(config_path: Path) -> dict[str, str]:
    """The process environment over the ``.env`` file next to the config (if any)."""
    from_file = dotenv_values(config_path.parent / ".env")
    merged = {key: value for key, value in from_file.items() if value is not None}
    merged.update(os.environ)
    return merged


# ``$${`` is an escaped literal ``${``; a ``${`` that matches neither form is a typo.
_REFERENCE = re.compile(
    r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$\{"
)
_FALSE_WORDS = {"false", "no", "off", "0", "n", "f"}


class _Unset(Exception):
    def __init__(self, message: str, *, typo: bool = False) -> None:
        self.message = message
        self.typo = typo  # a malformed reference is reported even where secrets are optional


def substitute_env(
    data: Any, env: Mapping[str, str], lines: LineMap, file: str
) -> tuple[Any, list[ConfigIssue]]:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string scalar (also mid-string).

    ``${VAR:-default}`` uses the default when VAR is unset or empty, as in a shell. An unset
    VAR without a default is an issue at that key, except anywhere under a mapping whose
    ``enabled`` is false: a disabled platform needs no secrets, so the value becomes None.
    """
    issues: list[ConfigIssue] = []

    def visit(value: Any, path: YamlPath, disabled: bool) -> Any:
        if isinstance(value, str):
            try:
                return _substitute(value, env)
            except _Unset as problem:
                if problem.typo or not disabled:
                    issues.append(
                        ConfigIssue(format_path(path), problem.message, lines.line_for(path), file)
                    )
                return None
        if isinstance(value, dict):
            result: dict[Any, Any] = {}
            if "enabled" in value:
                result["enabled"] = visit(value["enabled"], (*path, "enabled"), disabled)
                disabled = disabled or _is_false(result["enabled"])
            for key, item in value.items():
                if key != "enabled":
                    result[key] = visit(item, (*path, str(key)), disabled)
            return {key: result[key] for key in value}  # keep the file's key order
        if isinstance(value, list):
            return [visit(item, (*path, index), disabled) for index, item in enumerate(value)]
        return value

    return visit(data, (), False), issues


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group("name"), match.group("default")
        if name is None:
            raise _Unset("a '${' must be written ${NAME} or ${NAME:-default}", typo=True)
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            raise _Unset(f"environment variable {name} is not set")
        return value

    return _REFERENCE.sub(replace, text)


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in _FALSE_WORDS)


# ---------------------------------------------------------------------------- messages

_TYPE_MESSAGES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "int_parsing_size": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "string_unicode": "must be a string",
    "dict_type": "must be a mapping",
    "mapping_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "iterable_type": "must be a list",
    "timedelta_type": "must be a duration; use e.g. 30s, 5m, 1h",
    "timedelta_parsing": "must be a duration; use e.g. 30s, 5m, 1h",
    "missing": "is required",
    "invalid_key": "unknown key",
}
_COMPARISONS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}


def validation_issues(
    exc: ValidationError, root: type[BaseModel], lines: LineMap, file: str, data: Any = None
) -> list[ConfigIssue]:
    """One ``ConfigIssue`` per pydantic error, worded for a streamer and located by line.
    ``data`` (the document as validated) lets paths follow what the file really says."""
    issues: list[ConfigIssue] = []
    for error in exc.errors(include_url=False):
        # pydantic marks a bad dict key as (..., key, "[key]"): the key itself is the culprit.
        loc: YamlPath = tuple(part for part in error["loc"] if part != "[key]")
        raw_loc = loc
        loc = _as_written(loc, data) if data is not None else _without_union_tags(loc, lines)
        for path, message in _messages(error, loc, root, raw_loc):
            issues.append(ConfigIssue(format_path(path), message, lines.line_for(path), file))
    return issues


DISCRIMINATORS = ("type",)  # the keys that pick a member of a tagged union in our models


def _as_written(loc: YamlPath, data: Any) -> YamlPath:
    """Map pydantic's path onto the document: drop the union member's name pydantic inserts
    (``action.chat.message`` for ``action: {type: chat, message: ...}``), and stop where the
    file wrote a plain value for a shorthand (``wait: soon`` is reported at ``wait``)."""
    parts: list[str | int] = []
    node = data
    remaining = list(loc)
    while remaining:
        part = remaining.pop(0)
        if isinstance(node, dict):
            tag = next((node.get(key) for key in DISCRIMINATORS if key in node), None)
            if part == tag and (not remaining or remaining[0] != part or part not in node):
                continue  # the member's name, not a key of the file
            parts.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            parts.append(part)
            node = node[part] if 0 <= part < len(node) else None
        elif node is None:
            parts.append(part)  # a missing key (or section): report it where it belongs
        else:
            break  # a plain value where the model has fields: the value is the culprit
    return tuple(parts)


def _without_union_tags(loc: YamlPath, lines: LineMap) -> YamlPath:
    """pydantic puts the chosen member of a tagged union in the path (``action.chat.message``
    for ``action: {type: chat}``); the file has no such key, so drop it."""
    parts = list(loc)
    index = 1
    while index < len(parts) - 1:
        here, skipped = parts[: index + 1], [*parts[:index], parts[index + 1]]
        if not lines.has(here) and lines.has(parts[:index]) and lines.has(skipped[:index]):
            del parts[index]
            continue
        index += 1
    return tuple(parts)


def _messages(
    error: ErrorDetails, loc: YamlPath, root: type[BaseModel], raw_loc: YamlPath | None = None
) -> list[tuple[YamlPath, str]]:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, FieldProblems):
        return [((*loc, *sub), message) for sub, message in cause.problems]
    if kind in ("value_error", "assertion_error") and cause is not None:
        return [(loc, str(cause))]
    if kind == "extra_forbidden":
        return [(loc, "unknown key" + _suggestion(root, raw_loc or loc))]
    if kind in _COMPARISONS:
        name, symbol = _COMPARISONS[kind]
        return [(loc, f"must be {symbol} {_number(ctx.get(name))}")]
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        return [(loc, f"must be one of {expected}")]
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return [
            (loc, "must not be empty" if minimum == 1 else f"must be at least {minimum} characters")
        ]
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return [(loc, "must not be empty" if minimum == 1 else f"needs at least {minimum} items")]
    if kind == "string_too_long":
        return [(loc, f"must be at most {ctx.get('max_length')} characters")]
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", "")).replace(" or ", ", ")
        return [((*loc, "type"), f"must be one of {expected}")]
    if kind == "union_tag_not_found":
        return [(loc, f"needs a '{ctx.get('discriminator', 'type').strip(chr(39))}'")]
    if kind in _TYPE_MESSAGES:
        return [(loc, _TYPE_MESSAGES[kind])]
    message = error["msg"]
    return [(loc, message[:1].lower() + message[1:])]


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _suggestion(root: type[BaseModel], loc: YamlPath) -> str:
    if not loc:
        return ""
    model = _model_at(root, loc[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]).lower(), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_at(root: type[BaseModel], loc: YamlPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc``, if one does."""
    current: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        member = _union_member(current, part)
        if member is not None:  # pydantic's path names the member of a tagged union
            current = member
            continue
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (dict, Mapping):
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple, Sequence):
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _union_member(annotation: Any, tag: Any) -> type[BaseModel] | None:
    """The member of a tagged union of models whose tag (a Literal field) is ``tag``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    for member in get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for field in member.model_fields.values():
                if get_origin(field.annotation) is Literal and get_args(field.annotation) == (tag,):
                    return member
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the type that does the work."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            models = [
                arg for arg in members if isinstance(arg, type) and issubclass(arg, BaseModel)
            ]
            if models:
                return models[0]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
