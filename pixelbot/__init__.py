"""Pixel Bot: a self-hosted chat bot for live streamers."""

__version__ = "0.1.0"
