"""OpenTelemetry in: the OTLP/HTTP traces endpoint, ``/api/otlp/v1/traces``.

OTLP exporters append ``/v1/traces`` to their configured endpoint, so an exporter is pointed
at ``OTEL_EXPORTER_OTLP_ENDPOINT=<server>/api/otlp`` with
``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <ingest key>`` (a key with the ``ingest``
scope; a user session names the project with ``?project=<id>``). The answer is an OTLP
``ExportTraceServiceResponse`` in the request's encoding, not llmlab's envelope, because
exporters parse it; errors of the request as a whole are in the envelope.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from llmlab_server import db, metrics
from llmlab_server.openapi import operation, principal
from llmlab_server.schemas import TrackQuery
from llmlab_server.services import otlp, otlp_wire
from llmlab_server.services.access import ingest_project

bp = Blueprint("otlp", __name__, url_prefix="/api/otlp")


@bp.post("/v1/traces")
@operation(tag="otlp", scope="ingest", query=TrackQuery, body_doc=dict[str, Any], response=dict,
           errors=(404, 422), raw=True, alt_media=(otlp_wire.PROTOBUF,))
def traces(query: TrackQuery) -> Response:
    """Ingest an OTLP trace export (protobuf or JSON, gzip allowed): GenAI spans become events."""
    mime = otlp_wire.media_type(request.content_type)
    project = ingest_project(principal(), query.project)
    spans = otlp_wire.decode(request.get_data(cache=False), mime, request.content_encoding,
                             max_bytes=current_app.config["MAX_BODY_BYTES"])
    result = otlp.ingest_spans(db.session(), project, spans,
                               max_batch=current_app.config["MAX_BATCH"])
    metrics.counted(result.track)
    return Response(otlp_wire.encode_response(mime, result.rejected, result.message), 200,
                    mimetype=mime)
