"""``llmlab summary``, ``llmlab events`` and ``llmlab export``: what was spent, on what."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from llmlab.cli._options import (
    connect,
    connection_options,
    json_option,
    parse_since,
    project_id,
    since_option,
    tz_option,
    until_option,
)
from llmlab.cli._output import err_console, money, out_console, print_json, print_summary, table, tokens

__all__ = ["COMMANDS", "events", "export", "summary"]

F = TypeVar("F", bound=Callable[..., Any])
_GROUP_BY = re.compile(r"^(model|provider|project|day|hour|job|user|tag:[A-Za-z0-9_.:-]{1,64})$")


def _check_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _GROUP_BY.match(value):
        raise click.BadParameter(
            "use model, provider, project, day, hour, job, user or tag:<key>")
    return value


@click.command("summary")
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
    client, current = connect()
    with client:
        data = client.summary(project=project_id(client, current), start=parse_since(since),
                              end=until, tz=tz, group_by=group_by)
    if as_json:
        print_json(data)
        return
    print_summary(out_console(), data)


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


def _json_line(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


@click.command("events")
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
    client, current = connect()
    filters: dict[str, Any] = {"model": model, "provider": provider, "job": job, "user": user,
                               "status": status_, "start": parse_since(since), "end": until}
    with client:
        filters["project"] = project_id(client, current)
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
                    out_console().print("  ".join(str(c) for c in _event_rows([event])[0]),
                                        markup=False)


@click.command("export")
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

    client, current = connect()
    with client:
        filters = {"project": project_id(client, current), "model": model,
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
        err_console().print(f"Wrote {max(rows, 0):,} events to {target}", markup=False)


COMMANDS = (summary, events, export)
