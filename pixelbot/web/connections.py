"""A cap on the live WebSocket connections of one kind (the overlay pages, the dashboard pages).

Every open connection costs the bot a socket, a task and, for each update, a message built and
sent: without a cap, whoever can open one (a leaked overlay key, a logged-in page left to
reconnect in a loop) can open thousands. Past the cap a new connection is refused, and the
ones already open are never touched.

A refused socket is closed right after the handshake with 1013 "try again later" and a
sentence naming the setting, so that the page (and whoever reads its console) learns why; the
pages reconnect by themselves and get in once one closes. The first refusal is logged; a page
retrying is not logged again until a place frees up, but every refusal is counted
(``refused``). The pages wait their longest reconnect delay after a 1013, so a refused page
knocks every few seconds, not several times a second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import WSCloseCode, web

__all__ = ["ConnectionCap"]

log = logging.getLogger(__name__)


@dataclass
class ConnectionCap:
    """``warning`` is logged at the first refusal (``{open}``: how many are open); ``reason``
    is the close reason a refused socket gets (``{limit}``: the cap)."""

    warning: str
    reason: str
    open: int = 0  # admitted, not yet released
    refused: int = 0  # refusals since the bot started (a page retrying counts each time)
    _refusing: bool = False  # a refusal was logged; quiet until one leaves

    def admit(self, limit: int) -> bool:
        """Take a place for a new connection, or False when ``limit`` are open. Checked and
        taken in one step (no await), before the handshake: connections arriving at once
        cannot all slip past it. Every True must be paired with a ``release``."""
        if self.open >= limit:
            self.refused += 1
            if not self._refusing:
                self._refusing = True
                log.warning("%s", self.warning.format(open=self.open))
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """A connection ``admit`` let in has ended (closed, dropped or refused later on)."""
        self.open = max(0, self.open - 1)
        self._refusing = False

    async def refuse(
        self, request: web.Request, socket: web.WebSocketResponse, limit: int
    ) -> web.WebSocketResponse:
        """Complete the handshake and close at once with 1013 and the reason."""
        await socket.prepare(request)
        reason = self.reason.format(limit=limit)
        await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=reason.encode())
        return socket
