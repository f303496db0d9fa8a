"""The event list (``GET /api/events``, keyset pages) and the CSV export of cost events."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from llmlab.pricing import money
from llmlab_server.errors import BadRequest, Conflict, NotFound
from llmlab_server.models import MAX_ID, CostEventRow, Project
from llmlab_server.schemas import EventOut, EventPage, EventsQuery, ExportQuery
from llmlab_server.services.windows import Window

__all__ = ["CSV_COLUMNS", "event_by_id", "events_page", "export_csv", "usd"]

_E = CostEventRow
_NANO = Decimal(1).scaleb(-9)


def usd(nanos: int) -> str:
    """Integer nano-USD as a decimal USD string (``"0.00475"``)."""
    return money(Decimal(int(nanos)) * _NANO)


def _filtered(ids: Sequence[int], query: EventsQuery | ExportQuery, window: Window
              ) -> Select[Any]:
    stmt = select(_E).where(_E.project_id.in_(ids), _E.timestamp >= window.start,
                            _E.timestamp < window.end)
    for column, value in ((_E.model, query.model), (_E.provider, query.provider),
                          (_E.job_id, query.job), (_E.user_id, query.user),
                          (_E.status, query.status)):
        if value is not None:
            stmt = stmt.where(column == value)
    # `TaggedEventsQuery` and `ExportQuery`: every tag matches
    for key, tag in getattr(query, "tag_pairs", ()):
        stmt = stmt.where(_E.tags[key].as_string() == tag)
    return stmt


def _event_out(row: CostEventRow) -> EventOut:
    usage = {name: getattr(row, name) for name in (
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
        "cache_write_1h_tokens", "reasoning_tokens", "audio_input_tokens", "audio_output_tokens",
        "image_input_tokens", "image_output_tokens")}
    return EventOut(
        id=row.event_id, project_id=row.project_id, timestamp=row.timestamp,
        received_at=row.received_at, provider=row.provider, model=row.model,
        requested_model=row.requested_model, operation=row.operation, usage=usage,
        tools=row.tools or {}, cost=usd(row.cost_nanos), tools_cost=usd(row.cost_tools_nanos),
        server_cost=None if row.server_cost_nanos is None else usd(row.server_cost_nanos),
        provider_cost=(None if row.provider_cost_nanos is None
                       else usd(row.provider_cost_nanos)),
        provider_cost_mismatch=row.provider_cost_mismatch,
        priced=row.priced, server_priced=row.server_priced, cost_mismatch=row.cost_mismatch,
        pricing_version=row.pricing_version, latency_ms=row.latency_ms, ttfb_ms=row.ttfb_ms,
        stream=row.stream, estimated=row.estimated, status=row.status,
        error_type=row.error_type, service_tier=row.service_tier, job_id=row.job_id,
        user_id=row.user_id, function=row.function, tags=row.tags or {},
        environment=row.environment)


def _encode_cursor(row: CostEventRow) -> str:
    raw = json.dumps([row.timestamp.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or type(row_id) is not int or not 1 <= row_id <= MAX_ID:
            raise ValueError(cursor)
        return when.astimezone(UTC), row_id  # in range for the database, or OverflowError
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise BadRequest("Invalid cursor; pass next_cursor from the previous page.",
                         code="invalid_cursor", param="cursor") from None


def events_page(session: Session, ids: Sequence[int], query: EventsQuery, window: Window
                ) -> EventPage:
    """A page of events, newest first, with a cursor to the next page."""
    stmt = _filtered(ids, query, window)
    if query.cursor:
        when, row_id = _decode_cursor(query.cursor)
        stmt = stmt.where(or_(_E.timestamp < when, and_(_E.timestamp == when, _E.id < row_id)))
    rows = list(session.scalars(stmt.order_by(_E.timestamp.desc(), _E.id.desc())
                                .limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return EventPage(events=[_event_out(r) for r in rows],
                     next_cursor=_encode_cursor(rows[-1]) if more and rows else None)


def event_by_id(session: Session, ids: Sequence[int], event_id: str) -> EventOut:
    """The event ``event_id`` among the projects ``ids``: 404 when none of them stores it,
    409 when two do (the caller then names the project)."""
    rows = list(session.scalars(select(_E).where(_E.project_id.in_(ids), _E.event_id == event_id)
                                .order_by(_E.project_id).limit(2)))
    if not rows:
        raise NotFound("No such event.", param="event_id")
    if len(rows) > 1:
        raise Conflict("This event id is stored in several of your projects; pass ?project=.",
                       code="ambiguous_event", param="project")
    return _event_out(rows[0])


CSV_COLUMNS = ("timestamp", "id", "project", "provider", "model", "operation", "status",
               "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
               "reasoning_tokens", "cost_usd", "tools_cost_usd", "server_cost_usd",
               "cost_mismatch", "latency_ms", "job_id", "user_id", "function", "environment", "tags")


#: A formula's first character at the start of a cell or right after a separator: a
#: spreadsheet in a ``;``-list locale splits ``x;=1+1`` into ``x`` and a formula.
_FORMULA = re.compile(r"(?:^|[;,]) *[=+\-@\t\r]")


def _cell(value: Any) -> Any:
    # Formula injection: such a text cell gets a leading ', and every text cell is quoted
    # (QUOTE_NONNUMERIC), so no separator inside it can start a new cell.
    if isinstance(value, str) and _FORMULA.search(value):
        return "'" + value
    return value


def export_csv(session: Session, ids: Sequence[int], query: ExportQuery, window: Window,
               chunk: int = 1000) -> Iterator[str]:
    """CSV text of the matching events, oldest first, in chunks of ``chunk`` rows.

    Each chunk is read by keyset in its own short transaction, so a slow client never holds
    a database transaction (or its locks) open between chunks.
    """
    slugs = dict(session.execute(select(Project.id, Project.slug).where(Project.id.in_(ids))).all())
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(CSV_COLUMNS)
    # Plain rows, not ORM objects: the rollback below would expire objects and reload them.
    base = (_filtered(ids, query, window).with_only_columns(*CostEventRow.__table__.columns)
            .order_by(_E.timestamp, _E.id).limit(chunk))
    after: tuple[datetime, int] | None = None
    while True:
        stmt = base if after is None else base.where(or_(
            _E.timestamp > after[0], and_(_E.timestamp == after[0], _E.id > after[1])))
        rows = session.execute(stmt).all()
        session.rollback()  # end the read transaction before handing the chunk out
        for row in rows:
            writer.writerow([_cell(v) for v in (
                row.timestamp.isoformat(), row.event_id, slugs.get(row.project_id),
                row.provider, row.model, row.operation, row.status, row.input_tokens,
                row.output_tokens, row.cache_read_tokens,
                row.cache_write_tokens + row.cache_write_1h_tokens, row.reasoning_tokens,
                usd(row.cost_nanos), usd(row.cost_tools_nanos),
                "" if row.server_cost_nanos is None else usd(row.server_cost_nanos),
                str(row.cost_mismatch).lower(), "" if row.latency_ms is None else row.latency_ms,
                row.job_id or "", row.user_id or "", row.function or "", row.environment or "",
                json.dumps(row.tags or {}, sort_keys=True))])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < chunk:
            return
        after = (rows[-1].timestamp, rows[-1].id)
