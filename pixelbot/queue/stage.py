"""What a worker needs from an overlay page that shows its item: the ``Stage``.

A worker that has something to show on stream (a wheel spin, TTS audio) hands the stage an
outcome for the page and waits until a page reports that it finished showing it. The stage is
the web server's overlay hub (``pixelbot/web/hub.py``); the queue never knows about web pages.
No stage (the web server is off, or a scripted run): nothing is shown and nothing waits.
"""

from __future__ import annotations

from typing import Any, Protocol

from pixelbot.outcomes import Outcome

__all__ = ["Stage"]


class Stage(Protocol):
    def watching(self, overlay: str) -> bool:
        """Whether a page of this overlay (``wheel``, ``tts``) is open right now."""
        ...

    async def show(
        self,
        overlay: str,
        item_id: int,
        outcome: Outcome,
        *,
        page_timeout: float,
        end_within: float,
    ) -> dict[str, Any]:
        """Publish ``outcome`` for the overlay's pages and wait until one of them reports the
        end of item ``item_id``; return what the page reported.

        Raises ``OverlayUnavailable`` when no page of the overlay is open within
        ``page_timeout`` seconds, or none reports the end within ``end_within`` seconds after
        that. A worker cancelled while waiting (``!skip``) has the pages stop showing it."""
        ...
