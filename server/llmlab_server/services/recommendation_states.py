"""Dismissed and snoozed recommendations, per project (shared by its team).

A recommendation's id (`recommendation_id`) hashes what the advice is about — its kind,
project, provider, model and (batch advice) job — not its numbers, so the same advice keeps
its id while its saving changes with the spend and the window. A dismissal hides it for good
(until restored), a snooze until a time; the list shows hidden ones only when asked.
Writing needs the member role (viewers read only) or an API key with the ``admin`` scope.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmlab_server import db
from llmlab_server.budget_schemas import Recommendation, Recommendations
from llmlab_server.errors import BadRequest, NotFound
from llmlab_server.models import RecommendationState, utcnow
from llmlab_server.recommendation_schemas import (
    REC_ID_PATTERN,
    RecommendationList,
    RecommendationOut,
    RecommendationStateOut,
)
from llmlab_server.security import Principal
from llmlab_server.services.access import project_for

__all__ = ["MAX_SNOOZE", "annotate", "check_id", "recommendation_id", "restore", "set_state"]

#: The longest snooze.
MAX_SNOOZE = timedelta(days=366)
_S = RecommendationState
_REC_ID = re.compile(REC_ID_PATTERN)


def recommendation_id(rec: Recommendation) -> str:
    """The stable id of ``rec``: 16 hex digits of a hash of what it is about."""
    subject = [rec.kind, rec.project_id, rec.evidence.provider, rec.evidence.model,
               rec.evidence.details.get("job")]
    return hashlib.sha256(json.dumps(subject).encode()).hexdigest()[:16]


def annotate(session: Session, recs: Recommendations, *, include_dismissed: bool,
             now: datetime | None = None) -> RecommendationList:
    """``recs`` with ids and states; dismissed and still-snoozed ones dropped unless
    ``include_dismissed``."""
    now = now or utcnow()
    ids = {r.project_id for r in recs.recommendations}
    states = {(s.project_id, s.recommendation_id): s for s in session.scalars(
        select(_S).where(_S.project_id.in_(ids)))} if ids else {}
    shown: list[RecommendationOut] = []
    hidden = 0
    for rec in recs.recommendations:
        rid = recommendation_id(rec)
        row = states.get((rec.project_id, rid))
        state, until = "active", None
        if row is not None and (row.state == "dismissed" or (
                row.snoozed_until is not None and row.snoozed_until > now)):
            state, until = row.state, row.snoozed_until
        if state != "active":
            hidden += 1
            if not include_dismissed:
                continue
        shown.append(RecommendationOut(**dict(rec), id=rid, state=state,  # type: ignore[arg-type]
                                       snoozed_until=until))
    return RecommendationList(start=recs.start, end=recs.end, days=recs.days,
                              recommendations=shown, notes=recs.notes, hidden=hidden)


def _writable(principal: Principal, project_id: int) -> int:
    return project_for(principal, project_id, role="member", scope="admin").id


def set_state(principal: Principal, project_id: int, rec_id: str, state: str,
              until: datetime | None = None) -> RecommendationStateOut:
    """Dismiss (``until`` None) or snooze the recommendation ``rec_id`` of the project."""
    pid = _writable(principal, project_id)
    if until is not None:
        try:
            until = until.astimezone(UTC)
        except OverflowError:
            raise BadRequest("until is out of range.", code="invalid_until",
                             param="until") from None
        now = utcnow()
        if not now < until <= now + MAX_SNOOZE:
            raise BadRequest("until must be in the future and within a year.",
                             code="invalid_until", param="until")
    values = {"state": state, "snoozed_until": until, "updated_at": utcnow(),
              "updated_by": principal.user.id if principal.user is not None else None}
    row = _upsert(db.session(), pid, rec_id, values)
    return RecommendationStateOut(id=rec_id, project_id=pid, state=row.state,  # type: ignore[arg-type]
                                  until=row.snoozed_until, updated_at=row.updated_at)


def _upsert(session: Session, pid: int, rec_id: str, values: dict[str, Any]
            ) -> RecommendationState:
    """The project's row of ``rec_id`` set to ``values`` (created when missing), committed."""
    try:
        return _write(session, pid, rec_id, values)
    except IntegrityError:  # a concurrent first write of the same id: update that row
        session.rollback()
        return _write(session, pid, rec_id, values)


def _write(session: Session, pid: int, rec_id: str, values: dict[str, Any]
           ) -> RecommendationState:
    row = session.scalar(select(_S).where(_S.project_id == pid, _S.recommendation_id == rec_id))
    if row is None:
        row = _S(project_id=pid, recommendation_id=rec_id, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.commit()
    return row


def restore(principal: Principal, project_id: int, rec_id: str) -> RecommendationStateOut:
    """Make the recommendation active again (no-op when it is)."""
    pid = _writable(principal, project_id)
    session = db.session()
    session.execute(delete(_S).where(_S.project_id == pid, _S.recommendation_id == rec_id))
    session.commit()
    return RecommendationStateOut(id=rec_id, project_id=pid, state="active")


def check_id(rec_id: str) -> None:
    """404 for an id no recommendation can have."""
    if _REC_ID.fullmatch(rec_id) is None:
        raise NotFound("No such recommendation.", param="recommendation_id")
