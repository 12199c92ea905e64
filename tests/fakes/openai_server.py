"""A fake OpenAI-compatible server on localhost: ``POST /v1/chat/completions`` (and ``GET
/v1/models``) as OpenAI (and Ollama, LM Studio, llama.cpp, vLLM) answer them.

It checks what it is sent the way the real service does: a ``Bearer`` key (401
``invalid_api_key``, quoting part of the key as OpenAI does), a known ``model`` (404
``model_not_found``), and a list of ``messages`` whose roles and contents are well formed (400
``invalid_request_error``), and for a reasoning model (``o1``, ``gpt-5*``) no ``max_tokens`` and
no temperature but 1 (400 ``unsupported_parameter`` / ``unsupported_value``). Answers are the
real ``chat.completion`` object with ``usage``; errors are the real ``{"error": {"message",
"type", "param", "code"}}`` body (a 429 with ``retry-after``).

A test scripts what comes next by appending ``Answer``s to ``answers`` (an error status, a
delay longer than the client's timeout, empty content); when none is scripted it answers
``default``. An ``Answer`` with ``raw`` serves that text as a 200 instead (an HTML page from a
proxy, broken JSON, a body of the wrong shape), as a misconfigured server does. Every request
that reached the handler is kept in ``requests``. ``stop()`` and ``start()`` take the server
away and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

KEY = "sk-test-0123456789abcdefSECRET"
MODEL = "fake-gpt"
ROLES = {"system", "user", "assistant", "developer"}
_REASONING = re.compile(r"^(o\d|gpt-5)")  # models that refuse max_tokens and a temperature

_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Answer:
    """What the server does with the next request."""

    content: str | None = "Hello from the fake model!"
    status: int = 200
    delay: float = 0.0  # seconds before answering
    finish_reason: str = "stop"
    message: str | None = None  # an error's message (a default one per status otherwise)
    raw: str | None = None  # a 200 whose body is this text, instead of a chat completion
    code: str | None = None  # an error's code (the default one per status otherwise)
    retry_after: str = "1"  # the header a 429 comes with (seconds), as OpenAI sends it
    trickle: float = 0.0  # seconds between the bytes of a 200's body (it never stalls)
    content_type: str = "application/json"  # (of ``raw``)


@dataclass
class Request:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


@dataclass
class FakeOpenAI:
    key: str = KEY
    models: set[str] = field(default_factory=lambda: {MODEL})
    default: Answer = field(default_factory=Answer)
    answers: list[Answer] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    model_lists: int = 0  # GET /v1/models requests
    # What GET /v1/models does instead of listing the models (a status, a delay), or None.
    models_answer: Answer | None = None
    port: int = field(default_factory=_free_port)
    _runner: web.AppRunner | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application()
        self._stopping.clear()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._stopping.set()  # a delayed answer still waiting ends now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the endpoint
    async def _completions(self, request: web.Request) -> web.Response:
        headers = dict(request.headers)
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        self.requests.append(Request(headers, body if isinstance(body, dict) else {}))
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.key}":
            given = auth.removeprefix("Bearer ")
            shown = f"{given[:3]}****{given[-4:]}" if len(given) > 8 else given
            return _error(401, f"Incorrect API key provided: {shown}.")
        problem = self._problem(body)
        if problem is not None:
            return _error(400, problem)
        unsupported = self._unsupported(body)
        if unsupported is not None:
            message, param, code = unsupported
            return _error(400, message, code, param=param)
        if body["model"] not in self.models:
            model = body["model"]
            return _error(404, f"The model `{model}` does not exist or you do not have access.")
        answer = self.answers.pop(0) if self.answers else self.default
        if answer.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), answer.delay)
        if answer.status != 200:
            error = _error(
                answer.status, answer.message or f"HTTP {answer.status} (fake)", answer.code
            )
            if answer.status == 429:
                error.headers["retry-after"] = answer.retry_after
            return error
        if answer.raw is not None:  # a proxy's HTML page, broken JSON, a wrong shape
            return web.Response(text=answer.raw, content_type=answer.content_type, charset="utf-8")
        if answer.trickle:
            return await self._trickled(request, answer)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion_tokens = len((answer.content or "").split())
        return web.json_response(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": 1_764_633_600,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.content},
                        "logprobs": None,
                        "finish_reason": answer.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    @staticmethod
    async def _trickled(request: web.Request, answer: Answer) -> web.StreamResponse:
        """A 200 whose body comes a byte at a time: no read ever waits long, so only a
        deadline on the whole answer ends it."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        body = b'{"id": "chatcmpl-slow", "object": "chat.completion", ' + b" " * 10_000
        for byte in body:
            await response.write(bytes([byte]))
            await asyncio.sleep(answer.trickle)
        await response.write_eof()
        return response

    async def _models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``: the models this key may use (the bot asks it whether the
        service is back after an outage)."""
        self.model_lists += 1
        scripted = self.models_answer
        if scripted is not None and scripted.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), scripted.delay)
        if scripted is not None and scripted.status != 200:
            return _error(scripted.status, scripted.message or f"HTTP {scripted.status} (fake)")
        if request.headers.get("Authorization", "") != f"Bearer {self.key}":
            return _error(401, "Incorrect API key provided.")
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
                    for model in sorted(self.models)
                ],
            }
        )

    @staticmethod
    def _unsupported(body: dict[str, Any]) -> tuple[str, str, str] | None:
        """What OpenAI's reasoning models (o1, o3, gpt-5...) refuse, as they refuse it:
        ``max_tokens`` (they take ``max_completion_tokens``) and a temperature but 1."""
        if not _REASONING.match(body["model"]):
            return None
        if "max_tokens" in body:
            return (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return (
                f"Unsupported value: 'temperature' does not support {temperature} with this "
                "model. Only the default (1) value is supported.",
                "temperature",
                "unsupported_value",
            )
        return None

    @staticmethod
    def _problem(body: Any) -> str | None:
        """Why OpenAI would refuse this body (400), or None."""
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                return f"Invalid value for 'messages[{index}].role'"
            if not isinstance(message.get("content"), str):
                return f"Invalid type for 'messages[{index}].content': expected a string"
        for name in ("max_tokens", "max_completion_tokens"):
            limit = body.get(name)
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                return f"Invalid '{name}': integer below minimum value"
        temperature = body.get("temperature")
        if temperature is not None and (
            not isinstance(temperature, int | float) or not 0 <= temperature <= 2
        ):
            return "Invalid 'temperature': must be between 0 and 2"
        return None


def _error(
    status: int, message: str, code: str | None = None, *, param: str | None = None
) -> web.Response:
    kind, default_code = _ERRORS.get(status, ("server_error", None))
    code = code or default_code
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status=status,
    )
