"""The command line: ``python bot.py [subcommand]`` (same as the ``pixelbot`` console script).

Exit codes: 0 ok, 1 a check found problems (``db verify``), 2 the configuration is invalid
(nothing was started).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from pixelbot.app import Engine, open_database
from pixelbot.app.console_run import run_bot, run_console
from pixelbot.app.replay import run_replay
from pixelbot.clock import SystemClock
from pixelbot.commands.names import declared_command_names
from pixelbot.config import DEFAULT_CONFIG_PATH, Config, load_config
from pixelbot.db import migrate
from pixelbot.db.backup import (
    BackupCheck,
    BackupRun,
    list_backups,
    restore_backup,
    restore_postgresql,
    take_backup,
    verify_backup,
)
from pixelbot.db.copy import BATCH_SIZE, CopyReport, copy_database, total_rows
from pixelbot.db.engine import Database, sqlite_file
from pixelbot.db.verify import check_integrity, verify
from pixelbot.domain.durations import format_duration
from pixelbot.errors import ConfigError, PixelbotError, PlatformError, VaultError
from pixelbot.platforms.joystick_auth import exchange_code, install_url, new_state
from pixelbot.platforms.registry import unbuilt_platforms
from pixelbot.platforms.twitch_auth import (
    REQUIRED_SCOPES,
    device_code_flow,
    token_from_validation,
    validate,
)
from pixelbot.scheduler.jobs import JOBS
from pixelbot.scheduler.runner import LastRun, last_runs, trigger_for
from pixelbot.vault import TokenInfo, TokenVault, load_key
from pixelbot.web.keys import new_overlay_key, overlay_key, overlay_lines

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_PROBLEMS = 1
EXIT_CONFIG = 2


def config_option(fn: F) -> F:
    """``--config PATH`` on every command; before or after the subcommand name, same effect."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=None,
        help=f"The configuration file [default: {DEFAULT_CONFIG_PATH}].",
    )(fn)


def _config_path(given: Path | None) -> Path:
    if given is not None:
        return given
    root: Path | None = click.get_current_context().find_root().params.get("config_path")
    return root or DEFAULT_CONFIG_PATH


def _load(given: Path | None) -> Config:
    """Load the config or stop here with every error listed and exit code 2."""
    config_path = _config_path(given)
    try:
        config = load_config(config_path, command_names=declared_command_names)
        unbuilt = unbuilt_platforms(config)
        if unbuilt:
            raise ConfigError(unbuilt)
        return config
    except ConfigError as exc:
        click.echo(f"{config_path}: {len(exc.issues)} problem(s), nothing was started:", err=True)
        for issue in exc.issues:
            click.echo(f"  {issue}", err=True)
        sys.exit(EXIT_CONFIG)


def _require_existing(config: Config) -> None:
    """Commands that inspect a database must not create an empty one at a mistyped path."""
    path = sqlite_file(config.database.url)
    if path is not None and not path.exists():
        click.echo(
            f"error: no database at {path} (start the bot once, or run `python bot.py db upgrade`)",
            err=True,
        )
        sys.exit(EXIT_PROBLEMS)


def _lenient_stdin() -> None:
    """Read the keyboard (or a pipe) as UTF-8, bad bytes as U+FFFD: a strict stdin ended the
    live console at the first invalid byte, a lenient one (surrogateescape) passed text on that
    the database then refused. Replies may carry U+FFFD back out, so stdout must not choke."""
    for stream, errors in ((sys.stdin, "replace"), (sys.stdout, "backslashreplace")):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors=errors)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except PixelbotError as exc:
        logging.getLogger(__name__).debug("the details, for -v:", exc_info=exc)
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)


@click.group(invoke_without_command=True)
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Pixel Bot: points, XP and rewards for your stream's chat."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if ctx.invoked_subcommand is None:
        ctx.invoke(run, config_path=config_path)


@main.command()
@config_option
@click.option(
    "--record",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=(
        "Append every raw inbound Twitch / Discord / Joystick frame to FILE (JSONL, credentials "
        "redacted; with several on, each to FILE.<platform>.jsonl beside it)."
    ),
)
def run(config_path: Path | None, record: Path | None) -> None:
    """Start the bot on every enabled platform (the console stream when none is)."""
    config = _load(config_path)
    _lenient_stdin()
    if record is not None:
        config = with_recording(config, record)
    if config.platforms.twitch.enabled:
        _run_vault(_readable_vault(config))  # a changed key stops here: exit 2, one line
    _run(run_bot(config, _config_path(config_path)))


@main.command()
@config_option
@click.option(
    "--script",
    # Bad bytes become U+FFFD and the run goes on: one stray byte must not end a script.
    type=click.File("r", encoding="utf-8", errors="replace"),
    default=None,
    help="Run the lines of FILE (- for stdin) on a simulated clock, then exit.",
)
def console(config_path: Path | None, script: TextIO | None) -> None:
    """The console stream: interactive, or a deterministic script."""
    config = _load(config_path)
    if script is None:
        _lenient_stdin()
    # (split on newlines only: splitlines() would also break a chat line at U+2028 and friends)
    lines = None if script is None else script.read().split("\n")
    _run(run_console(config, _config_path(config_path), script=lines))


@main.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate the configuration: prints ok, or every error with its line (exit 2)."""
    _load(config_path)
    click.echo("ok")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Apply pending migrations."""
    config = _load(config_path)

    async def upgrade() -> str | None:
        database = open_database(config)
        try:
            await migrate.upgrade(database)
            return await migrate.current_revision(database)
        finally:
            await database.dispose()

    click.echo(f"database at revision {_run(upgrade())}")


@db.command("verify")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--full", is_flag=True, help="Also compare every index with its table (slower).")
def db_verify(config_path: Path | None, as_json: bool, full: bool) -> None:
    """Check the file and that every balance equals its ledger (exit 1 listing violations)."""
    config = _load(config_path)

    _require_existing(config)

    async def check() -> dict[str, Any]:
        database = open_database(config)
        try:
            report = await check_integrity(database, full=full)
            if not report.ok:  # a damaged file: report it, and don't migrate (write) into it
                return report.as_dict()
            await migrate.upgrade(database)
            return (await verify(database, checked=True)).as_dict()
        finally:
            await database.dispose()

    report = _run(check())
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        counts = ", ".join(f"{n} {table}" for table, n in report["counts"].items())
        click.echo(f"checked {counts}" if counts else "checked the database file")
        for violation in report["violations"]:
            who = f" (user {violation['user_id']})" if violation["user_id"] is not None else ""
            click.echo(f"  {violation['check']}{who}: {violation['detail']}")
        click.echo("ok" if report["ok"] else f"{len(report['violations'])} violation(s)")
    if not report["ok"]:
        sys.exit(EXIT_PROBLEMS)


@db.command("copy")
@config_option
@click.option(
    "--to",
    "target_url",
    required=True,
    help="The database to copy into, e.g. postgresql+asyncpg://user:pass@host/pixel "
    "(empty, or left by an interrupted copy, which resumes).",
)
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, help="Rows per transaction.")
def db_copy(config_path: Path | None, target_url: str, batch_size: int) -> None:
    """Copy the whole database to another one (SQLite <-> PostgreSQL), then verify the copy.

    Stop the bot first. Exit 1 if the copy's counts, ledger sums or `db verify` disagree."""
    config = _load(config_path)
    _require_existing(config)
    shown = make_url(target_url).render_as_string(hide_password=True)  # never print a password

    async def copy() -> CopyReport:
        source, target = open_database(config), Database(target_url)
        try:
            await migrate.upgrade(source)
            total = await total_rows(source)
            with click.progressbar(
                length=total, label=f"copying {total} rows to {shown}", file=sys.stderr
            ) as bar:
                return await copy_database(
                    source, target, batch_size=batch_size, progress=lambda _t, n: bar.update(n)
                )
        finally:
            await target.dispose()
            await source.dispose()

    report = _run(copy())
    for key, value in report.source.items():
        click.echo(f"{key}: {value}" + ("" if report.target.get(key) == value else " MISMATCH"))
    for violation in report.verified.violations if report.verified else []:
        click.echo(f"  verify: {violation.check}: {violation.detail}")
    click.echo("ok" if report.ok else "the copy differs from the source")
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)


@db.command("revision", hidden=True)
@config_option
@click.option("-m", "--message", required=True, help="Why the schema changes.")
def db_revision(config_path: Path | None, message: str) -> None:
    """(developers) Generate a migration from the models."""
    config = _load(config_path)

    async def generate() -> None:
        database = open_database(config)
        try:
            await migrate.upgrade(database)
            await migrate.revision(database, message)
        finally:
            await database.dispose()

    _run(generate())


@main.group()
def points() -> None:
    """Look at viewers' wallets."""


@points.command("show")
@config_option
@click.argument("name")
@click.option("--platform", default=None, help="Only look on this platform (e.g. console).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def points_show(config_path: Path | None, name: str, platform: str | None, as_json: bool) -> None:
    """Show a viewer's points, XP and level."""
    config = _load(config_path)

    _require_existing(config)

    async def show() -> dict[str, object]:
        async with Engine.open(config) as engine:
            user_id = await engine.wallets.find(name, platform)
            return (await engine.wallets.summary(user_id)).as_dict()

    summary = _run(show())
    if as_json:
        click.echo(json.dumps(summary))
    else:
        currency = config.bot.currency
        noun = currency.singular if summary["points"] == 1 else currency.plural
        click.echo(
            f"{summary['user']}: {summary['points']} {noun}, "
            f"{summary['xp']} XP, level {summary['level']}"
        )


# ----------------------------------------------------------------------------- backups and jobs


def _backup_folder(config: Config) -> Path:
    return Path(config.backup.dir)


@main.group()
def backup() -> None:
    """Verified backups of the database, and restores."""


@backup.command("now")
@config_option
def backup_now(config_path: Path | None) -> None:
    """Take a backup now (the same as the scheduled job): copy, verify, rotate."""
    config = _load(config_path)
    _require_existing(config)

    async def take() -> BackupRun:
        async with Engine.open(config) as engine:
            return await take_backup(engine.db, config.backup, engine.clock.now())

    run = _run(take())
    if run.file is None:
        click.echo(f"error: the copy failed verification; kept aside as {run.rejected}", err=True)
        for problem in run.check.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"backed up to {run.file.path} ({run.file.size:,} bytes; {_verified(run.check)})")
    for removed in run.removed:
        click.echo(f"  rotated out {removed.name}")


def _verified(check: BackupCheck, label: str = "verified: ") -> str:
    """How far a good check went, in words: never "verified" for an archive-only check."""
    if check.depth != "full":
        return f"NOT fully verified: {check.note}"
    counts = ", ".join(f"{n} {table}" for table, n in check.counts.items())
    return f"{label}{counts}"


@backup.command("list")
@config_option
def backup_list(config_path: Path | None) -> None:
    """The backups kept, oldest first."""
    config = _load(config_path)
    backups = list_backups(_backup_folder(config))
    if not backups:
        click.echo(f"no backups in {_backup_folder(config)}")
    for found in backups:
        click.echo(
            f"{found.path.name}  {found.size:>12,} bytes  {found.taken_at:%Y-%m-%d %H:%M} UTC"
        )


@backup.command("verify")
@config_option
@click.argument("file", type=click.Path(path_type=Path))
def backup_verify(config_path: Path | None, file: Path) -> None:
    """Check a backup: its checksum, its integrity, and `db verify` on the database inside.

    A PostgreSQL backup (.pgdump): its checksum, `pg_restore --list`, and with a PostgreSQL
    database configured, a restore into a scratch database there that `db verify` checks."""
    config = _load(config_path)
    check = _run(verify_backup(file, config.database.url))
    if not check.ok:
        click.echo(f"{file.name}: NOT a good backup", err=True)
        for problem in check.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"{file.name}: ok ({_verified(check, label='')})")


@backup.command("restore")
@config_option
@click.argument("file", type=click.Path(path_type=Path))
def backup_restore(config_path: Path | None, file: Path) -> None:
    """Replace the database with a backup (refused while a bot runs on it)."""
    config = _load(config_path)
    database = sqlite_file(config.database.url)
    if database is None:
        _restore_postgresql(config, file)
        return
    restored = _run(restore_backup(file, database, SystemClock().now()))
    if restored.replaced is not None:
        click.echo(f"the database that was there is kept as {restored.replaced}")
    if not restored.check.ok:
        click.echo("error: the restored database does not verify:", err=True)
        for problem in restored.check.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"restored {file.name} to {database}; db verify: ok")


def _restore_postgresql(config: Config, file: Path) -> None:
    restored = _run(
        restore_postgresql(file, config.database.url, SystemClock().now(), _backup_folder(config))
    )
    if restored.replaced_database is not None:
        click.echo(f"the database that was there is kept as {restored.replaced_database}")
    if restored.safety_copy is not None:
        click.echo(f"the data that was there is kept as the dump {restored.safety_copy}")
    if not restored.check.ok:
        click.echo("error: the restored database does not verify:", err=True)
        for problem in restored.check.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"restored {file.name}; db verify: ok")


@main.command("jobs")
@config_option
def jobs(config_path: Path | None) -> None:
    """Each scheduled job: its schedule, its next run, and how its last run went."""
    config = _load(config_path)
    _require_existing(config)

    async def read() -> dict[str, LastRun]:
        async with Engine.open(config) as engine:
            return await last_runs(engine.db)

    runs = _run(read())
    now = SystemClock().now()
    for name, job in JOBS.items():
        schedule = job.schedule(config)
        when = f"every {format_duration(schedule.every)}" if schedule.every else schedule.cron
        if not schedule.enabled:
            head = f"{name}: off"
        else:
            upcoming = trigger_for(schedule).get_next_fire_time(None, now)
            head = f"{name}: {when}; next {upcoming:%Y-%m-%d %H:%M %Z}"
        last = runs.get(name)
        if last is None:
            tail = "never ran"
        elif last.outcome == "failed":
            tail = f"last run {last.started_at:%Y-%m-%d %H:%M} UTC failed: {last.error}"
        else:
            tail = f"last run {last.started_at:%Y-%m-%d %H:%M} UTC {last.outcome}"
        click.echo(f"{head} ({job.what}); {tail}")


# ---------------------------------------------------------------- auth: platform tokens (vault)
# Tokens go into the vault (pixelbot/vault.py), encrypted; nothing here prints a token.

EXIT_VAULT = 2


def _run_vault(coro: Coroutine[Any, Any, T]) -> T:
    """Like ``_run``, but a vault that cannot be read exits 2 with its one line."""
    try:
        return asyncio.run(coro)
    except VaultError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_VAULT)
    except PixelbotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)


@asynccontextmanager
async def _open_vault(config: Config) -> AsyncIterator[TokenVault]:
    key = load_key()  # PIXELBOT_SECRET_KEY, or the key file
    database = open_database(config)
    try:
        await migrate.upgrade(database)
        yield TokenVault(database, key, SystemClock())
    finally:
        await database.dispose()


async def _readable_vault(config: Config) -> None:
    async with _open_vault(config) as vault:
        await vault.list()


@main.group()
def auth() -> None:
    """Store and list platform tokens (encrypted in the database)."""


@auth.command("twitch")
@config_option
@click.option("--access-token", default=None, help="Store a user access token obtained elsewhere.")
@click.option("--refresh-token", default=None, help="Its refresh token (lets the bot renew it).")
@click.option(
    "--account",
    type=click.Choice(["bot", "broadcaster"]),
    default="bot",
    show_default=True,
    help="Which account logs in (the scopes asked for differ).",
)
def auth_twitch(
    config_path: Path | None, access_token: str | None, refresh_token: str | None, account: str
) -> None:
    """Log a Twitch account in (Device Code flow), or store a token obtained elsewhere."""
    config = _load(config_path)
    twitch = config.platforms.twitch

    async def store() -> str:
        access, refresh = access_token, refresh_token
        if access is None:
            client_id = twitch.client_id.get_secret_value() if twitch.client_id else ""
            if not client_id:
                raise PlatformError("twitch: set platforms.twitch.client_id to log in")
            got = await device_code_flow(
                client_id, REQUIRED_SCOPES[account], twitch.auth_url, show=click.echo
            )
            access, refresh = got.access_token, got.refresh_token
        found = await validate(access, twitch.auth_url)
        async with _open_vault(config) as vault:
            now = SystemClock().now()
            await vault.store(token_from_validation(access, refresh, found, now))
        role = "bot" if found.user_id == twitch.bot_id else "broadcaster"
        if twitch.channel and found.login.lower() != twitch.channel.lower() and role != "bot":
            role = "other"
        missing = [s for s in REQUIRED_SCOPES.get(role, ()) if s not in found.scopes]
        lines = [
            f"stored the twitch token of {found.login} (user id {found.user_id}, {role} account)",
            f"scopes: {' '.join(found.scopes) or '(none)'}",
        ]
        if missing:
            lines.append(f"missing scopes for the {role} account: {' '.join(missing)}")
        return "\n".join(lines)

    click.echo(_run_vault(store()))


@auth.command("joystick")
@config_option
@click.option("--code", default=None, help="The code Joystick gave after the install.")
def auth_joystick(config_path: Path | None, code: str | None) -> None:
    """Install the bot on a Joystick.tv channel (OAuth authorization code)."""
    config = _load(config_path)
    joystick = config.platforms.joystick
    client_id = joystick.client_id.get_secret_value() if joystick.client_id else ""
    secret = joystick.client_secret.get_secret_value() if joystick.client_secret else ""
    if not client_id or not secret:
        click.echo(
            "error: set platforms.joystick.client_id and client_secret (your Joystick.tv bot "
            "application) first",
            err=True,
        )
        sys.exit(EXIT_PROBLEMS)
    if code is None:
        state = new_state()
        click.echo("Open this address as the streamer and allow the bot:")
        click.echo(install_url(joystick.api_url, client_id, state))
        click.echo(
            f"Joystick then sends you to the bot's redirect URL with ?code=...&state={state}"
        )
        code = click.prompt("Paste the code", hide_input=True)

    async def store() -> str:
        token = await exchange_code(
            joystick.api_url, client_id, secret, code or "", SystemClock().now()
        )
        async with _open_vault(config) as vault:
            await vault.store(token)
        return (
            f"stored the joystick token of the install {token.account_id} "
            f"(scopes: {' '.join(token.scopes) or '(none)'})"
        )

    click.echo(_run_vault(store()))


@auth.command("list")
@config_option
def auth_list(config_path: Path | None) -> None:
    """Show each stored token: platform, account, scopes, expiry (never the token)."""
    config = _load(config_path)

    async def listing() -> list[TokenInfo]:
        async with _open_vault(config) as vault:
            return await vault.list()

    infos = _run_vault(listing())
    if not infos:
        click.echo("no tokens stored (python bot.py auth twitch --help)")
    for info in infos:
        expiry = (
            "no expiry"
            if info.expires_at is None
            else f"expires {info.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        click.echo(
            f"{info.platform} {info.account_id}: {' '.join(info.scopes) or '(no scopes)'}; {expiry}"
        )


@auth.command("new-key")
def auth_new_key() -> None:
    """Print a new vault key to put in PIXELBOT_SECRET_KEY."""
    click.echo(Fernet.generate_key().decode())


# ---------------------------------------------------------------- record / replay


# ---------------------------------------------------------------------------------- web


@main.group()
def web() -> None:
    """The web server: overlay pages for OBS."""


@main.command()
@config_option
def status(config_path: Path | None) -> None:
    """Ask the running bot (through its web server) how its platforms are doing."""
    config = _load(config_path)
    if not config.web.enabled:
        click.echo("error: the status is read from the web server; set web.enabled: true", err=True)
        sys.exit(EXIT_PROBLEMS)
    settings = config.web
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
    url = f"http://{host}:{settings.port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            found: dict[str, dict[str, Any]] = json.loads(answer.read())
    except (OSError, ValueError) as exc:
        click.echo(f"the bot is not running (nothing answers at {url}: {exc})", err=True)
        sys.exit(EXIT_PROBLEMS)
    for name, state in found.items():
        word = "up" if state["connected"] else "DOWN"
        detail = f" ({state['detail']})" if state.get("detail") else ""
        click.echo(f"{name}: {word}{detail}")


@web.command("urls")
@config_option
def web_urls(config_path: Path | None) -> None:
    """Print each overlay's URL with its key (add them to OBS as browser sources)."""
    config = _load(config_path)

    for line in overlay_lines(config.web, _run_vault(_overlay_key(config, new=False))):
        click.echo(line)
    if not config.web.enabled:
        click.echo("(the web server is off: set web.enabled: true in the config)", err=True)


@web.command("new-key")
@config_option
def web_new_key(config_path: Path | None) -> None:
    """Replace the generated overlay key (one that leaked); the old URLs stop working after a
    restart of the bot."""
    config = _load(config_path)
    if config.web.overlay_key is not None:
        click.echo("error: web.overlay_key is set in the config: change it there", err=True)
        sys.exit(EXIT_CONFIG)
    for line in overlay_lines(config.web, _run_vault(_overlay_key(config, new=True))):
        click.echo(line)


async def _overlay_key(config: Config, *, new: bool) -> str:
    database = open_database(config)
    try:
        await migrate.upgrade(database)
        if new:
            return await new_overlay_key(database, SystemClock())
        return await overlay_key(config.web, database, SystemClock())
    finally:
        await database.dispose()


def with_recording(config: Config, path: Path) -> Config:
    """``config`` with the Twitch, Discord and Joystick adapters told to record their raw
    frames to ``path`` (each to its own file beside it when several are on: the formats
    differ)."""
    platforms = config.platforms
    recording = ("twitch", "discord", "joystick")
    several = sum(getattr(platforms, name).enabled for name in recording) > 1

    def target(name: str) -> str:
        return str(path.with_name(f"{path.stem}.{name}{path.suffix}") if several else path)

    update = {
        name: getattr(platforms, name).model_copy(update={"record": target(name)})
        for name in recording
    }
    return config.model_copy(update={"platforms": platforms.model_copy(update=update)})


@main.command()
@config_option
@click.argument("platform", type=click.Choice(["twitch", "discord", "joystick"]))
@click.argument("frames", type=click.File("r"))
def replay(config_path: Path | None, platform: str, frames: TextIO) -> None:
    """Feed recorded frames (FILE.jsonl, - for stdin) through the bot, on a simulated clock."""
    config = _load(config_path)
    lines = frames.read().splitlines()
    _run(run_replay(config, _config_path(config_path), lines, platform=platform))


# The data commands live in their own module and register themselves on ``main``.
from pixelbot import cli_data  # noqa: E402, F401
