"""Budgets: CRUD, the current period in the budget's time zone, spend, forecast and status.

A budget's period is aligned to local midnight in its IANA zone (``daily``; ``weekly`` from
Monday; ``monthly`` from the 1st) and ends where the next one starts, so a day is 23 or 25
hours long across a DST change; ``total`` has no period. Spend is exact to the nano-dollar,
and unbounded (`sums`):

* from ``cost_rollups_hourly`` when the budget is narrowed at most by model and the period's
  boundaries are whole UTC hours (every zone with whole-hour offsets, DST or not);
* from ``cost_events`` otherwise (a job, user or tag scope; Asia/Kolkata's midnight is 18:30
  UTC).

The forecast extends the period's run rate so far to its end: ``spent x length / elapsed``.
The server only reports; it never refuses an event because of a budget (the SDK guard does
that before the call, from `status`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from llmlab_server import db
from llmlab_server.budget_schemas import (
    BudgetCreate,
    BudgetError,
    BudgetOut,
    BudgetScope,
    BudgetStatus,
    BudgetUpdate,
)
from llmlab_server.errors import APIError, BadRequest, NotFound
from llmlab_server.models import MAX_ID, Budget, CostEventRow, CostRollupHourly, Project, utcnow
from llmlab_server.security import Principal
from llmlab_server.services.access import project_for, project_ids_for
from llmlab_server.services.ingest import to_nanos
from llmlab_server.services.summaries import usd
from llmlab_server.services.sums import exact_sum, joined

__all__ = ["Period", "create", "delete", "get", "list_budgets", "period_bounds", "spend",
           "status", "statuses", "update"]

_E = CostEventRow
_R = CostRollupHourly
#: Most budgets per project (status reads are one aggregate query per budget).
MAX_PER_PROJECT = 100

logger = logging.getLogger("llmlab_server")


@dataclass(frozen=True, slots=True)
class Period:
    """The current period of a budget: [start, end) in UTC (None for ``total``)."""

    start: datetime | None
    end: datetime | None


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; 400 when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(f"Unknown time zone {name!r}; use an IANA name such as "
                         "'America/New_York'.", code="invalid_timezone", param="timezone") from None


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # A midnight that does not exist (DST at 00:00, e.g. America/Santiago) resolves with the
    # offset before the gap, which is the first instant of the local day.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_bounds(period: str, tz: ZoneInfo, now: datetime) -> Period:
    """The period containing ``now``, aligned to local midnight in ``tz``."""
    if period == "total":
        return Period(None, None)
    today = now.astimezone(tz).date()
    if period == "daily":
        first, nxt = today, today + timedelta(days=1)
    elif period == "weekly":
        first = today - timedelta(days=today.weekday())
        nxt = first + timedelta(days=7)
    elif period == "monthly":
        first = today.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
    else:  # pragma: no cover - validated by the schema
        raise ValueError(period)
    return Period(_midnight(first, tz), _midnight(nxt, tz))


def _whole_hour(t: datetime | None) -> bool:
    return t is None or (t.minute == 0 and t.second == 0 and t.microsecond == 0)


def uses_rollups(budget: Budget, period: Period) -> bool:
    """True when the hourly rollups give this budget's spend exactly."""
    narrowed = budget.scope_job or budget.scope_user or budget.scope_tag
    return not narrowed and _whole_hour(period.start) and _whole_hour(period.end)


def _tag_filter(tag: str) -> ColumnElement[bool]:
    key, sep, value = tag.partition("=")
    column = _E.tags[key].as_string()
    condition: ColumnElement[bool] = column.is_not(None) if not sep else column == value
    return condition


def spend(session: Session, budget: Budget, period: Period) -> tuple[int, str]:
    """Nano-USD spent in ``period`` within the budget's scope, and the source used.

    Exact and unbounded on both databases (`sums`): a period of absurd costs is reported, not
    a 500.
    """
    dialect = session.get_bind().dialect.name
    if uses_rollups(budget, period):
        stmt = select(*exact_sum(dialect, _R.cost_nanos)).where(
            _R.project_id == budget.project_id)
        if budget.scope_model:
            stmt = stmt.where(_R.model == budget.scope_model)
        if period.start is not None:
            stmt = stmt.where(_R.hour >= period.start)
        if period.end is not None:
            stmt = stmt.where(_R.hour < period.end)
        return joined(*session.execute(stmt).one()), "rollups"
    stmt = select(*exact_sum(dialect, _E.cost_nanos)).where(_E.project_id == budget.project_id)
    if period.start is not None:
        stmt = stmt.where(_E.timestamp >= period.start)
    if period.end is not None:
        stmt = stmt.where(_E.timestamp < period.end)
    for column, value in ((_E.job_id, budget.scope_job), (_E.user_id, budget.scope_user),
                          (_E.model, budget.scope_model)):
        if value:
            stmt = stmt.where(column == value)
    if budget.scope_tag:
        stmt = stmt.where(_tag_filter(budget.scope_tag))
    return joined(*session.execute(stmt).one()), "events"


def forecast_nanos(spent: int, period: Period, now: datetime) -> int | None:
    """Spend at the period's end if it continues at the rate so far (None for ``total``)."""
    if period.start is None or period.end is None:
        return None
    if now >= period.end:
        return spent
    elapsed = (now - period.start) // timedelta(microseconds=1)
    length = (period.end - period.start) // timedelta(microseconds=1)
    if elapsed <= 0:
        return spent
    return spent * length // elapsed


def _local(t: datetime | None, tz: ZoneInfo) -> datetime | None:
    return None if t is None else t.astimezone(tz)


def scope_of(budget: Budget, slug: str) -> BudgetScope:
    """The wire form of a budget's scope."""
    return BudgetScope(project=slug, job=budget.scope_job, user=budget.scope_user,
                       tag=budget.scope_tag, model=budget.scope_model)


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A budget's numbers in its current period (what status and alerts are made of)."""

    budget: Budget
    period: Period
    spent: int
    forecast: int | None
    source: str
    now: datetime
    #: Why the numbers could not be computed (then ``spent`` is the amount: see `statuses`).
    error: str | None = None


def evaluate(session: Session, budget: Budget, now: datetime | None = None) -> Evaluated:
    """Spend and forecast of ``budget`` in the period containing ``now``."""
    now = now or utcnow()
    period = period_bounds(budget.period, zone(budget.timezone), now)
    spent, source = spend(session, budget, period)
    return Evaluated(budget, period, spent, forecast_nanos(spent, period, now), source, now)


def status(ev: Evaluated, slug: str) -> BudgetStatus:
    """The status entry of an evaluated budget (the SDK guard's contract)."""
    b = ev.budget
    remaining = max(b.amount_nanos - ev.spent, 0)
    percent = round(ev.spent * 100 / b.amount_nanos, 4) if b.amount_nanos else 0.0
    start = end = None
    if ev.error is None:
        tz = zone(b.timezone)
        start, end = _local(ev.period.start, tz), _local(ev.period.end, tz)
    return BudgetStatus(
        id=b.id, project_id=b.project_id, name=b.name, action=b.action,  # type: ignore[arg-type]
        scope=scope_of(b, slug), amount=usd(b.amount_nanos), spent=usd(ev.spent),
        remaining=usd(remaining), percent=percent,
        forecast=None if ev.forecast is None else usd(ev.forecast),
        thresholds=list(b.thresholds), period=b.period,  # type: ignore[arg-type]
        timezone=b.timezone, period_start=start, resets_at=end, as_of=ev.now,
        source=ev.source,  # type: ignore[arg-type]
        error=None if ev.error is None else BudgetError(
            code="budget_unavailable", message=ev.error))


def resolve_project_ref(principal: Principal, ref: int | str | None) -> list[int]:
    """Project ids a status read covers: an id, a slug, or every visible project."""
    if isinstance(ref, str):
        if ref.isascii() and ref.isdigit():  # "²" is a digit to isdigit(), not to int()
            ref = int(ref)
            if not 1 <= ref <= MAX_ID:
                raise NotFound("No such project.", param="project")
        else:
            found = db.session().scalar(select(Project.id).where(Project.slug == ref))
            if found is None:
                raise NotFound("No such project.", param="project")
            ref = found
    # The SDK's budget guard reads with the application's ingest-only key: that key may read
    # the status of its own project (and only this read).
    key = principal.key
    scope = "ingest" if key is not None and "read" not in key.scope_set else "read"
    return project_ids_for(principal, ref, scope=scope)


def statuses(session: Session, ids: Sequence[int], now: datetime | None = None
             ) -> list[tuple[Evaluated, str]]:
    """Every budget of the projects ``ids``, evaluated, with its project's slug.

    A budget that cannot be evaluated (a database error, a time zone gone from tzdata) is
    logged and reported with ``error`` and as fully spent, so that the SDK guard refuses calls
    under it if it blocks (failing closed, not open), and the other budgets are still read.
    """
    now = now or utcnow()
    rows = session.execute(
        select(Budget, Project.slug).join(Project, Project.id == Budget.project_id)
        .where(Budget.project_id.in_(ids)).order_by(Budget.project_id, Budget.id)).all()
    return [(_evaluate_alone(session, budget, now), slug) for budget, slug in rows]


def _evaluate_alone(session: Session, budget: Budget, now: datetime) -> Evaluated:
    budget_id, amount = budget.id, budget.amount_nanos  # readable after a failed savepoint
    try:
        # A savepoint: on PostgreSQL a failed statement would abort the whole transaction.
        with session.begin_nested():
            return evaluate(session, budget, now)
    except Exception as exc:  # one budget must not fail the read of the others
        logger.exception("budget %s cannot be evaluated", budget_id)
        message = exc.message if isinstance(exc, APIError) else (
            "This budget's spend could not be computed; it is reported as fully spent.")
        return Evaluated(budget, Period(None, None), amount, None, "unavailable", now, message)


# -- CRUD --------------------------------------------------------------------------------------

def _amount(value: str) -> int:
    try:
        nanos = to_nanos(Decimal(value))
    except InvalidOperation:
        raise BadRequest("amount must be a decimal string.", param="amount") from None
    if nanos <= 0:
        raise BadRequest("amount must be greater than zero.", code="invalid_amount",
                         param="amount")
    return nanos


def out(budget: Budget, slug: str) -> BudgetOut:
    """The wire form of a budget."""
    return BudgetOut(id=budget.id, project_id=budget.project_id, name=budget.name,
                     amount=usd(budget.amount_nanos), period=budget.period,  # type: ignore[arg-type]
                     timezone=budget.timezone, thresholds=list(budget.thresholds),
                     action=budget.action, scope=scope_of(budget, slug),  # type: ignore[arg-type]
                     created_at=budget.created_at, updated_at=budget.updated_at)


def _load(principal: Principal, budget_id: int, *, write: bool) -> tuple[Budget, Project]:
    budget = db.session().get(Budget, budget_id)
    if budget is None:
        raise NotFound("No such budget.", param="budget_id")
    try:
        project = project_for(principal, budget.project_id,
                              role="admin" if write else "viewer",
                              scope="admin" if write else "read")
    except NotFound:
        raise NotFound("No such budget.", param="budget_id") from None
    return budget, project


def create(principal: Principal, body: BudgetCreate) -> BudgetOut:
    """Create a budget (admin or owner of the project)."""
    project = project_for(principal, body.project_id, role="admin", scope="admin")
    zone(body.timezone)
    session = db.session()
    count = session.scalar(select(func.count()).select_from(Budget).where(
        Budget.project_id == project.id)) or 0
    if count >= MAX_PER_PROJECT:
        raise BadRequest(f"A project has at most {MAX_PER_PROJECT} budgets.",
                         code="too_many_budgets")
    budget = Budget(project_id=project.id, name=body.name, amount_nanos=_amount(body.amount),
                    period=body.period, timezone=body.timezone,
                    thresholds=sorted(set(body.thresholds)), action=body.action,
                    scope_job=body.scope.job, scope_user=body.scope.user,
                    scope_tag=body.scope.tag, scope_model=body.scope.model,
                    created_by=principal.user.id if principal.user else None)
    session.add(budget)
    session.commit()
    return out(budget, project.slug)


def list_budgets(principal: Principal, project_id: int | None) -> list[BudgetOut]:
    """Budgets of the visible projects (or of one)."""
    ids = project_ids_for(principal, project_id)
    rows = db.session().execute(
        select(Budget, Project.slug).join(Project, Project.id == Budget.project_id)
        .where(Budget.project_id.in_(ids)).order_by(Budget.id)).all()
    return [out(budget, slug) for budget, slug in rows]


def get(principal: Principal, budget_id: int) -> BudgetOut:
    """One budget."""
    budget, project = _load(principal, budget_id, write=False)
    return out(budget, project.slug)


def update(principal: Principal, budget_id: int, body: BudgetUpdate) -> BudgetOut:
    """Change a budget (admin or owner)."""
    budget, project = _load(principal, budget_id, write=True)
    fields = body.model_dump(exclude_unset=True)
    if fields.get("timezone") is not None:
        zone(fields["timezone"])
    if fields.get("amount") is not None:
        budget.amount_nanos = _amount(fields["amount"])
    for name in ("name", "period", "timezone", "action"):
        if fields.get(name) is not None:
            setattr(budget, name, fields[name])
    if fields.get("thresholds") is not None:
        budget.thresholds = sorted(set(fields["thresholds"]))
    if body.scope is not None:
        budget.scope_job, budget.scope_user = body.scope.job, body.scope.user
        budget.scope_tag, budget.scope_model = body.scope.tag, body.scope.model
    budget.updated_at = utcnow()
    db.session().commit()
    return out(budget, project.slug)


def delete(principal: Principal, budget_id: int) -> None:
    """Delete a budget and its alerts (admin or owner)."""
    budget, _ = _load(principal, budget_id, write=True)
    session = db.session()
    session.delete(budget)
    session.commit()
