"""What a command sees: who typed it, where, and how to answer. Never a platform object.

Answers are published as ``Say`` outcomes; the chat delivery finds the platform, writes the
mention as that platform does, fits the length and keeps to its rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelbot.commands.converters import Target
from pixelbot.commands.services import Services
from pixelbot.domain.permissions import Role, has_permission
from pixelbot.economy.queries import WalletSummary
from pixelbot.events import ChatMessage, Viewer
from pixelbot.outcomes import Say

__all__ = ["Context"]


@dataclass
class Context:
    services: Services
    message: ChatMessage
    invoked_with: str  # the command name as typed (may be an alias)
    # The author's balance as their message left it (its own earn included), reported by the
    # writer with that message's commit; None when it was not (nothing saved, no wallet).
    balance: int | None = None

    @property
    def author(self) -> Viewer:
        return self.message.viewer

    @property
    def channel(self) -> str:
        return self.message.channel

    @property
    def prefix(self) -> str:
        return self.services.settings().bot.prefix

    def allowed(self, required: Role) -> bool:
        return has_permission(self.author.roles, required)

    async def reply(self, text: str) -> None:
        """Answer the author: ``@alice <text>`` (or the platform's own mention)."""
        message = self.message
        await self.services.publish(
            Say(message.platform, message.channel, text, mention=self.author, reply_to=message)
        )

    async def say(self, text: str) -> None:
        """Speak in the channel."""
        await self.services.publish(Say(self.message.platform, self.message.channel, text))

    async def lookup(self, target: Target) -> WalletSummary:
        """The wallet of a viewer named in the command (UnknownViewer if nobody has it)."""
        wallets = self.services.wallets
        if target.user_id is not None:  # an id mention: the identity itself, on this platform
            named = Viewer(self.author.platform, target.user_id, target.name, target.name)
            user_id = await wallets.find_identity(named)
        else:
            user_id = await wallets.find(target.name, self.author.platform)
        return await wallets.summary(user_id)

    def points(self, amount: int) -> str:
        """``1 pixel`` / ``25 pixels``, in the streamer's currency."""
        currency = self.services.settings().bot.currency
        return f"{amount:,} {currency.singular if amount == 1 else currency.plural}"
