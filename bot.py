"""Pixel Bot entry point: ``python bot.py [subcommand]``; see ``python bot.py --help``."""

from pixelbot.cli import main

if __name__ == "__main__":
    main()
