"""Event ingestion and reads: ``/api/events``."""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, g, request

from llmlab_server import db, metrics
from llmlab_server.api.costs import window
from llmlab_server.errors import NotFound
from llmlab_server.event_schemas import EVENT_ID_PATTERN, EventQuery, TaggedEventsQuery
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.schemas import EventOut, EventPage, TrackBody, TrackQuery, TrackResult
from llmlab_server.services import event_reads, ingest
from llmlab_server.services.access import ingest_project, project_ids_for

bp = Blueprint("events", __name__, url_prefix="/api/events")
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


@bp.post("/track")
@operation(tag="events", scope="ingest", query=TrackQuery, body_doc=TrackBody,
           response=TrackResult, status=207, errors=(404, 422))
def track(query: TrackQuery) -> Response:
    """Ingest one event or ``{"events": [...]}`` (gzip allowed); per-event results.

    Authenticate with an API key with the ``ingest`` scope (events go to its project), or as a
    user with ``?project=<id>`` (member role or above). Each event is validated on its own:
    invalid ones are ``rejected``, ones already stored are ``duplicate`` and not counted again.
    Send ``Content-Encoding: gzip`` to compress; the decompressed size is limited too.
    404: the project is not the caller's, or was deleted while the batch was being stored.
    """
    project = ingest_project(principal(), query.project)
    cfg = current_app.config
    result = ingest.ingest_body(db.session(), project, request.get_data(cache=False),
                                request.content_type, request.content_encoding,
                                max_bytes=cfg["MAX_BODY_BYTES"], max_batch=cfg["MAX_BATCH"])
    g.ingested = result.accepted  # budgets are evaluated after the answer when > 0
    return ok(metrics.counted(result), 207)


@bp.get("")
@operation(tag="events", scope="read", query=TaggedEventsQuery, response=EventPage)
def list_events(query: TaggedEventsQuery) -> Response:
    """Stored events, newest first, filtered; page with ``cursor``.

    ``tag=key:value`` (repeatable) keeps the events that have every one of those tags.
    """
    ids = project_ids_for(principal(), query.project)
    return ok(event_reads.events_page(db.session(), ids, query, window(query)))


@bp.get("/<event_id>")
@operation(tag="events", scope="read", query=EventQuery, response=EventOut, errors=(409,))
def get_event(event_id: str, query: EventQuery) -> Response:
    """One stored event, every field, by its id.

    Only the caller's projects are searched (``project`` narrows to one): another tenant's
    event is 404, as is an id no project stores. 409 (``ambiguous_event``) when two of the
    caller's projects store the same id; pass ``project``.
    """
    ids = project_ids_for(principal(), query.project)
    if not _EVENT_ID.fullmatch(event_id):
        raise NotFound("No such event.", param="event_id")
    return ok(event_reads.event_by_id(db.session(), ids, event_id))
