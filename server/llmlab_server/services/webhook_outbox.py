"""The webhook outbox: deliveries as rows, so they outlive the process that queued them.

A delivery is queued (`enqueue`) in the transaction that records its alert, bound to the webhook
row as it is then (id, project, secret salt). Any server process claims due deliveries
(`claim`): on PostgreSQL the candidates are locked ``FOR UPDATE SKIP LOCKED``, so two processes
never take the same row; on SQLite (one writer at a time) the conditional ``UPDATE`` itself is
the lock. A claim is a lease: a claimer killed mid-attempt leaves a ``delivering`` row whose
lease runs out, and another process takes it again. Each attempt is logged (`finish`) and
fenced by the attempt number, so a claimer whose lease was taken over writes nothing.

Statuses: ``pending`` (not tried yet), ``delivering`` (claimed), ``delivered``, ``failed`` (the
last attempt failed; retried at ``next_attempt_at``), ``dead`` (no more tries: out of
attempts, or the webhook row is gone, inactive or its address refused).
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from llmlab_server.errors import BadRequest
from llmlab_server.models import MAX_ID, WebhookDelivery, WebhookDeliveryAttempt, utcnow

__all__ = ["LIVE", "STATUSES", "Claimed", "HookRef", "backoff", "claim", "dead", "decode_cursor",
           "encode_cursor", "enqueue", "finish", "live_count", "next_due", "retry_dead"]

STATUSES = ("pending", "delivering", "delivered", "failed", "dead")
#: Statuses of a delivery that is not over yet.
LIVE = ("pending", "delivering", "failed")
_D = WebhookDelivery


@dataclass(frozen=True, slots=True)
class HookRef:
    """The webhook row a delivery is bound to: id, project and secret salt must all match."""

    id: int
    project_id: int
    salt: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process holds the lease of, for its ``attempt``-th try."""

    id: int
    delivery_id: str
    hook: HookRef
    body: bytes
    attempt: int


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before the retry that follows failed try ``attempt``: ``base`` * 4^(n-1),
    at most ``cap``, ±10 % so that a burst of failures does not retry in lockstep."""
    delay = min(base * 4.0 ** min(attempt - 1, 30), cap)
    return delay * random.uniform(0.9, 1.1)


def enqueue(session: Session, hooks: Iterable[HookRef], payload: dict[str, Any],
            alert_id: int | None = None) -> list[str]:
    """Add a delivery of ``payload`` to each of ``hooks`` to the session (the caller commits,
    with the alert); their delivery ids."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    now = utcnow()
    ids: list[str] = []
    for hook in hooks:
        delivery = str(uuid.uuid4())
        session.add(_D(delivery_id=delivery, project_id=hook.project_id, webhook_id=hook.id,
                       webhook_salt=hook.salt, alert_id=alert_id,
                       event_type=str(payload.get("type", "event"))[:32], body=body,
                       status="pending", attempts=0, next_attempt_at=now, created_at=now))
        ids.append(delivery)
    return ids


def _due(now: datetime) -> Any:
    return or_(and_(_D.status.in_(("pending", "failed")), _D.next_attempt_at <= now),
               and_(_D.status == "delivering", _D.lease_until < now))


def claim(session: Session, limit: int, per_project: int, busy: Mapping[int, int],
          lease: float) -> list[Claimed]:
    """Take up to ``limit`` due deliveries, at most ``per_project`` (less those ``busy`` here)
    per project, projects interleaved (each one's oldest first); commits."""
    if limit <= 0:
        return []
    now = utcnow()
    rank = func.row_number().over(partition_by=_D.project_id,
                                  order_by=(_D.next_attempt_at, _D.id)).label("rank")
    ranked = select(_D.id, _D.project_id, rank).where(_due(now)).subquery()
    candidates = session.execute(
        select(ranked.c.id, ranked.c.project_id).where(ranked.c.rank <= per_project)
        .order_by(ranked.c.rank, ranked.c.id).limit(limit * 4)).all()
    taken: dict[int, int] = {}
    ids: list[int] = []
    for row_id, project in candidates:
        if busy.get(project, 0) + taken.get(project, 0) >= per_project:
            continue
        taken[project] = taken.get(project, 0) + 1
        ids.append(int(row_id))
        if len(ids) >= limit:
            break
    if not ids:
        session.rollback()
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(select(_D.id).where(_D.id.in_(ids), _due(now))
                                   .with_for_update(skip_locked=True)))
    rows = session.execute(
        update(_D).where(_D.id.in_(ids), _due(now))
        .values(status="delivering", attempts=_D.attempts + 1,
                lease_until=now + timedelta(seconds=lease))
        .returning(_D.id, _D.delivery_id, _D.webhook_id, _D.project_id, _D.webhook_salt,
                   _D.body, _D.attempts)).all()
    session.commit()
    return [Claimed(int(i), str(d), HookRef(int(w), int(p), str(s)), str(b).encode(), int(n))
            for i, d, w, p, s, b, n in rows]


def finish(session: Session, job: Claimed, *, started: datetime, code: int | None,
           latency_ms: float | None, error: str | None, retry_in: float | None,
           final: bool = False) -> str | None:
    """Record try ``job.attempt``: ``delivered`` when ``error`` is None, else ``failed`` (retried
    in ``retry_in`` seconds) or ``dead`` (``retry_in`` None). Commits; the new status, or None
    when the lease was lost (another process took the delivery over) or the row is gone."""
    now = utcnow()
    if error is None:
        values: dict[str, Any] = {"status": "delivered", "delivered_at": now,
                                  "next_attempt_at": None}
    elif retry_in is None:
        values = {"status": "dead", "next_attempt_at": None}
    else:
        values = {"status": "failed", "next_attempt_at": now + timedelta(seconds=retry_in)}
    if final:  # not an HTTP try (the row is gone or refused): no code or latency to show
        values.update(status="dead", next_attempt_at=None)
    values.update(lease_until=None, last_status_code=code, last_latency_ms=latency_ms,
                  last_error=None if error is None else error[:500])
    result = session.execute(update(_D).where(
        _D.id == job.id, _D.status == "delivering", _D.attempts == job.attempt).values(**values))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    session.add(WebhookDeliveryAttempt(delivery_id=job.id, attempt=job.attempt, started_at=started,
                                       status_code=code, latency_ms=latency_ms,
                                       error=None if error is None else error[:500]))
    session.commit()
    return str(values["status"])


def next_due(session: Session) -> datetime | None:
    """When the earliest live delivery falls due (a lease's end for a claimed one)."""
    pending = session.scalar(select(func.min(_D.next_attempt_at))
                             .where(_D.status.in_(("pending", "failed"))))
    leased = session.scalar(select(func.min(_D.lease_until)).where(_D.status == "delivering"))
    times = [t for t in (pending, leased) if t is not None]
    return min(times) if times else None


def live_count(session: Session) -> int:
    """Deliveries not over yet (queued, claimed or awaiting a retry)."""
    return int(session.scalar(select(func.count()).select_from(_D)
                              .where(_D.status.in_(LIVE))) or 0)


def dead(session: Session, limit: int = 100) -> list[WebhookDelivery]:
    """Dead deliveries, newest first."""
    return list(session.scalars(select(_D).where(_D.status == "dead")
                                .order_by(_D.id.desc()).limit(limit)))


def retry_dead(session: Session, delivery_ids: Iterable[str] | None = None) -> int:
    """Queue ``dead`` deliveries (all, or those with these ``X-LLMLab-Delivery`` ids) again
    for a fresh series of tries, their delivery ids unchanged; commits; how many."""
    stmt = update(_D).where(_D.status == "dead").values(
        status="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
    if delivery_ids is not None:
        stmt = stmt.where(_D.delivery_id.in_(list(delivery_ids)))
    count = int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
    session.commit()
    return count


def encode_cursor(row_id: int) -> str:
    """The opaque cursor of the page after the delivery ``row_id``."""
    return base64.urlsafe_b64encode(json.dumps([row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The delivery id in ``cursor``; `BadRequest` when it is not one of ours."""
    try:
        (row_id,) = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if type(row_id) is not int or not 1 <= row_id <= MAX_ID:
            raise ValueError(cursor)
        return row_id
    except (ValueError, TypeError, RecursionError):
        raise BadRequest("Invalid cursor; pass next_cursor from the previous page.",
                         code="invalid_cursor", param="cursor") from None
