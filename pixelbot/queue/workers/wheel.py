"""The prize wheel worker: draw a prize, and say what it is.

The draw comes from an injected RNG and is recorded on the item and in the event log (the
roll, the prize, its chance), so every spin can be audited. Prizes are not paid here: the
worker returns them as payouts (points, XP) or a follow-up effect, and the runner commits them
in the same transaction that marks the spin done, with the spin as their reference.

With a stage (the web server's overlays), the recorded spin is shown on the wheel overlay
before the prize is told: the page animates the wheel onto the recorded prize and reports the
end. With ``web.overlays.wheel.wait`` the spin needs that page (none open, or no end reported
in time: the item fails and is refunded); without it, it waits only for a page that is open.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pixelbot.config import Config
from pixelbot.config.queue import WheelPrize
from pixelbot.domain.queue import QueueKind
from pixelbot.domain.wheel import draw
from pixelbot.economy.payloads import EffectPayload, WheelPayload
from pixelbot.errors import ItemFailed, OverlayUnavailable
from pixelbot.outcomes import WheelSpinning
from pixelbot.queue.stage import Stage
from pixelbot.queue.worker import Done, FollowUp, Job, Payout

__all__ = ["WheelWorker"]


class WheelWorker:
    kind = "wheel"

    def __init__(
        self,
        config: Callable[[], Config],
        rng: random.Random,
        effect_possible: Callable[[str], bool] = lambda effect: True,
        stage: Stage | None = None,
    ) -> None:
        """``effect_possible(name)``: whether a named effect can run now (one that needs OBS
        cannot while OBS is off). Prizes that cannot be given are left off the wheel for that
        spin, so nobody wins a prize that then fails."""
        self._config = config  # read per spin, so a reloaded config applies to the next one
        self._rng = rng
        self._effect_possible = effect_possible
        self._stage = stage

    async def perform(self, job: Job) -> Done:
        payload = job.payload
        name = payload.wheel if isinstance(payload, WheelPayload) else "main"
        wheel = self._config().wheels.get(name)
        if wheel is None:
            raise ItemFailed(f"there is no wheel called {name!r} any more")
        possible = [
            index
            for index, prize in enumerate(wheel.prizes)
            if prize.effect is None or self._effect_possible(prize.effect)
        ]
        if not possible:
            raise ItemFailed("none of this wheel's prizes can be given right now")
        result = draw([wheel.prizes[index].weight for index in possible], self._rng)
        prize_index = possible[result.index]  # its place on the configured wheel
        prize = wheel.prizes[prize_index]
        left_off = [p.name for index, p in enumerate(wheel.prizes) if index not in possible]
        shown = await self._show(
            WheelSpinning(
                job.item_id,
                name,
                tuple((wheel.prizes[index].name, wheel.prizes[index].weight) for index in possible),
                result.index,
                result.roll,
                job.viewer_name,
                self._config().web.overlays.wheel.spin_time.total_seconds(),
            )
        )
        user = job.viewer_name
        values = {"user": user, "prize": prize.name}
        spin_line = self._pick(wheel.spin_lines).format(**values)
        chat = [spin_line, self._pick(wheel.prize_lines).format(**values)]
        if prize.message is not None:
            chat.append(prize.message.format(**values))
        payouts, follow_ups = self._payouts(job, name, prize)
        return Done(
            summary=f"#{job.item_id} {user} won {prize.name} (roll {result.roll:.4f})",
            result={
                "wheel": name,
                "roll": result.roll,
                "prize_index": prize_index,
                "prize": prize.name,
                "prize_kind": prize.kind,
                "chance": round(result.chance, 6),
                "left_off": left_off,  # prizes that could not be given at this spin
                **({"shown": shown} if shown is not None else {}),  # the overlay's report
            },
            chat=tuple(chat),
            payouts=payouts,
            follow_ups=follow_ups,
        )

    async def _show(self, spin: WheelSpinning) -> dict[str, object] | None:
        """Show the spin on the wheel overlay and wait for its end; None if not shown."""
        settings = self._config().web.overlays.wheel
        stage = self._stage
        if stage is None or not (settings.wait or stage.watching("wheel")):
            return None
        try:
            return await stage.show(
                "wheel",
                spin.item_id,
                spin,
                page_timeout=settings.page_timeout.total_seconds(),
                end_within=(settings.spin_time + settings.grace).total_seconds(),
            )
        except OverlayUnavailable:
            if settings.wait:
                raise
            return None  # (a page that closed mid-spin: the prize is told all the same)

    def _pick(self, lines: list[str]) -> str:
        return lines[0] if len(lines) == 1 else self._rng.choice(lines)

    def _payouts(
        self, job: Job, wheel: str, prize: WheelPrize
    ) -> tuple[tuple[Payout, ...], tuple[FollowUp, ...]]:
        reason = f"wheel:{wheel}:{prize.name}"
        if (prize.points or prize.xp) and job.user_id is not None:
            return (Payout(job.user_id, reason, prize.points or 0, prize.xp or 0),), ()
        if prize.effect is not None:
            payload = EffectPayload(
                title=prize.name,
                action={"type": "effect", "effect": prize.effect},
                viewer=job.payload.viewer,
                channel=job.payload.channel,
                prize_of=job.item_id,
            )
            return (), (FollowUp(QueueKind.EFFECT, payload.to_json()),)
        return (), ()

    async def close(self) -> None:
        return None
