"""Budget alerts: record each threshold crossing once per period, and send it to webhooks.

An alert is a row of ``budget_alerts``, unique per (budget, kind, threshold, period); it is
inserted with ``ON CONFLICT DO NOTHING``, so concurrent evaluations (two gunicorn workers or
instances, an ingest and a status read) still record it once, and only the evaluation that
inserted it queues it for the project's webhooks: in the webhook outbox, in the same
transaction as the alert (`webhook_outbox`), so an alert is never recorded without its
deliveries nor delivered without being recorded.

Kinds: ``threshold`` (spend reached ``threshold`` % of the amount) and ``forecast`` (the
period's run rate projects spend past the amount — once at least `FORECAST_MIN_ELAPSED` of the
period has passed, so one early call does not cry wolf; not for ``total`` budgets, and not
once the amount is already spent, where the 100 % threshold speaks).

When: after every ingest request that stored new events (an ``after_request`` hook of the
alerts blueprint on ``events.track`` — the ingest itself is committed and answered either way),
and lazily on ``GET /api/budgets/status`` and ``GET /api/alerts``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from flask import Flask
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from llmlab_server import db
from llmlab_server.budget_schemas import AlertOut, AlertsQuery
from llmlab_server.errors import BadRequest
from llmlab_server.models import MAX_ID, Budget, BudgetAlert, Project
from llmlab_server.services import budgets as budget_service
from llmlab_server.services import webhook_delivery, webhook_outbox
from llmlab_server.services.summaries import usd

__all__ = ["FORECAST_MIN_ELAPSED", "evaluate", "evaluate_projects", "list_alerts", "out"]

#: Whether any of some projects has a budget (asked after every ingest; built once).
_ANY_BUDGET = (select(Budget.id).where(Budget.project_id.in_(bindparam("ids", expanding=True)))
               .limit(1))

logger = logging.getLogger("llmlab_server")

#: Fraction of the period that must have passed before a forecast alert may fire.
FORECAST_MIN_ELAPSED = 0.1


def _period_key(start: datetime | None) -> str:
    return "total" if start is None else start.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stored(nanos: int | None) -> int | None:
    # Spend is exact and unbounded; the BIGINT columns keep the alert's figures, saturated
    # (the crossing itself is decided on the exact numbers).
    return None if nanos is None else min(nanos, MAX_ID)


def _crossings(ev: budget_service.Evaluated) -> list[dict[str, object]]:
    if ev.error is not None:  # unknown spend: no alert either way
        return []
    b, period = ev.budget, ev.period
    base = {"project_id": b.project_id, "budget_id": b.id, "period_key": _period_key(period.start),
            "period_start": period.start, "spent_nanos": _stored(ev.spent),
            "amount_nanos": b.amount_nanos, "forecast_nanos": _stored(ev.forecast)}
    rows: list[dict[str, object]] = [
        {**base, "kind": "threshold", "threshold": t}
        for t in b.thresholds if ev.spent * 100 >= t * b.amount_nanos]
    if (ev.forecast is not None and period.start is not None and period.end is not None
            and ev.spent < b.amount_nanos < ev.forecast):
        elapsed = (ev.now - period.start) / (period.end - period.start)
        if elapsed >= FORECAST_MIN_ELAPSED:
            rows.append({**base, "kind": "forecast", "threshold": 100})
    return rows


def evaluate(session: Session, evaluated: Sequence[budget_service.Evaluated],
             app: Flask | None = None) -> list[int]:
    """Record the crossings of ``evaluated`` budgets not recorded yet, each with its webhook
    deliveries (one transaction); wake ``app``'s delivery; the new alerts' ids."""
    rows = [row for ev in evaluated for row in _crossings(ev)]
    if not rows:
        return []
    table = BudgetAlert.__table__
    new: list[int] = []
    for row in rows:  # one by one: RETURNING of a multi-row ON CONFLICT is not portable
        stmt = db.dialect_insert(session, table).values(**row).on_conflict_do_nothing(  # type: ignore[arg-type]
            index_elements=["budget_id", "kind", "threshold", "period_key"]
        ).returning(table.c.id)
        inserted = session.scalar(stmt)
        if inserted is not None:
            new.append(int(inserted))
    queued = _queue_deliveries(session, new) if new else 0
    session.commit()
    if queued and app is not None:
        webhook_delivery.wake(app)
    return new


def evaluate_projects(session: Session, project_ids: Sequence[int], app: Flask | None = None,
                      now: datetime | None = None) -> list[int]:
    """Evaluate every budget of ``project_ids``; the ids of newly recorded alerts."""
    has = session.scalar(_ANY_BUDGET, {"ids": list(project_ids)})
    if has is None:
        return []
    evaluated = [ev for ev, _ in budget_service.statuses(session, project_ids, now)]
    return evaluate(session, evaluated, app)


def _message(alert: BudgetAlert, budget: Budget) -> str:
    spent, amount = usd(alert.spent_nanos), usd(alert.amount_nanos)
    if alert.kind == "forecast":
        return (f"Budget '{budget.name}' is projected to exceed ${amount} this {budget.period} "
                f"period: ${spent} spent so far, ${usd(alert.forecast_nanos or 0)} forecast.")
    return (f"Budget '{budget.name}' passed {alert.threshold}%: ${spent} of ${amount} "
            f"({budget.period}).")


def out(alert: BudgetAlert, budget: Budget) -> AlertOut:
    """The wire form of an alert."""
    try:
        tz: tzinfo = budget_service.zone(budget.timezone)
    except BadRequest:  # a zone gone from tzdata: list the alert in UTC rather than fail
        tz = UTC
    return AlertOut(
        id=alert.id, project_id=alert.project_id, budget_id=alert.budget_id,
        budget_name=budget.name, kind=alert.kind, threshold=alert.threshold,  # type: ignore[arg-type]
        period_start=None if alert.period_start is None else alert.period_start.astimezone(tz),
        spent=usd(alert.spent_nanos), amount=usd(alert.amount_nanos),
        forecast=None if alert.forecast_nanos is None else usd(alert.forecast_nanos),
        message=_message(alert, budget), created_at=alert.created_at)


def _queue_deliveries(session: Session, alert_ids: Sequence[int]) -> int:
    """Add the deliveries of new alerts to the outbox (uncommitted); how many."""
    rows = session.execute(
        select(BudgetAlert, Budget, Project.slug)
        .join(Budget, Budget.id == BudgetAlert.budget_id)
        .join(Project, Project.id == BudgetAlert.project_id)
        .where(BudgetAlert.id.in_(alert_ids))).all()
    queued = 0
    for alert, budget, slug in rows:
        hooks = webhook_delivery.project_webhooks(session, alert.project_id)
        if not hooks:
            continue
        payload = {"type": f"budget.{alert.kind}",
                   "project": {"id": alert.project_id, "slug": slug},
                   "budget": {"id": budget.id, "name": budget.name, "action": budget.action,
                              "period": budget.period, "timezone": budget.timezone},
                   "alert": out(alert, budget).model_dump(mode="json")}
        queued += len(webhook_outbox.enqueue(session, hooks, payload, alert_id=alert.id))
    return queued


def list_alerts(session: Session, ids: Sequence[int], query: AlertsQuery) -> list[AlertOut]:
    """Alerts of the projects ``ids``, newest first, filtered."""
    stmt = (select(BudgetAlert, Budget).join(Budget, Budget.id == BudgetAlert.budget_id)
            .where(BudgetAlert.project_id.in_(ids)))
    if query.budget is not None:
        stmt = stmt.where(BudgetAlert.budget_id == query.budget)
    if query.kind is not None:
        stmt = stmt.where(BudgetAlert.kind == query.kind)
    stmt = stmt.order_by(BudgetAlert.created_at.desc(), BudgetAlert.id.desc()).limit(query.limit)
    return [out(alert, budget) for alert, budget in session.execute(stmt)]
