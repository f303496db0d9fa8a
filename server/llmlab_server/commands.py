"""The server's own ``llmlab`` commands: ``serve``, ``server serve | db upgrade | db current |
db prune | pricing update`` and ``demo``.

`llmlab.cli` (the client CLI, in the SDK) loads `COMMANDS` from here when one of them runs
and this package's dependencies are installed; otherwise it tells the user to
``pip install 'llmlab[server]'``. Errors reach the root group, which prints one message.
"""

from __future__ import annotations

import ipaddress
import os

import click
from sqlalchemy.orm import Session

from llmlab.cli._output import err_console, out_console
from llmlab.cli.pricing import update_command
from llmlab_server import db
from llmlab_server.config import Config, ConfigError, default_database_url
from llmlab_server.services import partitions, retention
from llmlab_server.webhook_commands import webhooks_group

__all__ = ["COMMANDS", "demo", "serve", "server_cli"]

#: Printed when the development server listens beyond this machine.
_NOT_PRODUCTION = (
    "warning: `llmlab serve` is the development server, listening beyond this machine: one "
    "process, a thread per connection, no worker restarts. Do not expose it to other people's "
    "clients; serve them with `gunicorn -c python:llmlab_server.gunicorn_conf` (docs/server.md, "
    "\"Deploy\").")


def _loopback(host: str) -> bool:
    """Whether ``host`` (an interface to bind) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


_DATABASE_HELP = "SQLAlchemy URL (default: $LLMLAB_DATABASE_URL, else ~/.llmlab/llmlab.db)."


@click.group("server")
def server_cli() -> None:
    """Run and administer the llmlab server."""


@server_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--debug/--no-debug", default=False, help="Flask debugger and reloader.")
def serve(host: str, port: int, database: str | None, debug: bool) -> None:
    """Run the development server (use gunicorn in production)."""
    from llmlab_server import create_app

    if debug and not _loopback(host):  # the debugger runs code typed into its web page
        raise click.ClickException(
            f"--debug serves the Werkzeug debugger, which runs any code sent to it: only on "
            f"a loopback host (127.0.0.1, ::1, localhost), not {host}.")
    os.environ.setdefault("LLMLAB_ENV", "development")
    if database:
        os.environ["LLMLAB_DATABASE_URL"] = database
    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    err_console().print(f"llmlab server on http://{host}:{port}  database: "
                        f"{app.config['DATABASE_URL'].split('@')[-1]}", markup=False)
    if not _loopback(host):
        err_console().print(_NOT_PRODUCTION, markup=False)
    app.run(host=host, port=port, debug=debug, use_reloader=debug)


server_cli.add_command(webhooks_group)


@server_cli.group("db")
def db_group() -> None:
    """Database schema commands."""


def _database(database: str | None) -> str:
    return database or os.environ.get("LLMLAB_DATABASE_URL") or default_database_url()


@db_group.command("upgrade")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(database: str | None, revision: str) -> None:
    """Apply migrations up to the newest (or --revision)."""
    engine = db.make_engine(_database(database))
    try:
        before = db.current_revision(engine)
        db.upgrade(engine, revision)
        after = db.current_revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    click.echo(f"{where}: {before or 'empty'} -> {after}")


@db_group.command("current")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
def current(database: str | None) -> None:
    """Show the database's migration and the newest one shipped."""
    engine = db.make_engine(_database(database))
    try:
        click.echo(f"current: {db.current_revision(engine) or 'none'}  "
                   f"head: {db.head_revision()}")
    finally:
        engine.dispose()


@db_group.command("prune")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days of events [default: $LLMLAB_RETENTION_DAYS].")
@click.option("--batch-size", type=click.IntRange(min=1), default=retention.DEFAULT_BATCH,
              show_default=True, help="Events deleted per transaction.")
def prune(database: str | None, days: int | None, batch_size: int) -> None:
    """Delete raw events older than the retention period (rollups keep their totals)."""
    if days is None:
        try:
            days = Config.from_env().RETENTION_DAYS
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        if not days:
            raise click.ClickException(
                "No retention period: pass --days or set LLMLAB_RETENTION_DAYS.")
    engine = db.make_engine(_database(database))
    before = retention.cutoff(days)
    try:
        with Session(engine) as session:
            deleted = retention.prune(session, before, batch_size)
    finally:
        engine.dispose()
    click.echo(f"deleted {deleted} events from before {before:%Y-%m-%d %H:%M} UTC")


@db_group.command("partitions")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--ahead", type=click.IntRange(min=0, max=120), default=partitions.MONTHS_AHEAD,
              show_default=True, help="Months of partitions to keep ready after this one.")
def partitions_command(database: str | None, ahead: int) -> None:
    """PostgreSQL: create the coming months' partitions of cost_events (the server does it
    too, at start-up and hourly); list them."""
    engine = db.make_engine(_database(database))
    try:
        with engine.begin() as conn:
            if not partitions.is_partitioned(conn):
                raise click.ClickException("cost_events is not partitioned (SQLite, or a "
                                           "schema before migration 0012).")
            made = partitions.ensure(conn, ahead=ahead)
            months = sorted(partitions.month_partitions(conn))
    finally:
        engine.dispose()
    click.echo(f"created {len(made)}; {len(months)} month partitions, "
               f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}, and {partitions.DEFAULT}")


@server_cli.group("pricing")
def pricing_group() -> None:
    """The pricing catalogue this server prices events with and serves to SDKs."""


pricing_group.add_command(update_command(
    "Running servers with this environment pick it up within seconds and serve it to SDKs "
    "(GET /api/pricing/catalogue)."))


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=0, type=int, help="Port [default: a free one].")
@click.option("--exit", "exit_after", is_flag=True,
              help="Stop after printing the results instead of serving until Ctrl-C.")
def demo(host: str, port: int, exit_after: bool) -> None:
    """Run a server, a fake OpenAI/Anthropic/Gemini and a sample app, offline; show the costs."""
    from llmlab_server.demo import run_demo

    run_demo(host=host, port=port, serve_forever=not exit_after, console=out_console())


#: What the root ``llmlab`` group runs for each name (``serve`` is short for ``server serve``).
COMMANDS: dict[str, click.Command] = {"server": server_cli, "serve": serve, "demo": demo}
