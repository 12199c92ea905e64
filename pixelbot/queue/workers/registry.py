"""Building the workers from config: one per queue kind, each with its own integration.

TTS gets the speech thread and an audio player, effects get the one OBS client (when OBS is
enabled), the wheel gets the RNG, AI replies (when ``ai.enabled``) get the AI client.
``sleep`` is injected so scripted console runs move their fake clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.config.effects import OBS_STEPS
from pixelbot.domain.queue import QueueKind
from pixelbot.economy.obs_undos import UndoJournal
from pixelbot.integrations.obs import ObsClient
from pixelbot.integrations.player import AudioPlayer
from pixelbot.integrations.speech import Speaker
from pixelbot.queue.stage import Stage
from pixelbot.queue.worker import Worker
from pixelbot.queue.workers.ai import AiWorker
from pixelbot.queue.workers.effect import EffectWorker, steps_from_payload
from pixelbot.queue.workers.tts import TtsWorker
from pixelbot.queue.workers.wheel import WheelWorker

__all__ = ["build_workers", "clock_sleep"]


def _effect_possible(config: Config, effect: str, *, obs: bool) -> bool:
    """A named effect can run unless it needs OBS and there is no OBS client (or it no
    longer exists)."""
    settings = config.effects.get(effect)
    if settings is None:
        return False
    return obs or not any(step.do in OBS_STEPS for step in settings.steps)


def _tts_overlay_timeouts(config: Config) -> tuple[float, float]:
    settings = config.web.overlays.tts
    return settings.page_timeout.total_seconds(), settings.grace.total_seconds()


Sleep = Callable[[float], Awaitable[None]]


def clock_sleep(clock: FakeClock, *, real: bool = False) -> Sleep:
    """A sleep that moves a simulated clock instead of waiting (scripted console runs). With
    ``real`` it also waits in real time: OBS must see a source shown for its 2 s, so with
    OBS on a transcript's lines stay deterministic, not its timing."""

    async def sleep(seconds: float) -> None:
        clock.advance(max(0.0, seconds))
        await asyncio.sleep(max(0.0, seconds) if real else 0)

    return sleep


def build_workers(
    config: Callable[[], Config],
    *,
    base_dir: Path,
    rng: random.Random,
    sleep: Sleep | None = None,
    play_audio: bool = True,
    undos: UndoJournal | None = None,
    stage: Stage | None = None,
) -> dict[str, Worker]:
    """``config`` returns the current configuration (it changes on ``!reload``). ``undos``:
    where OBS changes an outage left behind are kept until OBS is back (the database).
    ``stage``: the overlay pages that show spins and play TTS (None: the web server is off).

    A new kind of queue item plugs in here: its worker module, plus one entry below."""
    sleep = sleep or asyncio.sleep
    settings = config()
    tts = settings.tts
    speaker = Speaker(voice=tts.voice, rate=tts.rate, volume=tts.volume)
    player = AudioPlayer.from_setting(tts.player if play_audio else "none")
    obs = ObsClient(settings.obs, sleep=sleep) if settings.obs.enabled else None
    workers: dict[str, Worker] = {
        QueueKind.TTS: TtsWorker(
            lambda: config().tts,
            speaker,
            player,
            base_dir=base_dir,
            stage=stage,
            overlay_timeouts=lambda: _tts_overlay_timeouts(config()),
        ),
        QueueKind.WHEEL: WheelWorker(
            config,
            rng,
            lambda effect: _effect_possible(config(), effect, obs=obs is not None),
            stage=stage,
        ),
        QueueKind.EFFECT: EffectWorker(
            lambda payload: steps_from_payload(payload, config()),
            obs,
            settings.obs,
            sleep=sleep,
            base_dir=base_dir,
            undos=undos,
        ),
        # Always, even with ai off: an AI item paid for before a restart (pending, or
        # running with ``on_restart: retry``) must still be refunded, and only a kind with a
        # worker has a queue loop. Off, it fails the item ("not enabled", refunded once);
        # its client is built on the first question, so a reload can switch AI on.
        QueueKind.AI: AiWorker(config),
    }
    return workers
