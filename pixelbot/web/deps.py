"""What the web pages may use from the running bot: ``WebDeps``, filled in by the assembly.

Route modules (``pixelbot/web/overlay.py``, ``pixelbot/web/dashboard.py``) import it from here
(not from ``server.py``, which imports them) and read it from a handler as
``request.app[DEPS]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from pixelbot.clock import Clock
from pixelbot.commands.services import Services
from pixelbot.config import Config
from pixelbot.db.engine import Database
from pixelbot.outcomes import OutcomeBus
from pixelbot.scheduler.runner import JobScheduler
from pixelbot.web.hub import OverlayHub

__all__ = ["DEPS", "STATIC_DIR", "WebDeps"]

STATIC_DIR = Path(__file__).parent / "static"  # static/<module>/: each page module's files


@dataclass
class WebDeps:
    """What a page may use. Everything is the running bot's own object, not a copy."""

    settings: Callable[[], Config]  # the running configuration (it changes on !reload)
    clock: Clock
    bus: OutcomeBus  # subscribe for live updates; publish like any other part of the bot
    services: Services  # wallets, ledger, redeems, the queue control: what cogs use
    db: Database  # read access for pages that list things (events, history)
    scheduler: JobScheduler  # job status, "run now"
    overlay_key: str  # the read-only key every overlay URL carries
    status: Callable[[], Mapping[str, Any]]  # the platforms' (and the web's) status
    base_dir: Path  # where relative paths in the config (data/tts, data/sounds) resolve
    overlays: OverlayHub | None = None  # what the overlay pages show (pixelbot/web/hub.py)
    # Filled in by route modules that other modules need (the overlay hub, a session store).
    extras: dict[str, Any] = field(default_factory=dict)


DEPS: web.AppKey[WebDeps] = web.AppKey("deps", WebDeps)
