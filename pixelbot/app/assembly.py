"""The one assembly: every way of starting the bot (``bot.py run``, the console, tests) builds
it here, in one order, and stops it in the reverse order::

    config -> database + economy (Engine) -> outcome bus + chat delivery -> command layer
    (cogs) -> queue runtime (workers) -> event intake -> scheduled jobs -> web server
    (overlays, dashboard; when ``web.enabled``) -> platforms

Where things plug in:

- a platform: a builder in ``pixelbot/platforms/registry.py``; it gets ``App.handle`` as its
  event sink and its ``Say`` lines through ``ChatDelivery``;
- a kind of queue item: a worker in ``pixelbot/queue/workers/`` and one line in
  ``registry.build_workers``;
- a listener for what happens (an overlay, a dashboard, the console printer):
  ``app.bus.subscribe(handler, OutcomeType, ...)``;
- a chat command: a cog in ``cogs/``, named in ``commands.cogs`` in config.yaml;
- a scheduled job: a ``Job`` in ``pixelbot/scheduler/jobs.py`` and its schedule in
  ``config/maintenance.py``;
- a web page: a module with ``add_routes(app, deps)`` listed in ``pixelbot/web/server.py``
  (``deps``: ``pixelbot/web/deps.py``, filled in here).

A platform that fails to start is reported (``App.platform_errors``, one log line) and the
others run; outside scripted runs it is retried with backoff and platforms that are down are
reported once a minute (``app/supervisor.py``).

Stopping loses nothing taken: the platforms stop first, all at once, each taking no new event
and giving the events it has taken a grace (``platforms/stopping.py``: ``GRACE`` seconds, one
grace for all of them, not one after another) to be logged, earned, answered and queued; then
whatever is still inside ``App.handle`` (an event pushed by anything else) gets the same grace;
only then do the web server, the scheduler, the queue and the economy writer stop. A grace
overrun is logged with what was cut. ``App.hurry`` (set by a second Ctrl-C: ``app/signals.py``)
ends the graces at once; the writer still finishes the operation in hand.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelbot.app.command_catalog import RegistryCatalog
from pixelbot.app.delivery import ChatDelivery
from pixelbot.app.engine import Engine
from pixelbot.app.intake import EventIntake
from pixelbot.app.rewards import ChannelPointRewards
from pixelbot.app.supervisor import PlatformSupervisor, Supervision
from pixelbot.clock import Clock, FakeClock, SystemClock
from pixelbot.commands.layer import CommandLayer
from pixelbot.commands.names import declared_command_names
from pixelbot.commands.services import ReloadResult, Services
from pixelbot.config import Config, load_config
from pixelbot.db.engine import sqlite_file
from pixelbot.db.lock import DatabaseLock
from pixelbot.economy.earning import Earned
from pixelbot.economy.obs_undos import ObsUndoStore
from pixelbot.economy.payouts import Payouts
from pixelbot.economy.presence import PresenceTracker
from pixelbot.errors import ConfigError
from pixelbot.events import Event
from pixelbot.outcomes import ItemSettled, Notice, OutcomeBus, Say
from pixelbot.platforms.base import Platform, PlatformStatus, SyncsRedeems, UsesCommands
from pixelbot.platforms.registry import build_platforms, unbuilt_platforms
from pixelbot.platforms.stopping import GRACE
from pixelbot.queue.runtime import QueueRuntime
from pixelbot.queue.worker import Worker
from pixelbot.queue.workers.registry import build_workers, clock_sleep
from pixelbot.scheduler.jobs import JobContext
from pixelbot.scheduler.runner import JobScheduler
from pixelbot.scheduler.timers import TimerBoard
from pixelbot.web.deps import WebDeps
from pixelbot.web.hub import OverlayHub
from pixelbot.web.keys import overlay_key
from pixelbot.web.server import WebServer, build_web_app

__all__ = ["SCRIPT_SEED", "App", "WorkerFactory", "open_app"]

log = logging.getLogger(__name__)

SCRIPT_SEED = 2026  # the wheel's RNG in scripted runs

WorkerFactory = Callable[["App"], Mapping[str, Worker]]


@dataclass
class App:
    engine: Engine
    bus: OutcomeBus
    delivery: ChatDelivery
    commands: CommandLayer
    queue: QueueRuntime
    intake: EventIntake
    scheduler: JobScheduler
    config_path: Path | None = None
    platforms: dict[str, Platform] = field(default_factory=dict)
    platform_errors: dict[str, str] = field(default_factory=dict)  # name -> why it did not start
    rewards: ChannelPointRewards | None = None
    supervisor: PlatformSupervisor | None = None  # retries platforms that did not start
    web: WebServer | None = None  # while ``web.enabled``
    overlays: OverlayHub | None = None  # what the overlay pages show (with the web server)
    base_dir: Path = field(default_factory=Path.cwd)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)  # set: stop without graces
    in_hand: int = 0  # events inside ``handle`` now
    _settled: asyncio.Event = field(default_factory=asyncio.Event)  # set while none is

    @property
    def config(self) -> Config:
        return self.engine.config

    async def handle(self, event: Event) -> Earned:
        """The sink every platform pushes its events into. The events in hand are counted:
        a shutdown lets them finish before the queue and the writer stop."""
        self.in_hand += 1
        self._settled.clear()
        try:
            return await self.intake.handle(event)
        finally:
            self.in_hand -= 1
            if not self.in_hand:
                self._settled.set()

    async def settled(self, grace: float) -> bool:
        """Wait (at most ``grace`` seconds, less if ``hurry`` is set) until no event is in
        hand; whether none is."""
        if self.in_hand:
            waits = {asyncio.ensure_future(self._settled.wait())}
            waits.add(asyncio.ensure_future(self.hurry.wait()))
            try:
                await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        return not self.in_hand

    def status(self) -> dict[str, PlatformStatus]:
        found = {name: platform.status() for name, platform in self.platforms.items()}
        for name, error in self.platform_errors.items():
            since = self.supervisor.down_since(name) if self.supervisor else None
            found[name] = PlatformStatus(False, retrying_since=since, detail=error)
        if self.web is not None:
            web = self.web
            detail = web.error or web.url
            if self.overlays is not None and self.overlays.open_overlays():
                detail += f"; overlays open: {', '.join(self.overlays.open_overlays())}"
            found["web"] = PlatformStatus(web.running, detail=detail)
        return found

    async def reload(self) -> ReloadResult:
        """Re-read the config file. Refused (nothing changes) if it is broken or cannot be
        applied; once applied, what went wrong loading cogs or mirroring redeems, if anything."""
        if self.config_path is None:
            return ReloadResult(False, ["this bot was not started from a config file"])
        try:
            config = load_config(self.config_path, command_names=declared_command_names)
        except ConfigError as exc:
            return ReloadResult(False, [str(issue) for issue in exc.issues])
        unbuilt = unbuilt_platforms(config)
        if unbuilt:
            return ReloadResult(False, [str(issue) for issue in unbuilt])
        try:
            await self.engine.apply_config(config)  # all or nothing
        except Exception as exc:
            log.warning("reloaded config could not be applied: %s", exc, exc_info=True)
            return ReloadResult(
                False, [f"the new configuration could not be applied: {type(exc).__name__}: {exc}"]
            )
        self.delivery.apply_config(config)
        errors = await self.commands.load_cogs()
        problems = [f"cog {name} {error}" for name, error in errors.items()]
        for platform in self.platforms.values():
            if isinstance(platform, SyncsRedeems):
                problems += await platform.redeems_changed(config.redeems)
            if isinstance(platform, UsesCommands):  # e.g. a new redeem's slash command
                try:
                    await platform.commands_changed()
                except Exception as exc:
                    log.warning("%s could not update its commands: %s", platform.name, exc)
                    problems.append(f"{platform.name} could not update its commands: {exc}")
        return ReloadResult(True, problems)


def _build(
    engine: Engine, bus: OutcomeBus, config_path: Path | None, base_dir: Path | None = None
) -> App:
    settings = lambda: engine.config  # noqa: E731  (the running config, swapped by !reload)
    # (a simulated clock moves only when a script says: nothing to wait for in real time)
    delivery = ChatDelivery(
        engine.clock, settings, flush_timers=not isinstance(engine.clock, FakeClock)
    )
    bus.subscribe(delivery.deliver, Say)
    commands = CommandLayer(settings)
    queue = QueueRuntime(engine.queue, engine.wallets, settings, bus.publish)
    intake = EventIntake(engine.earning, engine.streams, commands, queue, settings, bus.publish)
    presence = PresenceTracker()
    intake.presence = presence
    scheduler = JobScheduler(
        JobContext(
            engine.db,
            settings,
            engine.clock,
            presence=presence,
            payouts=Payouts(engine.writer),
            publish=bus.publish,
            base_dir=base_dir,
            platforms=lambda: list(delivery.platforms),
            timers=TimerBoard(engine.clock.now()),
        )
    )
    app = App(engine, bus, delivery, commands, queue, intake, scheduler, config_path)
    app.rewards = ChannelPointRewards(engine, queue, settings, lambda: app.platforms, bus.publish)
    bus.subscribe(app.rewards.item_settled, ItemSettled)
    intake.on_reward = app.rewards.redeem
    commands.services = Services(
        settings=settings,
        wallets=engine.wallets,
        ledger=engine.ledger,
        cooldowns=engine.cooldowns,
        redeems=engine.redeems,
        catalog=engine.catalog,
        streams=engine.streams,
        queue_items=engine.queue,
        queue=queue,
        commands=commands.router,
        xp_curve=lambda: engine.writer.policy.curve,
        publish=bus.publish,
        reload=app.reload,
        links=engine.links,
    )
    return app


def _default_workers(scripted: bool, base_dir: Path | None) -> WorkerFactory:
    def build(app: App) -> Mapping[str, Worker]:
        clock = app.engine.clock
        return build_workers(
            lambda: app.config,
            base_dir=base_dir or Path.cwd(),
            # Scripted runs are the same every time: a fixed seed, no audio, and waits that
            # move the simulated clock instead of the real one.
            rng=random.Random(SCRIPT_SEED) if scripted else random.Random(),
            sleep=(
                clock_sleep(clock, real=app.config.obs.enabled)
                if isinstance(clock, FakeClock)
                else None
            ),
            play_audio=not scripted,
            undos=ObsUndoStore(app.engine.db, clock),
            stage=app.overlays,
        )

    return build


@asynccontextmanager
async def open_app(
    config: Config,
    *,
    clock: Clock | None = None,
    config_path: Path | None = None,
    platforms: Sequence[Platform] | None = None,
    workers: WorkerFactory | None = None,
    bus: OutcomeBus | None = None,
    scripted: bool = False,
    base_dir: Path | None = None,
    supervision: Supervision | None = None,
    link_rng: random.Random | None = None,
    hurry: asyncio.Event | None = None,
) -> AsyncIterator[App]:
    """Build, start, yield, and stop the bot.

    ``platforms``: the adapters to run (default: every platform enabled in ``config``).
    ``workers``: builds the queue's workers (default: from config). ``bus``: pass one to
    subscribe before anything starts (a crash recovery at start publishes outcomes).
    ``scripted``: deterministic runs (fixed wheel seed, no audio, the queue runs only while
    drained). ``base_dir``: where relative paths such as ``data/tts`` resolve (default: cwd).
    ``supervision``: how platforms that fail to start are retried and reported (not in
    scripted runs).
    ``link_rng``: where ``!link`` codes come from (default: a cryptographic source).
    ``hurry``: once set, stopping gives the events in hand no grace (``App.hurry``; the
    signal handling of ``bot.py run`` sets it at a second Ctrl-C).
    """
    clock = clock or SystemClock()
    if platforms is None:
        unbuilt = unbuilt_platforms(config)
        if unbuilt:
            raise ConfigError(unbuilt)
        platforms = build_platforms(config, clock)
    lock = None
    database_file = sqlite_file(config.database.url)
    if database_file is not None:  # `backup restore` waits for every bot on the file to stop
        lock = DatabaseLock(database_file)
        lock.hold_shared()
    try:
        async with _running(
            config,
            clock,
            config_path,
            platforms,
            workers,
            bus,
            scripted,
            base_dir,
            supervision,
            link_rng,
        ) as app:
            if hurry is not None:
                app.hurry = hurry
            yield app
    finally:
        if lock is not None:
            lock.release()


@asynccontextmanager
async def _running(
    config: Config,
    clock: Clock,
    config_path: Path | None,
    platforms: Sequence[Platform],
    workers: WorkerFactory | None,
    bus: OutcomeBus | None,
    scripted: bool,
    base_dir: Path | None,
    supervision: Supervision | None,
    link_rng: random.Random | None = None,
) -> AsyncIterator[App]:
    async with Engine.open(config, clock, link_rng=link_rng) as engine:
        app = _build(engine, bus or OutcomeBus(), config_path, base_dir)
        if not scripted:  # a script's platforms are in-process: nothing to retry
            app.supervisor = PlatformSupervisor(
                app, lambda platform: _start_late(app, platform), supervision or Supervision()
            )
        app.base_dir = base_dir or Path.cwd()
        serve_web = config.web.enabled and not scripted  # (a script or a replay serves no pages)
        if serve_web:  # (before the workers: they show spins and TTS on it)
            assert app.commands.services is not None
            app.overlays = OverlayHub(app.bus, lambda: app.config, app.commands.services)
        await app.commands.load_cogs()
        factory = workers or _default_workers(scripted, base_dir)
        await app.queue.start(factory(app), only_while_draining=scripted)
        started: list[Platform] = []
        try:
            if scripted:  # the same every time: jobs run only when the script moves the clock
                app.scheduler.start_simulated()
            else:
                await app.scheduler.start()
            if app.overlays is not None:
                await app.overlays.start()
                app.web = await _web_server(app, app.overlays)
                await app.web.start()
            if app.supervisor is not None:
                app.supervisor.start()
            for platform in platforms:
                if await _start_platform(app, platform):
                    started.append(platform)
            await app.delivery.started()
            if app.rewards is not None:
                await app.rewards.platforms_started()
            yield app
        finally:
            app.queue.stop_claiming()  # (the events in hand may still queue items: they wait)
            if app.supervisor is not None:
                started += await app.supervisor.stop()
            # (and one the supervisor had connected but was still settling for, when the stop
            # cancelled it: it is in app.platforms, not yet among the recovered)
            started += [p for p in app.platforms.values() if p not in started]
            await _stop_platforms(app, list(reversed(started)))
            if app.web is not None:
                await app.web.stop()
            await app.scheduler.stop()
            await app.queue.stop()
            if app.overlays is not None:
                await app.overlays.stop()
            await app.delivery.stop()


async def _web_server(app: App, overlays: OverlayHub) -> WebServer:
    engine = app.engine
    assert app.commands.services is not None
    deps = WebDeps(
        settings=lambda: app.config,
        clock=engine.clock,
        bus=app.bus,
        services=app.commands.services,
        db=engine.db,
        scheduler=app.scheduler,
        overlay_key=await overlay_key(app.config.web, engine.db, engine.clock),
        status=app.status,
        base_dir=app.base_dir,
        overlays=overlays,
    )
    return WebServer(app.config.web, build_web_app(deps))


async def _start_or_raise(app: App, platform: Platform) -> None:
    app.delivery.attach(platform)
    if isinstance(platform, UsesCommands):  # Discord: slash commands from the same registry
        engine = app.engine
        platform.use_commands(RegistryCatalog(app.commands.router, lambda: engine.catalog.redeems))
    try:
        await platform.start(app.handle)
    except BaseException:
        app.delivery.detach(platform)
        raise
    # Connected and no longer in error, in one step: ``status`` must not show a platform that
    # is up as down while a late start still settles what waited for it.
    app.platforms[platform.name] = platform
    app.platform_errors.pop(platform.name, None)


async def _start_late(app: App, platform: Platform) -> None:
    """A retried platform that comes up: also settle the channel-point redemptions that
    waited for it (``ChannelPointRewards`` keeps them until their platform is there)."""
    await _start_or_raise(app, platform)
    if app.rewards is not None:
        await app.rewards.platforms_started()


async def _start_platform(app: App, platform: Platform) -> bool:
    try:
        await _start_or_raise(app, platform)
    except Exception as exc:  # one platform down must not keep the others from running
        reason = str(exc) or type(exc).__name__
        app.platform_errors[platform.name] = reason
        log.error("%s did not start: %s", platform.name, reason, exc_info=log.isEnabledFor(10))
        if app.supervisor is not None:  # (before anything awaits: status shows since when)
            app.supervisor.retry(platform)
        await app.bus.publish(Notice("platform", f"{platform.name} did not start: {reason}"))
        return False
    return True


async def _stop_platforms(app: App, platforms: list[Platform]) -> None:
    """Stop every platform at once: each takes no new event and lets those it has finish
    within its grace, so the graces run side by side. ``app.hurry`` cancels the stops: their
    graces end at once (they still cut and disconnect). Then the events still in
    ``App.handle`` get a grace too, and only then are the platforms detached."""
    stops = [asyncio.create_task(_stop_platform(app, p), name=f"stop-{p.name}") for p in platforms]
    hurry: asyncio.Future[Any] = asyncio.ensure_future(app.hurry.wait())
    try:
        everything: asyncio.Future[Any] = asyncio.gather(*stops, return_exceptions=True)
        await asyncio.wait([everything, hurry], return_when=asyncio.FIRST_COMPLETED)
        if not everything.done():
            for stop in stops:  # (once: a stop's cutting and disconnecting go on)
                stop.cancel()
    except asyncio.CancelledError:  # the shutdown itself was cancelled: no grace either
        for stop in stops:
            stop.cancel()
        raise
    finally:
        hurry.cancel()
        await asyncio.gather(*stops, return_exceptions=True)
    # Whatever is still inside ``App.handle`` (pushed by something other than a platform's own
    # feed) gets the same grace, its answers a platform that may still say them.
    if not await app.settled(GRACE):
        log.warning(
            "%d event(s) still being handled after the %g s grace; stopping anyway "
            "(each one's change is saved if it reached the economy writer)",
            app.in_hand,
            GRACE,
        )
    for platform in platforms:
        app.delivery.detach(platform)
        app.platforms.pop(platform.name, None)


async def _stop_platform(app: App, platform: Platform) -> None:
    try:
        await platform.stop()
    except Exception:
        log.exception("%s did not stop cleanly", platform.name)
