"""Commands for the data: ``cleanup``, ``points history``, ``export`` and ``import``.

Registered on the ``main`` group of ``pixelbot.cli`` (which imports this module at its end);
each is a thin call into the same service the scheduled job or the bot uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pixelbot.app import open_database
from pixelbot.cli import (
    EXIT_PROBLEMS,
    _load,
    _require_existing,
    _run,
    config_option,
    main,
)
from pixelbot.clock import SystemClock
from pixelbot.db import migrate
from pixelbot.db.cleanup import CleanupReport, clean_up, vacuum_fully
from pixelbot.scheduler.jobs import tts_folder

__all__ = ["cleanup"]


@main.command("cleanup")
@config_option
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--vacuum",
    is_flag=True,
    help="Afterwards rewrite the SQLite file once so later cleanups give space back "
    "(needs the bot stopped).",
)
def cleanup(config_path: Path | None, dry_run: bool, as_json: bool, vacuum: bool) -> None:
    """Delete old chat events, finished queue items and TTS files (never a ledger row),
    reclaim the space, and run db verify: the same as the nightly job."""
    config = _load(config_path)
    _require_existing(config)

    async def clean() -> tuple[CleanupReport, str | None]:
        database = open_database(config)
        try:
            await migrate.upgrade(database)
            report = await clean_up(
                database,
                config.retention,
                SystemClock().now(),
                tts_dir=tts_folder(config, None),  # as the bot: from the cwd
                dry_run=dry_run,
            )
            rewritten = None if dry_run or not vacuum else await vacuum_fully(database)
            return report, rewritten
        finally:
            await database.dispose()

    report, rewritten = _run(clean())
    figures = report.figures()
    if rewritten is not None:
        figures["rewritten"] = rewritten
    if as_json:
        click.echo(json.dumps(figures, indent=2))
    else:
        verb = "would remove" if dry_run else "removed"
        removed = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.removed.items())
        click.echo(f"{verb} {removed}")
        freed = report.bytes_freed
        click.echo(
            f"bytes freed: {freed.get('database', 0):,} in the database, "
            f"{freed.get('tts_files', 0):,} in TTS files"
        )
        click.echo(report.vacuum)
        if rewritten is not None:
            click.echo(rewritten)
        for violation in figures["violations"]:
            click.echo(f"  verify: {violation}", err=True)
        click.echo("db verify: ok" if report.ok else "db verify: FAILED")
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)
