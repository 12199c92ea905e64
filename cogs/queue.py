"""The redeem queue in chat: see what is waiting, and (moderators) skip, pause, resume, clear.

``!skip`` cancels what is playing now and refunds it; ``!clearqueue`` cancels and refunds
everything waiting. Pauses are stored, so a paused queue stays paused after a restart.
"""

from __future__ import annotations

from typing import Any

from pixelbot.commands.context import Context
from pixelbot.commands.converters import Word
from pixelbot.commands.core import Cog, command
from pixelbot.commands.services import QueueControl
from pixelbot.economy.payloads import payload_of
from pixelbot.errors import BadArgument

SHOWN = 5  # items listed by !queue


def _moderator(ctx: Context) -> str:
    return ctx.author.display_name


class QueueCog(Cog):
    name = "queue"

    def _runner(self) -> QueueControl:
        return self.services.queue

    def _kinds(self, kind: Word | None, usage: str) -> list[str]:
        kinds = self._runner().kinds
        if not kinds:
            raise BadArgument("the queue is not running")
        if kind is None:
            return kinds
        if kind.lower() not in kinds:
            raise BadArgument(f"there is no {kind} queue (queues: {', '.join(kinds)})", usage)
        return [kind.lower()]

    @command("queue", usage="queue [tts|wheel|effect|ai]", help="What is waiting in the queue.")
    async def show(self, ctx: Context, kind: Word | None = None) -> None:
        runner = self._runner()
        kinds = self._kinds(kind, "queue [tts|wheel|effect|ai]")
        pending = [item for item in await self.services.queue_items.pending() if item.kind in kinds]
        running = [item for item in runner.running() if item.kind in kinds]
        parts = [f"now: #{item.id} {_describe(item.kind, item.payload)}" for item in running]
        parts += [f"#{item.id} {_describe(item.kind, item.payload)}" for item in pending[:SHOWN]]
        if len(pending) > SHOWN:
            parts.append(f"and {len(pending) - SHOWN} more")
        paused = sorted(set(kinds) & runner.paused)
        if paused:
            parts.append(f"paused: {', '.join(paused)}")
        await ctx.say("Queue: " + ("; ".join(parts) if parts else "nothing waiting"))

    @command(
        "skip",
        usage="skip [tts|wheel|effect|ai]",
        help="Cancel what is playing now and refund it (moderators).",
        permission="moderator",
    )
    async def skip(self, ctx: Context, kind: Word | None = None) -> None:
        runner = self._runner()
        kinds = self._kinds(kind, "skip [tts|wheel|effect|ai]")
        for name in kinds:
            item = runner.skip(name, by=_moderator(ctx))
            if item is not None:
                title = payload_of(item.kind, item.payload).title or "item"
                await ctx.reply(f"skipping #{item.id} {title}")
                return
        await ctx.reply("nothing is playing")

    @command(
        "pause",
        usage="pause [tts|wheel|effect|ai]",
        help="Hold a queue (or all); what is waiting stays (moderators).",
        permission="moderator",
    )
    async def pause(self, ctx: Context, kind: Word | None = None) -> None:
        runner = self._runner()
        kinds = self._kinds(kind, "pause [tts|wheel|effect|ai]")
        for name in kinds:
            await runner.pause(name, by=_moderator(ctx))
        await ctx.reply(f"paused: {', '.join(kinds)}")

    @command(
        "resume",
        usage="resume [tts|wheel|effect|ai]",
        help="Start a paused queue again (moderators).",
        permission="moderator",
    )
    async def resume(self, ctx: Context, kind: Word | None = None) -> None:
        runner = self._runner()
        kinds = self._kinds(kind, "resume [tts|wheel|effect|ai]")
        for name in kinds:
            await runner.resume(name, by=_moderator(ctx))
        await ctx.reply(f"resumed: {', '.join(kinds)}")

    @command(
        "clearqueue",
        usage="clearqueue [tts|wheel|effect|ai]",
        help="Cancel and refund everything waiting (moderators).",
        permission="moderator",
    )
    async def clearqueue(self, ctx: Context, kind: Word | None = None) -> None:
        runner = self._runner()
        kinds = self._kinds(kind, "clearqueue [tts|wheel|effect|ai]")
        pending = [item for item in await self.services.queue_items.pending() if item.kind in kinds]
        settled = await runner.cancel_pending(
            pending, reason="the queue was cleared by a moderator", by=_moderator(ctx)
        )
        refunded = sum(result.refunded for result in settled)
        await ctx.reply(f"cleared {len(settled)} item(s), refunded {ctx.points(refunded)}")


def _describe(kind: str, stored: dict[str, Any]) -> str:
    payload = payload_of(kind, stored)
    return f"{payload.title or 'item'} for {payload.viewer_name}"
