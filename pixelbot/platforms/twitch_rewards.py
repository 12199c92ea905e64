"""Channel-point rewards on Twitch: created or updated from config.yaml at start, settled when
their queue item ends.

The bot manages only rewards its own client id created (Twitch lets an app update and settle
no others; ``only_manageable_rewards``). A redeem with ``twitch_reward`` is matched to one of
those by title; a missing one is created. One of ours that no redeem names any more is
disabled, not deleted: deleting a reward makes Twitch drop its redemptions still waiting in the
streamer's queue, and a streamer who re-adds the redeem gets the same reward (and its
history) back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pixelbot.config.redeems import RedeemSettings

__all__ = ["settle_redemption", "sync_rewards"]

log = logging.getLogger(__name__)


async def sync_rewards(
    http: Any, broadcaster_id: str, redeems: Mapping[str, RedeemSettings]
) -> dict[str, str]:
    """Make Twitch's rewards match the config; returns reward id -> redeem key."""
    found = await http.get_custom_reward(
        broadcaster_id=broadcaster_id, token_for=broadcaster_id, manageable=True
    )
    ours = {reward["title"]: reward for reward in found["data"]}
    mapping: dict[str, str] = {}
    for key, redeem in redeems.items():
        wanted = redeem.twitch_reward
        if wanted is None:
            continue
        title = wanted.title or redeem.title
        existing = ours.pop(title, None)
        if existing is None:
            created = await http.post_custom_reward(
                broadcaster_id=broadcaster_id,
                token_for=broadcaster_id,
                title=title,
                cost=wanted.cost,
            )
            reward_id = created["data"][0]["id"]
            log.info("twitch: created the channel-point reward %r", title)
        else:
            reward_id = existing["id"]
        await http.patch_custom_reward(
            broadcaster_id=broadcaster_id,
            token_for=broadcaster_id,
            reward_id=reward_id,
            cost=wanted.cost,
            prompt=wanted.prompt,
            enabled=redeem.enabled,
            user_input_required=wanted.user_input,
        )
        mapping[reward_id] = key
    for title, stale in ours.items():
        if stale.get("is_enabled", True):
            await http.patch_custom_reward(
                broadcaster_id=broadcaster_id,
                token_for=broadcaster_id,
                reward_id=stale["id"],
                enabled=False,
            )
            log.info("twitch: disabled the channel-point reward %r (no redeem names it)", title)
    return mapping


async def settle_redemption(
    http: Any, broadcaster_id: str, reward_id: str, redemption_id: str, fulfilled: bool
) -> None:
    await http.patch_custom_reward_redemption(
        broadcaster_id=broadcaster_id,
        token_for=broadcaster_id,
        reward_id=reward_id,
        id=redemption_id,
        status="FULFILLED" if fulfilled else "CANCELED",
    )
