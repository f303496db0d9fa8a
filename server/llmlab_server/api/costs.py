"""Cost reads: ``/api/costs/summary``, ``/timeseries`` and ``/export`` (CSV)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, stream_with_context

from llmlab_server import db
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.schemas import EventsQuery, ExportQuery
from llmlab_server.services import summaries
from llmlab_server.services.access import project_ids_for
from llmlab_server.summary_schemas import Summary, SummaryQuery, Timeseries, TimeseriesQuery

bp = Blueprint("costs", __name__, url_prefix="/api/costs")


def window(query: SummaryQuery | TimeseriesQuery | ExportQuery | EventsQuery) -> summaries.Window:
    """The query's validated time range (capped at ``MAX_RANGE_DAYS``)."""
    return summaries.parse_window(query.start, query.end, query.tz,
                                  current_app.config["MAX_RANGE_DAYS"])


@bp.get("/summary")
@operation(tag="costs", scope="read", query=SummaryQuery, response=Summary)
def summary(query: SummaryQuery) -> Response:
    """Total cost, calls, tokens, latency and error rate, optionally grouped (with ``limit``,
    the costliest groups and the rest summed in ``other``)."""
    ids = project_ids_for(principal(), query.project)
    return ok(summaries.summary(db.session(), ids, query, window(query)))


@bp.get("/timeseries")
@operation(tag="costs", scope="read", query=TimeseriesQuery, response=Timeseries)
def timeseries(query: TimeseriesQuery) -> Response:
    """Cost per hour or day in a time zone, zero-filled."""
    ids = project_ids_for(principal(), query.project)
    return ok(summaries.timeseries(db.session(), ids, query, window(query)))


@bp.get("/export")
@operation(tag="costs", scope="read", query=ExportQuery, media_type="text/csv")
def export(query: ExportQuery) -> Response:
    """The matching events as CSV, streamed, oldest first."""
    ids = project_ids_for(principal(), query.project)
    lines = summaries.export_csv(db.session(), ids, query, window(query))
    name = f"llmlab-costs-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
