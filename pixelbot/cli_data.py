"""Commands for the data: ``cleanup``, ``points history``, ``export`` and ``import``.

Registered on the ``main`` group of ``pixelbot.cli`` (which imports this module at its end);
each is a thin call into the same service the scheduled job or the bot uses.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click
import orjson

from pixelbot.app import Engine, open_database
from pixelbot.cli import (
    EXIT_PROBLEMS,
    _load,
    _require_existing,
    _run,
    config_option,
    main,
    points,
)
from pixelbot.clock import SystemClock
from pixelbot.db import migrate
from pixelbot.db.cleanup import CleanupReport, clean_up, vacuum_fully
from pixelbot.economy.exports import EXPORTS, HistoryRow, count_rows, export_rows, ledger_history
from pixelbot.economy.import_formats import ParsedExport, read_firebot, read_streamelements
from pixelbot.economy.imports import ImportReport, import_balances
from pixelbot.scheduler.jobs import tts_folder

__all__ = ["cleanup", "export", "import_", "points_history"]


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


# ------------------------------------------------------------------------------ points history


@points.command("history")
@config_option
@click.argument("name")
@click.option("--platform", default=None, help="Only look on this platform (e.g. twitch).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def points_history(
    config_path: Path | None, name: str, platform: str | None, as_json: bool
) -> None:
    """A viewer's points ledger, row by row, with the running balance."""
    config = _load(config_path)
    _require_existing(config)

    async def read() -> tuple[str, list[HistoryRow]]:
        async with Engine.open(config) as engine:
            user_id = await engine.wallets.find(name, platform)
            who = (await engine.wallets.summary(user_id)).display_name
            return who, [row async for row in ledger_history(engine.db, user_id)]

    who, rows = _run(read())
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_dict()))
        return
    click.echo(f"{who}: {len(rows)} ledger row(s)")
    click.echo(f"{'when (UTC)':<19}  {'amount':>9}  {'balance':>9}  {'kind':<8}  reason")
    for row in rows:
        flag = "" if row.running == row.balance_after else f"  (sum so far: {row.running})"
        who_did = f" by {row.actor}" if row.actor else ""
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.amount:>+9,}  {row.balance_after:>9,}  "
            f"{row.kind:<8}  {row.reason}{who_did}{flag}"
        )


# ------------------------------------------------------------------------------------- export


@main.command("export")
@config_option
@click.argument("what", type=click.Choice(sorted(EXPORTS)))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to FILE instead of the standard output.",
)
def export(config_path: Path | None, what: str, fmt: str, output: Path | None) -> None:
    """Write every row of users, ledger or events as CSV or JSON lines (streamed)."""
    config = _load(config_path)
    _require_existing(config)
    # A bar on the terminal, unless the rows themselves are going to that terminal.
    show_bar = sys.stderr.isatty() and (output is not None or not sys.stdout.isatty())

    async def write(out: TextIO) -> int:
        database = open_database(config)
        try:
            await migrate.upgrade(database)
            total = await count_rows(database, what)
            emit = _writer(out, fmt, EXPORTS[what].columns)
            written = 0
            bar_file = sys.stderr if show_bar else io.StringIO()
            with click.progressbar(length=total, label=f"exporting {what}", file=bar_file) as bar:
                async for row in export_rows(database, what):
                    emit(row)
                    written += 1
                    if written % 500 == 0:
                        bar.update(500)
                bar.update(written % 500)
            return written
        finally:
            await database.dispose()

    if output is None:
        written = _run(write(sys.stdout))
    else:
        with output.open("w", encoding="utf-8", newline="") as out:
            written = _run(write(out))
        click.echo(f"wrote {written} {what} row(s) to {output}", err=True)


def _writer(out: TextIO, fmt: str, columns: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    if fmt == "jsonl":

        def jsonl(row: dict[str, Any]) -> None:
            out.write(orjson.dumps(row, default=_plain).decode())
            out.write("\n")

        return jsonl
    writer = csv.writer(out)
    writer.writerow(columns)

    def csv_row(row: dict[str, Any]) -> None:
        writer.writerow([_cell(row[column]) for column in columns])

    return csv_row


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else value


# ------------------------------------------------------------------------------------- import


@main.command("import")
@config_option
@click.argument("source", type=click.Choice(["streamelements", "firebot"]))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--platform",
    default="twitch",
    show_default=True,
    help="The platform whose user ids and logins the file holds.",
)
@click.option(
    "--currency",
    default=None,
    help="Firebot: the id of the currency to import (needed when there are several).",
)
def import_(
    config_path: Path | None, source: str, file: Path, platform: str, currency: str | None
) -> None:
    """Bring viewers' balances in from a StreamElements points CSV or Firebot's users.db.

    One ledgered grant per viewer; running it again changes nothing. Exit 1 if a row could
    not be read or matched (each is listed with its line; every other row is imported)."""
    config = _load(config_path)
    _require_existing(config)

    async def bring_in() -> ImportReport:
        parsed: ParsedExport = (
            read_streamelements(file)
            if source == "streamelements"
            else read_firebot(file, currency)
        )
        async with Engine.open(config) as engine:
            return await import_balances(
                engine.db, engine.ledger, parsed, source=source, platform=platform
            )

    report = _run(bring_in())
    noun = config.bot.currency.plural
    click.echo(
        f"imported {report.imported} viewer(s), {report.points:,} {noun}: {report.by_id} "
        f"matched by {platform} id, {report.new} new (by id), {report.by_login} matched by login"
    )
    if report.already:
        click.echo(f"{report.already} already imported by an earlier run (unchanged)")
    if report.zero:
        click.echo(f"{report.zero} with no {noun} to bring in")
    for row in report.unmatched:
        click.echo(
            f"line {row.line}: {row.login}: no {platform} id in the file and no single viewer "
            "with that login here; not imported (import again once they have chatted)",
            err=True,
        )
    for bad in report.bad:
        click.echo(str(bad), err=True)
    if report.unmatched or report.bad:
        sys.exit(EXIT_PROBLEMS)
