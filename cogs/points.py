"""Points: check a balance, give points to another viewer, the leaderboard."""

from __future__ import annotations

from pixelbot.commands.context import Context
from pixelbot.commands.converters import Amount, Target
from pixelbot.commands.core import Cog, command
from pixelbot.errors import UnknownViewer


class PointsCog(Cog):
    name = "points"

    @command("points", usage="points [viewer]", help="Your points, or another viewer's.")
    async def points(self, ctx: Context, viewer: Target | None = None) -> None:
        if viewer is None:
            if ctx.balance is not None:  # as this very message left it: no read needed
                await ctx.reply(f"you have {ctx.points(ctx.balance)}")
                return
            try:
                summary = await self.services.wallets.summary_of(ctx.author)
            except UnknownViewer:
                await ctx.reply(f"you have {ctx.points(0)}")
                return
            await ctx.reply(f"you have {ctx.points(summary.points)}")
            return
        summary = await ctx.lookup(viewer)
        await ctx.reply(f"{summary.display_name} has {ctx.points(summary.points)}")

    @command("give", usage="give <viewer> <amount>", help="Give some of your points away.")
    async def give(self, ctx: Context, viewer: Target, amount: Amount) -> None:
        receiver = await ctx.lookup(viewer)
        # amount.value is None for "all": the ledger decides how much, on the locked balance
        transfer = await self.services.ledger.transfer(
            ctx.author, receiver.user_id, amount.value, ref=f"give:{ctx.message.ref}"
        )
        await ctx.reply(
            f"gave {ctx.points(transfer.received.amount)} to {receiver.display_name} "
            f"(you have {transfer.sent.balance:,} left)"
        )

    @command("top", usage="top [n]", help="The viewers with the most points.")
    async def top(self, ctx: Context, n: int | None = None) -> None:
        size = min(n or self.services.settings().commands.top_size, 10)
        leaders = await self.services.wallets.top(size)
        if not leaders:
            await ctx.say("Nobody has any points yet.")
            return
        board = ", ".join(
            f"{rank}. {w.display_name} ({w.points:,})" for rank, w in enumerate(leaders, 1)
        )
        await ctx.say(f"Top {len(leaders)}: {board}")
