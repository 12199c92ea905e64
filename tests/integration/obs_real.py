"""A real OBS Studio for tests: started headless, with its own HOME, port and password.

``RealObs`` writes the settings DESIGN.md §5 found to work (Debian's obs-studio 29.0.2 with
obs-websocket 5.1, under ``xvfb-run``), starts OBS, waits until its websocket answers, and can
kill and restart it on the same port (its scenes are kept in its HOME). Scenes, sources and
filters are created over the websocket with the project's own ``ObsClient``.

``global.ini`` needs ``[General] FirstRun=true``: with ``false`` OBS opens its setup wizard,
and while that is open starting the replay buffer reports success and does nothing.
``--multi`` lets it start while another OBS runs (another test, or the developer's own).

Whether OBS may be missing: ``obs_or_skip()`` skips with a reason only when the ``obs`` binary
is absent and ``CI`` is not ``true``; in CI, where ``scripts/setup --dev`` installs it, a
missing or broken OBS fails the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pixelbot.config.effects import ObsSettings
from pixelbot.errors import ObsUnavailable
from pixelbot.integrations.obs import ObsClient
from tests.fakes.obs_server import auth_string

__all__ = [
    "ObsEvents",
    "RealObs",
    "build_collection",
    "current_scene",
    "filter_enabled",
    "free_port",
    "item_enabled",
    "obs_or_skip",
    "request",
    "reset",
]

STARTUP_SECONDS = 30.0  # up in 1-3 s here; a loaded CI machine gets room


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def obs_or_skip() -> None:
    """Skip when OBS is not installed on a developer's machine; never skip in CI."""
    missing = [name for name in ("obs", "xvfb-run") if shutil.which(name) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (scripts/setup --dev installs them)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"real-OBS tests cannot run in CI: {message}")
    pytest.skip(message)


class RealObs:
    """One OBS process under its own HOME in ``root``; ``replays`` is where clips land."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.replays = root / "replays"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "obs.log"
        self.launches = 0
        self._write_settings()

    def settings(self, **overrides: object) -> ObsSettings:
        data: dict[str, object] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": self.port,
            "password": self.password,
            "timeout": "5s",
        }
        return ObsSettings.model_validate(data | overrides)

    # ------------------------------------------------------------------ the process

    def start(self) -> None:
        """Launch OBS and return once its websocket accepts our password."""
        if self.process is not None and self.process.poll() is None:
            return
        env = {
            **os.environ,
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "LIBGL_ALWAYS_SOFTWARE": "1",
        }
        command = [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1280x720x24 +extension GLX",
            "obs",
            "--minimize-to-tray",
            "--disable-shutdown-check",
            "--multi",
        ]
        self.launches += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- launch {self.launches}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: xvfb-run, Xvfb and obs
            )
        self._wait_until_up()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """OBS (and its X server) goes away at once, like a crash."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self._wait_until_port_free()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def quit(self) -> None:
        """OBS is told to quit the way Ctrl+C does (SIGINT to OBS alone): it saves its scene
        collection, the current scene included, then is gone. (Started with
        ``--minimize-to-tray`` it would stay in the tray, so once the collection is saved the
        whole group is killed. SIGTERM, by contrast, ends OBS 29 without saving anything.)"""
        process = self.process
        if process is None:
            return
        collection = self.home / ".config" / "obs-studio" / "basic" / "scenes"
        before = {path: path.stat().st_mtime_ns for path in collection.glob("*.json")}
        obs_pids = [pid for pid in _group_members(process.pid) if _command(pid) == "obs"]
        for pid in obs_pids:
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in obs_pids):
            saved = {path: path.stat().st_mtime_ns for path in collection.glob("*.json")}
            if saved and saved != before:
                time.sleep(0.3)  # let it finish writing
                break
            time.sleep(0.05)
        self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"OBS exited while starting:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"OBS did not open its websocket in {STARTUP_SECONDS}s")

    def _answers(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def _wait_until_port_free(self) -> None:
        for _ in range(100):
            if not self._answers():
                return
            time.sleep(0.05)

    # ------------------------------------------------------------------ its settings

    def _write_settings(self) -> None:
        config = self.home / ".config" / "obs-studio"
        profile = config / "basic" / "profiles" / "Untitled"
        profile.mkdir(parents=True)
        (config / "basic" / "scenes").mkdir(parents=True)
        self.replays.mkdir(parents=True)
        (config / "global.ini").write_text(
            "[General]\n"
            "FirstRun=true\n"  # false opens the setup wizard (see the module docstring)
            "\n[OBSWebSocket]\n"
            "FirstLoad=false\nServerEnabled=true\n"
            f"ServerPort={self.port}\nAuthRequired=true\nServerPassword={self.password}\n"
        )
        (profile / "basic.ini").write_text(
            "[General]\nName=Untitled\n"
            # small and slow: software encoding on a shared CI machine writes clips sooner
            "\n[Video]\nBaseCX=320\nBaseCY=180\nOutputCX=320\nOutputCY=180\nFPSCommon=10\n"
            "\n[SimpleOutput]\n"
            f"FilePath={self.replays}\nRecFormat=mkv\nRecRB=true\nRecRBTime=5\n"
        )


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def request(
    obs: RealObs, request_type: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One request through a short-lived client (for setting OBS up and reading its state)."""
    client = ObsClient(obs.settings(reconnect={"attempts": 1, "backoff": "100ms"}))
    try:
        return await client.request(request_type, data)
    except ObsUnavailable:
        raise RuntimeError(f"OBS on port {obs.port} does not answer:\n{obs.log_tail()}") from None
    finally:
        await client.close()


async def build_collection(obs: RealObs) -> None:
    """The scenes FakeObs has by default (tests/fakes/obs_server.py), made in the real OBS:
    ``Main`` (Webcam, HydrateGif hidden, Alert) on program and ``BRB`` (BrbText); filters
    ``Blur`` (off) and ``Color`` (on) on Webcam. Real inputs of OBS's own kinds."""
    client = ObsClient(obs.settings())
    try:
        scenes = {s["sceneName"] for s in (await client.request("GetSceneList"))["scenes"]}
        for scene in ("Main", "BRB"):
            if scene not in scenes:
                await client.request("CreateScene", {"sceneName": scene})
        inputs = {i["inputName"] for i in (await client.request("GetInputList"))["inputs"]}
        for scene, name, kind, settings in (
            ("Main", "Webcam", "color_source_v3", {"color": 4278190335}),
            ("Main", "HydrateGif", "color_source_v3", {"color": 4278255360}),
            ("Main", "Alert", "text_ft2_source_v2", {"text": ""}),
            ("BRB", "BrbText", "text_ft2_source_v2", {"text": "Be right back"}),
        ):
            if name not in inputs:
                await client.request(
                    "CreateInput",
                    {
                        "sceneName": scene,
                        "inputName": name,
                        "inputKind": kind,
                        "inputSettings": settings,
                        "sceneItemEnabled": True,
                    },
                )
        filters = await client.request("GetSourceFilterList", {"sourceName": "Webcam"})
        have = {f["filterName"] for f in filters["filters"]}
        for name, kind in (("Blur", "color_filter_v2"), ("Color", "color_filter_v2")):
            if name not in have:
                await client.request(
                    "CreateSourceFilter",
                    {
                        "sourceName": "Webcam",
                        "filterName": name,
                        "filterKind": kind,
                        "filterSettings": {},
                    },
                )
        await reset(obs, client)
    finally:
        await client.close()


async def reset(obs: RealObs, client: ObsClient | None = None) -> None:
    """Back to the starting state: Main on program, HydrateGif hidden, Blur off, Color on,
    Alert empty. (The replay buffer is left as it is.)"""
    own = client is None
    client = client or ObsClient(obs.settings())
    try:
        await client.request("SetCurrentProgramScene", {"sceneName": "Main"})
        hydrate = await client.request(
            "GetSceneItemId", {"sceneName": "Main", "sourceName": "HydrateGif"}
        )
        await client.request(
            "SetSceneItemEnabled",
            {"sceneName": "Main", "sceneItemId": hydrate["sceneItemId"], "sceneItemEnabled": False},
        )
        for name, enabled in (("Blur", False), ("Color", True)):
            await client.request(
                "SetSourceFilterEnabled",
                {"sourceName": "Webcam", "filterName": name, "filterEnabled": enabled},
            )
        await client.request(
            "SetInputSettings", {"inputName": "Alert", "inputSettings": {"text": ""}}
        )
    finally:
        if own:
            await client.close()


async def current_scene(obs: RealObs) -> str:
    return str((await request(obs, "GetCurrentProgramScene"))["currentProgramSceneName"])


async def item_enabled(obs: RealObs, scene: str, source: str) -> bool:
    found = await request(obs, "GetSceneItemId", {"sceneName": scene, "sourceName": source})
    item = {"sceneName": scene, "sceneItemId": found["sceneItemId"]}
    return bool((await request(obs, "GetSceneItemEnabled", item))["sceneItemEnabled"])


async def filter_enabled(obs: RealObs, source: str, name: str) -> bool:
    found = await request(obs, "GetSourceFilter", {"sourceName": source, "filterName": name})
    return bool(found["filterEnabled"])


# obs-websocket EventSubscription bits
SCENES = 1 << 2
FILTERS = 1 << 5
OUTPUTS = 1 << 6
SCENE_ITEMS = 1 << 7


@dataclass(frozen=True)
class Seen:
    at: float  # time.monotonic() when it arrived
    type: str
    data: dict[str, Any]


class ObsEvents:
    """OBS's own events, heard on a websocket connection of their own (plain ``websockets``,
    not the client under test), each stamped with its arrival time::

        async with ObsEvents(obs, SCENES) as events:
            ...
            seen = await events.wait_for("CurrentProgramSceneChanged", sceneName="BRB")
    """

    def __init__(self, obs: RealObs, subscriptions: int) -> None:
        self._obs = obs
        self._subscriptions = subscriptions
        self.seen: list[Seen] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._connection: Any = None

    async def __aenter__(self) -> ObsEvents:
        self._connection = await connect(f"ws://127.0.0.1:{self._obs.port}")
        hello = json.loads(await self._connection.recv())["d"]
        identify: dict[str, Any] = {"rpcVersion": 1, "eventSubscriptions": self._subscriptions}
        challenge = hello.get("authentication")
        if challenge:
            identify["authentication"] = auth_string(
                self._obs.password, challenge["salt"], challenge["challenge"]
            )
        await self._connection.send(json.dumps({"op": 1, "d": identify}))
        identified = json.loads(await self._connection.recv())
        if identified.get("op") != 2:
            raise RuntimeError(f"OBS did not identify the event listener: {identified}")
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._connection.close()

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._connection:
                message = json.loads(raw)
                if message.get("op") != 5:
                    continue
                event = message["d"]
                seen = Seen(time.monotonic(), event["eventType"], event.get("eventData") or {})
                async with self._arrived:
                    self.seen.append(seen)
                    self._arrived.notify_all()

    def of(self, event_type: str, **matching: Any) -> list[Seen]:
        return [
            seen
            for seen in self.seen
            if seen.type == event_type
            and all(seen.data.get(key) == value for key, value in matching.items())
        ]

    async def wait_for(self, event_type: str, **matching: Any) -> Seen:
        """The first such event (already seen, or arriving within 15 s)."""

        def found() -> bool:
            return bool(self.of(event_type, **matching))

        async with asyncio.timeout(15), self._arrived:
            await self._arrived.wait_for(found)
        return self.of(event_type, **matching)[0]
