"""Stream effects end to end: EffectWorker -> ObsClient -> the real obsws-python client ->
a fake obs-websocket v5 server (tests/fakes/obs_server.py), which records every request.

Sleeps are injected: step sleeps and reconnect backoff are recorded instead of waited, and a
step sleep can run a hook (e.g. restart OBS between two steps).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pixelbot.config import Config
from pixelbot.config.effects import ObsSettings
from pixelbot.economy.payloads import ItemPayload, payload_of
from pixelbot.errors import EffectFailed, ObsUnavailable
from pixelbot.integrations.obs import ObsClient, ObsRequestError
from pixelbot.queue.worker import Done, Job
from pixelbot.queue.workers.effect import EffectWorker, steps_from_payload
from tests.fakes.obs_server import FakeObs

RESTART = "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_RESTART"


class Sleeps:
    """A fake ``asyncio.sleep``: records each delay, runs the next hook if any, returns."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hooks: list[Callable[[], Awaitable[None]]] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.hooks:
            await self.hooks.pop(0)()
        await asyncio.sleep(0)


def obs_settings(port: int, **overrides: Any) -> ObsSettings:
    data: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "timeout": "2s",
        "reconnect": {"attempts": 2, "backoff": "10ms", "max_backoff": "1s"},
        "sound_source": "Sounds",
    }
    return ObsSettings.model_validate(data | overrides)


@dataclass
class Rig:
    """A fake OBS, a real client and the worker, with their sleeps and the chat lines said."""

    fake: FakeObs
    settings: ObsSettings
    client: ObsClient
    worker: EffectWorker
    step_sleeps: Sleeps
    reconnect_sleeps: Sleeps
    said: list[str] = field(default_factory=list)

    def job(self, steps: list[Any] | None, **payload: Any) -> Job:
        """An item as the runner hands it over; ``steps=None`` for a redeem's ``action``."""

        async def say(line: str) -> None:
            self.said.append(line)

        payload = {
            "title": "Hydrate",
            "text": None,
            "viewer": {"login": "alice", "name": "Alice"},
        } | payload
        if steps is not None:
            payload["steps"] = steps
        typed = payload_of("effect", payload)
        return Job(item_id=4, kind="effect", payload=typed, user_id=7, attempts=1, say=say)

    async def run(self, steps: list[Any] | None, **payload: Any) -> Done:
        return await self.worker.perform(self.job(steps, **payload))


@pytest.fixture
async def fake() -> AsyncIterator[FakeObs]:
    async with FakeObs() as obs:
        yield obs


def make_rig(fake: FakeObs, sounds: Path | None = None, **overrides: Any) -> Rig:
    if sounds is not None:
        overrides["sounds_dir"] = str(sounds)
    settings = obs_settings(fake.port, **overrides)
    step_sleeps, reconnect_sleeps = Sleeps(), Sleeps()
    client = ObsClient(settings, sleep=reconnect_sleeps)
    steps_for = functools.partial(steps_from_payload, config=Config())
    worker = EffectWorker(steps_for, client, settings, sleep=step_sleeps)
    return Rig(fake, settings, client, worker, step_sleeps, reconnect_sleeps)


@pytest.fixture
async def rig(fake: FakeObs, tmp_path: Path) -> AsyncIterator[Rig]:
    made = make_rig(fake, tmp_path)
    yield made
    await made.worker.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


# ----------------------------------------------------------------------------- connecting


async def test_connect_identifies_once_without_events_or_extra_requests(rig: Rig) -> None:
    await rig.client.request("GetVersion")
    await rig.client.request("GetCurrentProgramScene")

    assert rig.fake.identifies == [{"rpcVersion": 1, "eventSubscriptions": 0}]
    assert rig.fake.request_types() == ["GetVersion", "GetCurrentProgramScene"]
    assert rig.fake.sessions == 1


async def test_password_is_accepted() -> None:
    async with FakeObs(password="secret") as fake:
        client = ObsClient(obs_settings(fake.port, password="secret"))
        try:
            scene = await client.request("GetCurrentProgramScene")
        finally:
            await client.close()

    assert scene["currentProgramSceneName"] == "Main"
    assert fake.identifies[0]["authentication"]  # the documented challenge answer


async def test_wrong_password_is_refused_without_retrying() -> None:
    async with FakeObs(password="secret") as fake:
        sleeps = Sleeps()
        client = ObsClient(obs_settings(fake.port, password="guess"), sleep=sleeps)
        with pytest.raises(ObsUnavailable, match="OBS refused the password"):
            await client.request("GetVersion")
        await client.close()

    assert sleeps.delays == []
    assert fake.sessions == 0
    assert fake.requests == []


async def test_missing_password_says_to_set_one() -> None:
    async with FakeObs(password="secret") as fake:
        client = ObsClient(obs_settings(fake.port, password=""))  # "" means no password
        with pytest.raises(ObsUnavailable, match=r"OBS asks for a password.*obs\.password"):
            await client.request("GetVersion")
        await client.close()


async def test_the_password_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeObs(password="hunter2-very-secret") as fake:
        good = ObsClient(obs_settings(fake.port, password="hunter2-very-secret"))
        await good.request("GetVersion")
        await good.close()
        bad = ObsClient(obs_settings(fake.port, password="hunter2-wrong"))
        with pytest.raises(ObsUnavailable):
            await bad.request("GetVersion")
        await bad.close()

    assert "password='***'" in caplog.text  # obsws-python's connect line, redacted
    assert "hunter2" not in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name.startswith("obsws"))


async def test_unreachable_obs_backs_off_then_gives_up() -> None:
    port = free_port()  # nothing listens there
    settings = obs_settings(
        port, reconnect={"attempts": 4, "backoff": "1s", "max_backoff": "5s"}, timeout="1s"
    )
    sleeps = Sleeps()
    client = ObsClient(settings, sleep=sleeps)

    with pytest.raises(ObsUnavailable) as failed:
        await client.request("GetVersion")
    await client.close()

    assert str(failed.value) == f"OBS is not reachable at 127.0.0.1:{port}"
    assert sleeps.delays == [1.0, 2.0, 4.0, 5.0]  # doubled each time, capped at max_backoff


async def test_a_closed_client_refuses_requests(rig: Rig) -> None:
    await rig.client.request("GetVersion")
    await rig.client.close()

    with pytest.raises(ObsUnavailable, match="closed"):
        await rig.client.request("GetVersion")


async def test_request_errors_carry_the_status_code(rig: Rig) -> None:
    with pytest.raises(ObsRequestError) as failed:
        await rig.client.request("GetSceneItemId", {"sceneName": "Main", "sourceName": "Nope"})

    assert failed.value.code == 600
    assert failed.value.request_type == "GetSceneItemId"
    assert "No scene items were found" in str(failed.value)
    assert rig.reconnect_sleeps.delays == []  # a refused request is not retried


# ----------------------------------------------------------------------------- scenes and sources


async def test_switch_scene(rig: Rig) -> None:
    done = await rig.run([{"switch_scene": "BRB"}])

    assert rig.fake.requests == [("SetCurrentProgramScene", {"sceneName": "BRB"})]
    assert rig.fake.current_scene == "BRB"
    assert done.result == {"steps": [{"do": "switch_scene", "scene": "BRB"}]}
    assert done.summary == "#4 Hydrate for Alice: switch_scene"


async def test_switch_scene_and_back(rig: Rig) -> None:
    seen: list[str] = []

    async def look() -> None:
        seen.append(rig.fake.current_scene)

    rig.step_sleeps.hooks.append(look)
    done = await rig.run([{"switch_scene": {"scene": "BRB", "back_after": "30s"}}])

    assert rig.fake.requests == [
        ("GetCurrentProgramScene", {}),
        ("SetCurrentProgramScene", {"sceneName": "BRB"}),
        ("SetCurrentProgramScene", {"sceneName": "Main"}),
    ]
    assert rig.step_sleeps.delays == [30.0]
    assert seen == ["BRB"]  # on BRB while the step waited
    assert rig.fake.current_scene == "Main"
    assert done.result["steps"][0]["back_to"] == "Main"


async def test_show_source_for_a_while(rig: Rig) -> None:
    shown: list[bool] = []

    async def look() -> None:
        shown.append(rig.fake.item_enabled("Main", "HydrateGif"))

    rig.step_sleeps.hooks.append(look)
    await rig.run([{"show_source": {"scene": "Main", "source": "HydrateGif", "for": "10s"}}])

    item_id = rig.fake.scenes["Main"]["HydrateGif"].item_id
    assert rig.fake.requests == [
        ("GetSceneItemId", {"sceneName": "Main", "sourceName": "HydrateGif"}),
        (
            "SetSceneItemEnabled",
            {"sceneName": "Main", "sceneItemId": item_id, "sceneItemEnabled": True},
        ),
        (
            "SetSceneItemEnabled",
            {"sceneName": "Main", "sceneItemId": item_id, "sceneItemEnabled": False},
        ),
    ]
    assert shown == [True]
    assert rig.step_sleeps.delays == [10.0]
    assert rig.fake.item_enabled("Main", "HydrateGif") is False


async def test_hide_source_and_show_it_again(rig: Rig) -> None:
    await rig.run([{"hide_source": {"scene": "Main", "source": "Webcam"}}])
    assert rig.fake.item_enabled("Main", "Webcam") is False

    await rig.run([{"hide_source": {"scene": "BRB", "source": "BrbText", "for": "1s"}}])
    assert rig.fake.item_enabled("BRB", "BrbText") is True
    assert [r.data.get("sceneItemEnabled") for r in rig.fake.requests[-2:]] == [False, True]


async def test_a_skipped_timed_step_is_undone_before_cancelling(fake: FakeObs) -> None:
    settings = obs_settings(fake.port)
    client = ObsClient(settings)

    async def never_ends(seconds: float) -> None:
        await asyncio.Event().wait()

    steps_for = functools.partial(steps_from_payload, config=Config())
    worker = EffectWorker(steps_for, client, settings, sleep=never_ends)
    rig = Rig(fake, settings, client, worker, Sleeps(), Sleeps())
    step = {"show_source": {"scene": "Main", "source": "HydrateGif", "for": "1h"}}
    task = asyncio.create_task(worker.perform(rig.job([step, {"say": "not reached"}])))
    await until(lambda: fake.item_enabled("Main", "HydrateGif"))

    task.cancel()  # a moderator's !skip
    with pytest.raises(asyncio.CancelledError):
        await task
    await worker.close()

    assert fake.item_enabled("Main", "HydrateGif") is False
    assert fake.request_types()[-1] == "SetSceneItemEnabled"
    assert rig.said == []


# ----------------------------------------------------------------------------- replay buffer


def collapsed(types: list[str]) -> list[str]:
    """Request types with repeats in a row folded (retries and polls vary in number)."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


async def test_clip_starts_the_replay_buffer_and_records_the_file_obs_wrote(rig: Rig) -> None:
    done = await rig.run([{"clip": {}}])

    assert collapsed(rig.fake.request_types()) == [
        "GetReplayBufferStatus",
        "StartReplayBuffer",
        "GetLastReplayBufferReplay",  # the file before: "" (none yet, as in obs-websocket 5.1)
        "SaveReplayBuffer",  # 501 while the buffer starts, then saved
        "GetLastReplayBufferReplay",  # until it names a new file
    ]
    assert rig.fake.request_types().count("SaveReplayBuffer") >= 2  # the 501 was retried
    assert rig.fake.replay_buffer_active is True
    assert rig.fake.saved_replays == ["/videos/Replay 1.mkv"]
    assert done.result["steps"] == [
        {"do": "clip", "started_replay_buffer": True, "file": "/videos/Replay 1.mkv"}
    ]
    assert rig.step_sleeps.delays == []  # waits on OBS itself never move the stream's clock


async def test_three_clips_in_a_row_each_record_their_own_file(fake: FakeObs) -> None:
    fake.replay_write_seconds = 0.3  # later than the first poll: the old name is still there
    rig = make_rig(fake)

    files = [(await rig.run([{"clip": {}}])).result["steps"][0]["file"] for _ in range(3)]
    await rig.worker.close()

    assert files == fake.saved_replays == [f"/videos/Replay {n}.mkv" for n in (1, 2, 3)]


async def test_a_clip_whose_file_never_comes_fails(fake: FakeObs) -> None:
    fake.replay_buffer_active = True
    fake.replay_write_seconds = 5.0
    rig = make_rig(fake, clip_wait="300ms")

    with pytest.raises(EffectFailed, match=r"OBS did not write the clip's file within 0.3s"):
        await rig.run([{"clip": {}}])
    await rig.worker.close()


async def test_clip_with_the_replay_buffer_running(rig: Rig) -> None:
    rig.fake.replay_buffer_active = True

    done = await rig.run([{"clip": None}])

    assert collapsed(rig.fake.request_types()) == [
        "GetReplayBufferStatus",
        "GetLastReplayBufferReplay",
        "SaveReplayBuffer",
        "GetLastReplayBufferReplay",
    ]
    assert rig.fake.request_types().count("SaveReplayBuffer") == 1
    assert done.result["steps"][0]["started_replay_buffer"] is False


@pytest.mark.parametrize(
    ("step", "setting"),
    [({"start_replay_buffer": False}, True), ({}, False)],
    ids=["step-says-no", "config-says-no"],
)
async def test_clip_does_not_start_the_replay_buffer_when_not_allowed(
    fake: FakeObs, step: dict[str, Any], setting: bool
) -> None:
    rig = make_rig(fake, start_replay_buffer=setting)

    with pytest.raises(EffectFailed) as failed:
        await rig.run([{"clip": step}])
    await rig.worker.close()

    assert str(failed.value) == "the replay buffer is off in OBS"
    assert failed.value.step == "clip"
    assert fake.request_types() == ["GetReplayBufferStatus"]
    assert fake.replay_buffer_active is False
    assert fake.saved_replays == []


# ----------------------------------------------------------------------------- inputs and filters


async def test_restart_media(rig: Rig) -> None:
    await rig.run([{"restart_media": "Intro"}])

    assert rig.fake.requests == [
        ("TriggerMediaInputAction", {"inputName": "Intro", "mediaAction": RESTART})
    ]
    assert rig.fake.media_actions == [("Intro", RESTART)]


async def test_set_text_fills_placeholders(rig: Rig) -> None:
    step = {"set_text": {"source": "Alert", "text": "{user} redeemed {title}: {text}"}}

    done = await rig.run([step], text="stay hydrated {user}")

    expected = "Alice redeemed Hydrate: stay hydrated {user}"  # viewer text is not a template
    assert rig.fake.requests == [
        (
            "SetInputSettings",
            {"inputName": "Alert", "inputSettings": {"text": expected}, "overlay": True},
        )
    ]
    assert rig.fake.inputs["Alert"].settings == {"text": expected, "font": {"size": 48}}
    assert done.result["steps"][0]["text"] == expected


async def test_toggle_filter_flips_it_and_back(rig: Rig) -> None:
    states: list[bool] = []

    async def look() -> None:
        states.append(rig.fake.filters["Webcam"]["Blur"])

    rig.step_sleeps.hooks.append(look)
    await rig.run([{"toggle_filter": {"source": "Webcam", "filter": "Blur", "for": "5s"}}])

    where = {"sourceName": "Webcam", "filterName": "Blur"}
    assert rig.fake.requests == [
        ("GetSourceFilter", where),
        ("SetSourceFilterEnabled", where | {"filterEnabled": True}),
        ("SetSourceFilterEnabled", where | {"filterEnabled": False}),
    ]
    assert states == [True]
    assert rig.fake.filters["Webcam"]["Blur"] is False


async def test_toggle_filter_to_an_explicit_state(rig: Rig) -> None:
    step = {"toggle_filter": {"source": "Webcam", "filter": "Color", "enabled": False}}

    await rig.run([step])
    await rig.run([step])  # explicit: stays off, does not flip back on

    assert rig.fake.filters["Webcam"]["Color"] is False
    assert [r.data.get("filterEnabled") for r in rig.fake.requests] == [None, False, None, False]


# ----------------------------------------------------------------------------- sounds


async def test_play_sound_loads_the_file_and_restarts_the_source(rig: Rig, tmp_path: Path) -> None:
    (tmp_path / "sfx").mkdir()
    sound = tmp_path / "sfx" / "splash.wav"
    sound.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")

    done = await rig.run([{"play_sound": "sfx/splash.wav"}])

    assert rig.fake.requests == [
        (
            "SetInputSettings",
            {"inputName": "Sounds", "inputSettings": {"local_file": str(sound)}, "overlay": True},
        ),
        ("TriggerMediaInputAction", {"inputName": "Sounds", "mediaAction": RESTART}),
    ]
    assert rig.fake.inputs["Sounds"].settings["local_file"] == str(sound)
    assert rig.fake.media_actions == [("Sounds", RESTART)]
    assert done.result["steps"][0]["file"] == str(sound)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"play_sound": "nope.wav"}, "the sound file 'nope.wav' is missing from "),
        ({"play_sound": "../secret.wav"}, "the sound '../secret.wav' is outside the sounds folder"),
        ({"play_sound": {"file": "x.wav", "source": "Ghost"}}, "OBS has no source named 'Ghost'"),
    ],
    ids=["missing", "outside", "unknown-source"],
)
async def test_play_sound_failures(
    rig: Rig, tmp_path: Path, step: dict[str, Any], message: str
) -> None:
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    (tmp_path.parent / "secret.wav").write_bytes(b"RIFF")

    with pytest.raises(EffectFailed) as failed:
        await rig.run([step])

    assert str(failed.value).startswith(message)
    assert failed.value.step == "play_sound"
    assert rig.fake.media_actions == []


async def test_play_sound_needs_a_source(fake: FakeObs, tmp_path: Path) -> None:
    rig = make_rig(fake, tmp_path, sound_source=None)
    (tmp_path / "x.wav").write_bytes(b"RIFF")

    with pytest.raises(EffectFailed, match=r"no sound source is set \(obs.sound_source\)"):
        await rig.run([{"play_sound": "x.wav"}])
    await rig.worker.close()

    assert fake.requests == []


# ----------------------------------------------------------------------------- wait, say, no OBS


async def test_wait_and_say_need_no_obs() -> None:
    sleeps = Sleeps()
    steps_for = functools.partial(steps_from_payload, config=Config())
    worker = EffectWorker(steps_for, None, ObsSettings(), sleep=sleeps)
    said: list[str] = []

    async def say(line: str) -> None:
        said.append(line)

    payload = {
        "steps": [{"say": "{user} starts {title}"}, {"wait": "2.5s"}, {"say": "{text}!"}],
        "title": "Countdown",
        "text": "go",
        "viewer": {"login": "bob"},
    }
    done = await worker.perform(Job(9, "effect", payload_of("effect", payload), None, 1, say))
    await worker.close()

    assert said == ["bob starts Countdown", "go!"]
    assert sleeps.delays == [2.5]
    assert [step["do"] for step in done.result["steps"]] == ["say", "wait", "say"]


async def test_obs_steps_fail_clearly_when_obs_is_off() -> None:
    steps_for = functools.partial(steps_from_payload, config=Config())
    worker = EffectWorker(steps_for, None, ObsSettings(), sleep=Sleeps())
    said: list[str] = []

    async def say(line: str) -> None:
        said.append(line)

    payload = {"steps": [{"say": "first"}, {"switch_scene": "BRB"}, {"say": "never"}]}
    with pytest.raises(EffectFailed) as failed:
        await worker.perform(Job(9, "effect", payload_of("effect", payload), None, 1, say))

    assert str(failed.value) == "OBS is not enabled (obs.enabled in config.yaml)"
    assert failed.value.step == "switch_scene"
    assert said == ["first"]


# ----------------------------------------------------------------------------- OBS says no


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"switch_scene": "Gaming"}, "OBS has no scene named 'Gaming'"),
        (
            {"show_source": {"scene": "Main", "source": "Confetti"}},
            "OBS has no source named 'Confetti' in scene 'Main'",
        ),
        (
            {"hide_source": {"scene": "Lobby", "source": "Webcam"}},
            "OBS has no source named 'Webcam' in scene 'Lobby'",
        ),
        (
            {"toggle_filter": {"source": "Webcam", "filter": "Sepia"}},
            "OBS has no filter named 'Sepia' on source 'Webcam'",
        ),
        ({"restart_media": "Outro"}, "OBS has no source named 'Outro'"),
        ({"set_text": {"source": "Ticker", "text": "hi"}}, "OBS has no source named 'Ticker'"),
    ],
    ids=["scene", "source", "scene-of-source", "filter", "media", "text"],
)
async def test_missing_things_are_named(rig: Rig, step: dict[str, Any], message: str) -> None:
    with pytest.raises(EffectFailed) as failed:
        await rig.run([step, {"say": "never"}])

    assert str(failed.value) == message
    assert failed.value.step == next(iter(step))
    assert rig.said == []


async def test_other_refusals_quote_obs(rig: Rig) -> None:
    rig.fake.fail_next("SetCurrentProgramScene", 702, "Something went wrong.")

    with pytest.raises(ObsRequestError) as failed:
        await rig.run([{"switch_scene": "BRB"}])

    assert str(failed.value) == (
        "OBS refused SetCurrentProgramScene (code 702: Something went wrong.)"
    )
    assert failed.value.code == 702
    assert failed.value.step == "switch_scene"
    assert rig.fake.current_scene == "Main"


# ----------------------------------------------------------------------------- OBS goes away


async def test_obs_restarting_between_steps_is_survived(rig: Rig) -> None:
    async def restart_obs() -> None:
        await rig.fake.stop()
        await rig.fake.start()

    rig.step_sleeps.hooks.append(restart_obs)
    steps = [
        {"set_text": {"source": "Alert", "text": "one"}},
        {"wait": "1s"},
        {"set_text": {"source": "Alert", "text": "two"}},
    ]

    done = await rig.run(steps)

    assert rig.fake.sessions == 2  # reconnected to the restarted OBS
    assert rig.fake.inputs["Alert"].settings["text"] == "two"
    assert rig.reconnect_sleeps.delays == [0.01]
    assert len(done.result["steps"]) == 3


async def test_dropped_connections_are_reconnected(rig: Rig) -> None:
    rig.step_sleeps.hooks.append(rig.fake.drop_clients)

    await rig.run([{"switch_scene": "BRB"}, {"wait": "1s"}, {"restart_media": "Intro"}])

    assert rig.fake.sessions == 2
    assert rig.fake.current_scene == "BRB"
    assert rig.fake.media_actions == [("Intro", RESTART)]


async def test_obs_that_stays_down_fails_the_item(rig: Rig) -> None:
    rig.step_sleeps.hooks.append(rig.fake.stop)

    with pytest.raises(ObsUnavailable) as failed:
        await rig.run([{"switch_scene": "BRB"}, {"wait": "1s"}, {"switch_scene": "Main"}])

    assert str(failed.value) == f"OBS is not reachable at 127.0.0.1:{rig.fake.port}"
    assert failed.value.step == "switch_scene"
    assert rig.reconnect_sleeps.delays == [0.01, 0.02]  # reconnect.attempts = 2
    assert rig.fake.current_scene == "BRB"


async def test_a_silent_obs_times_out_and_the_request_is_sent_again(fake: FakeObs) -> None:
    rig = make_rig(fake, timeout="300ms")
    fake.stall_next("SetInputSettings")

    await rig.run([{"set_text": {"source": "Alert", "text": "late"}}])
    await rig.worker.close()

    assert fake.request_types() == ["SetInputSettings", "SetInputSettings"]
    assert fake.sessions == 2  # the timed-out connection was not reused
    assert fake.inputs["Alert"].settings["text"] == "late"


# ----------------------------------------------------------------------------- payloads


async def test_a_redeem_action_payload_runs_its_steps(rig: Rig) -> None:
    config = Config.model_validate(
        {
            "redeems": {
                "peek": {
                    "title": "Peek",
                    "action": {
                        "type": "obs",
                        "do": "show_source",
                        "scene": "Main",
                        "source": "HydrateGif",
                        "for": "1.5s",
                    },
                }
            }
        }
    )
    # stored as economy/redeems.py stores it: model_dump(mode="json") -> for_ and "PT1.5S"
    action = config.redeems["peek"].action.model_dump(mode="json")

    steps = steps_from_payload(payload_of("effect", {"action": action}), config)
    await rig.run(None, action=action)

    assert [step.do for step in steps] == ["show_source"]
    assert rig.step_sleeps.delays == [1.5]
    assert rig.fake.item_enabled("Main", "HydrateGif") is False
    assert rig.fake.request_types().count("SetSceneItemEnabled") == 2


def named(effect: str) -> ItemPayload:
    return payload_of("effect", {"action": {"type": "effect", "effect": effect}})


async def test_a_named_effect_payload_uses_the_current_config() -> None:
    config = Config.model_validate(
        {"effects": {"confetti": {"steps": [{"play_sound": "pop.wav"}, {"say": "yay"}]}}}
    )

    steps = steps_from_payload(named("confetti"), config)

    assert [step.do for step in steps] == ["play_sound", "say"]
    with pytest.raises(EffectFailed, match="no effect called 'gone'"):
        steps_from_payload(named("gone"), config)


# ----------------------------------------------------------------------------- one outage


async def test_an_outage_is_one_state_one_warning_and_fails_fast(
    fake: FakeObs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pixelbot.integrations.obs")
    rig = make_rig(fake)
    downs: list[str] = []
    backs: list[bool] = []

    async def back() -> None:
        backs.append(rig.client.reachable)  # requests already go through when it is told

    rig.client.on_down, rig.client.on_back = downs.append, back
    await rig.client.request("GetVersion")
    await fake.stop()

    for _ in range(3):
        with pytest.raises(ObsUnavailable):
            await rig.client.request("GetVersion")
    assert rig.reconnect_sleeps.delays == [0.01, 0.02]  # only the first request backed off
    assert len(downs) == 1
    assert not rig.client.reachable

    await fake.start()
    await until(lambda: rig.client.reachable and backs == [True], seconds=5)
    await rig.client.request("GetVersion")
    await rig.worker.close()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"OBS at 127.0.0.1:{fake.port} is not reachable (")
    assert warnings[1].startswith(f"OBS at 127.0.0.1:{fake.port} is reachable again")
