"""The ``llmlab`` command: a thin click layer over `llmlab.Client`, the pricing catalogue and
`create_app` (see ``docs/cli.md``)::

    llmlab demo                              # the whole product, offline, in 10 seconds
    llmlab init                              # sign up / log in, write ~/.llmlab/config.toml
    llmlab summary --by model --since 7d     # what did we spend, on what
    llmlab events -f --model gpt-4o          # tail events
    llmlab export --csv costs.csv            # every event, streamed
    llmlab pricing show gpt-4o               # the catalogue's rates
    llmlab server serve --port 8000          # development server (auto-migrates SQLite)
    llmlab server db upgrade                 # apply migrations (PostgreSQL in production)

Every read command takes ``--json``. Errors are one clear message on stderr and a non-zero exit
status (1 for errors, 2 for bad usage), never a traceback.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from llmlab.client import Client
from llmlab.errors import APIError, LLMLabError
from llmlab_server import db
from llmlab_server.cli_config import ConfigFileError, Settings, config_path, resolve, save_file
from llmlab_server.cli_output import (
    err_console,
    explain,
    money,
    out_console,
    print_json,
    table,
    tokens,
)
from llmlab_server.config import ConfigError, default_database_url

__all__ = ["cli", "main", "server_cli"]

console = Console(stderr=True)


@click.group("server")
def server_cli() -> None:
    """Run and administer the llmlab server."""


@server_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--database", "database", default=None, metavar="URL",
              help="SQLAlchemy URL (default: $LLMLAB_DATABASE_URL, else ~/.llmlab/llmlab.db).")
@click.option("--debug/--no-debug", default=False, help="Flask debugger and reloader.")
def serve(host: str, port: int, database: str | None, debug: bool) -> None:
    """Run the development server (use gunicorn in production)."""
    from llmlab_server import create_app

    os.environ.setdefault("LLMLAB_ENV", "development")
    if database:
        os.environ["LLMLAB_DATABASE_URL"] = database
    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"llmlab server on http://{host}:{port}  database: "
                  f"{app.config['DATABASE_URL'].split('@')[-1]}")
    app.run(host=host, port=port, debug=debug, use_reloader=debug)


@server_cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--database", "database", default=None, metavar="URL",
              help="SQLAlchemy URL (default: $LLMLAB_DATABASE_URL, else ~/.llmlab/llmlab.db).")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(database: str | None, revision: str) -> None:
    """Apply migrations up to the newest (or --revision)."""
    url = database or os.environ.get("LLMLAB_DATABASE_URL") or default_database_url()
    engine = db.make_engine(url)
    try:
        before = db.current_revision(engine)
        db.upgrade(engine, revision)
        after = db.current_revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    click.echo(f"{where}: {before or 'empty'} -> {after}")


@db_group.command("current")
@click.option("--database", "database", default=None, metavar="URL", help="SQLAlchemy URL.")
def current(database: str | None) -> None:
    """Show the database's migration and the newest one shipped."""
    url = database or os.environ.get("LLMLAB_DATABASE_URL") or default_database_url()
    engine = db.make_engine(url)
    try:
        click.echo(f"current: {db.current_revision(engine) or 'none'}  "
                   f"head: {db.head_revision()}")
    finally:
        engine.dispose()


