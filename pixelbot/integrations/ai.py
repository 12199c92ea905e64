"""The AI client: one chat completion from an OpenAI-compatible server, through the official
``openai`` SDK (``AsyncOpenAI``, ``chat.completions.create``).

Every failure becomes an ``AiFailed`` with a short message people can read and a ``cause``
word; the service's own error text is never passed on to chat (a 401 from OpenAI quotes part
of the key), and neither is the key: the text goes to the log, redacted, except for a 401 or
a 403. The SDK tries once more after a timeout, a lost connection, a 429 or a 5xx
(``max_retries=1``), so one hiccup does not cost a viewer their reply; the whole answer, that
retry included, must come within ``ai.timeout`` (the SDK's own timeout is per read: a body
that trickles in, or a long Retry-After, would never end it).

The SDK client is kept between requests and rebuilt when the server, the key or the timeout
changes (``!reload``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TypedDict

import openai
from openai.types.chat import ChatCompletion

from pixelbot.config.ai import AiSettings
from pixelbot.errors import AiFailed

__all__ = ["AiAnswer", "AiClient", "Message"]

log = logging.getLogger(__name__)

Message = dict[str, str]  # {"role": "system" | "user", "content": ...}

# A local server (Ollama, llama.cpp) wants no key, but the SDK refuses to start without one.
_NO_KEY = "no-key"
_TIMED_OUT = "the AI did not answer in time"
_BAD_ANSWER = "the AI service gave an answer the bot cannot read"


@dataclass(frozen=True)
class AiAnswer:
    text: str  # as the model wrote it: the caller filters it before anyone sees it
    model: str  # the model that answered, as the server names it
    finish_reason: str | None
    tokens: dict[str, int] | None  # prompt, completion, total (when the server counts them)


class AiClient:
    def __init__(self) -> None:
        self._client: openai.AsyncOpenAI | None = None
        self._made_for: tuple[str, str, float] | None = None

    async def complete(self, settings: AiSettings, messages: list[Message]) -> AiAnswer:
        """One reply to ``messages``; raises ``AiFailed`` if there is none to give."""
        client = await self._client_for(settings)
        model = settings.model or ""
        try:
            # The SDK's timeout is per read (a body that trickles in never ends it) and its
            # retry, with a server's Retry-After, comes on top: ``ai.timeout`` bounds it all.
            async with asyncio.timeout(settings.timeout.total_seconds()):
                completion = await client.chat.completions.create(
                    model=model,
                    messages=messages,  # type: ignore[arg-type]  # (plain dicts, as the API takes)
                    **_limits(settings),
                )
            return _answer(completion, model)
        except TimeoutError:
            raise AiFailed(_TIMED_OUT, "timeout") from None
        except openai.OpenAIError as exc:
            raise _failure(exc, model, key=_key(settings)) from None
        except (ValueError, TypeError, AttributeError, LookupError) as exc:
            # A 200 that is not a chat completion (an HTML page from a proxy, broken JSON,
            # ``choices`` not a list, ``message: null``): the SDK does not check the shape.
            log.warning("the AI service's answer is not a chat completion (%s)", type(exc).__name__)
            raise AiFailed(_BAD_ANSWER, "bad_answer") from None

    async def reachable(self, settings: AiSettings, *, within: float | None = None) -> bool:
        """Whether the service answers (``GET /models``, which every OpenAI-compatible server
        has): asked while it is down, to know when it is back, and after a timeout, to know
        whether it is down at all. ``within``: seconds (default ``ai.timeout``), one try."""
        client = await self._client_for(settings)
        if within is not None:
            client = client.with_options(timeout=within, max_retries=0)
        try:
            # (the SDK's timeout is per phase, connect then read: ``within`` bounds them all)
            async with asyncio.timeout(within):
                await client.models.list()
        except TimeoutError:
            log.debug("the AI service is still down: no answer in %ss", within)
            return False
        except openai.APIStatusError as exc:
            if exc.status_code < 500:  # it answers (a 401 or a 404 on /models is an answer)
                return True
            log.debug("the AI service is still down: HTTP %s", exc.status_code)
            return False
        except openai.OpenAIError as exc:
            log.debug("the AI service is still down: %s", type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._made_for = None

    async def _client_for(self, settings: AiSettings) -> openai.AsyncOpenAI:
        key = _key(settings)
        timeout = settings.timeout.total_seconds()
        made_for = (settings.base_url, key, timeout)
        if self._client is None or made_for != self._made_for:
            await self.close()
            self._client = openai.AsyncOpenAI(
                base_url=settings.base_url, api_key=key, timeout=timeout, max_retries=1
            )
            self._made_for = made_for
        return self._client


def _answer(completion: ChatCompletion, model: str) -> AiAnswer:
    """The reply in ``completion``, read without trusting its shape (the SDK does not check
    it): a wrong shape raises ``TypeError`` (or what reading it raises)."""
    if not isinstance(completion, ChatCompletion) or not isinstance(completion.choices, list):
        raise TypeError("not a chat completion")
    if not completion.choices:
        raise AiFailed("the AI gave no answer", "empty")
    choice = completion.choices[0]
    content = choice.message.content
    if content is not None and not isinstance(content, str):
        raise TypeError("the content is not a string")
    text = _without_reasoning(content or "").strip()
    if choice.finish_reason == "content_filter" or (not text and choice.message.refusal):
        raise AiFailed("the AI would not answer that", "refused")
    if not text and choice.finish_reason == "length":
        # (a reasoning model spends ai.max_tokens thinking, and has none left to answer)
        log.warning(
            "the AI used all of ai.max_tokens before it answered: raise ai.max_tokens, or "
            "choose a model that does not reason first"
        )
        raise AiFailed("the AI ran out of words before it answered", "empty")
    if not text:
        raise AiFailed("the AI gave no answer", "empty")
    usage = completion.usage
    counts = (
        {}
        if usage is None
        else {
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "total": usage.total_tokens,
        }
    )
    # (a server that counts oddly loses its counts, not the reply)
    tokens = counts if counts and all(isinstance(n, int) for n in counts.values()) else None
    name = completion.model if isinstance(completion.model, str) and completion.model else model
    return AiAnswer(text, name, choice.finish_reason, tokens)


_REASONING = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


def _without_reasoning(text: str) -> str:
    """The answer without the reasoning some models write first, in the answer itself
    (DeepSeek-R1, Qwen3 on Ollama or llama.cpp: ``<think>...</think>``); a block never closed
    (cut by the token limit) is all reasoning."""
    return _REASONING.sub("", text)


class _Limits(TypedDict, total=False):
    max_tokens: int
    max_completion_tokens: int
    temperature: float


def _limits(settings: AiSettings) -> _Limits:
    """The token limit, under the name this server takes (``AiSettings.token_limit``), and
    the temperature only when ``ai.temperature`` is set (OpenAI's newer models refuse any
    but their default)."""
    limits: _Limits = {}
    if settings.token_limit() == "max_completion_tokens":
        limits["max_completion_tokens"] = settings.max_tokens
    else:
        limits["max_tokens"] = settings.max_tokens
    if settings.temperature is not None:
        limits["temperature"] = settings.temperature
    return limits


def _key(settings: AiSettings) -> str:
    return settings.api_key.get_secret_value() if settings.api_key is not None else _NO_KEY


_KEY_LIKE = re.compile(r"\b(sk|key)-[A-Za-z0-9_*-]{4,}", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9_+/=-]{8,}")
_KEY_PIECE_CHARS = 8  # a word sharing this many characters in a row with the key is a piece of it
_SERVICE_TEXT_MAX_CHARS = 300


def _shares_a_piece(word: str, key: str) -> bool:
    n = _KEY_PIECE_CHARS
    return any(word[i : i + n] in key for i in range(len(word) - n + 1))


def _service_text(exc: openai.APIStatusError, key: str) -> str:
    """What the service said about this failure, for the operator's log: its own message,
    cut short, with the key (and anything that looks like one) taken out."""
    body = exc.body
    said = body.get("message") if isinstance(body, dict) else None
    text = str(said if said is not None else exc.message)
    if len(key) >= 4:
        text = text.replace(key, "****")
        # A part of it too (``gsk_AbCd...``, ``...wxyz1234``), whatever the key's prefix.
        text = _TOKEN.sub(lambda m: "****" if _shares_a_piece(m[0], key) else m[0], text)
    text = _KEY_LIKE.sub("****", text)
    return " ".join(text.split())[:_SERVICE_TEXT_MAX_CHARS]


def _failure(exc: openai.OpenAIError, model: str, *, key: str) -> AiFailed:
    """The error chat and the operator see for what the SDK raised (never its text). The
    service's own message goes to the log (a warning), redacted, except after a 401 or a
    403: OpenAI's says which key was refused by quoting part of it."""
    status = getattr(exc, "status_code", None)
    log.debug("AI request failed: %s (HTTP %s)", type(exc).__name__, status)
    if isinstance(exc, openai.APIStatusError) and exc.status_code not in (401, 403):
        log.warning("the AI service answered HTTP %s: %s", exc.status_code, _service_text(exc, key))
    match exc:
        case openai.APITimeoutError():
            return AiFailed(_TIMED_OUT, "timeout")
        case openai.APIConnectionError():
            return AiFailed("the AI service cannot be reached", "connection")
        case openai.AuthenticationError() | openai.PermissionDeniedError():
            return AiFailed("the AI service refused the bot's key", "auth")
        case openai.RateLimitError() if exc.code == "insufficient_quota":
            # (a 429 too, but no retry helps: someone must add credit to the account)
            return AiFailed("the AI account has no credit left", "quota")
        case openai.RateLimitError():
            return AiFailed("the AI service is busy (rate limited), try again later", "rate_limit")
        case openai.NotFoundError():
            return AiFailed(f"the AI service has no model called {model!r}", "model")
        case openai.BadRequestError() | openai.UnprocessableEntityError():
            return AiFailed("the AI service refused the question", "refused")
        case openai.APIStatusError() if exc.status_code >= 500:
            return AiFailed(f"the AI service failed (HTTP {exc.status_code})", "server")
        case openai.APIStatusError():  # (402, 409, 413...: this request, not the service down)
            return AiFailed(f"the AI service refused the request (HTTP {exc.status_code})", "http")
    return AiFailed(_BAD_ANSWER, "bad_answer")
