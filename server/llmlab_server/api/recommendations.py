"""Savings recommendations: ``/api/recommendations``."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server import db
from llmlab_server.budget_schemas import Recommendations, RecommendationsQuery
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.services import recommendations
from llmlab_server.services.access import project_ids_for

bp = Blueprint("recommendations", __name__, url_prefix="/api/recommendations")


@bp.get("")
@operation(tag="recommendations", scope="read", query=RecommendationsQuery,
           response=Recommendations)
def list_recommendations(query: RecommendationsQuery) -> Response:
    """Ways to spend less, each with dollars saved per month, evidence and confidence."""
    ids = project_ids_for(principal(), query.project)
    return ok(recommendations.recommend(db.session(), ids, days=query.days))
