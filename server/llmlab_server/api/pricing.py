"""The pricing catalogue: ``/api/models/pricing``."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server.openapi import ok, operation
from llmlab_server.schemas import PricingList, PricingQuery
from llmlab_server.services.pricing import list_pricing

bp = Blueprint("pricing", __name__, url_prefix="/api/models")


@bp.get("/pricing")
@operation(tag="pricing", query=PricingQuery, response=PricingList)
def pricing(query: PricingQuery) -> Response:
    """Current list prices (USD per million tokens), searchable by name, provider and mode."""
    return ok(list_pricing(query))
