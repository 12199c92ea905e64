"""Plays a sound file on this machine with a command-line player (``tts.player`` in config).

``auto`` picks the first of paplay, aplay and ffplay that is installed (none: play nothing);
``none`` plays nothing (an overlay page plays the file instead); anything else is a command
in which ``{file}`` becomes the file's path (without ``{file}``, the path is added last).
The player runs in its own process group, and cancelling ``play`` kills the whole group, so
a moderator's skip silences a player started through a shell too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

from pixelbot.errors import SpeechFailed

__all__ = ["AUTO_PLAYERS", "AudioPlayer"]

# Tried in this order by "auto": PulseAudio/PipeWire, then ALSA, then ffmpeg's player.
AUTO_PLAYERS: tuple[tuple[str, ...], ...] = (
    ("paplay", "{file}"),
    ("aplay", "-q", "{file}"),
    ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet", "{file}"),
)
_FILE = "{file}"


class AudioPlayer:
    """A command that plays one file and exits, or nothing at all."""

    def __init__(self, command: Sequence[str] | None) -> None:
        if command is not None and not command:
            raise ValueError("an empty player command")
        self._command = tuple(command) if command is not None else None

    @classmethod
    def from_setting(cls, player: str) -> AudioPlayer:
        """``"auto"``, ``"none"`` or a command template such as ``"mpv --no-video {file}"``."""
        setting = player.strip()
        if setting.lower() == "none":
            return cls(None)
        if setting.lower() == "auto":
            return cls(_first_installed(AUTO_PLAYERS))
        command = shlex.split(setting)
        if not any(_FILE in part for part in command):
            command.append(_FILE)
        return cls(command)

    @property
    def name(self) -> str:
        """For logs: "none", "aplay", ..."""
        return "none" if self._command is None else Path(self._command[0]).name

    async def play(self, path: Path) -> None:
        """Play ``path`` to the end. Cancelling stops the sound (the player is killed)."""
        if self._command is None:
            return
        argv = [part.replace(_FILE, str(path)) for part in self._command]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killed as one
            )
        except FileNotFoundError as error:
            raise SpeechFailed(f"the audio player {self.name!r} is not installed") from error
        except OSError as error:
            raise SpeechFailed(f"the audio player {self.name!r} did not start: {error}") from error
        try:
            exit_code = await process.wait()
        except asyncio.CancelledError:
            _kill_group(process)
            await process.wait()  # reap it, so no zombie is left behind
            raise
        if exit_code != 0:
            raise SpeechFailed(f"the audio player failed (exit {exit_code})")


def _first_installed(candidates: Sequence[Sequence[str]]) -> list[str] | None:
    for command in candidates:
        if shutil.which(command[0]):
            return list(command)
    return None


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # Windows: no process groups
            process.kill()
