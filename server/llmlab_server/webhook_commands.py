"""``llmlab server webhooks dead | retry``: the webhook deliveries that ran out of tries."""

from __future__ import annotations

import os

import click
from sqlalchemy.orm import Session

from llmlab_server import db
from llmlab_server.config import default_database_url
from llmlab_server.services import webhook_outbox

__all__ = ["webhooks_group"]

_DATABASE_HELP = "SQLAlchemy URL (default: $LLMLAB_DATABASE_URL, else ~/.llmlab/llmlab.db)."


def _database(database: str | None) -> str:
    return database or os.environ.get("LLMLAB_DATABASE_URL") or default_database_url()


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook deliveries that ran out of tries (dead letters)."""


@webhooks_group.command("dead")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def list_dead(database: str | None, limit: int) -> None:
    """List dead deliveries, newest first: delivery id, webhook, project, tries, last error."""
    engine = db.make_engine(_database(database))
    try:
        with Session(engine) as session:
            rows = webhook_outbox.dead(session, limit)
    finally:
        engine.dispose()
    for row in rows:
        click.echo(f"{row.delivery_id}  webhook={row.webhook_id} project={row.project_id} "
                   f"type={row.event_type} attempts={row.attempts} "
                   f"created={row.created_at:%Y-%m-%d %H:%M:%S}Z  {row.last_error or ''}")
    click.echo(f"{len(rows)} dead deliveries")


@webhooks_group.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Retry every dead delivery.")
@click.option("--database", "database", default=None, metavar="URL", help=_DATABASE_HELP)
def retry(delivery_ids: tuple[str, ...], everything: bool, database: str | None) -> None:
    """Queue dead deliveries (by delivery id, or --all) again; a running server sends them,
    with the same X-LLMLab-Delivery id, within its poll interval."""
    if not delivery_ids and not everything:
        raise click.UsageError("Name delivery ids, or pass --all.")
    engine = db.make_engine(_database(database))
    try:
        with Session(engine) as session:
            count = webhook_outbox.retry_dead(session, None if everything else delivery_ids)
    finally:
        engine.dispose()
    click.echo(f"{count} deliveries queued again")
