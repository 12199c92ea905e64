"""The running bot, assembled: ``open_app`` builds everything in one place (``assembly``);
``Engine`` is the economy over the database; ``console_run`` drives ``bot.py run`` and
``bot.py console``."""

from pixelbot.app.engine import Engine, open_database, policy_from_config

__all__ = ["Engine", "open_database", "policy_from_config"]
