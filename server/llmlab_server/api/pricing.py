"""The pricing catalogue: ``/api/models/pricing`` (search) and ``/api/pricing/catalogue`` (SDKs)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from llmlab_server.openapi import ok, operation
from llmlab_server.schemas import PricingList, PricingQuery
from llmlab_server.services.pricing import (
    catalogue_payload,
    etag_matches,
    list_pricing,
    reload_if_changed,
)

bp = Blueprint("pricing", __name__, url_prefix="/api")


@bp.before_app_request
def _fresh_catalogue() -> None:
    """Pick up a catalogue ``llmlab server pricing update`` wrote (a stat every few seconds)."""
    reload_if_changed()


@bp.get("/models/pricing")
@operation(tag="pricing", query=PricingQuery, response=PricingList)
def pricing(query: PricingQuery) -> Response:
    """Current list prices (USD per million tokens), searchable by name, provider and mode."""
    return ok(list_pricing(query))


@bp.get("/pricing/catalogue")
@operation(tag="pricing", scope=None, response=dict, raw=True)
def catalogue() -> Response:
    """The whole pricing catalogue this server prices events with, for SDKs to price the same.

    The body is the catalogue document itself (``format``, ``pricing_version``, ``source``,
    ``models`` with every price period), not an envelope. Any key of a project may read it,
    ingest keys included; gzip-compressed when the client accepts it. The response carries a
    strong ``ETag``: send it back in ``If-None-Match`` to get ``304 Not Modified`` while the
    catalogue is unchanged.
    """
    gzipped = request.accept_encodings.quality("gzip") > 0
    body, etag = catalogue_payload(gzipped)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, 200, headers=headers, mimetype="application/json")
