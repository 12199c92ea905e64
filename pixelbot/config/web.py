"""Config for the web server in the bot process: ``web:``.

It serves the overlay pages (OBS browser sources) and the dashboard. It listens on
``127.0.0.1`` unless told otherwise; ``port: 0`` takes any free port (tests).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from pixelbot.config.types import Section, Text, integer

__all__ = ["LOCAL_HOSTS", "WebSettings"]

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class WebSettings(Section):
    enabled: bool = False
    host: Text = "127.0.0.1"
    port: Annotated[int, BeforeValidator(integer), Field(ge=0, le=65535)] = 8480
    # The read-only key in every overlay URL (``/overlay/wheel?key=...``). Unset: one is
    # generated on first start and kept encrypted in the database (``bot.py web urls``).
    overlay_key: SecretStr | None = None

    @field_validator("overlay_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (anyone who guesses it sees it)")
        return key

    @property
    def local_only(self) -> bool:
        """True when only this machine can reach the server."""
        return self.host in LOCAL_HOSTS
