"""What a queue item carries: one typed payload per kind of item, stored as JSON.

The redeem that charges for an item writes its payload (``to_json``) in the same transaction;
the worker, the announcements and the moderator commands read it back (``payload_of``). The
JSON keys are the stored format: changing one needs a migration of the rows already queued.

- every payload: ``title``, the ``viewer`` who asked (identity and name), the ``channel`` to
  answer in, the ``redeem`` and the chat ``message`` that asked (a deleted message cancels it);
- ``TtsPayload``: the ``text`` to speak and the redeem's tts ``action`` settings;
- ``WheelPayload``: the ``action`` naming the wheel;
- ``AiPayload``: the viewer's ``text`` and the ``action`` with the redeem's ``prompt``;
- ``EffectPayload``: the ``action`` (a redeem's effect) or explicit ``steps`` (a wheel's
  effect prize, ``prize_of`` the spin), as dumped by the config models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pixelbot.domain.queue import QueueKind
from pixelbot.events import Viewer

__all__ = [
    "AiPayload",
    "EffectPayload",
    "ItemPayload",
    "Requester",
    "TtsPayload",
    "WheelPayload",
    "payload_of",
]


@dataclass(frozen=True)
class Requester:
    """Who asked for an item, as stored on it (a viewer without their roles)."""

    platform: str
    id: str
    login: str
    name: str

    @classmethod
    def of(cls, viewer: Viewer) -> Requester:
        return cls(viewer.platform, viewer.platform_user_id, viewer.login, viewer.display_name)

    def as_viewer(self) -> Viewer:
        return Viewer(self.platform, self.id, self.login, self.name)

    def to_json(self) -> dict[str, str]:
        return {"platform": self.platform, "id": self.id, "login": self.login, "name": self.name}

    @classmethod
    def from_json(cls, data: Any) -> Requester | None:
        if not isinstance(data, dict):
            return None
        login = str(data.get("login") or "")
        return cls(
            str(data.get("platform") or ""),
            str(data.get("id") or ""),
            login,
            str(data.get("name") or login or "someone"),
        )


@dataclass(frozen=True, kw_only=True)
class ItemPayload:
    kind: ClassVar[QueueKind]

    title: str = ""
    viewer: Requester | None = None
    channel: str | None = None
    redeem: str | None = None
    message: str | None = None  # the platform id of the chat message that asked
    text: str | None = None
    action: dict[str, Any] | None = None  # the redeem's action, dumped as JSON
    # A platform-native reward paid for it, "<reward id>:<redemption id>" (Twitch channel
    # points): settled there (fulfilled or refunded) when the item ends, not refunded here.
    reward: str | None = None

    @property
    def viewer_name(self) -> str:
        return self.viewer.name if self.viewer is not None else "someone"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "redeem": self.redeem,
            "title": self.title,
            "text": self.text,
            "action": self.action,
            "channel": self.channel,
            "message": self.message,
            "viewer": None if self.viewer is None else self.viewer.to_json(),
        }
        if self.reward is not None:
            data["reward"] = self.reward
        data.update(self._extra_json())
        return data

    def _extra_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _common(cls, data: dict[str, Any]) -> dict[str, Any]:
        action = data.get("action")
        text = data.get("text")
        return {
            "title": str(data.get("title") or ""),
            "viewer": Requester.from_json(data.get("viewer")),
            "channel": str(data["channel"]) if data.get("channel") else None,
            "redeem": str(data["redeem"]) if data.get("redeem") else None,
            "message": str(data["message"]) if data.get("message") else None,
            "text": None if text is None else str(text),
            "action": action if isinstance(action, dict) else None,
            "reward": str(data["reward"]) if data.get("reward") else None,
        }


@dataclass(frozen=True, kw_only=True)
class TtsPayload(ItemPayload):
    kind: ClassVar[QueueKind] = QueueKind.TTS

    @property
    def max_chars(self) -> int | None:
        value = (self.action or {}).get("max_chars")
        return int(value) if value else None

    @property
    def prefix_username(self) -> bool:
        return bool((self.action or {}).get("prefix_username", True))


@dataclass(frozen=True, kw_only=True)
class WheelPayload(ItemPayload):
    kind: ClassVar[QueueKind] = QueueKind.WHEEL

    @property
    def wheel(self) -> str:
        return str((self.action or {}).get("wheel") or "main")


@dataclass(frozen=True, kw_only=True)
class EffectPayload(ItemPayload):
    kind: ClassVar[QueueKind] = QueueKind.EFFECT

    steps: list[Any] | None = None  # explicit steps (a wheel prize); else from ``action``
    prize_of: int | None = None  # the spin that won this effect
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    def _extra_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        if self.steps is not None:
            data["steps"] = self.steps
        if self.prize_of is not None:
            data["prize_of"] = self.prize_of
        return data


@dataclass(frozen=True, kw_only=True)
class AiPayload(ItemPayload):
    kind: ClassVar[QueueKind] = QueueKind.AI

    @property
    def prompt(self) -> str | None:
        """The redeem's own instruction to the AI (``action.prompt``), if it has one."""
        value = (self.action or {}).get("prompt")
        return str(value) if value else None

    @property
    def speak(self) -> bool:
        """Whether the reply is also read aloud (``action.speak``)."""
        return bool((self.action or {}).get("speak", False))


_KNOWN = {
    "redeem",
    "title",
    "text",
    "action",
    "channel",
    "message",
    "viewer",
    "steps",
    "prize_of",
    "reward",
}


def payload_of(kind: str, data: dict[str, Any] | None) -> ItemPayload:
    """The typed payload of a stored item of ``kind`` (unknown keys are kept, not lost)."""
    data = data or {}
    common = ItemPayload._common(data)
    match kind:
        case QueueKind.TTS:
            return TtsPayload(**common)
        case QueueKind.WHEEL:
            return WheelPayload(**common)
        case QueueKind.EFFECT:
            steps = data.get("steps")
            prize_of = data.get("prize_of")
            return EffectPayload(
                **common,
                steps=steps if isinstance(steps, list) else None,
                prize_of=int(prize_of) if isinstance(prize_of, int) else None,
                extra={k: v for k, v in data.items() if k not in _KNOWN},
            )
        case _:
            return AiPayload(**common)
