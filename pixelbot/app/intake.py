"""Event intake: what happens, in order, for each normalized event a platform pushes.

1. The earning rules log it and pay what it earns (a redelivered event stops here: the event
   log already has it; so does an ignored account such as another bot).
2. A paid follow, sub, gift, tip, cheer or raid is thanked in chat and published as an alert;
   a level-up is announced.
   Who is present (joined, left, last chatted) is tracked for watch-time payouts.
3. Stream state, moderation and commands: going live or offline opens or closes the stream
   session; a deleted message or a banned viewer loses their waiting TTS; a chat line that
   starts with the prefix goes to the command layer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pixelbot.commands.layer import CommandLayer
from pixelbot.config import Config
from pixelbot.economy.earning import Earned, EarningRules
from pixelbot.economy.presence import PresenceTracker
from pixelbot.economy.streams import StreamSessions
from pixelbot.errors import DatabaseError, WriterStopped
from pixelbot.events import (
    ChatMessage,
    Cheer,
    Event,
    Follow,
    GiftedSubs,
    MessageDeleted,
    Presence,
    PresenceLeft,
    Raid,
    RewardRedemption,
    StreamOffline,
    StreamOnline,
    Subscription,
    Tip,
    ViewerBanned,
)
from pixelbot.outcomes import Alert, Outcome, Say, StreamChanged
from pixelbot.queue.runtime import QueueRuntime

__all__ = ["EventIntake"]

log = logging.getLogger(__name__)

THANKED = (Follow, Subscription, GiftedSubs, Tip, Cheer, Raid)
_THANKS_FOR = {
    "follow": "the follow",
    "sub": "the sub",
    "gift": "the gifted subs",
    "tip": "the tip",
    "cheer": "the bits",
    "raid": "the raid",
}


class EventIntake:
    def __init__(
        self,
        earning: EarningRules,
        streams: StreamSessions,
        commands: CommandLayer,
        queue: QueueRuntime,
        settings: Callable[[], Config],
        publish: Callable[[Outcome], Awaitable[None]],
    ) -> None:
        self._earning = earning
        self._streams = streams
        self._commands = commands
        self._queue = queue
        self._settings = settings
        self._publish = publish
        self.presence = PresenceTracker()  # who is watching (the app shares it with payouts)
        # Channel-point redemptions (app/rewards.py); None: nobody takes them (tests).
        self.on_reward: Callable[[RewardRedemption], Awaitable[None]] | None = None
        self.not_saved = 0  # events that came in after the economy writer stopped

    async def handle(self, event: Event) -> Earned:
        """Everything that happens for one incoming event."""
        self._track_presence(event)
        try:
            # (the writer's future itself: two coroutine frames fewer per chat line)
            earned = await self._earning.enqueue(event)
        except DatabaseError:
            if not isinstance(event, ChatMessage):
                raise
            # Nothing was paid (the operator hears the cause once, from db/faults.py); a
            # command on this line still gets its answer, if only "can't save right now".
            earned = Earned(event.ref, skipped="unsaved")
        except WriterStopped as stopped:  # the bot is stopping: nothing of it was saved
            self._not_saved(event, stopped)
            earned = Earned(event.ref, skipped="unsaved")
            if not isinstance(event, ChatMessage | RewardRedemption):
                return earned
            # A command still answers ("the bot is restarting"); a channel-point redemption
            # is refunded on the platform (app/rewards.py).
        if earned.skipped in ("duplicate", "ignored"):  # a redelivery, or another bot
            return earned
        channel = event.channel if isinstance(event, ChatMessage) else ""
        # The alerts overlay shows one that pays nothing (earn.follow.points: 0, an anonymous
        # gift) too; not a refollow, nor one that could not be saved.
        if isinstance(event, THANKED) and earned.skipped in (None, "zero", "anonymous"):
            text = self._thanks(event, earned)
            who = event.actor.display_name if event.actor else "someone"
            await self._publish(Alert(event.kind, who, earned.points, text, _details(event)))
            if earned.points > 0:
                await self._publish(Say(event.platform, channel, text))
        if earned.level_up is not None:
            await self._publish(Say(event.platform, channel, earned.level_up.announcement()))
        match event:
            case StreamOnline():
                await self._streams.go_live(event.platform, event.channel)
                await self._publish(StreamChanged(event.platform, event.channel, live=True))
            case StreamOffline():
                ended = await self._streams.go_offline()
                await self._publish(
                    StreamChanged(event.platform, event.channel, live=False, changed=ended)
                )
            case MessageDeleted() | ViewerBanned():
                await self._queue.cancel_for_moderation(event)
            case RewardRedemption() if self.on_reward is not None:
                await self.on_reward(event)
            case ChatMessage():
                await self._commands.handle(event, balance=earned.balance)
        return earned

    def _not_saved(self, event: Event, stopped: WriterStopped) -> None:
        """Tell the operator about events that came in as the writer stopped: the first one,
        then every 100th (a busy chat can bring many during a shutdown)."""
        self.not_saved += 1
        if self.not_saved == 1 or self.not_saved % 100 == 0:
            log.warning(
                "%s event(s) not saved since the economy writer stopped (latest: %s %s): %s",
                self.not_saved,
                event.kind,
                event.ref,
                stopped,
            )

    def _track_presence(self, event: Event) -> None:
        match event:
            case Presence():
                self.presence.joined(event.viewer, event.occurred_at)
            case PresenceLeft():
                self.presence.left(event.viewer)
            case ChatMessage():
                self.presence.chatted(event.viewer, event.occurred_at)
            case _ if event.actor is not None:
                self.presence.seen(event.actor)

    def _thanks(self, event: Event, earned: Earned) -> str:
        who = event.actor.display_name if event.actor else "someone"
        currency = self._settings().bot.currency
        noun = currency.singular if earned.points == 1 else currency.plural
        return f"Thanks for {_THANKS_FOR[event.kind]}, {who}! +{earned.points:,} {noun}"


def _details(event: Event) -> dict[str, str]:
    """The figures an alert template may show (``{amount}``, ``{bits}``, ...), as text."""
    match event:
        case Subscription():
            return {"months": str(event.months), "tier": str(event.tier)}
        case GiftedSubs():
            return {"count": str(event.count), "tier": str(event.tier)}
        case Tip():
            amount = f"{event.amount:,.2f}"
            return {"amount": amount, "currency": event.currency, "message": event.message}
        case Cheer():
            return {"bits": f"{event.bits:,}", "message": event.message}
        case Raid():
            return {"viewers": f"{event.viewers:,}"}
    return {}
