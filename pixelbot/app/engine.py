"""The economy as one object: config -> database (migrated) -> writer -> economy services.

``Engine`` is the running economy a platform or a CLI command talks to. It is opened with
``async with Engine.open(config) as engine:``; on exit every submitted change is committed
before the database closes.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pixelbot.clock import Clock, SystemClock
from pixelbot.config import Config
from pixelbot.db import migrate, preflight
from pixelbot.db.engine import Database
from pixelbot.domain.xp import XpCurve
from pixelbot.economy.batch import LevelReward, Policy
from pixelbot.economy.cooldowns import Cooldowns
from pixelbot.economy.earning import EarningRules
from pixelbot.economy.ledger import Ledger
from pixelbot.economy.links import Links
from pixelbot.economy.queries import Wallets
from pixelbot.economy.queue import QueueStore
from pixelbot.economy.redeems import RedeemCatalog, Redeems
from pixelbot.economy.streams import StreamSessions
from pixelbot.economy.writer import Writer

__all__ = ["Engine", "open_database", "policy_from_config"]


def policy_from_config(config: Config) -> Policy:
    curve = config.xp.curve
    return Policy(
        curve=XpCurve(curve.kind, curve.base, curve.exponent, curve.max_level),
        max_balance=config.economy.max_balance,
        starting_points=config.economy.starting_points,
        level_rewards={
            level: LevelReward(reward.points, reward.message)
            for level, reward in config.xp.level_rewards.items()
        },
    )


def open_database(config: Config) -> Database:
    return Database(config.database.url, busy_timeout=config.database.busy_timeout)


class Engine:
    def __init__(
        self, config: Config, db: Database, clock: Clock, link_rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.writer = Writer(db, clock, policy_from_config(config))
        self.ledger = Ledger(self.writer)
        self.earning = EarningRules(self.writer, config.economy)
        self.cooldowns = Cooldowns(self.writer, db, clock)
        self.wallets = Wallets(db)
        self.streams = StreamSessions(db, clock)
        self.redeems = Redeems(self.writer, db)
        self.catalog = RedeemCatalog(db, clock, config.redeems)
        self.queue = QueueStore(self.writer, db, clock)
        self.links = Links(self.writer, link_rng)  # link_rng None: a cryptographic source

    async def apply_config(self, config: Config) -> None:
        """Take a reloaded configuration, all or nothing: what can fail (the new XP policy,
        storing the new redeems) is done before anything running changes. (The database URL
        needs a restart.)"""
        policy = policy_from_config(config)
        await self.catalog.load(config.redeems)  # replaces the redeems only once stored
        self.config = config
        self.writer.policy = policy
        self.earning.settings = config.economy

    @classmethod
    @asynccontextmanager
    async def open(
        cls, config: Config, clock: Clock | None = None, *, link_rng: random.Random | None = None
    ) -> AsyncIterator[Engine]:
        """Open the database, apply migrations, start the writer; close it all on exit."""
        db = open_database(config)
        try:
            await preflight.check_before_writing(db)  # read-only or damaged: refuse at once
            await migrate.upgrade(db)
            await db.start_background_checkpoints()
            engine = cls(config, db, clock or SystemClock(), link_rng)
            await engine.catalog.load()
            await engine.writer.start()
            try:
                yield engine
            finally:
                await engine.writer.stop()
        finally:
            await db.dispose()
