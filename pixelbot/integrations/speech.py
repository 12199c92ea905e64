"""Text to a WAV file with pyttsx3 and espeak-ng. The only module that imports pyttsx3.

What pyttsx3 2.99 + espeak-ng 1.51 do, and what this module does about it:

* **One engine per process.** ``pyttsx3.init`` caches the engine and espeak-ng initialises
  once per process; using it from two threads at once hangs. Every call to it runs on one
  dedicated daemon thread fed by a queue, and a process-wide lock keeps two ``Speaker``
  objects (each with its own thread) from overlapping. Voice, rate and volume are set before
  each render, as another Speaker may have changed them.
* **espeak-ng works in the background.** The driver runs espeak-ng in its asynchronous mode:
  settings and text go to espeak-ng's own thread, which writes the file from a callback.
  ``runAndWait`` begins by cancelling whatever that thread is still busy with, so a render
  started right after a setting (or right after the previous render) is cut short or uses
  the old voice (235 of 300 renders in a quick trial). So each step waits until espeak-ng is
  idle, settings are read back, a cancel flag the driver leaves set is cleared, and a render
  that still comes out empty or cut short is done again (up to 3 times). A new engine holds
  commands until its first run, which returns before its file is written, so a new engine is
  run once with nothing to say.
* **It can hang, and cannot be killed.** The driver loops forever when it cannot write the
  file, so the file is opened for writing first. A render that outlives ``timeout`` fails
  its item, and until it does finish every later render fails at once ("still busy")
  instead of queueing behind it. The thread is a daemon, so it cannot keep the bot from
  exiting.
* **It reports, it does not raise.** Errors arrive through the ``error`` callback; an
  unknown voice is quietly ignored (so voices are looked up in the installed list here).
* **It prints.** The driver ``print``\\ s "Audio saved to ..." to stdout, where the console
  bot shows its chat; the driver module's ``print`` is pointed at the log instead.

Rendering takes about 10 ms for a sentence (the driver polls every 10 ms) and 0.4 s for
three thousand characters; the WAV is 16-bit mono at 22 050 Hz. The same text does not
always give the same file: its length shifts by a few per cent with what was said before.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import queue
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pixelbot.errors import SpeechFailed

__all__ = ["Speaker"]

log = logging.getLogger(__name__)

_ENGINE_LOCK = threading.Lock()  # the engine is one per process, whichever Speaker uses it
_NOT_INSTALLED = (
    "text-to-speech is not available: espeak-ng is not installed (scripts/setup installs it)"
)
_VOICES_SHOWN = 5
_IDLE_TIMEOUT = 5.0  # seconds espeak-ng may take to finish what it was given
_ATTEMPTS = 3  # renders of one text, when espeak-ng cuts one short


@dataclass(frozen=True)
class _Voice:
    id: str  # "gmw/en-us"
    name: str  # "English (America)"
    language: str  # "en-us"

    def answers_to(self, wanted: str) -> bool:
        names = (self.id, self.id.rsplit("/", 1)[-1], self.name, self.language)
        return wanted.casefold() in (name.casefold() for name in names)


class Speaker:
    """Renders text to WAV files, one at a time, on its own speech thread."""

    def __init__(
        self, *, voice: str | None, rate: int, volume: float, timeout: float = 30.0
    ) -> None:
        self._voice = voice
        self._settings: dict[str, Any] = {"rate": rate, "volume": round(volume, 2)}
        self._timeout = timeout
        self._thread = _SpeechThread()
        self._engine: _Engine | None = None  # only touched on the speech thread
        self._overdue: Future[Any] | None = None  # a render that outlived its timeout
        self._closed = False

    async def start(self) -> None:
        """Start the engine now rather than at the first render, so a missing espeak-ng or
        an unknown voice shows at startup. Raises SpeechFailed."""
        await self._run(self._engine_on_speech_thread)

    async def render(self, text: str, path: Path) -> float:
        """Write ``text`` spoken to the WAV file ``path``; return its length in seconds."""
        if not text.strip():
            raise SpeechFailed("there is nothing to say")
        seconds: float = await self._run(lambda: self._render_on_speech_thread(text, path))
        return seconds

    async def voices(self) -> list[str]:
        """The ids of the installed voices ("gmw/en-us", ...)."""
        ids: list[str] = await self._run(
            lambda: [voice.id for voice in self._engine_on_speech_thread().voices()]
        )
        return ids

    async def close(self) -> None:
        """End the speech thread once it has finished its work (not if it is stuck)."""
        if self._closed:
            return
        self._closed = True
        self._thread.stop()
        if self._overdue is None or self._overdue.done():
            await asyncio.to_thread(self._thread.join, self._timeout)

    async def _run(self, job: Callable[[], Any]) -> Any:
        if self._closed:
            raise SpeechFailed("text-to-speech is shut down")
        if self._overdue is not None and not self._overdue.done():
            raise SpeechFailed("text-to-speech is still busy with an earlier message")
        future = self._thread.submit(job)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._timeout)
        except TimeoutError:
            if not future.cancelled():  # it had started, and a thread can't be stopped
                self._overdue = future
            raise SpeechFailed(f"text-to-speech took longer than {self._timeout:g}s") from None

    # Below: on the speech thread only.

    def _engine_on_speech_thread(self) -> _Engine:
        if self._engine is None:
            engine = _Engine.shared()
            # the voice is set first, in case a voice brings its own rate; None: the default
            # voice, not whichever voice another Speaker left behind
            voice = engine.default_voice
            if self._voice is not None:
                voice = _pick_voice(self._voice, engine.voices())
            self._settings = {"voice": voice, **self._settings}
            self._engine = engine
        return self._engine

    def _render_on_speech_thread(self, text: str, path: Path) -> float:
        return self._engine_on_speech_thread().render(text, path, self._settings)


class _Engine:
    """The process's one pyttsx3 engine and espeak-ng's busy flag. Made once and kept for
    the life of the process: a pyttsx3 engine that is garbage collected unhooks espeak-ng's
    callback, and a later engine's renders would never finish. Every call takes the lock."""

    _shared: ClassVar[_Engine | None] = None

    def __init__(self, engine: Any, espeak_is_busy: Callable[[], int]) -> None:
        self._engine = engine
        self._espeak_is_busy = espeak_is_busy
        self.default_voice: str = engine.getProperty("voice")

    @classmethod
    def shared(cls) -> _Engine:
        """The engine, started on first use. Raises SpeechFailed if espeak-ng is missing."""
        with _ENGINE_LOCK:
            if cls._shared is None:
                cls._shared = cls._start()
            return cls._shared

    @classmethod
    def _start(cls) -> _Engine:
        try:
            import pyttsx3  # type: ignore[import-untyped]
            import pyttsx3.drivers.espeak as espeak_driver  # type: ignore[import-untyped]
        except (ImportError, OSError, RuntimeError) as error:  # RuntimeError: no libespeak-ng
            log.warning("pyttsx3 could not load espeak-ng: %s", error)
            raise SpeechFailed(_NOT_INSTALLED) from error
        espeak_driver.print = _print_to_log  # instead of "Audio saved to ..." on stdout
        try:
            engine = pyttsx3.init("espeak")
            if engine.isBusy():  # new: it holds commands until its first run
                engine.runAndWait()
        except (OSError, RuntimeError) as error:
            log.warning("espeak-ng did not start: %s", error)
            raise SpeechFailed(_NOT_INSTALLED) from error
        started = cls(engine, espeak_driver._espeak.IsPlaying)
        started._wait_until_idle()
        return started

    def voices(self) -> list[_Voice]:
        with _ENGINE_LOCK:
            installed = self._engine.getProperty("voices")
        return [_Voice(v.id, v.name, (v.languages or [""])[0]) for v in installed]

    def render(self, text: str, path: Path, settings: dict[str, Any]) -> float:
        """Write ``text`` to ``path`` with these settings (voice, rate, volume); return the
        file's length in seconds. A render espeak-ng cut short is done again."""
        errors: list[Exception] = []
        finished: list[bool] = []  # one per utterance: False if it was cancelled

        def on_error(name: object = None, exception: Exception | None = None) -> None:
            if exception is not None:
                errors.append(exception)

        def on_finished(name: object = None, completed: bool = True) -> None:
            finished.append(completed)

        with _ENGINE_LOCK:
            tokens = [
                self._engine.connect("error", on_error),
                self._engine.connect("finished-utterance", on_finished),
            ]
            try:
                self._apply(settings, errors)
                return self._render_whole(text, path, errors, finished)
            finally:
                for token in tokens:
                    self._engine.disconnect(token)

    def _render_whole(
        self, text: str, path: Path, errors: list[Exception], finished: list[bool]
    ) -> float:
        for attempt in range(1, _ATTEMPTS):
            self._render_once(text, path, errors, finished)
            with contextlib.suppress(SpeechFailed):  # the file is empty or invalid
                seconds = _wav_seconds(path)
                if all(finished):
                    return seconds
            log.info("espeak-ng cut a render short (attempt %d); rendering again", attempt)
        self._render_once(text, path, errors, finished)
        return _wav_seconds(path)

    def _render_once(
        self, text: str, path: Path, errors: list[Exception], finished: list[bool]
    ) -> None:
        _check_writable(path)  # also empties it, so a render that writes nothing shows
        finished.clear()
        self._forget_stale_stop()
        self._wait_until_idle()  # runAndWait cancels whatever espeak-ng is busy with
        self._engine.save_to_file(text, str(path))
        self._engine.runAndWait()
        self._wait_until_idle()  # the file is written from espeak-ng's thread
        if errors:
            raise SpeechFailed(f"text-to-speech failed: {errors[0]}")

    def _apply(self, settings: dict[str, Any], errors: list[Exception]) -> None:
        """Set what differs, then wait until espeak-ng has taken it (it does so later)."""
        changed = {name: value for name, value in settings.items() if self._get(name) != value}
        for name, value in changed.items():
            self._engine.setProperty(name, value)
        deadline = time.monotonic() + _IDLE_TIMEOUT
        while self._espeak_is_busy() or self._refused(changed):
            if errors or time.monotonic() > deadline:
                refused = self._refused(changed)
                detail = f": {errors[0]}" if errors else ""
                names = " and ".join(refused) or "new"
                raise SpeechFailed(f"espeak-ng did not take the {names} setting{detail}")
            time.sleep(0.001)

    def _refused(self, settings: dict[str, Any]) -> list[str]:
        return [name for name, value in settings.items() if self._get(name) != value]

    def _forget_stale_stop(self) -> None:
        """pyttsx3's runAndWait begins by stopping the driver, which, if espeak-ng is busy
        at that moment, flags the utterance to be cancelled. When the synthesis ends first,
        the flag outlives the run and cancels the next render. Clear it."""
        driver: Any = getattr(self._engine.proxy, "_driver", None)
        if getattr(driver, "_stopping", False):
            driver._stopping = False

    def _get(self, name: str) -> Any:
        value = self._engine.getProperty(name)
        return round(value, 2) if name == "volume" else value

    def _wait_until_idle(self) -> None:
        deadline = time.monotonic() + _IDLE_TIMEOUT
        while self._espeak_is_busy():
            if time.monotonic() > deadline:
                raise SpeechFailed("espeak-ng stayed busy; try again")
            time.sleep(0.001)


class _SpeechThread:
    """One daemon thread running jobs in order. Not a ThreadPoolExecutor: its threads are
    joined at interpreter exit, so one stuck inside espeak-ng would keep the bot running."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="speech", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, job))
        return future

    def stop(self) -> None:
        """Finish the jobs already queued, then end the thread."""
        self._jobs.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up before it started
            try:
                future.set_result(job())
            except BaseException as error:  # handed to the caller, who re-raises it
                future.set_exception(error)


def _print_to_log(*values: object, **_options: object) -> None:
    log.debug("espeak driver: %s", " ".join(str(value) for value in values))


def _pick_voice(wanted: str, installed: list[_Voice]) -> str:
    """The id of the voice called ``wanted`` (by id, short id, name or language code)."""
    for voice in installed:
        if voice.answers_to(wanted):
            return voice.id
    ids = [voice.id for voice in installed]
    shown = difflib.get_close_matches(wanted, ids, n=_VOICES_SHOWN, cutoff=0.4)
    shown = shown or ids[:_VOICES_SHOWN]
    more = f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else ""
    raise SpeechFailed(f"no voice named {wanted!r}; installed: {', '.join(shown)}{more}")


def _check_writable(path: Path) -> None:
    """Open the file first: the espeak driver loops forever when it cannot write it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb"):
            pass
    except OSError as error:
        raise SpeechFailed(f"cannot write the speech file {path}: {error.strerror}") from error


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as audio:
            frames, rate = audio.getnframes(), audio.getframerate()
    except (OSError, EOFError, wave.Error) as error:
        raise SpeechFailed(f"the speech file is not a valid WAV: {error}") from error
    if frames <= 0 or rate <= 0:
        raise SpeechFailed("the speech file is empty")
    return frames / rate
