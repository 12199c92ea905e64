"""A fake OBS: an obs-websocket v5 server with a small, inspectable OBS behind it.

It speaks the real protocol (docs/generated/protocol.md of obsproject/obs-websocket), so tests
drive the real obsws-python client through ``ObsClient`` against it::

    async with FakeObs(password="secret") as obs:
        client = ObsClient(ObsSettings(port=obs.port, password="secret"))
        await client.request("SetCurrentProgramScene", {"sceneName": "BRB"})
        assert obs.current_scene == "BRB"
        assert obs.requests[-1] == ("SetCurrentProgramScene", {"sceneName": "BRB"})

The handshake is Hello (op 0, with an auth challenge when a password is set), Identify (op 1,
checked; a wrong one closes with 4009), Identified (op 2); then Request (op 6) is answered with
RequestResponse (op 7) and RequestBatch (op 8) with RequestBatchResponse (op 9). No events are
sent. Every request is recorded in ``requests``, before it is answered.

It claims to be what Debian's obs-studio 29.0.2 runs, obs-websocket 5.1.0, and answers like it
where Pixel Bot cares (test_obs_real.py runs the same scenarios against that real OBS): only
``currentProgramSceneName`` from GetCurrentProgramScene; ``savedReplayPath: ""`` before the
first replay; 501 to SaveReplayBuffer for ``replay_start_seconds`` after StartReplayBuffer; the
replay file named by GetLastReplayBufferReplay only ``replay_write_seconds`` after the save
(real OBS: 0.5-2 s), and a save while one is being written merged into it.

Controls: ``fail_next`` (answer the next request of a type with an error), ``stall_next``
(never answer it, so the client times out), ``drop_clients`` (cut every connection without a
close frame, like a crash or a network hiccup), ``stop``/``start`` (OBS quits, then comes back
on the same port).

The server runs on the test's event loop; obsws-python is synchronous, so the client must run
on another thread (``ObsClient`` does) while the test awaits it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["FakeObs", "Input", "ObsRequest", "SceneItem", "auth_string"]

# What Debian's obs-studio 29.0.2 ships, and what tests/integration/test_obs_real.py runs.
OBS_VERSION = "29.0.2"
OBS_WEBSOCKET_VERSION = "5.1.0"
RPC_VERSION = 1

# RequestStatus codes (a subset).
SUCCESS = 100
UNKNOWN_REQUEST_TYPE = 204
MISSING_REQUEST_FIELD = 300
INVALID_REQUEST_FIELD = 400
INVALID_REQUEST_FIELD_TYPE = 401
REQUEST_FIELD_EMPTY = 403
OUTPUT_RUNNING = 500
OUTPUT_NOT_RUNNING = 501
RESOURCE_NOT_FOUND = 600

# WebSocketCloseCode values.
MESSAGE_DECODE_ERROR = 4002
UNKNOWN_OP_CODE = 4006
NOT_IDENTIFIED = 4007
ALREADY_IDENTIFIED = 4008
AUTHENTICATION_FAILED = 4009
UNSUPPORTED_RPC_VERSION = 4010

MEDIA_ACTIONS = frozenset(
    "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_" + name
    for name in ("NONE", "PLAY", "PAUSE", "STOP", "RESTART", "NEXT", "PREVIOUS")
)


def auth_string(password: str, salt: str, challenge: str) -> str:
    """The Identify ``authentication`` as documented:
    ``base64(sha256(base64(sha256(password + salt)) + challenge))``."""
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest())
    return base64.b64encode(hashlib.sha256(secret + challenge.encode()).digest()).decode()


class ObsRequest(NamedTuple):
    """One request as received; compares equal to a plain ``(type, data)`` tuple."""

    type: str
    data: dict[str, Any]


@dataclass
class SceneItem:
    item_id: int
    source: str
    enabled: bool = True


@dataclass
class Input:
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)


class _Failure(Exception):
    """A request failed with an obs-websocket RequestStatus code."""

    def __init__(self, code: int, comment: str | None = None) -> None:
        self.code = code
        self.comment = comment
        super().__init__(comment or str(code))


class _Stall(Exception):
    """The request is swallowed: no response is ever sent."""


T = TypeVar("T")
Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


class FakeObs:
    """An obs-websocket v5 server on 127.0.0.1 with a default scene collection:

    - scenes ``Main`` (Webcam, HydrateGif hidden, Alert, Intro, Sounds) and ``BRB`` (BrbText);
      ``Main`` is on program;
    - inputs: text sources ``Alert``/``BrbText``, media sources ``HydrateGif``/``Intro``/``Sounds``;
    - filters on ``Webcam``: ``Blur`` (off) and ``Color`` (on);
    - the replay buffer is off.

    Change it through the attributes or ``add_scene``/``add_input``/``add_filter``.
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        host: str = "127.0.0.1",
        replay_start_seconds: float = 0.05,
        replay_write_seconds: float = 0.1,
    ) -> None:
        self.password = password
        # Like OBS: SaveReplayBuffer answers 501 for a moment after StartReplayBuffer, and
        # the file is written (GetLastReplayBufferReplay names it) a while after the save.
        self.replay_start_seconds = replay_start_seconds
        self.replay_write_seconds = replay_write_seconds
        self._replay_ready_at = 0.0
        self._writing_replay = False
        self.host = host
        self.port = 0  # set by start(); kept across stop()/start()
        self.scenes: dict[str, dict[str, SceneItem]] = {}
        self.inputs: dict[str, Input] = {}
        self.filters: dict[str, dict[str, bool]] = defaultdict(dict)
        self.current_scene = ""
        self.replay_buffer_active = False
        self.saved_replays: list[str] = []
        self.media_actions: list[tuple[str, str]] = []  # (inputName, mediaAction)
        self.requests: list[ObsRequest] = []
        self.identifies: list[dict[str, Any]] = []  # every Identify payload ("d") received
        self.sessions = 0  # identified connections so far
        self._item_ids = iter(range(1, 1_000_000))
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._stalls: dict[str, int] = defaultdict(int)
        self._server: Server | None = None
        self._connections: set[ServerConnection] = set()
        self._handlers: dict[str, Handler] = self._request_handlers()
        self._default_collection()

    # ------------------------------------------------------------------ set-up and inspection

    def add_input(self, name: str, kind: str, settings: Mapping[str, Any] | None = None) -> None:
        self.inputs[name] = Input(kind, dict(settings or {}))

    def add_scene(self, name: str, items: Mapping[str, bool] | Iterable[str] = ()) -> None:
        """A scene with these sources (``{name: enabled}`` or names, all enabled)."""
        pairs = items.items() if isinstance(items, Mapping) else ((item, True) for item in items)
        self.scenes[name] = {}
        for source, enabled in pairs:
            self.inputs.setdefault(source, Input("color_source_v3"))
            self.scenes[name][source] = SceneItem(next(self._item_ids), source, enabled)
        self.current_scene = self.current_scene or name

    def add_filter(self, source: str, name: str, *, enabled: bool = True) -> None:
        self.filters[source][name] = enabled

    def item_enabled(self, scene: str, source: str) -> bool:
        return self.scenes[scene][source].enabled

    def request_types(self) -> list[str]:
        return [request.type for request in self.requests]

    def fail_next(self, request_type: str, code: int, comment: str | None = None) -> None:
        """Answer the next ``request_type`` request with ``code`` (queued, one per call)."""
        self._failures[request_type].append(_Failure(code, comment))

    def stall_next(self, request_type: str) -> None:
        """Never answer the next ``request_type`` request (the client's timeout fires)."""
        self._stalls[request_type] += 1

    def _default_collection(self) -> None:
        self.add_input("Webcam", "v4l2_input")
        self.add_input("HydrateGif", "ffmpeg_source", {"local_file": "/media/hydrate.gif"})
        self.add_input("Intro", "ffmpeg_source", {"local_file": "/media/intro.mp4"})
        self.add_input("Sounds", "ffmpeg_source", {"local_file": ""})
        self.add_input("Alert", "text_ft2_source_v2", {"text": "", "font": {"size": 48}})
        self.add_input("BrbText", "text_ft2_source_v2", {"text": "Be right back"})
        self.add_scene(
            "Main",
            {"Webcam": True, "HydrateGif": False, "Alert": True, "Intro": True, "Sounds": True},
        )
        self.add_scene("BRB", ["BrbText"])
        self.current_scene = "Main"
        self.add_filter("Webcam", "Blur", enabled=False)
        self.add_filter("Webcam", "Color", enabled=True)

    # ------------------------------------------------------------------ server life cycle

    async def start(self) -> None:
        """Listen (again) on ``port``; the first start picks a free port."""
        if self._server is not None:
            return
        # close_timeout: the sync client only reads a close frame when it next calls recv(),
        # so do not wait long for its reply when stopping.
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            compression=None,
            close_timeout=0.2,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """OBS quits: close every connection (1001 going away) and stop listening."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()

    async def drop_clients(self) -> None:
        """Cut every connection without a close frame; the server keeps listening."""
        for connection in list(self._connections):
            connection.transport.abort()
        for _ in range(100):  # let the handlers see the connections die
            if not self._connections:
                break
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the protocol

    async def _serve_connection(self, connection: ServerConnection) -> None:
        self._connections.add(connection)
        try:
            challenge = secrets.token_urlsafe(32)
            salt = secrets.token_urlsafe(32)
            await connection.send(json.dumps({"op": 0, "d": self._hello(challenge, salt)}))
            if not await self._identify(connection, challenge, salt):
                return
            self.sessions += 1
            await self._answer_requests(connection)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)

    def _hello(self, challenge: str, salt: str) -> dict[str, Any]:
        hello: dict[str, Any] = {
            "obsWebSocketVersion": OBS_WEBSOCKET_VERSION,
            "rpcVersion": RPC_VERSION,
        }
        if self.password:
            hello["authentication"] = {"challenge": challenge, "salt": salt}
        return hello

    async def _identify(self, connection: ServerConnection, challenge: str, salt: str) -> bool:
        message = await self._receive(connection)
        if message is None:
            return False
        if message.get("op") != 1:
            await connection.close(NOT_IDENTIFIED, "The client sent a message before identifying.")
            return False
        data = message.get("d") or {}
        self.identifies.append(data)
        if data.get("rpcVersion") != RPC_VERSION:
            await connection.close(UNSUPPORTED_RPC_VERSION, "Requested an unsupported rpcVersion.")
            return False
        if self.password and data.get("authentication") != auth_string(
            self.password, salt, challenge
        ):
            await connection.close(AUTHENTICATION_FAILED, "Authentication failed.")
            return False
        await connection.send(json.dumps({"op": 2, "d": {"negotiatedRpcVersion": RPC_VERSION}}))
        return True

    async def _answer_requests(self, connection: ServerConnection) -> None:
        while (message := await self._receive(connection)) is not None:
            op, data = message.get("op"), message.get("d") or {}
            if op == 6:
                response = self._respond(data)
                if response is not None:
                    await connection.send(json.dumps({"op": 7, "d": response}))
            elif op == 8:
                await connection.send(json.dumps({"op": 9, "d": self._respond_batch(data)}))
            elif op == 3:  # Reidentify: nothing to change here
                await connection.send(json.dumps({"op": 2, "d": {"negotiatedRpcVersion": 1}}))
            elif op == 1:
                await connection.close(ALREADY_IDENTIFIED, "You are already identified.")
                return
            else:
                await connection.close(UNKNOWN_OP_CODE, f"Unknown OpCode: {op}")
                return

    async def _receive(self, connection: ServerConnection) -> dict[str, Any] | None:
        raw = await connection.recv()
        try:
            if isinstance(raw, bytes):
                raise ValueError("binary frame")
            message = json.loads(raw)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:
            await connection.close(MESSAGE_DECODE_ERROR, "Unable to decode the message.")
            return None
        return message

    def _respond(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """A RequestResponse for one request; None when it is stalled."""
        request_type = str(request.get("requestType", ""))
        data = dict(request.get("requestData") or {})
        response: dict[str, Any] = {"requestType": request_type}
        if "requestId" in request:
            response["requestId"] = request["requestId"]
        self.requests.append(ObsRequest(request_type, data))
        try:
            result = self._perform(request_type, data)
        except _Stall:
            return None
        except _Failure as failure:
            response["requestStatus"] = {"result": False, "code": failure.code}
            if failure.comment:
                response["requestStatus"]["comment"] = failure.comment
            return response
        response["requestStatus"] = {"result": True, "code": SUCCESS}
        if result is not None:
            response["responseData"] = result
        return response

    def _respond_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for request in batch.get("requests") or []:
            response = self._respond(request)
            if response is None:
                continue
            results.append(response)
            if batch.get("haltOnFailure") and not response["requestStatus"]["result"]:
                break
        return {"requestId": batch.get("requestId"), "results": results}

    def _perform(self, request_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if self._stalls[request_type]:
            self._stalls[request_type] -= 1
            raise _Stall
        if self._failures[request_type]:
            raise self._failures[request_type].popleft()
        handler = self._handlers.get(request_type)
        if handler is None:
            raise _Failure(UNKNOWN_REQUEST_TYPE, "Your request type is not valid.")
        return handler(data)

    # ------------------------------------------------------------------ requests

    def _request_handlers(self) -> dict[str, Handler]:
        return {
            "GetVersion": self._get_version,
            "GetSceneList": self._get_scene_list,
            "GetCurrentProgramScene": self._get_current_program_scene,
            "SetCurrentProgramScene": self._set_current_program_scene,
            "GetSceneItemId": self._get_scene_item_id,
            "GetSceneItemEnabled": self._get_scene_item_enabled,
            "SetSceneItemEnabled": self._set_scene_item_enabled,
            "GetInputSettings": self._get_input_settings,
            "SetInputSettings": self._set_input_settings,
            "TriggerMediaInputAction": self._trigger_media_input_action,
            "GetSourceFilter": self._get_source_filter,
            "SetSourceFilterEnabled": self._set_source_filter_enabled,
            "GetReplayBufferStatus": self._get_replay_buffer_status,
            "StartReplayBuffer": self._start_replay_buffer,
            "StopReplayBuffer": self._stop_replay_buffer,
            "SaveReplayBuffer": self._save_replay_buffer,
            "GetLastReplayBufferReplay": self._get_last_replay_buffer_replay,
        }

    def _get_version(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "obsVersion": OBS_VERSION,
            "obsWebSocketVersion": OBS_WEBSOCKET_VERSION,
            "rpcVersion": RPC_VERSION,
            "availableRequests": sorted(self._handlers),
            "supportedImageFormats": ["png", "jpg"],
            "platform": "fake",
            "platformDescription": "FakeObs",
        }

    def _get_scene_list(self, data: dict[str, Any]) -> dict[str, Any]:
        names = list(self.scenes)
        return {
            "currentProgramSceneName": self.current_scene,
            "currentPreviewSceneName": None,
            "scenes": [{"sceneIndex": i, "sceneName": n} for i, n in enumerate(reversed(names))],
        }

    def _get_current_program_scene(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"currentProgramSceneName": self.current_scene}  # 5.1: no sceneName/sceneUuid

    def _set_current_program_scene(self, data: dict[str, Any]) -> None:
        self.current_scene = self._scene_name(data)

    def _get_scene_item_id(self, data: dict[str, Any]) -> dict[str, Any]:
        scene = self.scenes[self._scene_name(data)]
        source = _field(data, "sourceName", str)
        if source not in scene:
            raise _Failure(
                RESOURCE_NOT_FOUND,
                "No scene items were found in the specified scene by that name or offset.",
            )
        return {"sceneItemId": scene[source].item_id}

    def _get_scene_item_enabled(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"sceneItemEnabled": self._scene_item(data).enabled}

    def _set_scene_item_enabled(self, data: dict[str, Any]) -> None:
        item = self._scene_item(data)
        item.enabled = _field(data, "sceneItemEnabled", bool)

    def _get_input_settings(self, data: dict[str, Any]) -> dict[str, Any]:
        found = self._input(data)
        return {"inputKind": found.kind, "inputSettings": dict(found.settings)}

    def _set_input_settings(self, data: dict[str, Any]) -> None:
        found = self._input(data)
        settings = _field(data, "inputSettings", dict)
        overlay = data.get("overlay", True)
        if not isinstance(overlay, bool):
            raise _Failure(INVALID_REQUEST_FIELD_TYPE, "The field value of `overlay` is invalid.")
        found.settings = {**found.settings, **settings} if overlay else dict(settings)

    def _trigger_media_input_action(self, data: dict[str, Any]) -> None:
        name = self._input_name(data)
        action = _field(data, "mediaAction", str)
        if action not in MEDIA_ACTIONS:
            raise _Failure(
                INVALID_REQUEST_FIELD, "You have specified an invalid media input action."
            )
        self.media_actions.append((name, action))

    def _get_source_filter(self, data: dict[str, Any]) -> dict[str, Any]:
        source, name = self._filter(data)
        return {
            "filterEnabled": self.filters[source][name],
            "filterIndex": list(self.filters[source]).index(name),
            "filterKind": "fake_filter",
            "filterSettings": {},
        }

    def _set_source_filter_enabled(self, data: dict[str, Any]) -> None:
        source, name = self._filter(data)
        self.filters[source][name] = _field(data, "filterEnabled", bool)

    def _get_replay_buffer_status(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"outputActive": self.replay_buffer_active}

    def _start_replay_buffer(self, data: dict[str, Any]) -> None:
        if self.replay_buffer_active:
            raise _Failure(OUTPUT_RUNNING)
        self.replay_buffer_active = True
        self._replay_ready_at = asyncio.get_running_loop().time() + self.replay_start_seconds

    def _stop_replay_buffer(self, data: dict[str, Any]) -> None:
        self._require_replay_buffer()
        self.replay_buffer_active = False

    def _save_replay_buffer(self, data: dict[str, Any]) -> None:
        self._require_replay_buffer()
        loop = asyncio.get_running_loop()
        if loop.time() < self._replay_ready_at:  # still starting
            raise _Failure(OUTPUT_NOT_RUNNING)
        if self._writing_replay:  # OBS merges a save into the one being written
            return
        self._writing_replay = True
        loop.call_later(self.replay_write_seconds, self._replay_written)

    def _replay_written(self) -> None:
        self._writing_replay = False
        self.saved_replays.append(f"/videos/Replay {len(self.saved_replays) + 1}.mkv")

    def _get_last_replay_buffer_replay(self, data: dict[str, Any]) -> dict[str, Any]:
        self._require_replay_buffer()
        # obs-websocket 5.1 answers "" before the first save (later versions: 600)
        return {"savedReplayPath": self.saved_replays[-1] if self.saved_replays else ""}

    # ------------------------------------------------------------------ lookups

    def _require_replay_buffer(self) -> None:
        if not self.replay_buffer_active:
            raise _Failure(OUTPUT_NOT_RUNNING)

    def _scene_name(self, data: dict[str, Any]) -> str:
        name = _field(data, "sceneName", str)
        if name not in self.scenes:
            raise _Failure(RESOURCE_NOT_FOUND, f"No source was found by the name of `{name}`.")
        return name

    def _scene_item(self, data: dict[str, Any]) -> SceneItem:
        scene_name = self._scene_name(data)
        item_id = _field(data, "sceneItemId", int)
        for item in self.scenes[scene_name].values():
            if item.item_id == item_id:
                return item
        raise _Failure(
            RESOURCE_NOT_FOUND,
            f"No scene items were found in scene `{scene_name}` with the ID `{item_id}`.",
        )

    def _input_name(self, data: dict[str, Any]) -> str:
        name = _field(data, "inputName", str)
        if name not in self.inputs:
            raise _Failure(RESOURCE_NOT_FOUND, f"No source was found by the name of `{name}`.")
        return name

    def _input(self, data: dict[str, Any]) -> Input:
        return self.inputs[self._input_name(data)]

    def _filter(self, data: dict[str, Any]) -> tuple[str, str]:
        source = _field(data, "sourceName", str)
        if source not in self.inputs and source not in self.scenes:
            raise _Failure(RESOURCE_NOT_FOUND, f"No source was found by the name of `{source}`.")
        name = _field(data, "filterName", str)
        if name not in self.filters.get(source, {}):
            raise _Failure(
                RESOURCE_NOT_FOUND,
                f"No filter was found in the source `{source}` with the name `{name}`.",
            )
        return source, name


def _field(data: dict[str, Any], name: str, kind: type[T]) -> T:
    """A required request field of the given JSON type (300/401 like obs-websocket)."""
    if name not in data:
        raise _Failure(MISSING_REQUEST_FIELD, f"Your request is missing the `{name}` field.")
    value = data[name]
    wrong_bool = kind is int and isinstance(value, bool)
    if not isinstance(value, kind) or wrong_bool:
        raise _Failure(INVALID_REQUEST_FIELD_TYPE, f"The field value of `{name}` is invalid.")
    if kind is str and not value:
        raise _Failure(REQUEST_FIELD_EMPTY, f"The field value of `{name}` must not be empty.")
    return value
