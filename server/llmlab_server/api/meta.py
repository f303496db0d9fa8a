"""Operations endpoints: ``/health``, ``/metrics``, ``/api/openapi.json``, ``/api/docs``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template
from sqlalchemy import text

from llmlab_server import db, metrics
from llmlab_server.errors import error_body
from llmlab_server.openapi import build_spec, ok, operation
from llmlab_server.schemas import Health

bp = Blueprint("meta", __name__)


@bp.get("/health")
@operation(tag="meta", auth="none", response=Health, errors=(503,))
def health() -> Response:
    """Liveness: 200 when the database answers, 503 otherwise."""
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        response = jsonify(error_body(503, "database_unreachable", "The database is unreachable."))
        response.status_code = 503
        return response
    return ok(Health(status="ok", database="ok"))


@bp.get("/metrics")
@operation(tag="meta", auth="none", media_type="text/plain")
def prometheus() -> Response:
    """Prometheus metrics of this process."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


@bp.get("/api/openapi.json")
@operation(tag="meta", auth="none", raw=True)
def openapi() -> Response:
    """This API's OpenAPI 3.1 document."""
    if "llmlab_openapi" not in current_app.extensions:
        current_app.extensions["llmlab_openapi"] = build_spec(current_app)
    return jsonify(current_app.extensions["llmlab_openapi"])


@bp.get("/api/docs")
@operation(tag="meta", auth="none", media_type="text/html")
def docs() -> str:
    """Browsable API reference, rendered from the OpenAPI document."""
    return render_template("docs.html")
