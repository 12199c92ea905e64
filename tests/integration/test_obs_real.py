"""Effects against a real OBS Studio (Debian's obs-studio 29.0.2, obs-websocket 5.1), headless.

``tests/integration/obs_real.py`` starts OBS under ``xvfb-run`` with its own HOME, a free port
and a random password, and builds the scenes the fake server has. The tests run the real
effect worker (and, for outages, the whole console bot with its SQLite file), then read what
OBS really shows: requests for its state, and its own events on a listener of their own,
stamped on arrival, for timing.

Scenarios marked ``both`` also run against the fake server: the real OBS proves the fake
tells the truth. Every test here fails if a traceback reaches stderr (a root handler at
DEBUG is installed, as ``pixelbot -v`` does). Where OBS is not installed, the tests skip,
except in CI (``CI=true``), where ``scripts/setup --dev`` installs it and they must run.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import pytest

from pixelbot.config import Config
from pixelbot.config.effects import ObsSettings
from pixelbot.economy.payloads import payload_of
from pixelbot.integrations.obs import REQUESTS_USED, ObsClient
from pixelbot.queue.worker import Done, Job
from pixelbot.queue.workers.effect import EffectWorker, steps_from_payload
from pixelbot.testing import ConsoleSession, console_session
from tests.fakes.obs_server import OBS_WEBSOCKET_VERSION, RPC_VERSION, FakeObs
from tests.integration import obs_real
from tests.integration.obs_real import (
    OUTPUTS,
    SCENE_ITEMS,
    SCENES,
    ObsEvents,
    RealObs,
    build_collection,
    current_scene,
    free_port,
    obs_or_skip,
)
from tests.integration.test_queue_console import (
    assert_refunded_once,
    config_for,
    refunds,
    rows,
    statuses,
    until,
)

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- fixtures


class _ToStderr(logging.Handler):
    """Like basicConfig's handler, but writing to whatever ``sys.stderr`` is at the time
    (pytest swaps it between phases)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"{record.levelname}:{record.name}:{self.format(record)}\n")


@pytest.fixture(autouse=True)
def no_traceback_on_stderr(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Log everything to stderr, as ``logging.basicConfig(level=DEBUG)`` would, and fail the
    test if a traceback (or OBS's password) shows up there."""
    root = logging.getLogger()
    handler = _ToStderr(logging.DEBUG)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "obsws_python" not in err  # only our own one-line forwards ("...obs.obsws")


def _set_up(obs: RealObs) -> None:
    """Build the scenes, from a sync fixture that may be set up inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, build_collection(obs)).result()


@pytest.fixture(scope="module")
def shared_obs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealObs]:
    """One OBS for the tests that leave it running."""
    obs_or_skip()
    obs = RealObs(tmp_path_factory.mktemp("obs"))
    obs.start()
    try:
        _set_up(obs)
        yield obs
    finally:
        obs.kill()


@pytest.fixture
async def real(shared_obs: RealObs) -> RealObs:
    await obs_real.reset(shared_obs)
    return shared_obs


@pytest.fixture
def own_obs(tmp_path: Path) -> Iterator[RealObs]:
    """An OBS of the test's own, for tests that kill it."""
    obs_or_skip()
    obs = RealObs(tmp_path / "obs")
    obs.start()
    try:
        _set_up(obs)
        yield obs
    finally:
        obs.kill()


class Backend(Protocol):
    """What a scenario needs of an OBS: where it is, and what it shows now."""

    name: str

    def settings(self, **overrides: Any) -> ObsSettings: ...

    async def scene(self) -> str: ...

    async def item_enabled(self, scene: str, source: str) -> bool: ...

    async def filter_enabled(self, source: str, name: str) -> bool: ...

    async def text(self, source: str) -> str: ...

    async def replays(self) -> list[str]: ...


class FakeBackend:
    name = "fake"

    def __init__(self, fake: FakeObs) -> None:
        self.fake = fake

    def settings(self, **overrides: Any) -> ObsSettings:
        data = {"enabled": True, "host": "127.0.0.1", "port": self.fake.port, "password": "pw"}
        return ObsSettings.model_validate(data | overrides)

    async def scene(self) -> str:
        return self.fake.current_scene

    async def item_enabled(self, scene: str, source: str) -> bool:
        return self.fake.item_enabled(scene, source)

    async def filter_enabled(self, source: str, name: str) -> bool:
        return self.fake.filters[source][name]

    async def text(self, source: str) -> str:
        return str(self.fake.inputs[source].settings.get("text", ""))

    async def replays(self) -> list[str]:
        return list(self.fake.saved_replays)


class RealBackend:
    name = "real"

    def __init__(self, obs: RealObs) -> None:
        self.obs = obs

    def settings(self, **overrides: Any) -> ObsSettings:
        # OBS writes a clip 0.5-0.8 s after the save on a quiet machine; a loaded CI runner
        # encoding in software has been seen to take 4 s
        return self.obs.settings(**{"clip_wait": "30s", **overrides})

    async def scene(self) -> str:
        return await current_scene(self.obs)

    async def item_enabled(self, scene: str, source: str) -> bool:
        return await obs_real.item_enabled(self.obs, scene, source)

    async def filter_enabled(self, source: str, name: str) -> bool:
        return await obs_real.filter_enabled(self.obs, source, name)

    async def text(self, source: str) -> str:
        found = await obs_real.request(self.obs, "GetInputSettings", {"inputName": source})
        return str(found["inputSettings"].get("text", ""))

    async def replays(self) -> list[str]:
        return sorted(str(path) for path in self.obs.replays.glob("*.mkv"))


@pytest.fixture(params=["fake", "real"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "fake":
        # a write delay like the real one's (0.5-2 s), so polling is really exercised
        async with FakeObs(password="pw", replay_write_seconds=0.6) as fake:
            yield FakeBackend(fake)
    else:
        shared: RealObs = request.getfixturevalue("shared_obs")
        await obs_real.reset(shared)
        yield RealBackend(shared)


class Worker:
    """The real effect worker on a real client, sleeping on the real clock."""

    def __init__(self, settings: ObsSettings) -> None:
        self.settings = settings
        self.client = ObsClient(settings)
        steps_for = functools.partial(steps_from_payload, config=Config())
        self.worker = EffectWorker(steps_for, self.client, settings)

    async def run(self, steps: list[Any], item_id: int = 1) -> Done:
        async def say(line: str) -> None:
            pass

        payload = {"title": "Test", "viewer": {"login": "alice", "name": "Alice"}, "steps": steps}
        return await self.worker.perform(
            Job(item_id, "effect", payload_of("effect", payload), 7, 1, say)
        )

    async def close(self) -> None:
        await self.worker.close()


@pytest.fixture
async def worker(backend: Backend) -> AsyncIterator[Worker]:
    made = Worker(backend.settings())
    yield made
    await made.close()


# ----------------------------------------------------------------------------- the fake is honest


async def test_the_real_obs_is_what_the_fake_claims_to_be(real: RealObs) -> None:
    version = await obs_real.request(real, "GetVersion")

    assert version["obsWebSocketVersion"] == OBS_WEBSOCKET_VERSION == "5.1.0"
    assert version["rpcVersion"] == RPC_VERSION
    available = set(version["availableRequests"])
    assert available >= REQUESTS_USED  # everything the bot sends exists in 5.1
    async with FakeObs(password="pw") as fake:
        client = ObsClient(FakeBackend(fake).settings())
        fake_version = await client.request("GetVersion")
        await client.close()
    assert set(fake_version["availableRequests"]) >= REQUESTS_USED
    assert set(fake_version["availableRequests"]) <= available  # the fake invents nothing


# ----------------------------------------------------------------------------- steps, on both


async def test_steps_change_what_obs_shows(backend: Backend, worker: Worker) -> None:
    await worker.run(
        [
            {"switch_scene": "BRB"},
            {"set_text": {"source": "Alert", "text": "hi {user}"}},
            {"toggle_filter": {"source": "Webcam", "filter": "Blur"}},
            {"show_source": {"scene": "Main", "source": "HydrateGif"}},
        ]
    )

    assert await backend.scene() == "BRB"
    assert await backend.text("Alert") == "hi Alice"
    assert await backend.filter_enabled("Webcam", "Blur") is True
    assert await backend.item_enabled("Main", "HydrateGif") is True


async def test_timed_steps_put_everything_back(backend: Backend, worker: Worker) -> None:
    done = await worker.run(
        [
            {"switch_scene": {"scene": "BRB", "back_after": "300ms"}},
            {"toggle_filter": {"source": "Webcam", "filter": "Color", "for": "300ms"}},
            {"show_source": {"scene": "Main", "source": "HydrateGif", "for": "300ms"}},
        ]
    )

    assert await backend.scene() == "Main"
    assert await backend.filter_enabled("Webcam", "Color") is True
    assert await backend.item_enabled("Main", "HydrateGif") is False
    assert done.result["steps"][0] == {
        "do": "switch_scene",
        "scene": "BRB",
        "back_to": "Main",
        "seconds": 0.3,
    }


async def test_three_clips_in_a_row_record_the_files_obs_wrote(
    backend: Backend, worker: Worker
) -> None:
    recorded, seconds = [], []
    for n in (1, 2, 3):
        started = time.monotonic()
        recorded.append((await worker.run([{"clip": {}}], item_id=n)).result["steps"][0]["file"])
        seconds.append(round(time.monotonic() - started, 2))
    print(f"{backend.name}: clips took {seconds} s")

    assert len(set(recorded)) == 3
    assert recorded == (await backend.replays())[-3:]
    if isinstance(backend, RealBackend):
        for file in recorded:
            assert Path(file).parent == backend.obs.replays
            assert Path(file).stat().st_size > 0  # noqa: ASYNC240 (a test reading a result)


# ----------------------------------------------------------------------------- real OBS only


async def test_clips_record_what_obs_announces_it_saved(real: RealObs) -> None:
    worker = Worker(RealBackend(real).settings())
    try:
        async with ObsEvents(real, OUTPUTS) as events:
            recorded = []
            for n in (1, 2, 3):
                started = time.monotonic()
                done = await worker.run([{"clip": {}}], item_id=n)
                recorded.append((done.result["steps"][0]["file"], time.monotonic() - started))
            await until(lambda: len(events.of("ReplayBufferSaved")) >= 3, seconds=10)
    finally:
        await worker.close()

    announced = [seen.data["savedReplayPath"] for seen in events.of("ReplayBufferSaved")]
    assert [file for file, _ in recorded] == announced[-3:]
    print("clip durations (s):", [round(seconds, 2) for _, seconds in recorded])


async def test_a_source_shown_for_2s_is_visible_for_2s(real: RealObs) -> None:
    worker = Worker(real.settings())
    try:
        async with ObsEvents(real, SCENE_ITEMS) as events:
            await worker.run(
                [{"show_source": {"scene": "Main", "source": "HydrateGif", "for": "2s"}}]
            )
            shown = await events.wait_for("SceneItemEnableStateChanged", sceneItemEnabled=True)
            hidden = await events.wait_for("SceneItemEnableStateChanged", sceneItemEnabled=False)
    finally:
        await worker.close()

    visible = hidden.at - shown.at
    print(f"visible for {visible:.3f}s")
    assert 1.7 <= visible <= 2.3
    assert await obs_real.item_enabled(real, "Main", "HydrateGif") is False


async def test_a_scripted_console_run_shows_obs_real_durations(
    real: RealObs, tmp_path: Path
) -> None:
    """Scripted mode moves a simulated clock; with OBS enabled, OBS-visible waits are real."""
    redeems = {
        "brb": {
            "title": "BRB",
            "cost": 0,
            "action": {
                "type": "effect",
                "steps": [{"switch_scene": {"scene": "BRB", "back_after": "1s"}}],
            },
        }
    }
    config = config_for(tmp_path / "pixel.db", redeems=redeems, obs=real_obs_settings(real))
    async with (
        ObsEvents(real, SCENES) as events,
        console_session(config, base_dir=tmp_path) as bot,
    ):
        lines = await bot.run("alice: !brb")
        back = await events.wait_for("CurrentProgramSceneChanged", sceneName="Main")
        away = events.of("CurrentProgramSceneChanged", sceneName="BRB")[0]
        await bot.verified()

    assert lines[-1] == "[effect] #1 BRB for alice: switch_scene"
    assert 0.8 <= back.at - away.at <= 1.3  # OBS showed BRB for the second, not merged away


# ----------------------------------------------------------------------------- OBS goes away


def real_obs_settings(obs: RealObs, **overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": obs.port,
        "password": obs.password,
        **overrides,
    }


OUTAGE_REDEEMS: dict[str, Any] = {
    "brb": {
        "title": "BRB",
        "cost": 10,
        "action": {
            "type": "effect",
            "steps": [{"switch_scene": {"scene": "BRB", "back_after": "5s"}}],
        },
    },
    "alert": {
        "title": "Alert",
        "cost": 10,
        "action": {
            "type": "effect",
            "steps": [{"set_text": {"source": "Alert", "text": "{user}"}}],
        },
    },
}
VIEWERS = [f"v{n:02d}" for n in range(1, 21)]


def outage_config(db_path: Path, obs: RealObs, **overrides: Any) -> Config:
    return config_for(db_path, redeems=OUTAGE_REDEEMS, obs=real_obs_settings(obs, **overrides))


def obs_outage_down(bot: ConsoleSession) -> bool:
    assert bot.app.queue.runner is not None
    outage = bot.app.queue.runner.outage("effect")
    assert outage is not None
    return outage.down


async def test_obs_gone_during_back_after_is_switched_back_when_it_returns(
    own_obs: RealObs, db_path: Path, tmp_path: Path
) -> None:
    config = outage_config(db_path, own_obs, reconnect={"attempts": 1, "backoff": "200ms"})
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run("/tip alice 100")
        async with ObsEvents(own_obs, SCENES) as events:
            redeem = asyncio.create_task(bot.run("alice: !brb"))
            await events.wait_for("CurrentProgramSceneChanged", sceneName="BRB")
        await asyncio.to_thread(own_obs.quit)  # OBS saves its collection (on BRB) and is gone
        lines = await redeem
        assert lines[-2].startswith(
            "[effect] #1 failed: OBS went away before the bot could switch back to scene 'Main'"
        )

        await asyncio.to_thread(own_obs.start)  # back on BRB, where it was
        await until(lambda: not obs_outage_down(bot), seconds=20)
        assert await current_scene(own_obs) == "Main"
        await bot.verified()

    assert statuses(db_path)[1][0] == "failed"
    assert_refunded_once(db_path, 1, "alice", 10)
    assert len(refunds(db_path)) == 1
    assert rows(db_path, "SELECT item_id, outcome FROM obs_undos") == [(1, "applied")]
    assert rows(
        db_path, "SELECT json_extract(payload, '$.outcome') FROM events WHERE kind = 'obs_undo'"
    ) == [("applied",)]


async def test_obs_killed_during_back_after_comes_back_elsewhere_and_is_left_alone(
    own_obs: RealObs, db_path: Path, tmp_path: Path
) -> None:
    """A crash (SIGKILL) saves nothing: OBS 29 comes back on the scene it last saved, not on
    BRB. Switching 'back' now would change a scene the bot never set, so it does not."""
    config = outage_config(db_path, own_obs, reconnect={"attempts": 1, "backoff": "200ms"})
    async with console_session(config, base_dir=tmp_path) as bot:
        await bot.run("/tip alice 100")
        async with ObsEvents(own_obs, SCENES) as events:
            redeem = asyncio.create_task(bot.run("alice: !brb"))
            await events.wait_for("CurrentProgramSceneChanged", sceneName="BRB")
        own_obs.kill()
        await redeem

        await asyncio.to_thread(own_obs.start)
        restored = await current_scene(own_obs)
        await until(lambda: not obs_outage_down(bot), seconds=20)
        await bot.verified()

    assert restored != "BRB"
    assert await current_scene(own_obs) == restored  # left alone
    assert rows(db_path, "SELECT item_id, outcome FROM obs_undos") == [(1, "stale")]
    assert_refunded_once(db_path, 1, "alice", 10)


async def queue_backlog(bot: ConsoleSession) -> None:
    await bot.run("/mod mod", "mod: !pause effect")
    for viewer in VIEWERS:
        await bot.run(f"/tip {viewer} 100", f"{viewer}: !alert")


async def test_a_backlog_behind_a_dead_obs_is_refunded_in_seconds_with_one_line(
    own_obs: RealObs, db_path: Path, tmp_path: Path
) -> None:
    config = outage_config(db_path, own_obs, when_down="refund")  # default reconnect: 1s, x2, 3
    async with console_session(config, base_dir=tmp_path) as bot:
        await queue_backlog(bot)
        own_obs.kill()

        started = time.monotonic()
        lines = await bot.run("mod: !resume effect")
        settled_in = time.monotonic() - started
        chat = [line for line in lines if line.startswith("Pixel: OBS")]
        await bot.verified()

    print(f"20 items settled in {settled_in:.2f}s")
    assert settled_in < 10
    assert chat == [
        "Pixel: OBS is down: refunded 20 effects (@v01, @v02, @v03, @v04, @v05 and 15 more)."
    ]
    assert len(refunds(db_path)) == 20
    for item_id, viewer in enumerate(VIEWERS, start=1):
        assert_refunded_once(db_path, item_id, viewer, 10)


async def test_a_backlog_behind_a_dead_obs_waits_then_plays(
    own_obs: RealObs, db_path: Path, tmp_path: Path
) -> None:
    config = outage_config(db_path, own_obs, reconnect={"attempts": 1, "backoff": "200ms"})
    async with console_session(config, base_dir=tmp_path) as bot:
        await queue_backlog(bot)
        own_obs.kill()
        lines = await bot.run("mod: !resume effect")
        assert lines[-1] == (
            "Pixel: OBS is down: 20 waiting effects will play when it is back "
            "(@v01, @v02, @v03, @v04, @v05 and 15 more)."
        )
        assert {status for status, _ in statuses(db_path).values()} == {"pending"}

        await asyncio.to_thread(own_obs.start)
        await until(lambda: not obs_outage_down(bot), seconds=20)
        played = await bot.run("/drain")
        text = await obs_real.request(own_obs, "GetInputSettings", {"inputName": "Alert"})
        await bot.verified()

    assert len([line for line in played if line.startswith("[effect] #")]) == 20
    assert text["inputSettings"]["text"] == "v20"
    assert {status for status, _ in statuses(db_path).values()} == {"done"}
    assert refunds(db_path) == []


# ----------------------------------------------------------------------------- the real CLI


def run_cli(tmp_path: Path, *args: str, script: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), *args],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


def cli_config(tmp_path: Path, port: int, password: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            database: {{url: "sqlite+aiosqlite:///{tmp_path / "pixel.db"}"}}
            obs:
              enabled: true
              host: 127.0.0.1
              port: {port}
              password: "{password}"
              reconnect: {{attempts: 2, backoff: 100ms}}
            redeems:
              clip: {{title: Clip, cost: 0, action: {{type: obs, do: clip}}}}
              nowhere:
                title: Nowhere
                cost: 0
                action: {{type: obs, do: switch_scene, scene: Nowhere}}
            """
        )
    )
    return path


def test_no_traceback_on_stderr_through_the_cli(real: RealObs, tmp_path: Path) -> None:
    config = cli_config(tmp_path, real.port, real.password)
    run = run_cli(
        tmp_path,
        "-v",  # DEBUG on a basicConfig root handler: the case that printed every traceback
        "--config",
        str(config),
        "console",
        "--script",
        "-",
        script="alice: !clip\nalice: !nowhere\nalice: !clip\n",
    )

    assert run.returncode == 0, run.stderr
    assert "[effect] #1 Clip for alice: clip" in run.stdout
    assert "OBS has no scene named 'Nowhere'" in run.stdout
    assert "Traceback" not in run.stderr
    assert real.password not in run.stderr + run.stdout
    assert "pixelbot.integrations.obs.obsws" in run.stderr  # obsws-python's lines, one each
    verify = run_cli(tmp_path, "--config", str(config), "db", "verify")
    assert verify.returncode == 0, verify.stdout


def test_an_unreachable_obs_is_one_warning_per_outage(tmp_path: Path) -> None:
    config = cli_config(tmp_path, free_port(), "secret-password")
    run = run_cli(
        tmp_path,
        "--config",
        str(config),
        "console",
        "--script",
        "-",
        script="alice: !clip\nbob: !clip\ncarol: !nowhere\n",
    )

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    warnings = [line for line in run.stderr.splitlines() if "is not reachable" in line]
    assert len(warnings) == 1, run.stderr
    assert "secret-password" not in run.stderr + run.stdout
    verbose = run_cli(
        tmp_path, "-v", "--config", str(config), "console", "--script", "-", script="dave: !clip\n"
    )
    assert verbose.returncode == 0, verbose.stderr
    assert "ConnectionRefusedError" in verbose.stderr  # obsws-python's line, at DEBUG ...
    assert "Traceback" not in verbose.stderr  # ... without its traceback
    assert "secret-password" not in verbose.stderr
    verify = run_cli(tmp_path, "--config", str(config), "db", "verify")
    assert verify.returncode == 0, verify.stdout
    assert "Pixel: OBS is down: 1 waiting effect will play when it is back (@alice)." in (
        run.stdout.splitlines()
    )
    assert (
        "Pixel: @bob Clip redeemed (queued as #2); OBS is down, it will play when OBS is back"
        in (run.stdout.splitlines())
    )
