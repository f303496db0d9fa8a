"""Cost summaries, time series, event listing and CSV export over a caller's projects.

Where the numbers come from (both are exact):

* ``rollups`` — ``cost_rollups_hourly`` — for group_by model, provider, project, day and hour,
  when the range starts and ends on whole UTC hours and, for day and hour, when the time zone's
  offset is a whole number of hours throughout the range (UTC, America/New_York across DST …):
  then every UTC hour lies inside exactly one local day and hour.
* ``events`` — ``cost_events``, through the (project, time[, job|user|model]) indexes — for
  job, user and tag:<key>, for ranges that do not start or end on a whole hour, and for day/hour
  in zones with a non-whole-hour offset (Asia/Kolkata +05:30, Asia/Kathmandu +05:45). Those
  are bucketed by 15 minutes in SQL and folded into local days/hours here, which is exact
  because every offset in use since 2000 is a multiple of 15 minutes.

Money and token sums are `Exact` (`sums`): they cannot overflow, on SQLite either.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from llmlab.pricing import money
from llmlab_server.errors import BadRequest
from llmlab_server.models import MAX_ID, CostEventRow, CostRollupHourly, Project
from llmlab_server.schemas import (
    EventOut,
    EventPage,
    EventsQuery,
    ExportQuery,
    Summary,
    SummaryQuery,
    SummaryRow,
    Timeseries,
    TimeseriesPoint,
    TimeseriesQuery,
    Usage,
)
from llmlab_server.services.sums import Exact, fold, select_list
from llmlab_server.services.windows import Window, parse_window

__all__ = ["Window", "events_page", "export_csv", "parse_window", "summary", "timeseries",
           "usd"]

_E = CostEventRow
_R = CostRollupHourly
_NANO = Decimal(1).scaleb(-9)
_SUMS = ("cost_nanos", "calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_tokens", "reasoning_tokens", "latency_ms_sum", "latency_count")
_LATENCY = _SUMS.index("latency_ms_sum")


def usd(nanos: int) -> str:
    """Integer nano-USD as a decimal USD string (``"0.00475"``)."""
    return money(Decimal(int(nanos)) * _NANO)


# -- aggregation -------------------------------------------------------------------------------

def _event_sums() -> list[Any]:
    """`select_list` items of `_SUMS` over events: money and tokens summed exactly."""
    return [
        Exact(_E.cost_nanos), func.count(),
        func.coalesce(func.sum(case((_E.status == "error", 1), else_=0)), 0),
        Exact(_E.input_tokens), Exact(_E.output_tokens), Exact(_E.cache_read_tokens),
        Exact(_E.cache_write_tokens + _E.cache_write_1h_tokens), Exact(_E.reasoning_tokens),
        func.coalesce(func.sum(_E.latency_ms), 0.0), func.count(_E.latency_ms),
    ]


def _rollup_sums() -> list[Any]:
    """`select_list` items of `_SUMS` over rollups (calls, errors and counts stay small)."""
    return [func.coalesce(func.sum(getattr(_R, name)), 0)
            if name in ("calls", "errors", "latency_ms_sum", "latency_count")
            else Exact(getattr(_R, name)) for name in _SUMS]


def _epoch_bucket(session: Session, column: Any, seconds: int) -> ColumnElement[Any]:
    """``floor(epoch(column) / seconds)`` for the session's dialect (naive UTC column)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / seconds), BigInteger)
    return cast(func.strftime("%s", column), BigInteger) / seconds


class _Acc:
    __slots__ = ("sums",)

    def __init__(self) -> None:
        self.sums: list[Any] = [0] * len(_SUMS)

    def add(self, values: Sequence[Any]) -> None:
        # PostgreSQL sums bigints as numeric (Decimal): back to int, latency to float.
        for i, value in enumerate(values):
            self.sums[i] += float(value or 0) if i == _LATENCY else int(value or 0)

    def row(self, key: str | None) -> SummaryRow:
        cost, calls, errors, inp, out, cread, cwrite, reasoning, lat_sum, lat_n = self.sums
        return SummaryRow(
            key=key, cost=usd(cost), calls=int(calls), errors=int(errors),
            error_rate=round(errors / calls, 6) if calls else 0.0,
            avg_latency_ms=round(float(lat_sum) / lat_n, 3) if lat_n else None,
            tokens=Usage(input_tokens=int(inp), output_tokens=int(out),
                         cache_read_tokens=int(cread), cache_write_tokens=int(cwrite),
                         reasoning_tokens=int(reasoning), total_tokens=int(inp + out)))


def _time_filter(table: Any, column: Any, ids: Sequence[int], window: Window,
                 stmt: Select[Any]) -> Select[Any]:
    return stmt.where(table.project_id.in_(ids), column >= window.start, column < window.end)


def _local_bucket(instant: datetime, tz: ZoneInfo, unit: str) -> datetime:
    """The UTC instant where ``instant``'s local day or hour starts.

    Keys are UTC because aware datetimes of one zone compare by wall time, ignoring ``fold``:
    the two 01:00 hours of a DST fall-back would otherwise be one bucket.
    """
    local = instant.astimezone(tz)
    if unit == "day":
        return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def _time_rows(session: Session, ids: Sequence[int], window: Window, unit: str,
               use_rollups: bool) -> dict[datetime, _Acc]:
    """Sums per local day or hour, from rollups (whole-hour zones) or 15-minute event buckets."""
    out: dict[datetime, _Acc] = {}
    dialect = session.get_bind().dialect.name
    if use_rollups:
        items = [_R.hour, *_rollup_sums()]
        stmt = _time_filter(_R, _R.hour, ids, window,
                            select(*select_list(dialect, items)).group_by(_R.hour))
        for row in session.execute(stmt):
            hour, *values = fold(items, row)
            out.setdefault(_local_bucket(hour, window.tz, unit), _Acc()).add(values)
        return out
    size = 3600 if window.whole_hour_offsets() else 900
    bucket = _epoch_bucket(session, _E.timestamp, size).label("bucket")
    items = [bucket, *_event_sums()]
    stmt = _time_filter(_E, _E.timestamp, ids, window,
                        select(*select_list(dialect, items)).group_by(bucket))
    for row in session.execute(stmt):
        number, *values = fold(items, row)
        instant = datetime.fromtimestamp(int(number) * size, UTC)
        out.setdefault(_local_bucket(instant, window.tz, unit), _Acc()).add(values)
    return out


def _bucket_key(start: datetime, tz: ZoneInfo, unit: str) -> str:
    local = start.astimezone(tz)
    return local.date().isoformat() if unit == "day" else local.isoformat()


def _use_rollups(group: str | None, window: Window) -> bool:
    if group in (None, "model", "provider", "project"):
        return window.hour_aligned
    if group in ("day", "hour"):
        return window.hour_aligned and window.whole_hour_offsets()
    return False


def _group_column(group: str) -> Any:
    if group == "job":
        return _E.job_id
    if group == "user":
        return _E.user_id
    return _E.tags[group.removeprefix("tag:")].as_string()


def summary(session: Session, ids: Sequence[int], query: SummaryQuery, window: Window
            ) -> Summary:
    """Totals and per-group rows of the projects ``ids`` over ``window``."""
    group = query.group_by
    rollups = _use_rollups(group, window)
    total = _Acc()
    groups: list[SummaryRow] = []
    if group in ("day", "hour"):
        buckets = _time_rows(session, ids, window, group, rollups)
        for start in sorted(buckets):
            total.add(buckets[start].sums)
            groups.append(buckets[start].row(_bucket_key(start, window.tz, group)))
    else:
        if group is None:
            key: Any = literal(None)
        elif group == "project":
            key = Project.slug
        elif group in ("model", "provider"):
            key = getattr(_R if rollups else _E, group)
        else:
            key = _group_column(group)
        table, column = (_R, _R.hour) if rollups else (_E, _E.timestamp)
        items = [key.label("key"), *(_rollup_sums() if rollups else _event_sums())]
        stmt = select(*select_list(session.get_bind().dialect.name, items))
        if group == "project":
            stmt = stmt.join(Project, Project.id == table.project_id)
        if group is not None:
            stmt = stmt.group_by(key)
        stmt = _time_filter(table, column, ids, window, stmt)
        for row in session.execute(stmt):
            name, *values = fold(items, row)
            acc = _Acc()
            acc.add(values)
            total.add(values)
            if group is not None:
                groups.append(acc.row(None if name is None else str(name)))
        groups.sort(key=lambda r: (-Decimal(r.cost), -r.calls, r.key or ""))
    return Summary(start=window.start, end=window.end, tz=window.tz_name, group_by=group,
                   source="rollups" if rollups else "events", totals=total.row(None),
                   groups=groups)


def _all_buckets(window: Window, unit: str) -> list[datetime]:
    step = timedelta(hours=1) if window.whole_hour_offsets() else timedelta(minutes=15)
    t = window.start.replace(second=0, microsecond=0)
    t -= timedelta(minutes=t.minute % 15)
    seen: dict[datetime, None] = {}
    while t < window.end:
        seen.setdefault(_local_bucket(t, window.tz, unit), None)
        t += step
    return list(seen)


def timeseries(session: Session, ids: Sequence[int], query: TimeseriesQuery, window: Window
               ) -> Timeseries:
    """Cost per local hour or day over ``window``; empty buckets are zeros."""
    rollups = _use_rollups(query.interval, window)
    buckets = _time_rows(session, ids, window, query.interval, rollups)
    points = []
    for start in sorted(set(_all_buckets(window, query.interval)) | set(buckets)):
        acc = buckets.get(start) or _Acc()
        cost, calls, errors, inp, out = acc.sums[:5]
        points.append(TimeseriesPoint(start=start.astimezone(window.tz), cost=usd(cost), calls=int(calls),
                                      errors=int(errors), tokens=int(inp + out)))
    return Timeseries(start=window.start, end=window.end, tz=window.tz_name,
                      interval=query.interval, source="rollups" if rollups else "events",
                      points=points)


# -- events ---------------------------------------------------------------------------------

def _filtered(ids: Sequence[int], query: EventsQuery | ExportQuery, window: Window
              ) -> Select[Any]:
    stmt = _time_filter(_E, _E.timestamp, ids, window, select(_E))
    for column, value in ((_E.model, query.model), (_E.provider, query.provider),
                          (_E.job_id, query.job), (_E.user_id, query.user),
                          (_E.status, query.status)):
        if value is not None:
            stmt = stmt.where(column == value)
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
        cost=usd(row.cost_nanos),
        server_cost=None if row.server_cost_nanos is None else usd(row.server_cost_nanos),
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


CSV_COLUMNS = ("timestamp", "id", "project", "provider", "model", "operation", "status",
               "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
               "reasoning_tokens", "cost_usd", "server_cost_usd", "cost_mismatch", "latency_ms",
               "job_id", "user_id", "function", "environment", "tags")


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
                usd(row.cost_nanos),
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
