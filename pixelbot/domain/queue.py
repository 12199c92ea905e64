"""The queue's vocabulary, defined once: the kinds of item (one worker each), the states an
item goes through, and which kind a redeem's action becomes. Pure, no I/O.

``QueueKind`` and ``ItemStatus`` are string enums, so they compare equal to the strings the
database stores (``QueueKind.TTS == "tts"``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ItemStatus", "QueueKind", "kind_of_action"]


class QueueKind(StrEnum):
    TTS = "tts"
    WHEEL = "wheel"
    EFFECT = "effect"
    AI = "ai"


class ItemStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A redeem action's ``type`` -> the queue its items go to. The obs, sound and chat actions
# are one-step effects.
_ACTION_KINDS = {
    "tts": QueueKind.TTS,
    "wheel": QueueKind.WHEEL,
    "ai": QueueKind.AI,
    "effect": QueueKind.EFFECT,
    "obs": QueueKind.EFFECT,
    "sound": QueueKind.EFFECT,
    "chat": QueueKind.EFFECT,
}


def kind_of_action(action_type: str) -> QueueKind:
    return _ACTION_KINDS[action_type]
