"""The AI worker: ask an OpenAI-compatible model to answer a viewer, and say the answer.

The messages are the ``ai.system_prompt`` (plus the redeem's own ``prompt``, both written by
the streamer) as the system message, and the viewer's text, marked with their name, as the
only user message: what a viewer types is untrusted and never reaches the system role.

The reply is filtered before chat sees it with the same filter as TTS (``filter_said``:
``clean_for_speech`` with the ``tts:`` banned words and repeat limits): links, e-mail
addresses, control and zero-width characters, repeated spam and banned words go, and it is
cut at a word to ``ai.max_reply_chars``. ``@`` before a name goes too (no mentions). A reply
with nothing left, no reply, or any failure of the service raises ``AiFailed``: the runner
fails the item and refunds it, exactly once.

An unreachable service or a 5xx (after the SDK's one retry) also begins an outage; a timeout
does only if ``GET /models`` then fails too (one slow answer is not an outage). The outage
(``pixelbot.queue.outage``) lasts until the service answers ``GET /models`` again (asked every
``ai.recheck``); meanwhile AI redeems are refused before anyone is charged, and what waits is
refunded.

With ``speak: true`` on the redeem's action, the reply is also read aloud: a free TTS item
queued when the reply is recorded (in the same transaction).

Settings are read per item, so ``!reload`` applies to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable

from pixelbot.config import Config
from pixelbot.domain.queue import QueueKind
from pixelbot.economy.payloads import AiPayload, TtsPayload
from pixelbot.errors import AiFailed
from pixelbot.integrations.ai import AiClient, Message
from pixelbot.queue.outage import Outage
from pixelbot.queue.worker import Done, FollowUp, Job
from pixelbot.queue.workers.tts import filter_said

__all__ = ["AiWorker"]

log = logging.getLogger(__name__)

_DOWN_CAUSES = {"connection", "timeout", "server"}  # the service, not this question
_TIMEOUT_CHECK_SECONDS = 5.0  # after a timeout: how long GET /models may take to say "up"

_FILTERED_PER_SAID_CHAR = 4  # (the filter drops links, spam and repeats: room to cut from)
_NAME_MAX_CHARS = 40  # longer than any platform's display name
_QUESTION_MAX_CHARS = 500  # (a redeem's input is shorter already; this bounds a stored one)
_MENTION = re.compile(r"@+(?=\w)")


class AiWorker:
    kind = "ai"

    def __init__(self, config: Callable[[], Config], client: AiClient | None = None) -> None:
        self._config = config  # read per item, so a reloaded config applies to the next one
        self._client = client or AiClient()
        # Read by the runner and the redeems: while down, AI redeems are refused before
        # charging and what waits is refunded. Ended by ``_until_back``.
        self.outage = Outage(
            "the AI service",
            when_down="refund",
            hold_limit=0.0,
            items=("AI reply", "AI replies"),
        )
        self._rechecking: asyncio.Task[None] | None = None

    async def perform(self, job: Job) -> Done:
        config = self._config()
        settings = config.ai
        if not settings.enabled:
            raise AiFailed("AI replies are not enabled", "disabled")
        try:
            answer = await self._client.complete(settings, self.messages(job, config))
        except AiFailed as exc:
            if await self._down(exc, config) and self.outage.begin(str(exc)):
                log.warning("%s: AI redeems are refused until it answers again", exc)
                self._rechecking = asyncio.create_task(self._until_back())
            raise
        # Only what could be said is filtered: a model that writes megabytes (max_tokens is
        # the server's to honour) would hold the event loop for a second in the filter.
        text = answer.text[: settings.max_reply_chars * _FILTERED_PER_SAID_CHAR]
        reply = self._clean(text, settings.max_reply_chars, config)
        if not reply:
            raise AiFailed("the AI's answer was empty after the chat filter", "empty")
        viewer = job.viewer_name
        return Done(
            summary=f"#{job.item_id} answered {viewer}: {reply}",
            result={"model": answer.model, "reply": reply, "tokens": answer.tokens},
            chat=(f"@{viewer} {reply}",),
            follow_ups=self._spoken(job, reply),
        )

    @staticmethod
    def _spoken(job: Job, reply: str) -> tuple[FollowUp, ...]:
        """With ``speak: true``, the reply read aloud: a free TTS item that goes through the
        TTS filter and limits like any other, and is cancelled if the question is deleted."""
        payload = job.payload
        if not (isinstance(payload, AiPayload) and payload.speak):
            return ()
        tts = TtsPayload(
            title=f"{payload.title or 'AI reply'} (read aloud)",
            viewer=payload.viewer,
            channel=payload.channel,
            redeem=payload.redeem,
            message=payload.message,
            text=reply,
            action={"type": "tts", "prefix_username": False},
        )
        return (FollowUp(QueueKind.TTS, tts.to_json()),)

    def messages(self, job: Job, config: Config) -> list[Message]:
        """What the model is sent for ``job``: the streamer's instructions as the system
        message, the viewer's words (with their name) as the user message."""
        system = config.ai.system_prompt
        prompt = job.payload.prompt if isinstance(job.payload, AiPayload) else None
        if prompt:
            system = f"{system}\n\nFor this reward: {prompt}"
        name = self._clean(job.viewer_name, _NAME_MAX_CHARS, config) or "a viewer"
        question = (job.text or "").strip()[:_QUESTION_MAX_CHARS]
        if question:
            user = f"Viewer {name} says:\n{question}"
        else:
            title = job.payload.title or "an AI reply"
            user = f"Viewer {name} redeemed {title} without a message."
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    async def _down(self, failure: AiFailed, config: Config) -> bool:
        """Whether ``failure`` says the service is down (not just this question). A timeout
        alone does not: one slow answer (a local server loading its model, a long essay)
        would refund everyone waiting. The service is asked at once (``GET /models``, a few
        seconds at most); only if that fails too is it down."""
        if failure.cause not in _DOWN_CAUSES or self.outage.down:
            return failure.cause in _DOWN_CAUSES
        if failure.cause != "timeout":
            return True
        settings = config.ai
        quick = min(_TIMEOUT_CHECK_SECONDS, settings.timeout.total_seconds())
        try:
            return not await self._client.reachable(settings, within=quick)
        except Exception:  # a check that breaks says nothing: treat the service as down
            log.warning("checking whether the AI service is down failed", exc_info=True)
            return True

    async def close(self) -> None:
        if self._rechecking is not None:
            self._rechecking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rechecking
        await self._client.close()

    async def _until_back(self) -> None:
        """Ask the service every ``ai.recheck`` whether it is back; then end the outage."""
        while self.outage.down:
            await asyncio.sleep(self._config().ai.recheck.total_seconds())
            try:
                back = await self._client.reachable(self._config().ai)
            except Exception:  # a check that breaks must not leave AI refused forever
                log.warning("checking whether the AI service is back failed", exc_info=True)
                back = False
            if back:
                seconds = self.outage.end() or 0.0
                log.warning("the AI service answers again (down %.0fs)", seconds)

    @staticmethod
    def _clean(text: str, max_chars: int, config: Config) -> str:
        # one list of banned words for what the bot says, aloud or in chat
        cleaned = filter_said(text, config.tts, max_chars)
        # (after the filter, which drops e-mail addresses whole)
        return " ".join(_MENTION.sub("", cleaned).split())
