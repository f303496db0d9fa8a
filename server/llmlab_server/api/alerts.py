"""Budget alerts: ``/api/alerts``; also evaluates budgets after every ingest that stored events."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g, request

from llmlab_server import db
from llmlab_server.budget_schemas import AlertOut, AlertsQuery
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.services import alerts
from llmlab_server.services.access import project_ids_for

bp = Blueprint("alerts", __name__, url_prefix="/api/alerts")
logger = logging.getLogger("llmlab_server")


@bp.get("")
@operation(tag="alerts", scope="read", query=AlertsQuery, response=list[AlertOut])
def list_alerts(query: AlertsQuery) -> Response:
    """Recorded budget alerts, newest first (budgets are evaluated first)."""
    session = db.session()
    ids = project_ids_for(principal(), query.project)
    alerts.evaluate_projects(session, ids, current_app._get_current_object())  # type: ignore[attr-defined]
    return ok(alerts.list_alerts(session, ids, query))


@bp.after_app_request
def _after_ingest(response: Response) -> Response:
    # The ingest is committed and answered whatever happens here: errors are only logged.
    if request.endpoint != "events.track" or response.status_code != 207:
        return response
    try:
        if not g.get("ingested"):  # set by events.track: how many events were new
            return response
        caller = g.get("principal")
        if caller is None:
            return response
        project_id = (caller.key.project_id if caller.key is not None
                      else int(request.args["project"]))
        alerts.evaluate_projects(db.session(), [project_id],
                                 current_app._get_current_object())  # type: ignore[attr-defined]
    except Exception:
        logger.exception("budget evaluation after ingest failed (the events are stored)")
        db.session().rollback()
    return response
