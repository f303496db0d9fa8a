"""What every client command shares: the connection options, the resolved settings, the
`llmlab.Client` they make, the project lookup, and the time-range options."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from llmlab.cli._config import ENV, Settings, resolve
from llmlab.client import Client

__all__ = ["BASE_URL", "DEFAULT_URL", "KEY_SOURCE", "connect", "connection_options", "json_option",
           "open_client", "parse_since", "project_id", "settings", "since_option", "tz_option",
           "until_option"]

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "http://127.0.0.1:8000"
#: Keys of ``ctx.meta`` (shared by a context and its parents): the flags given at any level,
#: and the URL and key source in use, for error messages.
FLAGS = "llmlab.flags"
BASE_URL = "llmlab.base_url"
KEY_SOURCE = "llmlab.key_source"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and param.name:
        ctx.meta.setdefault(FLAGS, {})[param.name] = value
    return value


def connection_options(f: F) -> F:
    """``--url``, ``--api-key`` and ``--project``, accepted by the root group and every command."""
    f = click.option("--project", expose_value=False, callback=_remember, metavar="SLUG|ID",
                     help="Project (default: $LLMLAB_PROJECT, then config.toml).")(f)
    f = click.option("--api-key", "api_key", expose_value=False, callback=_remember,
                     metavar="KEY", help="The CLI's API key (default: $LLMLAB_CLI_API_KEY, then "
                                         "config.toml; never the app's $LLMLAB_API_KEY).")(f)
    f = click.option("--url", "base_url", expose_value=False, callback=_remember, metavar="URL",
                     help="Server URL (default: $LLMLAB_BASE_URL, then config.toml).")(f)
    return f


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document (for scripts) instead of tables.")
since_option = click.option("--since", default=None, metavar="7d|24h|DATE",
                            help="Start: a duration ago (30m, 24h, 7d, 2w) or an ISO date/time "
                                 "[default: 30 days ago].")
until_option = click.option("--until", default=None, metavar="DATE",
                            help="End (exclusive), ISO date/time [default: now].")
tz_option = click.option("--tz", default="UTC", show_default=True,
                         help="IANA time zone for naive times and day buckets.")


def settings() -> Settings:
    """The settings of the running command: its flags (and its groups'), env, config."""
    return resolve(click.get_current_context().meta.get(FLAGS, {}))


def open_client(api_key: str | None, base_url: str, *, timeout: float = 30.0) -> Client:
    """A `Client` with exactly this key, or none: never $LLMLAB_API_KEY, the app's key."""
    return Client(api_key, base_url, timeout=timeout, from_env=False)


def connect(current: Settings | None = None) -> tuple[Client, Settings]:
    """A `Client` from flags, environment and config; a clear error when unconfigured."""
    current = current or settings()
    if not current.base_url:
        raise click.ClickException(
            f"No llmlab server configured ({current.path} has none). Run `llmlab init`, or "
            "pass --url / set LLMLAB_BASE_URL.")
    if not current.api_key:
        app_key = (" (LLMLAB_API_KEY is set, but that is your app's key: the CLI never uses it)"
                   if os.environ.get("LLMLAB_API_KEY") else "")
        raise click.ClickException(
            f"No API key configured for {current.base_url}{app_key}. Run `llmlab login`, or "
            f"pass --api-key / set {ENV['api_key']}.")
    meta = click.get_current_context().meta
    meta[BASE_URL] = current.base_url
    meta[KEY_SOURCE] = current.sources.get("api_key")
    return open_client(current.api_key, current.base_url), current


def project_id(client: Client, current: Settings) -> int | None:
    """The configured project as an id (a slug is looked up among the caller's projects)."""
    wanted = current.project
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
        f"Unknown project {wanted!r} (from {current.sources.get('project')}): this key can see "
        f"{seen}. Pass --project SLUG.")


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
