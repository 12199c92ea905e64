"""One wallet across platforms: ``!link`` joins your accounts, ``!unlink`` splits one off.

The rules (codes, what moves, who may undo what) live in ``pixelbot/economy/links.py``; this
cog only talks to viewers. The code is answered in the chat it was asked in, which may be
public: it works once, for ten minutes, and only from another platform (see that module's
threat model), and the reply says to use it at once.
"""

from __future__ import annotations

from datetime import timedelta

from pixelbot.commands.context import Context
from pixelbot.commands.converters import Word, parse_target
from pixelbot.commands.core import Cog, command
from pixelbot.domain.durations import format_duration
from pixelbot.economy.links import CODE_REFUSALS
from pixelbot.errors import LinkRefused, NotPermitted


def _actor(ctx: Context) -> str:
    return f"{ctx.author.platform}:{ctx.author.platform_user_id}"


class LinksCog(Cog):
    name = "links"

    @command(
        "link",
        usage="link [code]",
        help="Share one wallet across platforms: !link here, then !link <code> on the other.",
        user_cooldown=timedelta(seconds=10),
    )
    async def link(self, ctx: Context, code: Word | None = None) -> None:
        links = self.services.links
        if code is None:
            issued = await links.create_code(ctx.author)
            lifetime = format_duration(links.lifetime)
            await ctx.reply(
                f"your link code is {issued.code}. Within {lifetime}, type "
                f"{ctx.prefix}link {issued.code} on your other platform to share this wallet "
                "there. It works once: use it right away, whoever types it first gets in."
            )
            return
        try:
            linked = await links.link(ctx.author, code)
        except LinkRefused as refused:
            if refused.reason not in CODE_REFUSALS:
                raise
            # Answered here rather than raised: a refused code keeps !link's cooldown, so
            # guessing codes costs the guesser 10 seconds a try.
            await ctx.reply(str(refused))
            return
        await ctx.reply(
            f"linked: this {ctx.author.platform} account now shares the wallet of "
            f"{linked.display_name} ({ctx.points(linked.points)}, level {linked.level})"
        )
        if linked.level_up is not None:
            await ctx.say(linked.level_up.announcement())

    @command(
        "unlink",
        usage="unlink <platform> (moderators: unlink <viewer> <platform>)",
        help="Split one platform's account off your shared wallet (it starts again at 0).",
    )
    async def unlink(self, ctx: Context, first: Word, second: Word | None = None) -> None:
        links = self.services.links
        if second is None:
            if first.lower() != ctx.author.platform and not ctx.allowed("moderator"):
                # Whoever is in a shared wallet could otherwise push its owner out (the one
                # split off starts at 0): here each account can only leave by itself.
                raise LinkRefused(
                    "not_yours",
                    f"here you can split off only this {ctx.author.platform} account "
                    f"({ctx.prefix}unlink {ctx.author.platform}); a moderator can split off "
                    "another",
                )
            await links.unlink(ctx.author, first, actor=_actor(ctx), ref=ctx.message.ref)
            await ctx.reply(
                f"unlinked your {first.lower()} account: it has a wallet of its own now, "
                "starting at 0"
            )
            return
        if not ctx.allowed("moderator"):
            raise NotPermitted("moderator", "unlink <viewer> <platform>")
        target = await ctx.lookup(parse_target(first))
        result = await links.unlink(target.user_id, second, actor=_actor(ctx), ref=ctx.message.ref)
        await ctx.reply(
            f"unlinked {result.identity} from {target.display_name}'s wallet; it starts again at 0"
        )
