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
import secrets
import sys
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
from llmlab_server.cli_config import ConfigFileError, Settings, resolve, save_file
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


# -- the top-level group: errors become one clear message ------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "http://127.0.0.1:8000"
_FLAGS = "llmlab.flags"
_BASE_URL = "llmlab.base_url"


class _Group(click.Group):
    """A group that turns llmlab's own errors into a click error (message, exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LLMLabError as exc:
            raise click.ClickException(explain(exc, ctx.meta.get(_BASE_URL))) from None
        except ConfigFileError as exc:
            raise click.ClickException(f"{exc}. Fix or delete it, or run `llmlab init`.") from None
        except OSError as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Never a traceback for users; LLMLAB_DEBUG=1 shows it to whoever debugs.
            if os.environ.get("LLMLAB_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected error: {type(exc).__name__}: {exc} (set LLMLAB_DEBUG=1 for the "
                "traceback, and please report it)") from None


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None:
        ctx.meta.setdefault(_FLAGS, {})[param.name] = value
    return value


def connection_options(f: F) -> F:
    """``--url``, ``--api-key`` and ``--project``, accepted by the group and every command."""
    f = click.option("--project", expose_value=False, callback=_remember, metavar="SLUG|ID",
                     help="Project (default: $LLMLAB_PROJECT, then config.toml).")(f)
    f = click.option("--api-key", "api_key", expose_value=False, callback=_remember,
                     metavar="KEY", help="API key (default: $LLMLAB_API_KEY, then config.toml).")(f)
    f = click.option("--url", "base_url", expose_value=False, callback=_remember, metavar="URL",
                     help="Server URL (default: $LLMLAB_BASE_URL, then config.toml).")(f)
    return f


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document (for scripts) instead of tables.")


def _settings() -> Settings:
    ctx = click.get_current_context()
    return resolve(ctx.meta.get(_FLAGS, {}))


def _client(settings: Settings | None = None) -> tuple[Client, Settings]:
    """A `llmlab.Client` from flags, environment and config; a clear error when unconfigured."""
    settings = settings or _settings()
    if not settings.base_url:
        raise click.ClickException(
            f"No llmlab server configured ({settings.path} has none). Run `llmlab init`, or "
            "pass --url / set LLMLAB_BASE_URL.")
    if not settings.api_key:
        raise click.ClickException(
            f"No API key configured for {settings.base_url}. Run `llmlab login`, or pass "
            "--api-key / set LLMLAB_API_KEY.")
    click.get_current_context().meta[_BASE_URL] = settings.base_url
    return Client(settings.api_key, settings.base_url), settings


def _project_id(client: Client, settings: Settings) -> int | None:
    """The configured project as an id (a slug is looked up among the caller's projects)."""
    wanted = settings.project
    if not wanted:
        return None
    if wanted.isdigit():
        return int(wanted)
    projects = client.projects() or []
    for project in projects:
        if wanted in (project.get("slug"), project.get("name")):
            return int(project["id"])
    seen = ", ".join(p.get("slug", "?") for p in projects) or "none"
    raise click.ClickException(
        f"Unknown project {wanted!r}: this key can see {seen}. Pass --project SLUG.")


_SINCE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None) -> str | None:
    """``7d`` / ``12h`` / ``30m`` / ``2w`` → an ISO UTC time that long ago; ISO times pass."""
    if not value:
        return None
    match = _SINCE.match(value.strip().lower())
    if not match:
        return value
    delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
    return (datetime.now(UTC) - delta).isoformat(timespec="seconds").replace("+00:00", "Z")


since_option = click.option("--since", default=None, metavar="7d|24h|DATE",
                            help="Start: a duration ago (30m, 24h, 7d, 2w) or an ISO date/time "
                                 "[default: 30 days ago].")
until_option = click.option("--until", default=None, metavar="DATE",
                            help="End (exclusive), ISO date/time [default: now].")
tz_option = click.option("--tz", default="UTC", show_default=True,
                         help="IANA time zone for naive times and day buckets.")


@click.group("llmlab", cls=_Group)
@click.version_option(package_name="llmlab", prog_name="llmlab")
@connection_options
def cli() -> None:
    """llmlab: know what every LLM call costs.

    Start with `llmlab demo` (offline, no keys), then `llmlab init` against your server.
    """


cli.add_command(server_cli)
# `llmlab serve` is the short form of `llmlab server serve` (DESIGN.md).
cli.add_command(serve, "serve")


# -- init, login, status ---------------------------------------------------------------------

def _save_session(url: str, api_key: str, project: str | None, *, ingest_key: str | None = None,
                  email: str | None = None) -> Path:
    values: dict[str, Any] = {"base_url": url, "api_key": api_key, "project": project}
    if ingest_key is not None:
        values["ingest_key"] = ingest_key
    if email is not None:
        values["email"] = email
    return save_file(values)


def _pick_project(projects: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    for project in projects:
        if wanted and wanted in (project.get("slug"), project.get("name"), str(project.get("id"))):
            return project
    return None


def _connect(url: str, *, email: str | None, password: str | None, api_key: str | None,
             project: str | None, signup: bool, as_json: bool) -> None:
    """What ``init`` and ``login`` share: check the server, authenticate, write the config."""
    url = url.rstrip("/")
    click.get_current_context().meta[_BASE_URL] = url
    with Client(None, url) as anonymous:
        anonymous.health()  # a clear "cannot reach" before any prompt for secrets
        if api_key:
            with Client(api_key, url) as keyed:
                me = keyed.me()
            scopes = (me.get("api_key") or {}).get("scopes", [])
            if me.get("kind") != "api_key" or not {"read", "admin"} & set(scopes):
                raise click.ClickException(
                    f"This key has scopes {scopes}: the CLI needs `read` (or `admin`). Use an "
                    "ingest key only in your app (LLMLAB_API_KEY there).")
            chosen = (me.get("projects") or [{}])[0].get("slug")
            path = _save_session(url, api_key, chosen)
            result = {"config": str(path), "base_url": url, "project": chosen, "scopes": scopes}
            _report_session(result, as_json)
            return
        if not email:
            email = click.prompt("Email")
        if not password:
            password = click.prompt("Password", hide_input=True,
                                    confirmation_prompt=signup)
        assert email and password
        session = None
        created_account = False
        if signup:
            try:
                session = anonymous.signup(email, password)
                created_account = True
            except APIError as exc:
                if exc.status != 409:
                    raise
        if session is None:
            session = anonymous.login(email, password)
    with Client(session["access_token"], url) as user:
        projects = list(user.me().get("projects") or [])
        slug = project or (projects[0]["slug"] if projects else _slug_for(email))
        chosen = _pick_project(projects, slug)
        created_project = False
        if chosen is None:
            if not signup:
                seen = ", ".join(p["slug"] for p in projects) or "none yet"
                raise click.ClickException(
                    f"You have no project {slug!r} (yours: {seen}). `llmlab init --project "
                    f"{slug}` creates it.")
            chosen = _create_project(user, slug, exact=project is not None)
            created_project = True
        cli_key = user.create_key(chosen["id"], name="llmlab-cli", scopes=["admin"])
        ingest = user.create_key(chosen["id"], name="app-ingest", scopes=["ingest"]) if signup else None
    path = _save_session(url, cli_key["key"], chosen["slug"],
                         ingest_key=ingest["key"] if ingest else None, email=email)
    result = {"config": str(path), "base_url": url, "email": email, "project": chosen["slug"],
              "project_id": chosen["id"], "created_account": created_account,
              "created_project": created_project, "scopes": ["admin"],
              "cli_key_prefix": cli_key.get("prefix"),
              "ingest_key": ingest["key"] if ingest else None}
    _report_session(result, as_json)


def _slug_for(email: str) -> str:
    """A project slug from the email's local part (``ada.l@x`` → ``ada-l``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", email.split("@")[0].lower()).strip("-")[:40]
    return slug or "default"


def _create_project(user: Client, slug: str, *, exact: bool) -> dict[str, Any]:
    """Create the project; slugs are global, so a default one gets a suffix when taken."""
    valid = re.fullmatch(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?", slug)
    for attempt in range(5):
        candidate = slug if attempt == 0 else f"{slug[:57]}-{secrets.token_hex(2)}"
        try:
            return dict(user.create_project(slug, candidate if valid else None))
        except APIError as exc:
            if exc.status != 409 or exact or not valid:
                if exc.status == 409:
                    raise click.ClickException(
                        f"The project slug {slug!r} is taken on this server (slugs are global). "
                        "Choose another with --project.") from None
                raise
    raise click.ClickException("Could not find a free project slug; pass --project.")


def _report_session(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    console = out_console()
    console.print(f"Saved {result['config']}: server {result['base_url']}, project "
                  f"{result['project']}, CLI key with scopes {', '.join(result['scopes'])}.")
    if result.get("ingest_key"):
        console.print("\nFor your app (an ingest-only key; it is shown once, and kept in the "
                      "config as ingest_key):")
        console.print(f"  export LLMLAB_BASE_URL={result['base_url']}", soft_wrap=True)
        console.print(f"  export LLMLAB_API_KEY={result['ingest_key']}", soft_wrap=True)
        console.print(f"  export LLMLAB_PROJECT={result['project']}", soft_wrap=True)
    console.print("\nNext: `llmlab status`, `llmlab summary --by model`.")


@cli.command("init")
@click.option("--url", "url", default=None, metavar="URL",
              help=f"Server URL [default: $LLMLAB_BASE_URL, config, {DEFAULT_URL}].")
@click.option("--email", default=None, help="Account email (sign up, or log in if it exists).")
@click.option("--password", default=None, help="Account password (prompted when absent).")
@click.option("--api-key", "api_key", default=None, metavar="KEY",
              help="Paste an existing read/admin API key instead of signing up.")
@click.option("--project", default=None, metavar="SLUG",
              help="Project to use, created if missing [default: default].")
@json_option
def init(url: str | None, email: str | None, password: str | None, api_key: str | None,
         project: str | None, as_json: bool) -> None:
    """Connect the CLI to a server and write ~/.llmlab/config.toml.

    Signs up (or logs in) with --email/--password, makes sure the project exists, and creates
    two keys: an `admin` key the CLI keeps in the config (reads, budgets) and an `ingest` key
    for your app, printed once. With --api-key it stores that key instead. Without flags it asks.
    """
    current = resolve({})
    if url is None:
        url = current.base_url or DEFAULT_URL
        if not (email or api_key):
            url = click.prompt("Server URL", default=url)
    if not (email or api_key) and click.prompt(
            "Sign up / log in with email, or paste an API key?",
            type=click.Choice(["email", "key"]), default="email") == "key":
        api_key = click.prompt("API key", hide_input=True)
    _connect(url, email=email, password=password, api_key=api_key, project=project,
             signup=True, as_json=as_json)


@cli.command("login")
@click.option("--url", "url", default=None, metavar="URL",
              help="Server URL [default: $LLMLAB_BASE_URL, then config].")
@click.option("--email", default=None, help="Account email [default: the config's].")
@click.option("--password", default=None, help="Account password (prompted when absent).")
@click.option("--api-key", "api_key", default=None, metavar="KEY",
              help="Store this read/admin API key instead of logging in.")
@click.option("--project", default=None, metavar="SLUG",
              help="Project [default: the config's, else your first].")
@json_option
def login(url: str | None, email: str | None, password: str | None, api_key: str | None,
          project: str | None, as_json: bool) -> None:
    """Log in to an existing account (new CLI key) or store an API key, in the config."""
    current = resolve({})
    url = url or current.base_url
    if not url:
        raise click.ClickException("No server configured: pass --url, or run `llmlab init`.")
    _connect(url, email=email or (None if api_key else current.email), password=password,
             api_key=api_key, project=project or current.project, signup=False, as_json=as_json)


def _mask(key: str | None) -> str | None:
    return None if not key else f"{key[:8]}…{key[-4:]}"


def _local_stats() -> dict[str, Any]:
    from llmlab._ledger import read_ledger
    from llmlab._paths import home_dir
    from llmlab._spool import Spool

    home = home_dir()
    spool = Spool(home / "spool")
    files, events = spool.pending()
    ledger_dir = home / "ledger"
    count, total = 0, Decimal(0)
    if ledger_dir.is_dir():
        for event in read_ledger(ledger_dir):
            count += 1
            total += Decimal(str((event.get("cost") or {}).get("total") or 0))
    return {"home": str(home),
            "spool": {"directory": str(spool.directory), "files": files, "events": events,
                      "dropped_total": spool.dropped_total},
            "ledger": {"directory": str(ledger_dir), "events": count, "cost": str(total)}}


@cli.command("status")
@connection_options
@json_option
def status(as_json: bool) -> None:
    """Server health, who the CLI is, and the local spool and ledger.

    Exits 1 when a server is configured but unreachable or rejects the key.
    """
    settings = _settings()
    report: dict[str, Any] = {
        "config": {"path": str(settings.path), "exists": settings.path.exists(),
                   "base_url": settings.base_url, "project": settings.project,
                   "api_key": _mask(settings.api_key), "sources": settings.sources},
        "server": None, **_local_stats()}
    problem = None
    if settings.base_url:
        server: dict[str, Any] = {"url": settings.base_url, "reachable": False, "auth": None}
        report["server"] = server
        try:
            with Client(settings.api_key, settings.base_url, timeout=5) as client:
                server["health"] = client.health()
                server["reachable"] = True
                if settings.api_key:
                    me = client.me()
                    server["auth"] = {"kind": me.get("kind"),
                                      "scopes": (me.get("api_key") or {}).get("scopes"),
                                      "projects": [p["slug"] for p in me.get("projects", [])]}
        except LLMLabError as exc:
            problem = explain(exc, settings.base_url)
            server["error"] = problem
    if as_json:
        print_json(report)
    else:
        _print_status(report)
    if problem:
        raise click.ClickException(problem)


def _print_status(report: dict[str, Any]) -> None:
    console = out_console()
    cfg = report["config"]
    console.print(f"config   {cfg['path']}" + ("" if cfg["exists"] else "  (none: run `llmlab init`)"))
    server = report["server"]
    if server is None:
        console.print("server   not configured (run `llmlab init`, or set LLMLAB_BASE_URL)")
    else:
        state = "ok" if server["reachable"] else "UNREACHABLE"
        console.print(f"server   {server['url']}  {state}")
        auth = server.get("auth")
        if auth:
            console.print(f"auth     {auth['kind']} scopes={','.join(auth['scopes'] or ['user'])} "
                          f"projects={','.join(auth['projects']) or '-'}")
        elif server["reachable"] and not cfg["api_key"]:
            console.print("auth     no API key (run `llmlab login`)")
    if cfg["project"]:
        console.print(f"project  {cfg['project']}")
    spool, ledger = report["spool"], report["ledger"]
    console.print(f"spool    {spool['events']} events in {spool['files']} files waiting "
                  f"({spool['dropped_total']} ever dropped)  {spool['directory']}")
    console.print(f"ledger   {ledger['events']} events, {money(ledger['cost'])}  "
                  f"{ledger['directory']}")


# -- summary, events, export -----------------------------------------------------------------

_GROUP_BY = re.compile(r"^(model|provider|project|day|hour|job|user|tag:[A-Za-z0-9_.:-]{1,64})$")


def _check_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _GROUP_BY.match(value):
        raise click.BadParameter(
            "use model, provider, project, day, hour, job, user or tag:<key>")
    return value


@cli.command("summary")
@connection_options
@click.option("--by", "group_by", default=None, callback=_check_by,
              metavar="model|provider|project|day|job|user|tag:K", help="Group rows by this.")
@since_option
@until_option
@tz_option
@json_option
def summary(group_by: str | None, since: str | None, until: str | None, tz: str,
            as_json: bool) -> None:
    """Total cost, calls and tokens, optionally grouped (--by model, tag:feature, …)."""
    client, settings = _client()
    with client:
        data = client.summary(project=_project_id(client, settings), start=parse_since(since),
                              end=until, tz=tz, group_by=group_by)
    if as_json:
        print_json(data)
        return
    print_summary(out_console(), data)


def print_summary(console: Console, data: dict[str, Any], title: str | None = None) -> None:
    """A summary as a table, largest cost first, with a total row."""
    label = data.get("group_by") or "total"
    rows = []
    groups = sorted(data.get("groups") or [], key=lambda r: Decimal(r["cost"]), reverse=True)
    for row in [*groups, {**data["totals"], "key": "TOTAL"}] if groups else [
            {**data["totals"], "key": "TOTAL"}]:
        tok = row.get("tokens") or {}
        latency = row.get("avg_latency_ms")
        rows.append([row.get("key") if row.get("key") is not None else "(none)", money(row["cost"]),
                     tokens(row["calls"]), tokens(row["errors"]),
                     tokens(tok.get("input_tokens", 0)), tokens(tok.get("output_tokens", 0)),
                     tokens(tok.get("cache_read_tokens", 0)),
                     "" if latency is None else f"{latency:,.0f}"])
    start, end = str(data.get("start", ""))[:16], str(data.get("end", ""))[:16]
    title = title or f"Cost by {label}, {start} → {end} {data.get('tz', '')}"
    console.print(table(title, [label, "cost", "calls", "errors", "input", "output",
                                "cache read", "ms"], rows,
                        right={"cost", "calls", "errors", "input", "output", "cache read", "ms"}))


_FILTERS = [
    click.option("--model", default=None, help="Only this model."),
    click.option("--provider", default=None, help="Only this provider (openai, anthropic, …)."),
    click.option("--job", default=None, help="Only this job id."),
    click.option("--user", default=None, help="Only this end user."),
    click.option("--status", "status_", default=None,
                 type=click.Choice(["ok", "error", "cancelled"]), help="Only this status."),
]


def filter_options(f: F) -> F:
    """--model, --provider, --job, --user, --status."""
    for option in reversed(_FILTERS):
        f = option(f)
    return f


def _event_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    return [[str(e["timestamp"])[:19].replace("T", " "), e["provider"], e["model"],
             money(e["cost"], 6), tokens(e["usage"].get("input_tokens", 0)),
             tokens(e["usage"].get("output_tokens", 0)), e["status"], e.get("job_id") or "",
             e.get("user_id") or ""] for e in events]


_EVENT_COLUMNS = ["time (UTC)", "provider", "model", "cost", "in", "out", "status", "job", "user"]


@cli.command("events")
@connection_options
@filter_options
@since_option
@until_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="How many of the newest events.")
@click.option("-f", "--follow", is_flag=True, help="Keep polling and print new events.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds between polls with --follow.")
@click.option("--polls", default=None, type=int, hidden=True, help="Stop --follow after N polls.")
@json_option
def events(model: str | None, provider: str | None, job: str | None, user: str | None,
           status_: str | None, since: str | None, until: str | None, limit: int, follow: bool,
           interval: float, polls: int | None, as_json: bool) -> None:
    """The newest events, filtered; -f follows new ones (JSON lines with --json)."""
    client, settings = _client()
    filters: dict[str, Any] = {"model": model, "provider": provider, "job": job, "user": user,
                               "status": status_, "start": parse_since(since), "end": until}
    with client:
        filters["project"] = _project_id(client, settings)
        page = client.events(limit=limit, **filters)
        if as_json and not follow:
            print_json(page)
            return
        shown = list(reversed(page["events"]))
        seen = {e["id"] for e in shown}
        if as_json:
            for event in shown:
                click.echo(_json_line(event))
        else:
            out_console().print(table(None, _EVENT_COLUMNS, _event_rows(shown),
                                      right={"cost", "in", "out"}))
        done = 0
        while follow and (polls is None or done < polls):
            time.sleep(interval)
            done += 1
            fresh = [e for e in reversed(client.events(limit=limit, **filters)["events"])
                     if e["id"] not in seen]
            seen.update(e["id"] for e in fresh)
            for event in fresh:
                if as_json:
                    click.echo(_json_line(event))
                else:
                    out_console().print("  ".join(str(c) for c in _event_rows([event])[0]))


def _json_line(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"), default=str)


@cli.command("export")
@connection_options
@click.option("--csv", "csv_path", required=True, metavar="FILE",
              help="Write the CSV here ('-' for stdout).")
@filter_options
@since_option
@until_option
@tz_option
def export(csv_path: str, model: str | None, provider: str | None, job: str | None,
           user: str | None, status_: str | None, since: str | None, until: str | None,
           tz: str) -> None:
    """Every matching event as CSV, streamed from the server with a progress bar."""
    from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

    client, settings = _client()
    with client:
        filters = {"project": _project_id(client, settings), "model": model,
                   "provider": provider, "job": job, "user": user, "status": status_,
                   "start": parse_since(since), "end": until, "tz": tz}
        to_stdout = csv_path == "-"
        target = Path(csv_path)
        tmp = target.with_name(f".{target.name}.part")
        progress = Progress(SpinnerColumn(), TextColumn("exporting"), BarColumn(),
                            DownloadColumn(), TextColumn("{task.fields[rows]:,} rows"),
                            console=err_console(), transient=True)
        fh = sys.stdout.buffer if to_stdout else open(tmp, "wb")  # noqa: SIM115
        rows = -1  # the header line is not an event
        try:
            with progress:
                task = progress.add_task("export", total=None, rows=0)
                for chunk in client.export_csv(**filters):
                    fh.write(chunk)
                    rows += chunk.count(b"\n")
                    progress.update(task, advance=len(chunk), rows=max(rows, 0))
        except BaseException:
            if not to_stdout:
                fh.close()
                tmp.unlink(missing_ok=True)
            raise
    if not to_stdout:
        fh.close()
        tmp.replace(target)
        err_console().print(f"Wrote {max(rows, 0):,} events to {target}")


# -- budgets and recommendations -------------------------------------------------------------

@cli.group("budgets", cls=_Group)
def budgets() -> None:
    """List, set and check budgets (GET/POST /api/budgets, /api/budgets/status)."""


def _budget_items(data: Any, key: str = "budgets") -> list[dict[str, Any]]:
    if isinstance(data, dict):
        data = data.get(key, data.get("items", []))
    return list(data or [])


def _scope_text(scope: dict[str, Any] | None) -> str:
    parts = [f"{k}={v}" for k, v in (scope or {}).items() if v not in (None, "", {})]
    return " ".join(parts) or "project"


@budgets.command("list")
@connection_options
@json_option
def budgets_list(as_json: bool) -> None:
    """Budgets of the project."""
    client, settings = _client()
    with client:
        data = client.budgets(project=_project_id(client, settings))
    if as_json:
        print_json(data)
        return
    rows = [[b.get("id"), b.get("name"), _scope_text(b.get("scope")), b.get("period"),
             money(b.get("amount", 0), 2), b.get("action"),
             ",".join(str(t) for t in b.get("thresholds") or [])] for b in _budget_items(data)]
    if not rows:
        out_console().print("No budgets. Add one: llmlab budgets set --amount 100 --period monthly")
        return
    out_console().print(table("Budgets", ["id", "name", "scope", "period", "amount", "action",
                                          "thresholds %"], rows, right={"amount"}))


@budgets.command("set")
@connection_options
@click.option("--amount", required=True, type=click.FloatRange(min=0, min_open=True),
              help="Limit in USD per period.")
@click.option("--period", default="monthly", show_default=True,
              type=click.Choice(["daily", "weekly", "monthly", "total"]))
@click.option("--action", default="alert", show_default=True, type=click.Choice(["alert", "block"]),
              help="alert: notify at thresholds; block: the SDK refuses calls past the limit.")
@click.option("--name", default=None, help="A name [default: made from the scope].")
@click.option("--thresholds", default="50,80,100", show_default=True,
              help="Alert thresholds in percent, comma-separated.")
@click.option("--job", default=None, help="Only spend of this job.")
@click.option("--user", default=None, help="Only spend of this end user.")
@click.option("--model", default=None, help="Only spend on this model.")
@click.option("--tag", default=None, metavar="KEY[=VALUE]",
              help="Only spend with this tag (any value, or this value).")
@tz_option
@json_option
def budgets_set(amount: float, period: str, action: str, name: str | None, thresholds: str,
                job: str | None, user: str | None, model: str | None, tag: str | None, tz: str,
                as_json: bool) -> None:
    """Create a budget on the project (needs an admin key or a user login)."""
    try:
        levels = sorted({int(t) for t in thresholds.split(",") if t.strip()})
    except ValueError:
        raise click.BadParameter("comma-separated integers, e.g. 50,80,100",
                                 param_hint="--thresholds") from None
    client, settings = _client()
    with client:
        project_id = _project_id(client, settings)
        if project_id is None:
            projects = client.projects() or []
            if len(projects) != 1:
                raise click.ClickException("Which project? Pass --project SLUG.")
            project_id = int(projects[0]["id"])
        scope = {k: v for k, v in {"job": job, "user": user, "model": model,
                                   "tag": tag}.items() if v is not None}
        body = {"project_id": project_id, "name": name or f"{period} {_scope_text(scope)}",
                "amount": str(Decimal(str(amount))), "period": period, "action": action,
                "thresholds": levels, "timezone": tz, "scope": scope}
        created = client.create_budget(**body)
    if as_json:
        print_json(created)
        return
    out_console().print(f"Budget {created.get('id')} set: {money(created.get('amount', amount), 2)} "
                        f"{created.get('period', period)}, action {created.get('action', action)}.")


@budgets.command("status")
@connection_options
@json_option
def budgets_status(as_json: bool) -> None:
    """Spent, remaining and forecast of each budget in its current period."""
    client, settings = _client()
    with client:
        items = client.budget_status(project=_project_id(client, settings))
    if as_json:
        print_json({"budgets": items})
        return
    if not items:
        out_console().print("No budgets.")
        return
    rows = []
    for b in items:
        amount, spent = Decimal(str(b.get("amount", 0))), Decimal(str(b.get("spent", 0)))
        used = f"{spent / amount * 100:.0f}%" if amount else "-"
        rows.append([b.get("name") or b.get("id"), b.get("action"), money(spent), money(amount, 2),
                     used, money(b["forecast"]) if b.get("forecast") is not None else "",
                     str(b.get("resets_at") or "")[:16]])
    out_console().print(table("Budget status", ["budget", "action", "spent", "limit", "used",
                                                "forecast", "resets"], rows,
                              right={"spent", "limit", "used", "forecast"}))


@cli.command("recommendations")
@connection_options
@json_option
def recommendations(as_json: bool) -> None:
    """Ways to spend less, each with dollars saved per month and its evidence."""
    client, settings = _client()
    with client:
        data = client.recommendations(project=_project_id(client, settings))
    if as_json:
        print_json(data)
        return
    print_recommendations(out_console(), data)


def print_recommendations(console: Console, data: Any) -> None:
    """Recommendations as a table, biggest saving first."""
    items = _budget_items(data, "recommendations")
    if not items:
        console.print("No recommendations yet: spend looks efficient (or there is too little data).")
        return

    def saving(item: dict[str, Any]) -> Decimal:
        value = item.get("savings_per_month", item.get("monthly_savings", item.get("savings", 0)))
        try:
            return Decimal(str(value or 0))
        except ArithmeticError:
            return Decimal(0)

    rows = []
    for item in sorted(items, key=saving, reverse=True):
        evidence = item.get("evidence")
        if isinstance(evidence, dict):
            evidence = ", ".join(f"{k}={v}" for k, v in list(evidence.items())[:4])
        rows.append([item.get("title") or item.get("kind") or item.get("type"),
                     money(saving(item), 2), item.get("confidence", ""),
                     item.get("detail") or item.get("description") or evidence or ""])
    console.print(table("Recommendations", ["recommendation", "saves / month", "confidence",
                                            "why"], rows, right={"saves / month"}))
    for note in (data.get("notes") or []) if isinstance(data, dict) else []:
        console.print(f"[dim]note: {note}[/]")


# -- pricing ---------------------------------------------------------------------------------

@cli.group("pricing", cls=_Group)
def pricing() -> None:
    """The local pricing catalogue: show a model, list, import a LiteLLM table."""


def _model_json(model: Any) -> dict[str, Any]:
    period = model.period_at(None)
    tiers = {svc: model_card(period, svc) for svc in period.rates}
    return {"key": model.key, "provider": model.provider, "name": model.name, "mode": model.mode,
            "max_input_tokens": model.max_input_tokens,
            "max_output_tokens": model.max_output_tokens, "supports": sorted(model.supports),
            "effective_from": period.effective_from.isoformat() if period.effective_from else None,
            "per_million": tiers.pop("standard", model_card(period, "standard")),
            "service_tiers": tiers,
            "long_context_thresholds": sorted(period.tiers)}


def model_card(period: Any, service_tier: str) -> dict[str, str]:
    """Non-zero rates of a tier, USD per million tokens (input and output always)."""
    card = period.card(service_tier).per_million()
    # Reasoning, audio and image rates fall back to input/output: show them only when they differ.
    shown = {k: v for k, v in card.items() if k in _CORE_RATES or (
        Decimal(v) != Decimal(card["output" if k == "reasoning" or k.endswith("_output")
                                   else "input"]))}
    return {k: v for k, v in shown.items() if k in ("input", "output") or Decimal(v) != 0}


_CORE_RATES = ("input", "output", "cache_read", "cache_write", "cache_write_long")


@pricing.command("show")
@click.argument("model")
@click.option("--provider", default=None, help="Disambiguate (openai, anthropic, google, …).")
@json_option
def pricing_show(model: str, provider: str | None, as_json: bool) -> None:
    """Rates of one model (aliases, snapshots and provider/ prefixes accepted)."""
    from llmlab.pricing import Catalogue

    catalogue = Catalogue.default()
    found = catalogue.resolve(model, provider)
    if found is None:
        raise click.ClickException(
            f"Unknown model {model!r}: it is not in the pricing catalogue (version "
            f"{catalogue.pricing_version}). Search with `llmlab pricing list --search "
            f"{model.split('/')[-1][:12]}`, or add it in ~/.llmlab/pricing.toml.")
    data = {"pricing_version": catalogue.pricing_version, **_model_json(found)}
    if as_json:
        print_json(data)
        return
    console = out_console()
    console.print(f"{data['key']}  ({data['mode']}, pricing {data['pricing_version']}"
                  + (f", since {data['effective_from']}" if data["effective_from"] else "") + ")")
    limits = f"context {tokens(data['max_input_tokens'] or '?')} in / " \
             f"{tokens(data['max_output_tokens'] or '?')} out"
    console.print(limits + (f"; supports {', '.join(data['supports'])}" if data["supports"] else ""))
    tiers = {"standard": data["per_million"], **data["service_tiers"]}
    components = sorted({c for t in tiers.values() for c in t},
                        key=lambda c: list(data["per_million"]).index(c)
                        if c in data["per_million"] else 99)
    rows = [[c, *(f"${t[c]}" if c in t else "" for t in tiers.values())] for c in components]
    console.print(table("USD per 1M tokens", ["rate", *tiers], rows, right=set(tiers)))
    if data["long_context_thresholds"]:
        console.print("long-context tiers above " + ", ".join(
            f"{tokens(t)} prompt tokens" for t in data["long_context_thresholds"]))


@pricing.command("list")
@click.option("--provider", default=None, help="Only this provider.")
@click.option("--search", "search", default=None, help="Substring of the model name.")
@click.option("--mode", default=None, help="chat, responses, embedding, …")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1),
              help="At most this many rows.")
@json_option
def pricing_list(provider: str | None, search: str | None, mode: str | None, limit: int,
                 as_json: bool) -> None:
    """Models of the catalogue with their input and output rates."""
    from llmlab.pricing import Catalogue

    catalogue = Catalogue.default()
    needle = (search or "").lower()
    models = []
    for key, model in sorted(catalogue.models.items()):
        if (provider and model.provider != provider.lower()) or (mode and model.mode != mode) \
                or (needle and needle not in key.lower()):
            continue
        models.append(model)
    shown = models[:limit]
    if as_json:
        print_json({"pricing_version": catalogue.pricing_version, "count": len(models),
                    "models": [_model_json(m) for m in shown]})
        return
    rows = []
    for m in shown:
        card = m.period_at(None).card("standard").per_million()
        rows.append([m.key, m.mode, f"${card['input']}", f"${card['output']}",
                     f"${card['cache_read']}"])
    console = out_console()
    console.print(table(f"Pricing {catalogue.pricing_version}: USD per 1M tokens",
                        ["model", "mode", "input", "output", "cache read"], rows,
                        right={"input", "output", "cache read"}))
    more = f" (showing {len(shown)}; --limit for more)" if len(models) > len(shown) else ""
    console.print(f"{len(models)} models{more}")


@pricing.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--effective-from", default=None, metavar="DATE",
              help="Changed prices apply from this date [default: today].")
@json_option
def pricing_import(file: Path, effective_from: str | None, as_json: bool) -> None:
    """Refresh the catalogue from a LiteLLM-format JSON table (saved in ~/.llmlab)."""
    from llmlab.pricing import Catalogue, import_litellm
    from llmlab.pricing._overrides import user_catalogue_path

    if not file.exists():
        raise click.ClickException(f"No such file: {file}")
    report = import_litellm(file, effective_from=effective_from, save=True)
    Catalogue.reset_default()
    data = {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
            "saved_to": str(user_catalogue_path())}
    if as_json:
        print_json(data)
        return
    out_console().print(f"Imported {file}: {report.added} added, {report.updated} updated, "
                        f"{report.unchanged} unchanged. Saved to {data['saved_to']}.")


# -- demo ------------------------------------------------------------------------------------

@cli.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=0, type=int, help="Port [default: a free one].")
@click.option("--exit", "exit_after", is_flag=True,
              help="Stop after printing the results instead of serving until Ctrl-C.")
def demo(host: str, port: int, exit_after: bool) -> None:
    """Run a server, a fake OpenAI/Anthropic/Gemini and a sample app, offline; show the costs."""
    from llmlab_server.demo import run_demo

    run_demo(host=host, port=port, serve_forever=not exit_after, console=out_console())


def main() -> int:
    """Entry point of the ``llmlab`` console script."""
    cli.main(prog_name="llmlab")
    return 0
