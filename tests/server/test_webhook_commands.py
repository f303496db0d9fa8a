"""``llmlab server webhooks dead | retry``, run through the root group as users run them."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, update

from llmlab.cli._app import cli
from llmlab_server.models import Project, Webhook, WebhookDelivery
from llmlab_server.services import webhook_outbox as outbox
from llmlab_server.services.webhook_outbox import HookRef


def test_dead_deliveries_are_listed_and_queued_again(app: Flask, database_url: str) -> None:
    """``dead`` lists the dead delivery by its delivery id; ``retry ID`` makes it pending with
    the same id; ``retry`` with nothing named is a usage error."""
    with app.extensions["llmlab_db"][1]() as session:
        project = Project(name="p", slug="cli-webhooks")
        session.add(project)
        session.flush()
        hook = Webhook(project_id=project.id, name="w", url="http://127.0.0.1:9/",
                       secret_salt="s", secret_prefix="whsec_x")
        session.add(hook)
        session.flush()
        dead, alive = (outbox.enqueue(session, [HookRef(hook.id, project.id, "s")],
                                      {"type": "ping"})[0] for _ in range(2))
        session.execute(update(WebhookDelivery).where(WebhookDelivery.delivery_id == dead)
                        .values(status="dead", attempts=8, last_error="HTTP 500"))
        session.commit()
    runner = CliRunner()
    listed = runner.invoke(cli, ["server", "webhooks", "dead", "--database", database_url])
    assert listed.exit_code == 0, listed.output
    assert dead in listed.output and alive not in listed.output and "HTTP 500" in listed.output
    refused = runner.invoke(cli, ["server", "webhooks", "retry", "--database", database_url])
    assert refused.exit_code != 0 and "--all" in refused.output
    retried = runner.invoke(cli, ["server", "webhooks", "retry", dead, "--database",
                                  database_url])
    assert retried.exit_code == 0 and "1 deliveries queued again" in retried.output
    with app.extensions["llmlab_db"][1]() as session:
        row = session.scalars(select(WebhookDelivery)
                              .where(WebhookDelivery.delivery_id == dead)).one()
    assert (row.status, row.attempts) == ("pending", 0)
