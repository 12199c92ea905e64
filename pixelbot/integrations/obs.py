"""OBS through obs-websocket v5: one obsws-python client, on one thread, behind an async API.

obsws-python is synchronous: one blocking socket, and it matches a response to a request only
by reading the next message. So every call runs on a single worker thread
(``ThreadPoolExecutor(max_workers=1)``), one request at a time, and a connection that timed out
or broke is thrown away, never reused (a late answer would be read as the next one's).

``ObsClient.request`` connects lazily. When OBS cannot be reached or the connection breaks, it
reconnects with exponential backoff (``obs.reconnect``) and sends the request again; after the
last attempt it raises ``ObsUnavailable`` and OBS counts as down (one outage, one warning):
later requests fail at once until a probe reaches OBS again. A wrong password is not
retried. A request OBS answers with an error raises ``ObsRequestError`` (with the
obs-websocket status ``code``).

What obsws-python does, as observed against the fake server in the tests: on connect it sends
only Identify (rpcVersion 1, eventSubscriptions 0, authentication); nothing listening raises
``ConnectionRefusedError``; a silent OBS raises ``OBSSDKTimeoutError`` after ``timeout``; a
dropped connection raises websocket-client's ``WebSocketConnectionClosedException``, and an OBS
that quit ``BrokenPipeError``/``ConnectionResetError`` (or a ``JSONDecodeError`` when it read
the close frame); a wrong password raises a plain ``OBSSDKError``. It also logs its password at
INFO and a traceback for every failure (at ERROR): ``_ObswsLogs``, a filter on its loggers,
turns each record into one redacted DEBUG line of ours, since this module reports those
failures itself. Against a real OBS 29.0.2 (obs-websocket 5.1), the same holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import obsws_python  # type: ignore[import-untyped]
from obsws_python.error import (  # type: ignore[import-untyped]
    OBSSDKError,
    OBSSDKRequestError,
    OBSSDKTimeoutError,
)
from websocket import WebSocketException

from pixelbot.config.effects import ObsSettings
from pixelbot.errors import EffectFailed, ObsUnavailable

__all__ = [
    "OUTPUT_NOT_RUNNING",
    "OUTPUT_RUNNING",
    "REQUESTS_USED",
    "RESOURCE_NOT_FOUND",
    "ObsClient",
    "ObsRequestError",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# Every request Pixel Bot sends. All are in obs-websocket 5.1 (Debian's OBS 29 ships 5.1, not
# 5.5), and tests/integration/test_obs_real.py checks them against a real OBS. Answers are read
# as 5.1 gives them: GetCurrentProgramScene has only currentProgramSceneName, and
# GetLastReplayBufferReplay answers "" before the first replay.
REQUESTS_USED = frozenset(
    {
        "GetVersion",
        "GetCurrentProgramScene",
        "SetCurrentProgramScene",
        "GetSceneItemId",
        "GetSceneItemEnabled",
        "SetSceneItemEnabled",
        "SetInputSettings",
        "TriggerMediaInputAction",
        "GetSourceFilter",
        "SetSourceFilterEnabled",
        "GetReplayBufferStatus",
        "StartReplayBuffer",
        "SaveReplayBuffer",
        "GetLastReplayBufferReplay",
    }
)

# obs-websocket RequestStatus codes the effect steps react to.
OUTPUT_RUNNING = 500
OUTPUT_NOT_RUNNING = 501
RESOURCE_NOT_FOUND = 600

# While OBS is down, it is asked whether it is back: first after reconnect.backoff (at least
# PROBE_MIN_SECONDS), then doubling, at most every PROBE_MAX_SECONDS.
PROBE_MIN_SECONDS = 0.2
PROBE_MAX_SECONDS = 5.0

# What a broken or unreachable connection raises (see the module docstring).
_CONNECT_ERRORS = (OSError, WebSocketException, OBSSDKTimeoutError, ValueError)
_SEND_ERRORS = (OSError, WebSocketException, OBSSDKTimeoutError, json.JSONDecodeError)


class ObsRequestError(EffectFailed):
    """OBS answered a request with an error status (``code``, e.g. 600 ResourceNotFound).

    ``data`` is what was sent, so a caller can name the scene or source that was missing.
    """

    def __init__(
        self,
        request_type: str,
        code: int,
        comment: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.request_type = request_type
        self.code = code
        self.comment = comment
        self.data = dict(data or {})
        detail = f"code {code}: {comment}" if comment else f"code {code}"
        super().__init__(f"OBS refused {request_type} ({detail})")


class _ReqClient(obsws_python.ReqClient):  # type: ignore[misc]
    """obsws-python's client, closing its socket when Identify fails (it leaves it open)."""

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except BaseException:
            base_client = getattr(self, "base_client", None)
            if base_client is not None:
                with contextlib.suppress(Exception):
                    base_client.ws.shutdown()
            raise


class _ConnectionLost(Exception):
    """OBS could not be reached, or the connection broke: reconnect and try again."""


class ObsClient:
    """Async requests to OBS over one obsws-python connection owned by one thread.

    Reachability is one state per outage: the first request that gives up (after its
    reconnects) marks OBS down and logs one warning. While it is down, requests fail at once
    (a backlog settles in seconds, not a backoff per item), and a probe asks OBS for its
    version on the real clock until it answers. Then ``on_back`` runs (the effect worker puts
    back what the outage left changed) and requests go through again.
    """

    def __init__(self, settings: ObsSettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self._settings = settings
        self._sleep = sleep
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obs")
        self._client: Any = None  # an obsws_python.ReqClient; touched only on the obs thread
        self._closed = False
        self.down_since: float | None = None  # time.monotonic() when the outage began
        self.on_down: Callable[[str], object] | None = None  # told once per outage, with why
        self.on_back: Callable[[], Awaitable[None]] | None = None  # before requests resume
        self._probe: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{self._settings.host}:{self._settings.port}"

    @property
    def reachable(self) -> bool:
        """False from the moment a request gave up until the probe reaches OBS again."""
        return self.down_since is None

    async def request(
        self, request_type: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one request and return its ``responseData`` (``{}`` when there is none).

        Raises ``ObsRequestError`` when OBS refuses it and ``ObsUnavailable`` when OBS cannot
        be reached after ``obs.reconnect.attempts`` reconnects (or refuses the password), or
        at once while an outage lasts.
        """
        if not self.reachable:
            raise ObsUnavailable(f"OBS is not reachable at {self.address}")
        lost: _ConnectionLost | None = None
        for delay in (None, *self.backoff_delays()):
            if delay is not None:
                await self._sleep(delay)
            try:
                return await self._on_obs_thread(self._send, request_type, data)
            except _ConnectionLost as exc:
                lost = exc
                log.debug("OBS at %s: %s", self.address, exc)
        self._went_down(str(lost))
        raise ObsUnavailable(f"OBS is not reachable at {self.address}")

    def backoff_delays(self) -> list[float]:
        """Seconds to wait before each reconnect: doubling from ``backoff``, capped."""
        reconnect = self._settings.reconnect
        first = reconnect.backoff.total_seconds()
        cap = reconnect.max_backoff.total_seconds()
        return [min(first * 2**attempt, cap) for attempt in range(reconnect.attempts)]

    async def close(self) -> None:
        """Disconnect and stop the thread. Later requests raise ``ObsUnavailable``."""
        if self._closed:
            return
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ outages

    def _went_down(self, why: str) -> None:
        if self.down_since is not None or self._closed:
            return
        self.down_since = time.monotonic()
        log.warning(
            "OBS at %s is not reachable (%s); trying again in the background", self.address, why
        )
        if self.on_down is not None:
            self.on_down(why)
        self._probe = asyncio.create_task(self._wait_until_back(), name="obs-probe")

    async def _wait_until_back(self) -> None:
        """Ask OBS for its version until it answers: on the real clock, since OBS coming back
        happens in real time even when the stream's clock is simulated."""
        cap = min(self._settings.reconnect.max_backoff.total_seconds(), PROBE_MAX_SECONDS)
        delay = min(max(self._settings.reconnect.backoff.total_seconds(), PROBE_MIN_SECONDS), cap)
        while not self._closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, cap)
            try:
                await self._on_obs_thread(self._send, "GetVersion", None)
            except _ConnectionLost:
                continue
            except (ObsUnavailable, ObsRequestError) as exc:  # e.g. the password changed
                log.debug("OBS at %s answered, but: %s", self.address, exc)
                continue
            break
        if self._closed or self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        self.down_since = None
        log.warning("OBS at %s is reachable again (after %.1fs)", self.address, seconds)
        if self.on_back is not None:
            try:
                await self.on_back()
            except Exception:
                log.exception("putting OBS back after the outage failed")

    # ------------------------------------------------------------------ on the obs thread

    async def _on_obs_thread(self, function: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise ObsUnavailable("the connection to OBS is closed (the bot is shutting down)")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def _send(self, request_type: str, data: dict[str, Any] | None) -> dict[str, Any]:
        client = self._client or self._connect()
        try:
            response = client.send(request_type, data, raw=True)
        except OBSSDKRequestError as exc:
            raise ObsRequestError(request_type, exc.code, _comment(exc), data) from None
        except _SEND_ERRORS as exc:
            self._abandon()
            raise _ConnectionLost(f"the connection broke ({_describe(exc)})") from exc
        return dict(response or {})

    def _connect(self) -> Any:
        settings = self._settings
        password = settings.password.get_secret_value() if settings.password else ""
        try:
            # host/port/password given explicitly: otherwise obsws-python reads a config.toml.
            self._client = _ReqClient(
                host=settings.host,
                port=settings.port,
                password=password,
                timeout=settings.timeout.total_seconds(),
            )
        except OBSSDKTimeoutError as exc:
            raise _ConnectionLost(f"cannot connect ({_describe(exc)})") from exc
        except OBSSDKError as exc:
            raise _refused(exc, has_password=bool(password)) from None
        except _CONNECT_ERRORS as exc:
            raise _ConnectionLost(f"cannot connect ({_describe(exc)})") from exc
        log.info("connected to OBS at %s", self.address)
        return self._client

    def _abandon(self) -> None:
        """Forget a broken connection, closing its socket without a close handshake."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.base_client.ws.shutdown()
            except Exception:  # already gone; nothing else to release
                log.debug("closing a broken OBS socket failed", exc_info=True)

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:
                log.debug("closing the OBS connection failed", exc_info=True)


def _refused(exc: Exception, *, has_password: bool) -> Exception:
    """An Identify that failed: a password problem (not retried) or a connection that died."""
    if "no password provided" in str(exc):
        return ObsUnavailable("OBS asks for a password: set obs.password in config.yaml")
    if has_password:
        # obsws-python cannot tell a 4009 (authentication failed) close from other closes.
        return ObsUnavailable("OBS refused the password (check obs.password in config.yaml)")
    return _ConnectionLost(f"OBS closed the connection while identifying ({_describe(exc)})")


def _comment(exc: Exception) -> str | None:
    """The ``comment`` of a failed request, which obsws-python keeps only in its message."""
    _, marker, comment = str(exc).partition(" With message: ")
    return comment if marker and comment else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _ObswsLogs(logging.Filter):
    """obsws-python's own log records, as one line each on our ``...obs.obsws`` logger.

    obsws-python logs a traceback for every failed connect or request (at ERROR) and its
    password at INFO. This module reports failures itself (one warning per outage), so its
    records are passed on at DEBUG, first line only, password redacted, and then dropped: as a
    filter on obsws-python's loggers themselves, it runs before any handler, so no handler
    anywhere (a root handler from ``logging.basicConfig`` takes every level) sees the raw
    record.
    """

    _PASSWORD = re.compile(r"password='.*?'(?= subs=|, timeout=|\))", re.DOTALL)

    def __init__(self) -> None:
        super().__init__()
        self._target = log.getChild("obsws")

    def filter(self, record: logging.LogRecord) -> bool:
        if self._target.isEnabledFor(logging.DEBUG):
            try:
                message = record.getMessage()
            except Exception:  # a record that cannot be formatted: never raise
                message = str(record.msg)
            line = self._PASSWORD.sub("password='***'", message).split("\n", 1)[0]
            self._target.debug("%s: %s", record.name.removeprefix("obsws_python."), line)
        return False


def _route_obsws_logs() -> None:
    """obsws-python logs on a child logger named after each client class. Those we use pass
    through ``_ObswsLogs``; any other is silenced by its parent's level."""
    parent = logging.getLogger("obsws_python")
    parent.setLevel(logging.CRITICAL + 1)
    parent.propagate = False
    classes = ("baseclient.ObsClient", "reqs.ReqClient", f"reqs.{_ReqClient.__name__}")
    for name in classes:
        logger = logging.getLogger(f"obsws_python.{name}")
        logger.setLevel(logging.DEBUG)  # the filter decides; the parent's level would not
        if not any(isinstance(existing, _ObswsLogs) for existing in logger.filters):
            logger.addFilter(_ObswsLogs())


_route_obsws_logs()
