"""Help: what commands there are, and how to use one."""

from __future__ import annotations

from pixelbot.commands.context import Context
from pixelbot.commands.converters import Word
from pixelbot.commands.core import Cog, command


class HelpCog(Cog):
    name = "help"

    @command(
        "help", usage="help [command]", help="List commands, or explain one.", aliases=("commands",)
    )
    async def help(self, ctx: Context, command: Word | None = None) -> None:
        router = self.services.commands
        if command is not None:
            found = router.get(command.removeprefix(ctx.prefix))
            if found is None or not ctx.allowed(found.permission):
                await ctx.reply(f"I don't know {ctx.prefix}{command.removeprefix(ctx.prefix)}")
                return
            await ctx.reply(f"{ctx.prefix}{found.usage}: {found.help}")
            return
        catalog = self.services.catalog
        names = [
            f"{ctx.prefix}{c.name}"
            for c in router.all()
            if ctx.allowed(c.permission)
            and not (c.name in catalog.redeems and not catalog.is_enabled(c.name))
        ]
        await ctx.reply("commands: " + " ".join(names))
