"""``llmlab init``, ``llmlab login`` and ``llmlab status``: connect the CLI to a server, and
show where every setting came from.

``init`` signs up (or logs in), asks which project the app will report to, creates it when
missing, and makes two keys: an ``admin`` key the CLI keeps in its config and an ``ingest`` key
for the app, printed once with the exact ``llmlab.init(project=...)`` line — so the app's
events match the project of its key (else every one is rejected with ``project_mismatch``).
"""

from __future__ import annotations

import os
import re
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from llmlab.cli._config import ENV, resolve, save_file
from llmlab.cli._login import log_in
from llmlab.cli._options import (
    BASE_URL,
    DEFAULT_URL,
    connection_options,
    json_option,
    open_client,
    settings,
)
from llmlab.cli._output import explain, money, out_console, print_json
from llmlab.client import Client
from llmlab.errors import APIError, LLMLabError

__all__ = ["COMMANDS", "init", "login", "status"]

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")


def slugify(text: str) -> str:
    """A project slug from free text (``Support Bot`` → ``support-bot``); empty if none."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.strip().lower()).strip("-_")[:63].strip("-_")


def _pick_project(projects: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    for project in projects:
        if wanted and wanted in (project.get("slug"), project.get("name"), str(project.get("id"))):
            return project
    return None


def _create_project(user: Client, name: str, slug: str, *, exact: bool) -> dict[str, Any]:
    """Create the project; slugs are global, so a default one gets a suffix when taken."""
    for attempt in range(5):
        candidate = slug if attempt == 0 else f"{slug[:57]}-{secrets.token_hex(2)}"
        try:
            return dict(user.create_project(name, candidate))
        except APIError as exc:
            if exc.status == 409 and exact:
                raise click.ClickException(
                    f"The project slug {slug!r} is taken on this server (slugs are global). "
                    "Choose another with --project.") from None
            if exc.status != 409:
                raise
    raise click.ClickException("Could not find a free project slug; pass --project.")


def _ask_project(projects: list[dict[str, Any]], email: str) -> str:
    """Ask which project the app reports to: an existing one, else named after this directory."""
    default = (projects[0]["slug"] if projects else
               slugify(Path.cwd().name) or slugify(email.split("@")[0]) or "default")
    return str(click.prompt("Project your app will report to (its LLMLAB_PROJECT)",
                            default=default))


def _use_key(url: str, api_key: str, project: str | None, as_json: bool) -> None:
    """Store a pasted read/admin key, and the project it is for."""
    with open_client(api_key, url) as keyed:
        me = keyed.me()
    scopes = (me.get("api_key") or {}).get("scopes", [])
    if me.get("kind") != "api_key" or not {"read", "admin"} & set(scopes):
        raise click.ClickException(
            f"This key has scopes {scopes}: the CLI needs `read` (or `admin`). Use an "
            "ingest key only in your app (LLMLAB_API_KEY there).")
    projects = list(me.get("projects") or [])
    chosen = _pick_project(projects, project) if project else (projects or [{}])[0]
    if chosen is None:
        seen = ", ".join(p["slug"] for p in projects) or "none"
        raise click.ClickException(f"This key cannot see project {project!r} (it sees {seen}).")
    path = save_file({"base_url": url, "api_key": api_key, "project": chosen.get("slug")})
    _report({"config": str(path), "base_url": url, "project": chosen.get("slug"),
             "scopes": scopes}, as_json)


def _connect(url: str, *, email: str | None, password: str | None, api_key: str | None,
             project: str | None, signup: bool, ask_project: bool, as_json: bool) -> None:
    """What ``init`` and ``login`` share: check the server, authenticate, write the config."""
    url = url.rstrip("/")
    click.get_current_context().meta[BASE_URL] = url
    with open_client(None, url) as anonymous:
        anonymous.health()  # a clear "cannot reach" before any prompt for secrets
        if api_key:
            _use_key(url, api_key, project, as_json)
            return
        email = email or click.prompt("Email")
        password = password or click.prompt("Password", hide_input=True,
                                            confirmation_prompt=signup)
        session, created_account = None, False
        if signup:
            try:
                session, created_account = anonymous.signup(email, password), True
            except APIError as exc:
                if exc.status != 409:
                    raise
        if session is None:
            session = log_in(anonymous, url, email, password)
    with open_client(session["access_token"], url) as user:
        projects = list(user.me().get("projects") or [])
        if project is None and ask_project:
            project = _ask_project(projects, email)
        if project:  # an existing project by slug, name or id, else a new one of that name
            slug = slugify(project)
            chosen = _pick_project(projects, project) or _pick_project(projects, slug)
            if chosen is None and not _SLUG.fullmatch(slug):
                raise click.ClickException(f"{project!r} is not a project name (use letters, "
                                           "digits, - and _).")
        else:  # deterministic: your first project, else one named after your email
            slug = projects[0]["slug"] if projects else slugify(email.split("@")[0]) or "default"
            chosen = _pick_project(projects, slug)
        created_project = False
        if chosen is None:
            if not signup:
                seen = ", ".join(p["slug"] for p in projects) or "none yet"
                raise click.ClickException(
                    f"You have no project {slug!r} (yours: {seen}). `llmlab init --project "
                    f"{slug}` creates it.")
            chosen = _create_project(user, project or slug, slug, exact=project is not None)
            created_project = True
        cli_key = user.create_key(chosen["id"], name="llmlab-cli", scopes=["admin"])
        ingest = user.create_key(chosen["id"], name="app-ingest", scopes=["ingest"]) if signup else None
    path = save_file({"base_url": url, "api_key": cli_key["key"], "project": chosen["slug"],
                      "email": email, **({"ingest_key": ingest["key"]} if ingest else {})})
    result: dict[str, Any] = {
        "config": str(path), "base_url": url, "email": email, "project": chosen["slug"],
        "project_id": chosen["id"], "created_account": created_account,
        "created_project": created_project, "scopes": ["admin"],
        "cli_key_prefix": cli_key.get("prefix"), "ingest_key": ingest["key"] if ingest else None}
    if ingest:
        result["app"] = {"init": f'llmlab.init(project="{chosen["slug"]}")',
                         "env": {"LLMLAB_BASE_URL": url, "LLMLAB_API_KEY": ingest["key"],
                                 "LLMLAB_PROJECT": chosen["slug"]}}
    _report(result, as_json)


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    console = out_console()

    def say(text: str = "") -> None:
        console.print(text, markup=False, soft_wrap=True)

    say(f"Saved {result['config']}: server {result['base_url']}, project {result['project']}, "
        f"CLI key with scopes {', '.join(result['scopes'])}.")
    app = result.get("app")
    if app:
        say("\nIn your app:")
        say(f"  {app['init']}")
        say("with this environment (the ingest-only key is shown once; the config keeps it as "
            "ingest_key):")
        for name, value in app["env"].items():
            say(f"  export {name}={value}")
        say(f"The CLI keeps its own key (in the config, or {ENV['api_key']}): it never uses the "
            "app's LLMLAB_API_KEY.")
    elif "created_account" not in result and result["project"]:
        say(f'\nIn your app: llmlab.init(project="{result["project"]}"), with an ingest-only key '
            "of that project as LLMLAB_API_KEY.")
    say("\nNext: `llmlab status`, `llmlab summary --by model`.")


@click.command("init")
@click.option("--url", "url", default=None, metavar="URL",
              help=f"Server URL [default: $LLMLAB_BASE_URL, config, {DEFAULT_URL}].")
@click.option("--email", default=None, help="Account email (sign up, or log in if it exists).")
@click.option("--password", default=None, help="Account password (prompted when absent).")
@click.option("--api-key", "api_key", default=None, metavar="KEY",
              help="Paste an existing read/admin API key instead of signing up.")
@click.option("--project", default=None, metavar="SLUG",
              help="The project your app reports to, created if missing [asked; with --email "
                   "and --password: your first project, else one named after your email].")
@json_option
def init(url: str | None, email: str | None, password: str | None, api_key: str | None,
         project: str | None, as_json: bool) -> None:
    """Connect the CLI to a server and write ~/.llmlab/config.toml.

    Signs up (or logs in) with --email/--password, asks for the project your app will report
    to (or takes --project), creates it when missing, and creates two keys: an `admin` key the
    CLI keeps in the config (reads, budgets) and an `ingest` key for your app, printed once with
    the app's `llmlab.init(project=...)` line. With --api-key it stores that key instead.
    """
    current = resolve({})
    interactive = not api_key and not (email and password)
    if url is None:
        url = current.base_url or DEFAULT_URL
        if not (email or api_key):
            url = click.prompt("Server URL", default=url)
    if not (email or api_key) and click.prompt(
            "Sign up / log in with email, or paste an API key?",
            type=click.Choice(["email", "key"]), default="email") == "key":
        api_key = click.prompt("API key", hide_input=True)
    _connect(url, email=email, password=password, api_key=api_key, project=project,
             signup=True, ask_project=interactive and not api_key, as_json=as_json)


@click.command("login")
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
             api_key=api_key, project=project or current.project, signup=False,
             ask_project=False, as_json=as_json)


def _mask(key: str | None) -> str | None:
    return None if not key else f"{key[:8]}…{key[-4:]}"


def _local_stats() -> dict[str, Any]:
    from llmlab._ledger import read_ledger
    from llmlab._paths import home_dir
    from llmlab._spool_dirs import spool_totals

    home = home_dir()
    files, events, dropped = spool_totals(home / "spool")
    ledger_dir = home / "ledger"
    count, total = 0, Decimal(0)
    if ledger_dir.is_dir():
        for event in read_ledger(ledger_dir):
            count += 1
            total += Decimal(str((event.get("cost") or {}).get("total") or 0))
    return {"home": str(home),
            "spool": {"directory": str(home / "spool"), "files": files, "events": events,
                      "dropped_total": dropped},
            "ledger": {"directory": str(ledger_dir), "events": count, "cost": str(total)}}


@click.command("status")
@connection_options
@json_option
def status(as_json: bool) -> None:
    """Server health, who the CLI is, where each setting came from, the local spool and ledger.

    Exits 1 when a server is configured but unreachable or rejects the key.
    """
    current = settings()
    report: dict[str, Any] = {
        "config": {"path": str(current.path), "exists": current.path.exists(),
                   "base_url": current.base_url, "project": current.project,
                   "api_key": _mask(current.api_key), "sources": current.sources,
                   "ignored": ["LLMLAB_API_KEY"] if os.environ.get("LLMLAB_API_KEY") else []},
        "server": None, **_local_stats()}
    problem = None
    if current.base_url:
        server: dict[str, Any] = {"url": current.base_url, "reachable": False, "auth": None}
        report["server"] = server
        try:
            with open_client(current.api_key, current.base_url, timeout=5) as client:
                server["health"] = client.health()
                server["reachable"] = True
                if current.api_key:
                    me = client.me()
                    server["auth"] = {"kind": me.get("kind"),
                                      "scopes": (me.get("api_key") or {}).get("scopes"),
                                      "projects": [p["slug"] for p in me.get("projects", [])]}
        except LLMLabError as exc:
            problem = explain(exc, current.base_url, current.sources.get("api_key"))
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
    sources = cfg["sources"]

    def say(label: str, text: str, setting: str | None = None) -> None:
        origin = f"  (from {sources[setting]})" if setting in sources else ""
        console.print(f"{label:<8} {text}{origin}", markup=False, soft_wrap=True)

    say("config", cfg["path"] + ("" if cfg["exists"] else "  (none: run `llmlab init`)"))
    server = report["server"]
    if server is None:
        say("server", "not configured (run `llmlab init`, or set LLMLAB_BASE_URL)")
    else:
        say("server", f"{server['url']}  {'ok' if server['reachable'] else 'UNREACHABLE'}",
            "base_url")
    if cfg["api_key"]:
        say("key", cfg["api_key"], "api_key")
    elif server is not None:
        say("key", f"none (run `llmlab login`, or set {ENV['api_key']})")
    for ignored in cfg["ignored"]:
        say("", f"{ignored} is set: that is your app's key, which the CLI never uses")
    auth = (server or {}).get("auth")
    if auth:
        say("auth", f"{auth['kind']} scopes={','.join(auth['scopes'] or ['user'])} "
                    f"projects={','.join(auth['projects']) or '-'}")
    if cfg["project"]:
        say("project", cfg["project"], "project")
    spool, ledger = report["spool"], report["ledger"]
    say("spool", f"{spool['events']} events in {spool['files']} files waiting "
                 f"({spool['dropped_total']} ever dropped)  {spool['directory']}")
    say("ledger", f"{ledger['events']} events, {money(ledger['cost'])}  {ledger['directory']}")


COMMANDS = (init, login, status)
