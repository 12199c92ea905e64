"""The command catalog a platform with native commands reads (``domain/command_specs.py``):
the running command registry described as data, and completions from the redeem catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pixelbot.commands.dispatcher import CommandRouter
from pixelbot.commands.specs import describe
from pixelbot.domain.command_specs import CommandSpec, ParamKind

__all__ = ["RegistryCatalog"]

MAX_CHOICES = 25  # Discord shows at most 25 completions


class RegistryCatalog:
    def __init__(self, router: CommandRouter, redeems: Callable[[], Iterable[str]]) -> None:
        self._router = router
        self._redeems = redeems

    def specs(self) -> list[CommandSpec]:
        return describe(self._router.all())

    def choices(self, kind: ParamKind, typed: str) -> list[str]:
        if kind != "redeem":
            return []
        start = typed.strip().lower()
        return [key for key in sorted(self._redeems()) if key.startswith(start)][:MAX_CHOICES]
