"""Savings recommendations: ``/api/recommendations``, and a project's dismissals and snoozes."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server import db
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.recommendation_schemas import (
    RecommendationList,
    RecommendationListQuery,
    RecommendationStateOut,
    SnoozeBody,
    StateBody,
)
from llmlab_server.services import recommendation_states as states
from llmlab_server.services import recommendations
from llmlab_server.services.access import project_ids_for

bp = Blueprint("recommendations", __name__, url_prefix="/api/recommendations")


@bp.get("")
@operation(tag="recommendations", scope="read", query=RecommendationListQuery,
           response=RecommendationList)
def list_recommendations(query: RecommendationListQuery) -> Response:
    """Ways to spend less, each with dollars saved per month, evidence and confidence.

    Dismissed recommendations, and snoozed ones until their snooze ends, are left out (counted
    in ``hidden``) unless ``include_dismissed=true``.
    """
    session = db.session()
    ids = project_ids_for(principal(), query.project)
    found = recommendations.recommend(session, ids, days=query.days)
    return ok(states.annotate(session, found, include_dismissed=query.include_dismissed))


@bp.post("/<recommendation_id>/dismiss")
@operation(tag="recommendations", body=StateBody, response=RecommendationStateOut)
def dismiss(recommendation_id: str, body: StateBody) -> Response:
    """Hide a recommendation from the project's list until it is restored (member or above)."""
    states.check_id(recommendation_id)
    return ok(states.set_state(principal(), body.project_id, recommendation_id, "dismissed"))


@bp.post("/<recommendation_id>/snooze")
@operation(tag="recommendations", body=SnoozeBody, response=RecommendationStateOut)
def snooze(recommendation_id: str, body: SnoozeBody) -> Response:
    """Hide a recommendation until ``until`` (at most a year ahead; member or above)."""
    states.check_id(recommendation_id)
    return ok(states.set_state(principal(), body.project_id, recommendation_id, "snoozed",
                               body.until))


@bp.post("/<recommendation_id>/restore")
@operation(tag="recommendations", body=StateBody, response=RecommendationStateOut)
def restore(recommendation_id: str, body: StateBody) -> Response:
    """Show a dismissed or snoozed recommendation again (member or above)."""
    states.check_id(recommendation_id)
    return ok(states.restore(principal(), body.project_id, recommendation_id))
