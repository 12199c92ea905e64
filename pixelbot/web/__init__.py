"""The bot's web face: overlay pages for OBS browser sources and the operator dashboard.

``server`` runs one aiohttp application in the bot process; ``deps`` is what its pages may use;
each page family is one module with ``add_routes(app, deps)`` (``overlay``, ``dashboard``).
"""
