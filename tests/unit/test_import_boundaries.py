"""The layering of DESIGN.md §2, checked on every run: a platform or integration library is
imported only in its own package, pure rules import no I/O, cogs see no database."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_LIBRARIES = {"twitchio", "discord", "obsws_python", "pyttsx3", "openai"}
IO_LIBRARIES = {"sqlalchemy", "aiosqlite", "aiohttp", "asyncio", "twitchio", "discord", "socket"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path", sources("pixelbot", "cogs"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_platform_libraries_stay_in_their_layer(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    if relative.startswith(("pixelbot/platforms/", "pixelbot/integrations/")):
        return
    assert imported_modules(path) & PLATFORM_LIBRARIES == set()


@pytest.mark.parametrize("path", sources("pixelbot/domain"), ids=lambda p: p.name)
def test_domain_rules_do_no_io(path: Path) -> None:
    assert imported_modules(path) & IO_LIBRARIES == set()


@pytest.mark.parametrize("path", sources("cogs"), ids=lambda p: p.name)
def test_cogs_talk_to_services_not_the_database(path: Path) -> None:
    assert imported_modules(path) & {"sqlalchemy", "aiosqlite"} == set()


def test_the_scan_sees_imports() -> None:
    # guards the guard: a file that does import a platform library is caught
    sample = ROOT / "pixelbot" / "events.py"
    assert "dataclasses" in imported_modules(sample)


# ------------------------------------------------------------------ the direction of the layers
# DESIGN.md §2: cli/app -> {cogs, commands, queue runtime + workers, platforms} -> economy -> db;
# below everything sit domain, config, events, errors, clock. A layer never imports one above it.

FORBIDDEN: dict[str, tuple[str, ...]] = {
    # what a folder (or module) of ours must never import, by module prefix
    "cogs/": ("pixelbot.app", "pixelbot.queue", "pixelbot.platforms", "pixelbot.db"),
    "pixelbot/commands/": ("pixelbot.app", "pixelbot.queue", "pixelbot.platforms", "cogs"),
    "pixelbot/economy/": (
        "pixelbot.app",
        "pixelbot.commands",
        "pixelbot.queue",
        "pixelbot.platforms",
        "pixelbot.integrations",
        "cogs",
    ),
    "pixelbot/db/": (
        "pixelbot.app",
        "pixelbot.commands",
        "pixelbot.queue",
        "pixelbot.platforms",
        "pixelbot.economy",
        "cogs",
    ),
    "pixelbot/platforms/": (
        "pixelbot.app",
        "pixelbot.commands",
        "pixelbot.queue",
        "pixelbot.economy",
        "cogs",
    ),
    "pixelbot/integrations/": (
        "pixelbot.app",
        "pixelbot.commands",
        "pixelbot.queue",
        "pixelbot.platforms",
        "pixelbot.economy",
        "cogs",
    ),
    "pixelbot/queue/": ("pixelbot.app", "pixelbot.commands", "pixelbot.platforms", "cogs"),
    "pixelbot/scheduler/": ("pixelbot.app", "pixelbot.commands", "pixelbot.platforms", "cogs"),
    # the web pages call the same services as the chat commands; nothing below calls them
    "pixelbot/web/": ("pixelbot.app", "pixelbot.platforms", "cogs"),
}
for _folder in ("cogs/", "pixelbot/commands/", "pixelbot/economy/", "pixelbot/db/"):
    FORBIDDEN[_folder] += ("pixelbot.web",)
for _folder in ("pixelbot/platforms/", "pixelbot/integrations/", "pixelbot/queue/"):
    FORBIDDEN[_folder] += ("pixelbot.web",)
FORBIDDEN["pixelbot/scheduler/"] += ("pixelbot.web",)
# domain, events, errors, clock: nothing of ours but errors and clock (and domain itself)
BOTTOM = ("pixelbot/domain/", "pixelbot/events.py", "pixelbot/errors.py", "pixelbot/clock.py")
BOTTOM_MAY_IMPORT = ("pixelbot.errors", "pixelbot.clock", "pixelbot.domain", "pixelbot.events")


def our_imports(source: str) -> set[str]:
    """Full dotted names of the modules of ours (pixelbot.*, cogs.*) a source imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in ("pixelbot", "cogs")}


def layer_violations(relative: str, source: str) -> list[str]:
    imported = our_imports(source)
    found = []
    for folder, banned in FORBIDDEN.items():
        if relative.startswith(folder):
            found += [
                f"{relative} imports {name}"
                for name in sorted(imported)
                if any(name == b or name.startswith(b + ".") for b in banned)
            ]
    if relative.startswith(BOTTOM):
        found += [
            f"{relative} imports {name}"
            for name in sorted(imported)
            if not any(name == ok or name.startswith(ok + ".") for ok in BOTTOM_MAY_IMPORT)
        ]
    return found


@pytest.mark.parametrize(
    "path", sources("pixelbot", "cogs"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_layers_only_import_downwards(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    assert layer_violations(relative, path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("cogs/sneaky.py", "from pixelbot.app.assembly import open_app\n"),
        ("pixelbot/commands/sneaky.py", "import pixelbot.queue.runtime\n"),
        ("pixelbot/economy/sneaky.py", "from pixelbot.commands.context import Context\n"),
        ("pixelbot/economy/sneaky.py", "from pixelbot import platforms\n"),
        ("pixelbot/domain/sneaky.py", "from pixelbot.config import Config\n"),
        ("pixelbot/domain/sneaky.py", "from pixelbot.economy.ledger import Ledger\n"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, relative: str, source: str) -> None:
    # guards the guard: a module written to the wrong layer fails the check
    module = tmp_path / "sneaky.py"
    module.write_text(source, encoding="utf-8")
    assert layer_violations(relative, module.read_text(encoding="utf-8")) != []
