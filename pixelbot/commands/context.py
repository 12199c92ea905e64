"""What a command sees: who typed it, where, and how to answer. Never a platform object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pixelbot.commands.converters import Target
from pixelbot.domain.permissions import has_permission
from pixelbot.economy.queries import WalletSummary
from pixelbot.events import ChatMessage, Viewer

if TYPE_CHECKING:
    from pixelbot.platforms.base import Platform
    from pixelbot.runtime import Bot

__all__ = ["Context"]


@dataclass
class Context:
    bot: Bot
    platform: Platform
    message: ChatMessage
    invoked_with: str  # the command name as typed (may be an alias)

    @property
    def author(self) -> Viewer:
        return self.message.viewer

    @property
    def channel(self) -> str:
        return self.message.channel

    @property
    def prefix(self) -> str:
        return self.bot.config.bot.prefix

    def allowed(self, required: str) -> bool:
        return has_permission(self.author.roles, required)

    async def reply(self, text: str) -> None:
        """Answer the author: ``@alice <text>``."""
        await self.say(f"@{self.author.display_name} {text}")

    async def say(self, text: str) -> None:
        """Speak in the channel (rate-limited per channel)."""
        await self.bot.send(self.platform, self.channel, text)

    async def lookup(self, target: Target) -> WalletSummary:
        """The wallet of a viewer named in the command (UnknownViewer if nobody has it)."""
        wallets = self.bot.engine.wallets
        user_id = await wallets.find(target.name, self.author.platform)
        return await wallets.summary(user_id)

    def points(self, amount: int) -> str:
        """``1 pixel`` / ``25 pixels``, in the streamer's currency."""
        currency = self.bot.config.bot.currency
        return f"{amount:,} {currency.singular if amount == 1 else currency.plural}"
