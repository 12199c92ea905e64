"""Moderation: correct balances and reload the configuration without a restart.

(Switching redeems off and on is ``!redeem disable|enable <name>``, in the redeems cog.)"""

from __future__ import annotations

from pixelbot.commands.context import Context
from pixelbot.commands.converters import Amount, Target
from pixelbot.commands.core import Cog, command
from pixelbot.errors import BadArgument


def _actor(ctx: Context) -> str:
    author = ctx.author
    return f"{author.platform}:{author.platform_user_id}"


class ModerationCog(Cog):
    name = "moderation"

    @command(
        "addpoints",
        usage="addpoints <viewer> <amount>",
        help="Give a viewer points (moderators).",
        permission="moderator",
    )
    async def addpoints(self, ctx: Context, viewer: Target, amount: Amount) -> None:
        if amount.value is None:
            raise BadArgument("say how many points", "addpoints <viewer> <amount>")
        target = await ctx.lookup(viewer)
        entry = await self.services.ledger.adjust(
            target.user_id,
            amount.value,
            actor=_actor(ctx),
            reason="moderator",
            ref=f"adjust:{ctx.message.ref}",
        )
        await ctx.reply(
            f"added {ctx.points(amount.value)} to {target.display_name} (now {entry.balance:,})"
        )

    @command(
        "removepoints",
        usage="removepoints <viewer> <amount|all>",
        help="Take points from a viewer (moderators).",
        permission="moderator",
    )
    async def removepoints(self, ctx: Context, viewer: Target, amount: Amount) -> None:
        target = await ctx.lookup(viewer)
        ledger, ref = self.services.ledger, f"adjust:{ctx.message.ref}"
        if amount.value is None:
            entry = await ledger.remove_all(
                target.user_id, actor=_actor(ctx), reason="moderator", ref=ref
            )
        else:
            entry = await ledger.adjust(
                target.user_id, -amount.value, actor=_actor(ctx), reason="moderator", ref=ref
            )
        value = -entry.amount
        if value == 0:
            await ctx.reply(f"{target.display_name} has no points to remove")
            return
        await ctx.reply(
            f"removed {ctx.points(value)} from {target.display_name} (now {entry.balance:,})"
        )

    @command(
        "reload",
        usage="reload",
        help="Re-read config.yaml (a broken file is refused).",
        permission="moderator",
    )
    async def reload(self, ctx: Context) -> None:
        result = await self.services.reload()
        shown = "; ".join(result.problems[:3])
        if len(result.problems) > 3:
            shown += f" (+{len(result.problems) - 3} more)"
        if not result.applied:
            await ctx.reply(f"config not reloaded, the running one stays: {shown}")
        elif result.problems:
            await ctx.reply(f"config reloaded, but: {shown}")
        else:
            await ctx.reply("config reloaded")
