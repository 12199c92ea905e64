"""The queue as the rest of the bot uses it: the runner with its workers, what its outcomes
mean for chat and the operator, and what moderation does to waiting items.

Every outcome is published on the bus (``ItemStarted``, ``ItemSettled``, ``WheelSpun``, the
chat lines as ``Say``); the runtime never knows who listens. It implements ``QueueControl``,
the narrow handle cogs get.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from pixelbot.config import Config
from pixelbot.config.effects import OBS_STEPS
from pixelbot.config.redeems import Action
from pixelbot.domain.queue import QueueKind, kind_of_action
from pixelbot.economy.payloads import ItemPayload, payload_of
from pixelbot.economy.queries import Wallets
from pixelbot.economy.queue import ClaimedItem, PendingItem, QueueStore, Recovered, Settled
from pixelbot.errors import PixelbotError
from pixelbot.events import MessageDeleted, ViewerBanned
from pixelbot.outcomes import ItemSettled, ItemStarted, Notice, Outcome, Say, WheelSpun
from pixelbot.queue.announce import announce
from pixelbot.queue.outage import Outage
from pixelbot.queue.runner import Outcome as ItemOutcome
from pixelbot.queue.runner import QueueRunner
from pixelbot.queue.worker import Worker

__all__ = ["QueueRuntime"]

log = logging.getLogger(__name__)

Publish = Callable[[Outcome], Awaitable[None]]

# What a moderator's deletion or ban cancels: the kinds that say a viewer's words (aloud, or
# an AI's answer to them) in public.
_MODERATED = (QueueKind.TTS, QueueKind.AI)


class QueueRuntime:
    def __init__(
        self,
        store: QueueStore,
        wallets: Wallets,
        settings: Callable[[], Config],
        publish: Publish,
    ) -> None:
        self._store = store
        self._wallets = wallets
        self._settings = settings
        self._publish = publish
        self.runner: QueueRunner | None = None
        self.obs_connected = False  # set when the queue starts

    # -- life cycle -------------------------------------------------------------------------

    async def start(
        self, workers: Mapping[str, Worker], *, only_while_draining: bool = False
    ) -> Recovered:
        """Start one loop per worker. Returns what was recovered from a crash."""
        config = self._settings()
        # Whether OBS can be used is decided by the client the effect worker got at start
        # (a reload that switches OBS on needs a restart to connect).
        self.obs_connected = config.obs.enabled
        self.runner = QueueRunner(
            self._store,
            workers,
            timeouts=self._timeout,
            report=self._report,
            say_for=self._say_for,
            started=self._started,
            retry_on_restart=config.queue.on_restart == "retry",
            only_while_draining=only_while_draining,
        )
        recovered = await self.runner.start()
        for item_id in recovered.retried:  # (refunded ones are told like any failure)
            await self._publish(
                Notice("queue", f"#{item_id} was running when the bot stopped: queued again")
            )
        return recovered

    def _timeout(self, kind: str) -> float | None:
        """``queue.timeouts`` of ``kind`` in the config now: read as each item starts, so a
        ``!reload`` that raises ``ai.timeout`` and ``queue.timeouts.ai`` together (the config
        check wants the second longer) applies both to the next item."""
        timeout = getattr(self._settings().queue.timeouts, kind, None)
        return timeout.total_seconds() if isinstance(timeout, timedelta) else None

    def stop_claiming(self) -> None:
        """The bot begins to stop: no new item starts (``QueueRunner.stop_claiming``)."""
        if self.runner is not None:
            self.runner.stop_claiming()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()

    async def drain(self) -> None:
        if self.runner is not None:
            await self.runner.drain()

    # -- QueueControl -------------------------------------------------------------------------

    @property
    def kinds(self) -> list[str]:
        return [] if self.runner is None else list(self.runner.workers)

    @property
    def paused(self) -> set[str]:
        return set() if self.runner is None else self.runner.paused

    def running(self) -> list[ClaimedItem]:
        return [] if self.runner is None else self.runner.running()

    def skip(
        self, kind: str | None = None, *, by: str | None = None, reason: str | None = None
    ) -> ClaimedItem | None:
        return None if self.runner is None else self.runner.skip(kind, by=by, reason=reason)

    async def pause(self, kind: str, *, by: str | None = None) -> None:
        assert self.runner is not None
        await self.runner.pause(kind, by=by)

    async def resume(self, kind: str, *, by: str | None = None) -> None:
        assert self.runner is not None
        await self.runner.resume(kind, by=by)

    async def cancel_pending(
        self, items: list[PendingItem], *, reason: str, by: str | None = None
    ) -> list[Settled]:
        if self.runner is None:
            return []
        return await self.runner.cancel_pending(items, reason=reason, by=by)

    def wake(self, kind: str) -> None:
        if self.runner is not None:
            self.runner.wake(kind)

    def unavailable(self, action: Action) -> str | None:
        """Why a redeem with this action cannot be performed now (it is refused before
        anyone is charged), or None."""
        kind = kind_of_action(action.type)
        if kind == QueueKind.AI and not self._settings().ai.enabled:
            return "AI replies are not enabled"
        if (
            kind == QueueKind.EFFECT
            and not self.obs_connected
            and any(step.do in OBS_STEPS for step in self._settings().effect_steps(action))
        ):
            return "it needs OBS, and OBS is not enabled"
        if self.runner is not None and kind not in self.runner.workers:
            return f"nothing performs {kind} items here"
        outage = self._outage_for(action)
        if outage is not None and outage.refunding():
            return f"{outage.service} is down"
        return None

    def waits(self, action: Action) -> str | None:
        """Why a redeem with this action is taken but will only play later (OBS is down and
        ``obs.when_down`` is ``hold``), or None."""
        outage = self._outage_for(action)
        if outage is not None and outage.holding():
            return f"{outage.service} is down, it will play when {outage.service} is back"
        return None

    def _outage_for(self, action: Action) -> Outage | None:
        kind = kind_of_action(action.type)
        outage = self.runner.outage(kind) if self.runner is not None else None
        if outage is None or not outage.down:
            return None
        if kind != QueueKind.EFFECT:  # (the AI service: every item of the kind needs it)
            return outage
        if not any(step.do in OBS_STEPS for step in self._settings().effect_steps(action)):
            return None
        return outage

    # -- moderation -----------------------------------------------------------------------------

    async def cancel_for_moderation(self, event: MessageDeleted | ViewerBanned) -> None:
        """A deleted message is not spoken nor answered, and neither is a banned viewer's:
        their TTS and AI items, waiting or running, are cancelled and refunded (a cancelled
        AI item never queues its ``speak`` follow-up)."""
        runner = self.runner
        if runner is None:
            return
        pending: list[PendingItem] = []
        if isinstance(event, MessageDeleted):
            reason = "the message was deleted"
            for kind in _MODERATED:
                pending += [
                    item
                    for item in await self._store.pending(kind)
                    if payload_of(item.kind, item.payload).message == event.message_id
                ]
            for item in runner.running():  # being spoken or answered right now: stop it
                if (
                    item.kind in _MODERATED
                    and payload_of(item.kind, item.payload).message == event.message_id
                ):
                    runner.skip(item.kind, reason=reason)
        else:
            try:
                user_id = await self._wallets.find_identity(event.viewer)
            except PixelbotError:
                return  # never seen: nothing of theirs can be queued
            reason = "timed out by a moderator" if event.duration else "banned by a moderator"
            for kind in _MODERATED:
                pending += await self._store.pending(kind, user_id=user_id)
            for item in runner.running():
                if item.kind in _MODERATED and item.user_id == user_id:
                    runner.skip(item.kind, reason=reason)
        await runner.cancel_pending(pending, reason=reason)

    # -- outcomes -------------------------------------------------------------------------------

    def _say_for(self, stored: dict[str, object]) -> Callable[[str], Awaitable[None]]:
        payload = payload_of("", dict(stored))

        async def say(text: str) -> None:
            await self._publish(_say(payload, text))

        return say

    async def _started(self, item: ClaimedItem) -> None:
        payload = payload_of(item.kind, item.payload)
        await self._publish(ItemStarted(item.kind, item.id, payload.title, payload.viewer_name))

    async def _report(self, outcome: ItemOutcome) -> None:
        words = announce(outcome, self._settings().bot.currency)
        if words is None:
            return
        payload = payload_of(outcome.kind, outcome.payload)
        settled = outcome.settled
        result = dict(outcome.done.result) if outcome.done is not None else {}
        await self._publish(
            ItemSettled(
                outcome.kind,
                outcome.item_id,
                settled.status,
                payload.title,
                payload.viewer_name,
                words.notice,
                refunded=settled.refunded,
                error=outcome.error,
                result=result,
            )
        )
        if outcome.kind == QueueKind.WHEEL and outcome.done is not None and "prize" in result:
            await self._publish(
                WheelSpun(
                    outcome.item_id,
                    str(result.get("wheel", "")),
                    str(result["prize"]),
                    int(result.get("prize_index", 0)),
                    float(result.get("roll", 0.0)),
                    payload.viewer_name,
                )
            )
        for line in words.chat:
            await self._publish(_say(payload, line))
        if words.to_viewer is not None:
            await self._publish(_say(payload, words.to_viewer, mention=True))
        if settled.level_up is not None:
            await self._publish(_say(payload, settled.level_up.announcement()))


def _say(payload: ItemPayload, text: str, *, mention: bool = False) -> Say:
    """A line in the channel the item was asked from (on the asker's platform)."""
    viewer = payload.viewer
    return Say(
        viewer.platform if viewer is not None else "",
        payload.channel or "",
        text,
        mention=viewer.as_viewer() if mention and viewer is not None else None,
    )
