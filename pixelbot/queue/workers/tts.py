"""The TTS worker: filter a viewer's text, render it to a WAV file, play it, keep a few files.

The text passes ``clean_for_speech`` with the ``tts:`` settings, cut to the smaller of the
redeem's ``max_chars`` and ``tts.max_chars``. When the redeem asks for it, the viewer's name
is said first (``tts.prefix``, "alice says, ..."); the name goes through the same filter,
since display names can be links or banned words too. Files are ``<tts.dir>/tts-<item>.wav``;
after each item only the newest ``tts.keep_files`` of them are kept (0 keeps all).

``tts.output: overlay`` plays the file in the TTS overlay page instead of on this machine (so
OBS captures it): the item is done when the page reports the end of the audio. A ``!skip``
cancels the wait, and the page stops the audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pixelbot.config.queue import TtsSettings
from pixelbot.domain.tts_text import clean_for_speech
from pixelbot.economy.payloads import TtsPayload
from pixelbot.errors import SpeechFailed
from pixelbot.integrations.player import AudioPlayer
from pixelbot.integrations.speech import Speaker
from pixelbot.outcomes import TtsPlaying
from pixelbot.queue.stage import Stage
from pixelbot.queue.worker import Done, Job

__all__ = ["TtsWorker", "filter_said"]

log = logging.getLogger(__name__)

_NAME_MAX_CHARS = 40  # longer than any platform's display name
_NAMELESS = "someone"


class TtsWorker:
    """Performs ``tts`` queue items: filter, render on the speech thread, play, prune."""

    kind = "tts"

    def __init__(
        self,
        settings: TtsSettings | Callable[[], TtsSettings],
        speaker: Speaker,
        player: AudioPlayer,
        *,
        base_dir: Path,
        stage: Stage | None = None,
        overlay_timeouts: Callable[[], tuple[float, float]] | None = None,
    ) -> None:
        """``settings`` may be a function returning the current ones: the filter, limits and
        prefix then follow ``!reload``. (The folder, voice and player need a restart.)
        ``stage``: the overlays, for ``tts.output: overlay``; ``overlay_timeouts``: (how long
        to wait for a TTS page, the grace past the audio's length) in seconds."""
        if isinstance(settings, TtsSettings):
            fixed = settings
            self._settings_now: Callable[[], TtsSettings] = lambda: fixed
        else:
            self._settings_now = settings
        settings = self._settings
        self._speaker = speaker
        self._player = player
        self._stage = stage
        self._overlay_timeouts = overlay_timeouts or (lambda: (10.0, 5.0))
        directory = Path(settings.dir)
        self._dir = directory if directory.is_absolute() else base_dir / directory

    @property
    def _settings(self) -> TtsSettings:
        return self._settings_now()

    @property
    def directory(self) -> Path:
        """Where the WAV files go (``tts.dir``, relative to the bot's base directory)."""
        return self._dir

    async def perform(self, job: Job) -> Done:
        spoken = self._spoken_text(job)
        path = self._dir / f"tts-{job.item_id}.wav"
        seconds = await self._speaker.render(spoken, path)
        if self._settings.output == "overlay" and self._stage is not None:
            page_timeout, grace = self._overlay_timeouts()
            log.debug("tts #%s: %.1fs, playing on the overlay", job.item_id, seconds)
            playing = TtsPlaying(job.item_id, job.viewer_name, spoken, seconds, str(path))
            shown = await self._stage.show(
                "tts", job.item_id, playing, page_timeout=page_timeout, end_within=seconds + grace
            )
        else:
            shown = None
            log.debug("tts #%s: %.1fs, playing with %s", job.item_id, seconds, self._player.name)
            await self._player.play(path)
        await asyncio.to_thread(_keep_newest, self._dir, self._settings.keep_files)
        return Done(
            # (no duration here: espeak's timing varies a little, and transcripts must not)
            summary=f"#{job.item_id} spoke {path.name}: {spoken}",
            result={
                "file": str(path),
                "seconds": round(seconds, 2),
                "spoken": spoken,
                **({"shown": shown} if shown is not None else {}),  # the overlay's report
            },
        )

    async def close(self) -> None:
        await self._speaker.close()

    def _spoken_text(self, job: Job) -> str:
        payload = job.payload
        limit = self._settings.max_chars
        wanted = payload.max_chars if isinstance(payload, TtsPayload) else None
        max_chars = min(wanted or limit, limit)
        text = self._clean(job.text or "", max_chars)
        if not text:
            raise SpeechFailed("nothing left to say after the filter")
        if isinstance(payload, TtsPayload) and not payload.prefix_username:
            return text
        name = self._clean(job.viewer_name, _NAME_MAX_CHARS) or _NAMELESS
        prefix = self._settings.prefix.format(user=name).strip()
        return f"{prefix}, {text}" if prefix else text

    def _clean(self, text: str, max_chars: int) -> str:
        return filter_said(text, self._settings, max_chars)


def filter_said(text: str, settings: TtsSettings, max_chars: int) -> str:
    """``text`` through the one filter for what the bot says, aloud or in chat (an AI reply
    too): ``clean_for_speech`` with the ``tts:`` banned words and repeat limits."""
    return clean_for_speech(
        text,
        banned_words=settings.banned_words,
        replacement=settings.banned_replacement,
        max_chars=max_chars,
        max_repeat=settings.max_repeat,
        max_word_repeat=settings.max_word_repeat,
    )


def _keep_newest(directory: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest ``tts-*.wav`` files (by modification time)."""
    if keep <= 0:
        return
    files = sorted(directory.glob("tts-*.wav"), key=_age_key, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)


def _age_key(path: Path) -> tuple[int, int]:
    """Modification time, then item number (files written within one clock tick)."""
    try:
        modified = path.stat().st_mtime_ns
    except FileNotFoundError:
        modified = 0
    number = path.stem.removeprefix("tts-")
    return modified, int(number) if number.isdigit() else -1
