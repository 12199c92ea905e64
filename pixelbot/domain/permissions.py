"""Who may do what: the role ladder of a chat, defined once. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

__all__ = ["LADDER", "Role", "has_permission", "highest_role"]

# Lowest to highest; each role includes every role below it.
Role = Literal["everyone", "follower", "subscriber", "vip", "moderator", "broadcaster"]
LADDER: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(LADDER)}


def highest_role(roles: Iterable[str]) -> str:
    ranked = [role for role in roles if role in _RANK]
    return max(ranked, key=_RANK.__getitem__, default="everyone")


def has_permission(roles: Iterable[str], required: str) -> bool:
    """Whether someone with ``roles`` may use something that needs ``required``."""
    return _RANK[highest_role(roles)] >= _RANK[required]
