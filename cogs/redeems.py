"""Redeems: list them, buy one (``!redeem tts hello`` or just ``!tts hello``), and, for
moderators, switch one off and on (``!redeem disable tts``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pixelbot.commands.context import Context
from pixelbot.commands.converters import RedeemName, Rest
from pixelbot.commands.core import Cog, Command, command
from pixelbot.economy.redeems import queue_kind
from pixelbot.errors import BadArgument, NotPermitted, RedeemUnavailable
from pixelbot.outcomes import ItemQueued

log = logging.getLogger(__name__)

TOGGLES = {"enable": True, "disable": False, "on": True, "off": False}


class RedeemsCog(Cog):
    name = "redeems"

    @command("redeems", usage="redeems", help="What you can spend points on.")
    async def list_redeems(self, ctx: Context) -> None:
        catalog = self.services.catalog
        if not catalog.redeems:
            await ctx.say("No redeems are set up.")
            return
        entries = []
        for key, redeem in catalog.redeems.items():
            state = "" if catalog.is_enabled(key) else ", off"
            if not state and self.services.queue.unavailable(redeem.action):
                state = ", unavailable"  # e.g. it needs OBS, which is off
            elif not state and self.services.queue.waits(redeem.action):
                state = ", unavailable until OBS is back"  # taken now, played later
            entries.append(f"{ctx.prefix}{key} ({redeem.cost:,}{state})")
        await ctx.say("Redeems: " + ", ".join(entries))

    @command(
        "redeem",
        usage="redeem <name> [text]",
        help="Spend points on a redeem. Moderators: redeem enable|disable <name>.",
    )
    async def redeem(self, ctx: Context, name: RedeemName, text: Rest | None = None) -> None:
        toggle = TOGGLES.get(name.lower())
        if toggle is not None:
            await self._toggle(ctx, toggle, text)
            return
        await self.buy(ctx, name.lower(), text)

    async def _toggle(self, ctx: Context, enabled: bool, key: str | None) -> None:
        if not ctx.allowed("moderator"):
            raise NotPermitted("moderator", "redeem enable|disable")
        if not key or " " in key.strip():
            raise BadArgument("name one redeem", "redeem enable|disable <name>")
        name = key.strip().lower()
        await self.services.catalog.set_enabled(name, enabled)
        await ctx.reply(f"{ctx.prefix}{name} is now {'on' if enabled else 'off'}")

    async def buy(self, ctx: Context, key: str, text: str | None) -> None:
        services = self.services
        redeem = services.catalog.require_enabled(key)
        if not ctx.allowed(redeem.permission):
            raise NotPermitted(redeem.permission, key)
        text = (text or "").strip() or None
        wanted = redeem.input
        if wanted is not None:
            if wanted.required and text is None:
                raise BadArgument(f"{key} needs some text", f"{key} <text>")
            if text is not None and len(text) > wanted.max_length:
                raise BadArgument(
                    f"that text is too long ({len(text)}/{wanted.max_length} characters)",
                    f"{key} <text>",
                )
        kind = queue_kind(redeem.action.type)
        unavailable = self.services.queue.unavailable(redeem.action)
        if unavailable is not None:
            raise RedeemUnavailable(key, unavailable)
        session_id, since = await services.streams.window()
        bought = await services.redeems.redeem(
            key,
            redeem,
            ctx.author,
            text,
            ref=f"redeem:{ctx.message.ref}",
            stream_session_id=session_id,
            counts_since=since,
            channel=ctx.message.channel,
            message_id=ctx.message.id,
            max_pending=self.services.settings().tts.max_queue if kind == "tts" else None,
        )
        if bought.duplicate:
            return
        cost = f"for {ctx.points(bought.cost)} " if bought.cost else ""
        waits = services.queue.waits(redeem.action)
        later = f"; {waits}" if waits else ""
        await ctx.reply(f"{redeem.title} redeemed {cost}(queued as #{bought.item_id}){later}")
        assert bought.item_id is not None  # (None only for a duplicate)
        await services.publish(
            ItemQueued(kind, bought.item_id, redeem.title, ctx.author.display_name, text)
        )
        services.queue.wake(kind)

    def dynamic_commands(self) -> Iterator[Command]:
        """Each redeem is also a command of its own: ``!tts hello``."""
        for key, redeem in self.services.catalog.redeems.items():
            if key in ("redeem", "redeems"):
                continue
            usage = f"{key} <text>" if redeem.input and redeem.input.required else key

            async def buy_this(
                cog: RedeemsCog, ctx: Context, text: Rest | None = None, key: str = key
            ) -> None:
                await cog.buy(ctx, key, text)

            yield Command(
                name=key,
                callback=buy_this,
                usage=usage,
                help=f"{redeem.title} ({redeem.cost:,})",
                cog=self,
            )
