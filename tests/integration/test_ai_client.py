"""The AI client against a local OpenAI-compatible server, through the real ``openai`` SDK.

First the fake is kept honest: the SDK itself parses its answers into a ``ChatCompletion``
and its errors into the SDK's own exception classes. Then ``AiClient`` turns every failure
into an ``AiFailed`` with a readable message, never the key nor the service's own text.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import openai
import pytest

from pixelbot.config.ai import AiSettings
from pixelbot.errors import AiFailed
from pixelbot.integrations.ai import AiClient
from tests.fakes.openai_server import KEY, MODEL, Answer, FakeOpenAI, _free_port

pytestmark = pytest.mark.no_database

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Viewer alice says:\nhello?"},
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def settings(fake: FakeOpenAI, **changes: Any) -> AiSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "base_url": fake.base_url,
        "model": MODEL,
        "api_key": KEY,
        "timeout": "2s",
        **changes,
    }
    return AiSettings.model_validate(values)


# ------------------------------------------------------------------ the fake, as the SDK sees it


async def test_the_sdk_parses_the_fakes_answer_and_the_fake_checks_the_request(
    fake: FakeOpenAI,
) -> None:
    fake.answers.append(Answer("Hi alice!"))
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=50,
        )
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Hi alice!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    [request] = fake.requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == MODEL
    assert request.messages == MESSAGES
    assert request.body["max_tokens"] == 50


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_the_sdk_parses_the_fakes_errors(
    fake: FakeOpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    key = "wrong-key-1234" if status == 401 else KEY
    if status != 401:
        fake.answers.append(Answer(status=status, message="busy"))
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=key, max_retries=0) as sdk:
        with pytest.raises(error) as raised:
            await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict)
    assert set(body) >= {"message", "type", "code"}  # the SDK unwraps {"error": {...}}


async def test_the_fake_refuses_what_openai_refuses(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(model="nope", messages=MESSAGES)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(
                model=MODEL,
                messages=[{"role": "wizard", "content": "hi"}],  # type: ignore[list-item]
            )


# ------------------------------------------------------------------ AiClient


async def test_the_client_returns_the_reply_with_its_model_and_tokens(fake: FakeOpenAI) -> None:
    fake.answers.append(Answer("Hello there, alice."))
    client = AiClient()
    try:
        answer = await client.complete(settings(fake, max_tokens=40, temperature=0.2), MESSAGES)
    finally:
        await client.close()
    assert answer.text == "Hello there, alice."
    assert answer.model == MODEL
    assert answer.finish_reason == "stop"
    assert answer.tokens is not None and answer.tokens["completion"] == 3
    [request] = fake.requests
    assert (request.body["max_tokens"], request.body["temperature"]) == (40, 0.2)


async def test_the_client_is_rebuilt_when_the_key_changes(fake: FakeOpenAI) -> None:
    client = AiClient()
    try:
        await client.complete(settings(fake), MESSAGES)
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake, api_key="sk-other-key-9999"), MESSAGES)
        assert raised.value.cause == "auth"
        await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    keys = [r.headers["Authorization"] for r in fake.requests]
    assert keys == [f"Bearer {KEY}", "Bearer sk-other-key-9999", f"Bearer {KEY}"]


@pytest.mark.parametrize(
    ("answer", "cause", "message", "tries"),
    [
        (Answer(status=500), "server", "the AI service failed (HTTP 500)", 2),
        (Answer(status=429), "rate_limit", "the AI service is busy", 2),
        (Answer(status=400), "refused", "the AI service refused the question", 1),
        (Answer(content=None), "empty", "the AI gave no answer", 1),
        (Answer(content="   "), "empty", "the AI gave no answer", 1),
        (Answer(content="", finish_reason="content_filter"), "refused", "would not answer", 1),
    ],
)
async def test_every_failure_is_an_ai_failed_with_words_for_people(
    fake: FakeOpenAI, answer: Answer, cause: str, message: str, tries: int
) -> None:
    fake.default = answer  # (the retry gets the same answer)
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    assert raised.value.cause == cause
    assert message in str(raised.value)
    assert len(fake.requests) == tries  # 5xx and 429 are tried once more, no more


async def test_a_wrong_key_is_refused_without_quoting_the_key(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-with-secret-tail-XYZW"
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake, api_key=wrong), MESSAGES)
    finally:
        await client.close()
    assert raised.value.cause == "auth"
    assert str(raised.value) == "the AI service refused the bot's key"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert "XYZW" not in caplog.text and wrong not in caplog.text
    assert "Incorrect API key" not in caplog.text  # the service's text quotes the key


async def test_an_unknown_model_is_named(fake: FakeOpenAI) -> None:
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake, model="llama9"), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == (
        "model",
        "the AI service has no model called 'llama9'",
    )


async def test_a_slow_server_times_out(fake: FakeOpenAI) -> None:
    fake.default = Answer(delay=30.0)  # (stop() ends the wait: the test does not)
    client = AiClient()
    started = time.monotonic()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake, timeout=timedelta(seconds=0.3)), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == ("timeout", "the AI did not answer in time")
    assert time.monotonic() - started < 20  # ai.timeout for the whole answer, not the 30 s
    assert len(fake.requests) == 1  # (no time is left for the SDK's retry)


async def test_a_server_that_is_not_there_cannot_be_reached() -> None:
    port = _free_port()  # nothing listens on it
    values = {"enabled": True, "base_url": f"http://127.0.0.1:{port}/v1", "model": MODEL}
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(AiSettings.model_validate(values), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == (
        "connection",
        "the AI service cannot be reached",
    )


async def test_a_local_server_needs_no_key(fake: FakeOpenAI) -> None:
    fake.key = "no-key"  # what the client sends when none is configured
    local = AiSettings.model_validate(
        {"enabled": True, "base_url": f"http://localhost:{fake.port}/v1", "model": MODEL}
    )
    assert local.api_key is None
    client = AiClient()
    try:
        answer = await client.complete(local, MESSAGES)
    finally:
        await client.close()
    assert answer.text == "Hello from the fake model!"


@pytest.mark.parametrize("status", [402, 409, 413])
async def test_a_4xx_is_not_the_service_being_down(fake: FakeOpenAI, status: int) -> None:
    fake.default = Answer(status=status)
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == (
        "http",
        f"the AI service refused the request (HTTP {status})",
    )


@pytest.mark.parametrize(
    ("models_answer", "back"),
    [
        (None, True),
        (Answer(status=401), True),  # it answers: only the key is wrong
        (Answer(status=404), True),  # a server without /models still answers
        (Answer(status=500), False),
        (Answer(status=503), False),
        (Answer(delay=2.0), False),  # no answer in time
    ],
)
async def test_the_service_is_back_when_it_answers_at_all(
    fake: FakeOpenAI, models_answer: Answer | None, back: bool
) -> None:
    fake.models_answer = models_answer
    client = AiClient()
    try:
        assert await client.reachable(settings(fake), within=0.3) is back
    finally:
        await client.close()
    assert fake.model_lists == 1  # one try


async def test_a_service_that_is_gone_is_not_reachable(fake: FakeOpenAI) -> None:
    await fake.stop()
    client = AiClient()
    try:
        assert await client.reachable(settings(fake)) is False
    finally:
        await client.close()


def _completion(**changes: Any) -> str:
    """A chat completion's JSON with ``changes`` to its one choice (or to the whole)."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": "Hi!"},
        "finish_reason": "stop",
    }
    body: dict[str, Any] = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [choice],
    }
    for key, value in changes.items():
        (choice if key in choice else body)[key] = value
    return json.dumps(body)


MALFORMED = [
    pytest.param(Answer(raw="<html>502 Bad Gateway</html>", content_type="text/html"), id="html"),
    pytest.param(Answer(raw='{"id": "chatcmpl-x", "choices": ['), id="broken-json"),
    pytest.param(Answer(raw=_completion(choices={"0": "no"})), id="choices-not-a-list"),
    pytest.param(Answer(raw=_completion(choices="none")), id="choices-a-string"),
    pytest.param(Answer(raw=_completion(message=None)), id="message-null"),
    pytest.param(
        Answer(raw=_completion(message={"role": "assistant", "content": [{"text": "hi"}]})),
        id="list-content",
    ),
    pytest.param(Answer(raw="[1, 2, 3]"), id="a-list"),
]


@pytest.mark.parametrize("answer", MALFORMED)
async def test_a_malformed_answer_is_a_bad_answer_not_a_crash(
    fake: FakeOpenAI, answer: Answer
) -> None:
    fake.default = answer
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == (
        "bad_answer",
        "the AI service gave an answer the bot cannot read",
    )


async def test_odd_token_counts_lose_the_counts_not_the_reply(fake: FakeOpenAI) -> None:
    fake.default = Answer(raw=_completion(usage={"prompt_tokens": "many"}))
    client = AiClient()
    try:
        answer = await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    assert (answer.text, answer.tokens) == ("Hi!", None)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(trickle=0.05), id="a-body-that-trickles-in"),
        pytest.param(Answer(status=429, retry_after="30"), id="a-long-retry-after"),
    ],
)
async def test_ai_timeout_bounds_the_whole_answer(fake: FakeOpenAI, answer: Answer) -> None:
    """The SDK's timeout is per read and its retry waits Retry-After: neither outlasts
    ``ai.timeout``."""
    fake.default = answer
    client = AiClient()
    started = time.monotonic()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake, timeout=timedelta(seconds=0.5)), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == ("timeout", "the AI did not answer in time")
    assert time.monotonic() - started < 10  # (the trickle takes 500 s, the retry-after 30 s)
    assert len(fake.requests) == 1


async def test_no_credit_left_is_said_so_not_busy(fake: FakeOpenAI) -> None:
    fake.default = Answer(
        status=429,
        code="insufficient_quota",
        message="You exceeded your current quota, please check your plan and billing details.",
        retry_after="0",
    )
    client = AiClient()
    try:
        with pytest.raises(AiFailed) as raised:
            await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    assert (raised.value.cause, str(raised.value)) == (
        "quota",
        "the AI account has no credit left",
    )


async def test_the_fake_refuses_max_tokens_for_a_reasoning_model_as_openai_does(
    fake: FakeOpenAI,
) -> None:
    fake.models.add("gpt-5-mini")
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as raised:
            await sdk.chat.completions.create(
                model="gpt-5-mini",
                messages=MESSAGES,  # type: ignore[arg-type]
                max_tokens=50,
            )
    assert raised.value.code == "unsupported_parameter"
    assert raised.value.param == "max_tokens"


def test_the_token_limit_goes_as_openai_takes_it() -> None:
    def limit(**values: Any) -> str:
        return AiSettings.model_validate({"model": "m", **values}).token_limit()

    assert limit() == "max_completion_tokens"  # api.openai.com, the default
    assert limit(base_url="https://api.openai.com/v1/") == "max_completion_tokens"
    assert limit(base_url="http://localhost:11434/v1") == "max_tokens"  # Ollama
    assert limit(base_url="https://openrouter.ai/api/v1") == "max_tokens"
    assert limit(base_url="http://x:1/v1", token_limit_param="max_completion_tokens") == (
        "max_completion_tokens"
    )


async def test_a_reasoning_model_is_answered_and_no_temperature_is_sent_by_default(
    fake: FakeOpenAI,
) -> None:
    fake.models.add("gpt-5-mini")
    client = AiClient()
    try:
        gpt5 = settings(fake, model="gpt-5-mini", token_limit_param="max_completion_tokens")
        answer = await client.complete(gpt5, MESSAGES)
    finally:
        await client.close()
    assert answer.text == "Hello from the fake model!"
    [request] = fake.requests
    assert request.body["max_completion_tokens"] == 150
    assert "max_tokens" not in request.body and "temperature" not in request.body


async def test_the_services_own_words_are_logged_without_the_key(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal the operator must act on (here: max_tokens for a gpt-5 model on a server
    that is not api.openai.com) is logged with the service's own words, never the key."""
    caplog.set_level(logging.DEBUG)
    fake.models.add("gpt-5-mini")
    fake.answers.append(Answer(status=400, message=f"bad request for key {KEY} (sk-abcdef123)"))
    client = AiClient()
    try:
        for model in ("gpt-5-mini", MODEL):
            with pytest.raises(AiFailed) as raised:
                await client.complete(settings(fake, model=model), MESSAGES)
            assert raised.value.cause == "refused"
    finally:
        await client.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "the AI service answered HTTP 400: Unsupported parameter: 'max_tokens' is not "
        "supported with this model. Use 'max_completion_tokens' instead.",
        "the AI service answered HTTP 400: bad request for key **** (****)",
    ]
    assert KEY not in caplog.text and "abcdef" not in caplog.text


async def test_a_piece_of_the_key_in_the_services_words_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys without an ``sk-`` prefix (``gsk_...``, plain hex), and a key's end, echoed."""
    key = "gsk_Q7w3Rt9Yz2Lm5Np8Kx4Vb6Hj1Df0Sa"
    message = f"key {key[:16]}... is not valid; did you mean ...{key[-12:]}? See docs/keys"
    async with FakeOpenAI(key=key) as fake:
        fake.answers.append(Answer(status=400, message=message))
        client = AiClient()
        try:
            with pytest.raises(AiFailed):
                await client.complete(settings(fake, api_key=key), MESSAGES)
        finally:
            await client.close()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (
        "the AI service answered HTTP 400: key ****... is not valid; did you mean ...****? "
        "See docs/keys"
    )


async def test_a_models_reasoning_is_not_part_of_its_answer(fake: FakeOpenAI) -> None:
    """DeepSeek-R1 or Qwen3 on Ollama write their reasoning into the answer, in <think>."""
    fake.answers.append(Answer("<think>\nThe viewer greets me; I plan.\n</think>\n\nHello, alice!"))
    client = AiClient()
    try:
        answer = await client.complete(settings(fake), MESSAGES)
    finally:
        await client.close()
    assert answer.text == "Hello, alice!"


async def test_a_model_that_spent_its_tokens_reasoning_says_so_in_the_log(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Its answer is all reasoning, cut by ai.max_tokens (or empty, as OpenAI's reasoning
    models give it): the operator reads which setting to raise."""
    fake.answers.append(Answer("<think>First, consider what the", finish_reason="length"))
    fake.answers.append(Answer("", finish_reason="length"))
    client = AiClient()
    try:
        for _ in range(2):
            with pytest.raises(AiFailed) as raised:
                await client.complete(settings(fake), MESSAGES)
            assert (str(raised.value), raised.value.cause) == (
                "the AI ran out of words before it answered",
                "empty",
            )
    finally:
        await client.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("raise ai.max_tokens" in w for w in warnings)
