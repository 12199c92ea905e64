"""XP: levels and the XP ranking."""

from __future__ import annotations

from pixelbot.commands.context import Context
from pixelbot.commands.converters import Target
from pixelbot.commands.core import Cog, command
from pixelbot.errors import UnknownViewer


class XpCog(Cog):
    name = "xp"

    @command("level", usage="level [viewer]", help="Your level and XP, or another viewer's.")
    async def level(self, ctx: Context, viewer: Target | None = None) -> None:
        wallets = self.services.wallets
        if viewer is None:
            try:
                summary = await wallets.summary(await wallets.find_identity(ctx.author))
            except UnknownViewer:
                await ctx.reply("you have no XP yet: chat a little!")
                return
            subject = "you are"
        else:
            summary = await ctx.lookup(viewer)
            subject = f"{summary.display_name} is"
        curve = self.services.xp_curve()
        to_next = curve.total_xp_for(summary.level + 1) - summary.xp
        await ctx.reply(
            f"{subject} level {summary.level} with {summary.xp:,} XP "
            f"({to_next:,} XP to level {summary.level + 1})"
        )

    @command("rank", usage="rank", help="Where you stand by XP.")
    async def rank(self, ctx: Context) -> None:
        wallets = self.services.wallets
        try:
            user_id = await wallets.find_identity(ctx.author)
        except UnknownViewer:
            await ctx.reply("you are not ranked yet: chat a little!")
            return
        rank, total = await wallets.xp_rank(user_id)
        await ctx.reply(f"you are #{rank} of {total} by XP")
