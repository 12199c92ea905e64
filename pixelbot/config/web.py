"""Config for the web server in the bot process: ``web:``.

It serves the overlay pages (OBS browser sources) and the dashboard. It listens on
``127.0.0.1`` unless told otherwise; ``port: 0`` takes any free port (tests).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pixelbot.config.loader import FieldProblems
from pixelbot.config.types import Duration, Section, Text, check_placeholders, integer

__all__ = [
    "ALERT_KINDS",
    "LOCAL_HOSTS",
    "MAX_DASHBOARD_CONNECTIONS",
    "MAX_OVERLAY_CONNECTIONS",
    "AlertTemplate",
    "AlertsOverlay",
    "DashboardSettings",
    "OverlaySettings",
    "TtsOverlay",
    "WebSettings",
    "WheelOverlay",
]

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_OVERLAY_CONNECTIONS = 32
MAX_DASHBOARD_CONNECTIONS = 16


class WheelOverlay(Section):
    """The wheel overlay (``/overlay/wheel``). With ``wait`` a spin is shown there before its
    prize is told, and fails (refunded) if no wheel page is open within ``page_timeout`` or
    the page does not report the end within ``spin_time`` + ``grace``. Without it, a spin
    waits for a page only while one is open."""

    wait: bool = False
    spin_time: Duration = timedelta(seconds=6)
    grace: Duration = timedelta(seconds=5)
    page_timeout: Duration = timedelta(seconds=10)


class TtsOverlay(Section):
    """The TTS overlay (``/overlay/tts``), used with ``tts.output: overlay``: no TTS page open
    within ``page_timeout`` fails the item (refunded); the page must report the end of the
    audio within its length + ``grace``."""

    page_timeout: Duration = timedelta(seconds=10)
    grace: Duration = timedelta(seconds=5)


# What each alert's template may use (besides {user} and {points}).
ALERT_KINDS: dict[str, set[str]] = {
    "follow": set(),
    "sub": {"months", "tier"},
    "gift": {"count", "tier"},
    "tip": {"amount", "currency", "message"},
    "cheer": {"bits", "message"},
    "raid": {"viewers"},
}


class AlertTemplate(Section):
    text: Text
    sound: Text | None = None  # a file in ``web.overlays.alerts.sounds_dir``
    duration: Duration | None = None  # default: ``web.overlays.alerts.duration``

    @field_validator("sound")
    @classmethod
    def _plain_file_name(cls, sound: str | None) -> str | None:
        if sound is not None and ("/" in sound or "\\" in sound or sound.startswith(".")):
            raise ValueError("must be a file name in sounds_dir, not a path")
        return sound


def _template(text: str) -> AlertTemplate:
    return AlertTemplate(text=text)


class AlertsOverlay(Section):
    """The alerts overlay (``/overlay/alerts``): one alert at a time, each shown ``duration``.
    Templates may use ``{user}``, ``{points}`` and the event's own figures."""

    duration: Duration = timedelta(seconds=5)
    sounds_dir: Text = "data/sounds"
    follow: AlertTemplate = Field(default_factory=lambda: _template("{user} just followed!"))
    sub: AlertTemplate = Field(
        default_factory=lambda: _template("{user} subscribed! ({months} months)")
    )
    gift: AlertTemplate = Field(default_factory=lambda: _template("{user} gifted {count} subs!"))
    tip: AlertTemplate = Field(
        default_factory=lambda: _template("{user} tipped {amount} {currency}!")
    )
    cheer: AlertTemplate = Field(default_factory=lambda: _template("{user} cheered {bits} bits!"))
    raid: AlertTemplate = Field(
        default_factory=lambda: _template("{user} is raiding with {viewers} viewers!")
    )

    @field_validator(*ALERT_KINDS)
    @classmethod
    def _placeholders(cls, template: AlertTemplate, info: ValidationInfo) -> AlertTemplate:
        extra = ALERT_KINDS[str(info.field_name)]
        try:
            check_placeholders(template.text, {"user", "points", *extra})
        except ValueError as exc:
            raise FieldProblems([(("text",), str(exc))]) from None
        return template

    def template(self, kind: str) -> AlertTemplate | None:
        return getattr(self, kind, None) if kind in ALERT_KINDS else None


class OverlaySettings(Section):
    wheel: WheelOverlay = Field(default_factory=WheelOverlay)
    alerts: AlertsOverlay = Field(default_factory=AlertsOverlay)
    tts: TtsOverlay = Field(default_factory=TtsOverlay)
    # Live connections open at once with the overlay key (every overlay page shares it): past
    # this a new one is refused, so a leaked key cannot pile up connections the bot feeds.
    # Room for each page in OBS, a preview or two, and reconnects not yet noticed as gone.
    max_connections: Annotated[int, BeforeValidator(integer), Field(ge=1, le=10_000)] = (
        MAX_OVERLAY_CONNECTIONS
    )


class DashboardSettings(Section):
    """``web.dashboard``: the operators' control panel at ``/dashboard``."""

    enabled: bool = True
    # The operators' password, normally "${PIXELBOT_DASHBOARD_PASSWORD:-}". Empty: no password,
    # a one-time login link is printed at start instead, which is allowed on a local host only.
    password: SecretStr | None = None
    session: Duration = timedelta(hours=12)  # how long a login lasts
    # Live connections open at once from dashboard pages (every tab of every operator keeps
    # one): past this a new one is refused, so a page stuck reconnecting, or a session in the
    # wrong hands, cannot pile up connections the bot feeds. Room for a few moderators with a
    # few tabs each, and reconnects not yet noticed as gone.
    max_connections: Annotated[int, BeforeValidator(integer), Field(ge=1, le=10_000)] = (
        MAX_DASHBOARD_CONNECTIONS
    )

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
    overlays: OverlaySettings = Field(default_factory=OverlaySettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    # Mark the dashboard's cookies Secure (sent over HTTPS only). Turn it on behind a TLS
    # reverse proxy: the bot itself speaks plain HTTP and cannot tell. Left off, a browser on
    # plain HTTP could not log in at all.
    secure_cookies: bool = False

    @field_validator("overlay_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, key: object) -> object:
        # "${PIXELBOT_OVERLAY_KEY:-}" with the variable unset: generate one
        return None if isinstance(key, str) and not key.strip() else key

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
        password = self.dashboard.password
        if public and password is not None and len(password.get_secret_value()) < 12:
            raise FieldProblems(
                [
                    (
                        ("dashboard", "password"),
                        f"must be at least 12 characters while {self.host} can be reached "
                        "from other machines",
                    )
                ]
            )
        return self

    @property
    def local_only(self) -> bool:
        """True when only this machine can reach the server."""
        return self.host in LOCAL_HOSTS
