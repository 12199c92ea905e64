"""The layering of DESIGN.md §2, checked on every run: a platform or integration library is
imported only in its own package, pure rules import no I/O, cogs see no database."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_LIBRARIES = {"twitchio", "discord", "obsws_python", "pyttsx3"}
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
