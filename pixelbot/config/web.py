"""Config for the web server in the bot process: ``web:``.

It serves the overlay pages (OBS browser sources) and the dashboard. It listens on
``127.0.0.1`` unless told otherwise; ``port: 0`` takes any free port (tests).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from pixelbot.config.loader import FieldProblems
from pixelbot.config.types import Duration, Section, Text, integer

__all__ = ["LOCAL_HOSTS", "DashboardSettings", "WebSettings"]

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class DashboardSettings(Section):
    """``web.dashboard``: the operators' control panel at ``/dashboard``."""

    enabled: bool = True
    # The operators' password, normally "${PIXELBOT_DASHBOARD_PASSWORD:-}". Empty: no password,
    # a one-time login link is printed at start instead, which is allowed on a local host only.
    password: SecretStr | None = None
    session: Duration = timedelta(hours=12)  # how long a login lasts

    @field_validator("password")
    @classmethod
    def _empty_is_none(cls, password: SecretStr | None) -> SecretStr | None:
        if password is not None and not password.get_secret_value():
            return None
        return password

    @field_validator("session")
    @classmethod
    def _positive(cls, session: timedelta) -> timedelta:
        if session <= timedelta(0):
            raise ValueError("must be longer than zero")
        return session


class WebSettings(Section):
    enabled: bool = False
    host: Text = "127.0.0.1"
    port: Annotated[int, BeforeValidator(integer), Field(ge=0, le=65535)] = 8480
    # The read-only key in every overlay URL (``/overlay/wheel?key=...``). Unset: one is
    # generated on first start and kept encrypted in the database (``bot.py web urls``).
    overlay_key: SecretStr | None = None
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @field_validator("overlay_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (anyone who guesses it sees it)")
        return key

    @model_validator(mode="after")
    def _public_dashboard_needs_password(self) -> Self:
        public = self.enabled and self.dashboard.enabled and not self.local_only
        if public and self.dashboard.password is None:
            raise FieldProblems(
                [
                    (
                        ("host",),
                        f"{self.host} can be reached from other machines, so the dashboard "
                        "needs a password: set PIXELBOT_DASHBOARD_PASSWORD (read by "
                        "web.dashboard.password), or listen on 127.0.0.1",
                    )
                ]
            )
        return self

    @property
    def local_only(self) -> bool:
        """True when only this machine can reach the server."""
        return self.host in LOCAL_HOSTS
