"""The effect worker: runs an effect's steps in order, against OBS and chat.

Steps run one after the other; a step with ``for``/``back_after`` holds its change for that
long, then undoes it, before the next step starts (put ``play_sound`` before a timed
``show_source`` to have both at once). If a timed step is cut short (a moderator's ``!skip``,
the item's timeout), its change is undone anyway before the cancellation goes on. A failing
step fails the item (it is refunded); earlier steps are not rolled back.

When OBS goes away, the worker's ``outage`` (read by the runner, see ``pixelbot/queue/
outage.py``) begins; an item that had shown nothing yet raises ``ObsUnavailable`` with
``untouched`` set, so it can wait for OBS instead of being refunded. An undo OBS could not
receive is remembered (``pixelbot/economy/obs_undos.py``) and put back when OBS answers again,
before the outage ends and before any later item runs.

Messages of ``EffectFailed`` are shown to the viewer and the moderators, so OBS's status codes
are turned into sentences that name the scene, source or filter from the config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, assert_never

from pydantic import TypeAdapter, ValidationError

from pixelbot.config import Config
from pixelbot.config.effects import (
    ClipStep,
    EffectStep,
    HideSourceStep,
    ObsSettings,
    PlaySoundStep,
    RestartMediaStep,
    SayStep,
    SetTextStep,
    ShowSourceStep,
    SwitchSceneStep,
    ToggleFilterStep,
    WaitStep,
)
from pixelbot.config.redeems import Action
from pixelbot.economy.obs_undos import MemoryUndoJournal, Undo, UndoJournal
from pixelbot.economy.payloads import EffectPayload, ItemPayload
from pixelbot.errors import EffectFailed, ObsUnavailable
from pixelbot.integrations.obs import (
    OUTPUT_NOT_RUNNING,
    OUTPUT_RUNNING,
    RESOURCE_NOT_FOUND,
    ObsClient,
    ObsRequestError,
)
from pixelbot.queue.outage import Outage
from pixelbot.queue.worker import Done, Job

__all__ = ["EffectWorker", "steps_from_payload"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
StepResult = dict[str, Any]

RESTART_MEDIA = "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_RESTART"
OBS_OFF = "OBS is not enabled (obs.enabled in config.yaml)"
REPLAY_BUFFER_OFF = "the replay buffer is off in OBS"
# OBS starts the replay buffer asynchronously: saving right after starting meets 501 for a
# few to a few hundred ms (obs-websocket 5.1). Retried on the real clock.
SAVE_TRIES = 50  # 5 s: 0.2 s here, more on a loaded machine
SAVE_RETRY_SECONDS = 0.1
# OBS writes the replay file 0.5-2 s after SaveReplayBuffer returns; until then
# GetLastReplayBufferReplay names the previous one (or ""). Asked this often, in real time.
CLIP_POLL_SECONDS = 0.1

_STEP_LIST: TypeAdapter[list[EffectStep]] = TypeAdapter(list[EffectStep])
_ACTION: TypeAdapter[Action] = TypeAdapter(Action)
_ISO_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
_DURATION_KEYS = frozenset({"for", "back_after", "duration"})


# ----------------------------------------------------------------------------- payloads


def steps_from_payload(payload: ItemPayload, config: Config) -> list[EffectStep]:
    """The steps of an effect item: its ``steps`` (a wheel's effect prize), or its redeem
    ``action`` (``Config.effect_steps``; a named effect is looked up in the current config).

    Payloads hold models dumped with ``model_dump(mode="json")``, which writes ``for`` as
    ``for_`` and durations in ISO 8601 (``PT10S``); both are read back here.
    """
    try:
        if isinstance(payload, EffectPayload) and payload.steps is not None:
            return _STEP_LIST.validate_python(_undump(payload.steps))
        if payload.action is None:
            raise EffectFailed("this effect has no steps")
        action = _ACTION.validate_python(_undump(payload.action))
        return config.effect_steps(action)
    except KeyError as exc:  # a named effect removed by !reload since the redeem
        raise EffectFailed(f"there is no effect called {exc.args[0]!r} any more") from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise EffectFailed(
            f"this effect is not valid any more ({where}: {problem['msg']})"
        ) from None


def _undump(value: Any) -> Any:
    """Undo what a JSON dump did to step settings: ``for_`` keys and ISO 8601 durations."""
    if isinstance(value, list):
        return [_undump(item) for item in value]
    if not isinstance(value, dict):
        return value
    undumped: dict[str, Any] = {}
    for key, item in value.items():
        name = "for" if key == "for_" else key
        if name in _DURATION_KEYS and isinstance(item, str) and item.startswith("P"):
            item = _ISO_DURATION.validate_python(item)
        undumped[name] = _undump(item)
    return undumped


# ----------------------------------------------------------------------------- the worker


class EffectWorker:
    """Performs ``effect`` queue items. ``obs`` is None when OBS is not enabled: then only
    ``wait`` and ``say`` steps can run."""

    kind = "effect"

    def __init__(
        self,
        steps_for: Callable[[ItemPayload], list[EffectStep]],
        obs: ObsClient | None,
        settings: ObsSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        base_dir: Path | None = None,
        undos: UndoJournal | None = None,
    ) -> None:
        """``base_dir``: where a relative ``obs.sounds_dir`` starts (default: the cwd).
        ``sleep``: step waits, ``for`` and ``back_after`` (OBS must see them: the real clock
        whenever OBS is enabled). Waits on OBS itself (a replay being written, a replay buffer
        starting) always use the real clock. ``undos``: where undos an outage left pending
        are kept (the database in the bot; memory by default)."""
        self._steps_for = steps_for
        self._obs = obs
        self._settings = settings
        self._sleep = sleep
        self._base_dir = base_dir
        self._undos: UndoJournal = undos if undos is not None else MemoryUndoJournal()
        self._undoing: set[asyncio.Task[Any]] = set()  # undos that outlive a cancelled step
        self._putting_back = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None
        self.outage: Outage | None = None  # the runner reads it (obs.when_down)
        if obs is not None:
            self.outage = Outage(
                "OBS",
                when_down=settings.when_down,
                hold_limit=settings.hold_limit.total_seconds(),
            )
            obs.on_down = self.outage.begin
            obs.on_back = self._obs_is_back

    async def perform(self, job: Job) -> Done:
        steps = self._steps_for(job.payload)
        results: list[StepResult] = []
        try:
            await self.put_back()
            for step in steps:
                results.append(await self._perform_step(step, job))
        except ObsUnavailable as exc:
            # Nothing shown yet (not even a chat line): the item can wait for OBS.
            exc.untouched = not results
            raise
        title = job.payload.title or "effect"
        done = ", ".join(step.do for step in steps)
        return Done(
            summary=f"#{job.item_id} {title} for {job.viewer_name}: {done}",
            result={"steps": results},
        )

    async def start(self) -> None:
        """At start, put back what an outage before the last stop left changed, without
        waiting for the first effect (in the background: OBS may still be down)."""
        if self._obs is not None and await self._undos.pending():
            self._starting = asyncio.create_task(self._put_back_at_start(), name="obs-put-back")

    async def _put_back_at_start(self) -> None:
        try:
            await self.put_back()
        except ObsUnavailable:
            pass  # the client marks OBS down; its probe puts it back when OBS answers
        except Exception:
            log.exception("putting back what the last OBS outage changed failed")

    async def close(self) -> None:
        if self._starting is not None:
            # Let a put-back in progress finish (as the undos below): cancelled between its
            # request and its record, the next start took the undo it had just done for a
            # change the stream no longer showed, and warned so.
            await asyncio.wait({self._starting}, timeout=self._settings.timeout.total_seconds())
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._undoing:
            await asyncio.wait(self._undoing, timeout=self._settings.timeout.total_seconds())
        if self._obs is not None:
            await self._obs.close()

    async def _perform_step(self, step: EffectStep, job: Job) -> StepResult:
        try:
            return await self._dispatch(step, job)
        except ObsRequestError as exc:
            message = self._explain(exc, step)
            if message is None:
                exc.step = step.do
                raise
            raise EffectFailed(message, step=step.do) from exc
        except EffectFailed as exc:
            exc.step = exc.step or step.do
            raise

    async def _dispatch(self, step: EffectStep, job: Job) -> StepResult:
        match step:
            case SwitchSceneStep():
                return await self._switch_scene(step, job)
            case ShowSourceStep():
                return await self._set_source_enabled(step, job, enabled=True)
            case HideSourceStep():
                return await self._set_source_enabled(step, job, enabled=False)
            case ClipStep():
                return await self._clip(step)
            case RestartMediaStep():
                await self._need_obs().request(
                    "TriggerMediaInputAction",
                    {"inputName": step.source, "mediaAction": RESTART_MEDIA},
                )
                return {"do": step.do, "source": step.source}
            case SetTextStep():
                return await self._set_text(step, job)
            case ToggleFilterStep():
                return await self._toggle_filter(step, job)
            case PlaySoundStep():
                return await self._play_sound(step)
            case WaitStep():
                await self._sleep(step.duration.total_seconds())
                return {"do": step.do, "seconds": step.duration.total_seconds()}
            case SayStep():
                line = _fill(step.message, job)
                await job.say(line)
                return {"do": step.do, "message": line}
            case _:
                assert_never(step)

    # ------------------------------------------------------------------ steps

    async def _switch_scene(self, step: SwitchSceneStep, job: Job) -> StepResult:
        obs = self._need_obs()
        result: StepResult = {"do": step.do, "scene": step.scene}
        previous = None
        if step.back_after is not None:
            current = await obs.request("GetCurrentProgramScene")
            previous = current.get("currentProgramSceneName") or current.get("sceneName")
        switch = {"sceneName": step.scene}
        if step.back_after is not None and previous:
            undo = Undo(
                job.item_id,
                f"switch back to scene '{previous}'",
                request={"type": "SetCurrentProgramScene", "data": {"sceneName": previous}},
                check={
                    "type": "GetCurrentProgramScene",
                    "data": {},
                    "field": "currentProgramSceneName",
                    "value": step.scene,
                },
            )
            await self._temporarily(
                lambda: obs.request("SetCurrentProgramScene", switch), undo, step.back_after
            )
            result.update(back_to=previous, seconds=step.back_after.total_seconds())
        else:
            await obs.request("SetCurrentProgramScene", switch)
        return result

    async def _set_source_enabled(
        self, step: ShowSourceStep | HideSourceStep, job: Job, *, enabled: bool
    ) -> StepResult:
        obs = self._need_obs()
        found = await obs.request(
            "GetSceneItemId", {"sceneName": step.scene, "sourceName": step.source}
        )
        item = {"sceneName": step.scene, "sceneItemId": found["sceneItemId"]}

        async def set_enabled(value: bool) -> None:
            await obs.request("SetSceneItemEnabled", {**item, "sceneItemEnabled": value})

        result: StepResult = {"do": step.do, "scene": step.scene, "source": step.source}
        if step.for_ is not None:
            undo = Undo(
                job.item_id,
                f"{'hide' if enabled else 'show'} source '{step.source}' in scene '{step.scene}'",
                request={
                    "type": "SetSceneItemEnabled",
                    "data": {**item, "sceneItemEnabled": not enabled},
                },
                check={
                    "type": "GetSceneItemEnabled",
                    "data": item,
                    "field": "sceneItemEnabled",
                    "value": enabled,
                },
            )
            await self._temporarily(lambda: set_enabled(enabled), undo, step.for_)
            result["seconds"] = step.for_.total_seconds()
        else:
            await set_enabled(enabled)
        return result

    async def _clip(self, step: ClipStep) -> StepResult:
        """Save the replay buffer (starting it if allowed) and wait for OBS to write the file:
        ``GetLastReplayBufferReplay`` names the previous file until the new one is written,
        0.5-2 s after ``SaveReplayBuffer`` returns, so the item records the file that changed."""
        obs = self._need_obs()
        status = await obs.request("GetReplayBufferStatus")
        started = False
        if not status.get("outputActive"):
            allowed = step.start_replay_buffer
            if allowed is None:
                allowed = self._settings.start_replay_buffer
            if not allowed:
                raise EffectFailed(REPLAY_BUFFER_OFF, step=step.do)
            await self._start_replay_buffer(obs)
            started = True
        before = await _last_replay(obs)
        await self._save_replay(obs, just_started=started)
        file = await self._new_replay(obs, before)
        return {"do": step.do, "started_replay_buffer": started, "file": file}

    async def _start_replay_buffer(self, obs: ObsClient) -> None:
        try:
            await obs.request("StartReplayBuffer")
        except ObsRequestError as exc:
            if exc.code != OUTPUT_RUNNING:  # started meanwhile: just as good
                raise

    async def _save_replay(self, obs: ObsClient, *, just_started: bool) -> None:
        for attempt in range(1, SAVE_TRIES + 1):
            try:
                await obs.request("SaveReplayBuffer")
                return
            except ObsRequestError as exc:
                if exc.code != OUTPUT_NOT_RUNNING:
                    raise
                if not just_started or attempt == SAVE_TRIES:
                    raise EffectFailed(REPLAY_BUFFER_OFF) from exc
            await asyncio.sleep(SAVE_RETRY_SECONDS)  # OBS's own pace: the real clock

    async def _new_replay(self, obs: ObsClient, before: str | None) -> str:
        """The replay file once OBS names one other than ``before`` (within ``clip_wait``)."""
        wait = self._settings.clip_wait.total_seconds()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            path = await _last_replay(obs)
            if path and path != before:
                return path
            if loop.time() >= deadline:
                raise EffectFailed(f"OBS did not write the clip's file within {wait:g}s")
            await asyncio.sleep(CLIP_POLL_SECONDS)  # OBS's own pace: the real clock

    async def _set_text(self, step: SetTextStep, job: Job) -> StepResult:
        text = _fill(step.text, job)
        await self._need_obs().request(
            "SetInputSettings",
            {"inputName": step.source, "inputSettings": {"text": text}, "overlay": True},
        )
        return {"do": step.do, "source": step.source, "text": text}

    async def _toggle_filter(self, step: ToggleFilterStep, job: Job) -> StepResult:
        obs = self._need_obs()
        where = {"sourceName": step.source, "filterName": step.filter}
        was = bool((await obs.request("GetSourceFilter", where))["filterEnabled"])
        enabled = (not was) if step.enabled is None else step.enabled

        async def set_enabled(value: bool) -> None:
            await obs.request("SetSourceFilterEnabled", {**where, "filterEnabled": value})

        result: StepResult = {
            "do": step.do,
            "source": step.source,
            "filter": step.filter,
            "enabled": enabled,
        }
        if step.for_ is not None:
            undo = Undo(
                job.item_id,
                f"turn filter '{step.filter}' on '{step.source}' {'on' if was else 'off'} again",
                request={"type": "SetSourceFilterEnabled", "data": {**where, "filterEnabled": was}},
                check={
                    "type": "GetSourceFilter",
                    "data": where,
                    "field": "filterEnabled",
                    "value": enabled,
                },
            )
            await self._temporarily(lambda: set_enabled(enabled), undo, step.for_)
            result["seconds"] = step.for_.total_seconds()
        else:
            await set_enabled(enabled)
        return result

    async def _play_sound(self, step: PlaySoundStep) -> StepResult:
        obs = self._need_obs()
        source = step.source or self._settings.sound_source
        if source is None:
            raise EffectFailed("no sound source is set (obs.sound_source)", step=step.do)
        path = self._sound_path(step.file)
        await obs.request(
            "SetInputSettings",
            {"inputName": source, "inputSettings": {"local_file": str(path)}, "overlay": True},
        )
        await obs.request(
            "TriggerMediaInputAction", {"inputName": source, "mediaAction": RESTART_MEDIA}
        )
        return {"do": step.do, "source": source, "file": str(path)}

    # ------------------------------------------------------------------ helpers

    def _need_obs(self) -> ObsClient:
        if self._obs is None:
            raise EffectFailed(OBS_OFF)
        return self._obs

    def _sound_path(self, file: str) -> Path:
        """``file`` under ``obs.sounds_dir``, absolute (OBS resolves paths on its own)."""
        folder = Path(self._settings.sounds_dir).expanduser()
        if self._base_dir is not None and not folder.is_absolute():
            folder = self._base_dir / folder
        folder = folder.resolve()
        path = (folder / file).resolve()
        if not path.is_relative_to(folder):
            raise EffectFailed(f"the sound '{file}' is outside the sounds folder")
        if not path.is_file():
            raise EffectFailed(
                f"the sound file '{file}' is missing from {self._settings.sounds_dir}"
            )
        return path

    async def _temporarily(
        self, change: Callable[[], Awaitable[object]], undo: Undo, duration: timedelta
    ) -> None:
        """Make a change, keep it for ``duration``, then undo it.

        A cancellation (``!skip``, a timeout) at any point — even while the change request is
        on its way, since the OBS thread sends it regardless — still undoes it, shielded from
        a second cancellation, then re-raises. (Undoing a change that never landed is
        harmless: the undo requests set a state, they do not flip it.) A change that failed
        with an error is not undone. An undo that cannot reach OBS is remembered and put
        back when OBS is reachable again (``put_back``)."""
        changed = False
        try:
            await change()
            changed = True
            await self._sleep(duration.total_seconds())
        except asyncio.CancelledError:
            await self._undo_after_interruption(undo)
            raise
        except BaseException:
            if changed:
                await self._undo_after_interruption(undo)
            raise
        try:
            await self._send(undo.request)
        except ObsUnavailable:
            await self._undos.remember(undo)
            raise EffectFailed(
                f"OBS went away before the bot could {undo.what} (it will when OBS is back)"
            ) from None

    async def _undo_after_interruption(self, undo: Undo) -> None:
        task = asyncio.ensure_future(self._send(undo.request))
        self._undoing.add(task)
        task.add_done_callback(self._undoing.discard)
        try:
            await asyncio.shield(task)
        except ObsUnavailable:
            await self._undos.remember(undo)
        except Exception:
            log.warning("could not undo an interrupted effect step", exc_info=True)

    async def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self._need_obs().request(request["type"], request.get("data") or None)

    # ------------------------------------------------------------------ after an outage

    async def put_back(self) -> None:
        """Put back what an outage left changed (see ``pixelbot/economy/obs_undos.py``), once
        each, oldest first; a change the stream no longer shows is left alone. Raises
        ``ObsUnavailable`` when OBS is still (or again) unreachable."""
        if self._obs is None:
            return
        async with self._putting_back:
            for pending in await self._undos.pending():
                undo = pending.undo
                check = undo.check
                try:
                    now = await self._send(check)
                    showing = now.get(check["field"]) == check["value"]
                except ObsRequestError as exc:  # the scene or source is gone
                    showing, now = False, {"error": str(exc)}
                if not showing:
                    detail = f"not done: OBS shows {now.get(check['field'], now)!r} now"
                    log.warning("after the OBS outage, did not %s: the stream changed", undo.what)
                    await self._undos.settle(pending.id, "stale", detail)
                    continue
                await self._send(undo.request)
                log.warning("after the OBS outage: did %s", undo.what)
                await self._undos.settle(pending.id, "applied", f"did {undo.what}")

    async def _obs_is_back(self) -> None:
        """OBS answers again: put back what the outage left changed, then end the outage
        (the runner resumes the queue)."""
        try:
            await self.put_back()
        except ObsUnavailable:
            return  # gone again at once: the client starts a new probe
        if self.outage is not None:
            self.outage.end()

    def _explain(self, exc: ObsRequestError, step: EffectStep) -> str | None:
        """A sentence for a ResourceNotFound (600) answer, naming what the config names."""
        if exc.code != RESOURCE_NOT_FOUND:
            return None
        match step:
            case SwitchSceneStep():
                return f"OBS has no scene named '{exc.data.get('sceneName', step.scene)}'"
            case ShowSourceStep() | HideSourceStep():
                return f"OBS has no source named '{step.source}' in scene '{step.scene}'"
            case ToggleFilterStep():
                return f"OBS has no filter named '{step.filter}' on source '{step.source}'"
            case RestartMediaStep() | SetTextStep() | PlaySoundStep():
                return f"OBS has no source named '{exc.data.get('inputName', step.source)}'"
        return None


def _fill(template: str, job: Job) -> str:
    """A step's text with ``{user}``, ``{text}`` and ``{title}`` filled in."""
    return template.format(
        user=job.viewer_name,
        text=job.text or "",
        title=job.payload.title,
    )


async def _last_replay(obs: ObsClient) -> str | None:
    """The file OBS saved last: None before the first (obs-websocket 5.1 answers "", later
    versions may answer 600 ResourceNotFound)."""
    try:
        saved = await obs.request("GetLastReplayBufferReplay")
    except ObsRequestError:
        return None
    path = saved.get("savedReplayPath")
    return str(path) if path else None
