"""Every platform a streamer can configure has an adapter, and one that had none would be
refused by name before anything starts (``bot.py check-config`` and ``run`` exit 2 on it)."""

from __future__ import annotations

import pytest

from pixelbot.config import Config
from pixelbot.config.model import PlatformsSettings
from pixelbot.platforms import registry
from pixelbot.platforms.registry import BUILDERS, unbuilt_platforms

pytestmark = pytest.mark.no_database


def test_every_configurable_platform_has_an_adapter() -> None:
    assert set(BUILDERS) == set(PlatformsSettings.model_fields)


def test_an_enabled_platform_without_an_adapter_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    without = {name: build for name, build in BUILDERS.items() if name != "joystick"}
    monkeypatch.setattr(registry, "BUILDERS", without)
    config = Config.model_validate(
        {"platforms": {"joystick": {"enabled": True, "client_id": "a", "client_secret": "b"}}}
    )
    assert [(i.path, i.message) for i in unbuilt_platforms(config)] == [
        (
            "platforms.joystick.enabled",
            "the joystick adapter is not part of this version yet; set it to false",
        )
    ]


def test_no_platform_at_all_is_named() -> None:
    config = Config.model_validate({"platforms": {"console": {"enabled": False}}})
    assert [issue.path for issue in unbuilt_platforms(config)] == ["platforms"]
