"""Budgets: ``/api/budgets`` (CRUD) and ``/api/budgets/status`` (the SDK guard reads it)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from llmlab_server import db
from llmlab_server.budget_schemas import (
    BudgetCreate,
    BudgetOut,
    BudgetsQuery,
    BudgetStatusList,
    BudgetStatusQuery,
    BudgetUpdate,
)
from llmlab_server.models import utcnow
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.services import alerts, budgets

bp = Blueprint("budgets", __name__, url_prefix="/api/budgets")


@bp.post("")
@operation(tag="budgets", body=BudgetCreate, response=BudgetOut, status=201)
def create_budget(body: BudgetCreate) -> Response:
    """Create a budget (admin or owner): amount per period, thresholds, alert or block."""
    return ok(budgets.create(principal(), body), 201)


@bp.get("")
@operation(tag="budgets", scope="read", query=BudgetsQuery, response=list[BudgetOut])
def list_budgets(query: BudgetsQuery) -> Response:
    """Budgets of the projects the caller can see."""
    return ok(budgets.list_budgets(principal(), query.project))


@bp.get("/status")
@operation(tag="budgets", scope=None, query=BudgetStatusQuery, response=BudgetStatusList)
def budget_status(query: BudgetStatusQuery) -> Response:
    """Spent, remaining, percent, forecast, period_start and resets_at of every budget.

    ``project`` is an id or a slug. Any key of a project may read it, ingest-only keys included:
    the SDK's budget guard runs with the application's ingest key. Evaluating also records (and
    sends) alerts not yet recorded.
    """
    session, now = db.session(), utcnow()
    ids = budgets.resolve_project_ref(principal(), query.project)
    rows = budgets.statuses(session, ids, now)
    alerts.evaluate(session, [ev for ev, _ in rows], current_app._get_current_object())  # type: ignore[attr-defined]
    return ok(BudgetStatusList(budgets=[budgets.status(ev, slug) for ev, slug in rows],
                               as_of=now))


@bp.get("/<int:budget_id>")
@operation(tag="budgets", scope="read", response=BudgetOut)
def get_budget(budget_id: int) -> Response:
    """One budget."""
    return ok(budgets.get(principal(), budget_id))


@bp.patch("/<int:budget_id>")
@operation(tag="budgets", body=BudgetUpdate, response=BudgetOut)
def update_budget(budget_id: int, body: BudgetUpdate) -> Response:
    """Change a budget (admin or owner)."""
    return ok(budgets.update(principal(), budget_id, body))


@bp.delete("/<int:budget_id>")
@operation(tag="budgets", response=None)
def delete_budget(budget_id: int) -> Response:
    """Delete a budget and its alerts (admin or owner)."""
    budgets.delete(principal(), budget_id)
    return ok(None)
