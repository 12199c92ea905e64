"""The chat command layer: cogs of commands, their arguments, checks and replies.

Cogs see a ``Context`` (who, where, ``reply()``), never a platform object.
"""
