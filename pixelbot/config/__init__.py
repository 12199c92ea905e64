"""The streamer's ``config.yaml``: typed sections and the loader that checks a whole file at once.

- ``model``: the root ``Config``, the bot/database/platform/economy/xp sections, ``load_config``;
- ``redeems``, ``queue``, ``effects``: the sections for redeems and commands, the queue, TTS and
  wheels, and effect steps with OBS;
- ``types``: the base ``Section`` and shared field types (durations, counts, names);
- ``loader``: YAML with line numbers, ``${ENV}`` substitution, and readable messages.

Everyone else imports what they need from here or from the section's module.
"""

from pixelbot.config.model import (
    DEFAULT_CONFIG_PATH,
    Config,
    Currency,
    EconomySettings,
    load_config,
)

__all__ = ["DEFAULT_CONFIG_PATH", "Config", "Currency", "EconomySettings", "load_config"]
