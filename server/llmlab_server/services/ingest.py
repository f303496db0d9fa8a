"""Event ingestion: decode a batch, validate and price each event, store it once, roll it up.

Everything for one batch happens in one transaction: events are inserted with
``INSERT ... ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id`` and only the
rows that came back (the new ones) are added to ``cost_rollups_hourly`` with an upsert, so a
batch sent twice is stored once and counted once.

How, for speed (see "Server ingest" in docs/performance.md):

* Each event is validated with one ``CostEvent.model_validate`` call, which gives it its own
  result (and measured faster than one ``TypeAdapter(list[CostEvent])`` call for the batch).
* Results are built with ``model_construct`` (their values were just checked).
* On PostgreSQL the new rows are streamed as ``COPY`` CSV (written by the C ``csv`` module)
  into a per-connection temporary table (``ON COMMIT DELETE ROWS``) and moved with one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING event_id``: no 27,000-parameter
  statement to send, parse and plan.
* On SQLite the rows go through the driver's ``executemany`` of one ``INSERT ... ON CONFLICT DO
  NOTHING`` per row inside the batch's write transaction, and an event counts as new when its
  row is there afterwards with this batch's ``received_at`` -- see `_insert_sqlite`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from llmlab.pricing import CostBreakdown
from llmlab.pricing import cost as price
from llmlab.schema import CostEvent
from llmlab.usage import Usage
from llmlab_server.errors import (
    BadRequest,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
    validation_message,
)
from llmlab_server.models import CostEventRow, CostRollupHourly, Project, utcnow
from llmlab_server.schemas import EventError, EventResult, TrackResult

__all__ = ["decode_batch", "ingest", "to_nanos"]

_NANO = Decimal(1).scaleb(-9)
_EVENTS: Table = CostEventRow.__table__  # type: ignore[assignment]
_ROLLUPS: Table = CostRollupHourly.__table__  # type: ignore[assignment]
#: The columns an ingest writes (all but the surrogate key), in ``_row``'s order.
_COLUMNS = tuple(c.name for c in _EVENTS.columns if c.name != "id")
_COLUMN_LIST = ", ".join(f'"{c}"' for c in _COLUMNS)
_STAGE = "llmlab_ingest_stage"  # a temporary table: pg_temp, never shadows cost_events
#: Positions in a COPY row (the batch ordinal first, then ``_COLUMNS``).
_TIME_FIELDS = tuple(1 + _COLUMNS.index(name) for name in ("timestamp", "received_at"))
_TAGS_FIELD = 1 + _COLUMNS.index("tags")
_ROLLUP_KEY = ("project_id", "hour", "provider", "model")
_ROLLUP_SUMS = ("cost_nanos", "calls", "errors", "input_tokens", "output_tokens",
                "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "latency_ms_sum",
                "latency_count")


def to_nanos(amount: Decimal) -> int:
    """USD as integer nano-USD, rounded half-even."""
    if not amount:
        return 0  # most components of most events: skip the Decimal arithmetic
    return int(amount.quantize(_NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def _gunzip(raw: bytes, limit: int) -> bytes:
    # Bounded decompression: a gzip bomb stops at the limit instead of filling memory.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"The decompressed body is larger than {limit} bytes.",
                                  code="decompressed_too_large")
        out += inflater.flush()
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadRequest(f"The gzip body cannot be decompressed: {exc}.",
                         code="invalid_encoding") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"The decompressed body is larger than {limit} bytes.",
                              code="decompressed_too_large")
    return out


def decode_batch(raw: bytes, content_type: str | None, encoding: str | None, *,
                 max_bytes: int, max_batch: int) -> list[Any]:
    """The list of raw events in a request body (one event or ``{"events": [...]}``)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json" and not mime.endswith("+json"):
        raise UnsupportedMediaType("Send JSON with 'Content-Type: application/json'.")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    coding = (encoding or "identity").strip().lower()
    if coding == "gzip":
        raw = _gunzip(raw, max_bytes)
    elif coding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; use gzip.",
                                   code="unsupported_encoding")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be one event object or {\"events\": [...]}.",
                         code="invalid_body")
    if "events" not in body:
        return [body]
    events = body["events"]
    if not isinstance(events, list) or len(body) != 1:
        raise BadRequest("'events' must be a list of events, alone in the body.",
                         code="invalid_body", param="events")
    if len(events) > max_batch:
        raise Unprocessable(f"At most {max_batch} events per batch; got {len(events)}.",
                            code="batch_too_large", param="events")
    return events


@dataclass(slots=True)
class _Priced:
    row: dict[str, Any]
    latency: float | None


def _server_price(event: CostEvent, project: Project) -> CostBreakdown | None:
    try:
        u = event.usage  # the wire schema validated the counts: read them, don't re-dump
        usage = Usage(u.input_tokens, u.output_tokens, u.cache_read_tokens,
                      u.cache_write_tokens, u.cache_write_1h_tokens, u.reasoning_tokens,
                      u.audio_input_tokens, u.audio_output_tokens, u.image_input_tokens,
                      u.image_output_tokens)
        result = price(event.model, usage, event.provider, at=event.timestamp,
                       service_tier=event.service_tier, project=project.slug)
    except Exception:  # an engine failure must not lose the event: store it unpriced
        return None
    return result if result.priced else None


def _row(event: CostEvent, project: Project, received: datetime) -> dict[str, Any]:
    server = _server_price(event, project)
    client = event.cost if event.cost is not None and event.cost.priced else None
    server_nanos = to_nanos(server.total) if server is not None else None
    if client is not None:
        parts = (client.input, client.cache_read, client.cache_write, client.output,
                 client.reasoning)
        total = to_nanos(client.total)
        mismatch = server_nanos is not None and abs(total - server_nanos) > max(
            1, server_nanos // 1_000_000)
    elif server is not None:
        parts = (server.input, server.cache_read, server.cache_write, server.output,
                 server.reasoning)
        total, mismatch = server_nanos or 0, False
    else:
        parts, total, mismatch = (Decimal(0),) * 5, 0, False
    u = event.usage
    return {
        "project_id": project.id, "event_id": event.id,
        "timestamp": event.timestamp.astimezone(UTC), "received_at": received,
        "provider": event.provider, "model": event.model,
        "requested_model": event.requested_model, "operation": event.operation,
        "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "reasoning_tokens": u.reasoning_tokens, "audio_input_tokens": u.audio_input_tokens,
        "audio_output_tokens": u.audio_output_tokens,
        "image_input_tokens": u.image_input_tokens, "image_output_tokens": u.image_output_tokens,
        "cost_nanos": total, "cost_input_nanos": to_nanos(parts[0]),
        "cost_cache_read_nanos": to_nanos(parts[1]), "cost_cache_write_nanos": to_nanos(parts[2]),
        "cost_output_nanos": to_nanos(parts[3]), "cost_reasoning_nanos": to_nanos(parts[4]),
        "server_cost_nanos": server_nanos, "priced": client is not None or server is not None,
        "server_priced": client is None and server is not None, "cost_mismatch": mismatch,
        "pricing_version": (event.cost.pricing_version if client is not None and event.cost
                            else server.pricing_version if server is not None else None),
        "latency_ms": event.latency_ms, "ttfb_ms": event.ttfb_ms, "stream": event.stream,
        "estimated": event.estimated, "status": event.status, "error_type": event.error_type,
        "service_tier": event.service_tier, "job_id": event.job_id, "user_id": event.user_id,
        "function": event.function, "tags": dict(event.tags),
        "environment": event.environment,
        "sdk_name": event.sdk.name if event.sdk else None,
        "sdk_version": event.sdk.version if event.sdk else None,
    }


def _insert(session: Session, table: Table) -> Any:  # the dialect's Insert (ON CONFLICT)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def _raw_id(item: Any) -> str | None:
    raw = item.get("id") if isinstance(item, dict) else None
    return raw[:128] if isinstance(raw, str) else None


def _rollups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        hour = row["timestamp"].replace(minute=0, second=0, microsecond=0)
        key = (row["project_id"], hour, row["provider"], row["model"])
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = dict(zip(_ROLLUP_KEY, key, strict=True),
                                   **dict.fromkeys(_ROLLUP_SUMS, 0))
            acc["latency_ms_sum"] = 0.0
        acc["cost_nanos"] += row["cost_nanos"]
        acc["calls"] += 1
        acc["errors"] += row["status"] == "error"
        acc["input_tokens"] += row["input_tokens"]
        acc["output_tokens"] += row["output_tokens"]
        acc["cache_read_tokens"] += row["cache_read_tokens"]
        acc["cache_write_tokens"] += row["cache_write_tokens"] + row["cache_write_1h_tokens"]
        acc["reasoning_tokens"] += row["reasoning_tokens"]
        if row["latency_ms"] is not None:
            acc["latency_ms_sum"] += row["latency_ms"]
            acc["latency_count"] += 1
    # A fixed order makes concurrent upserts lock rows in the same order: no deadlocks.
    return [sums[k] for k in sorted(sums, key=lambda k: (k[0], k[1], k[2], k[3]))]


def _validated(items: Sequence[Any]) -> list[CostEvent | ValidationError]:
    """Each item as a `CostEvent`, or the error that rejects it.

    One ``model_validate`` per item: measured faster than validating the whole list through
    a ``TypeAdapter(list[CostEvent])`` (7 against 12 us an event), and each item gets its own
    result either way.
    """
    validate = CostEvent.model_validate
    out: list[CostEvent | ValidationError] = []
    for item in items:
        try:
            out.append(validate(item))
        except ValidationError as exc:
            out.append(exc)
    return out


def ingest(session: Session, project: Project, items: Sequence[Any]) -> TrackResult:
    """Validate, price and store ``items`` for ``project``; per-event results, one commit."""
    received = utcnow()
    results: list[EventResult | None] = [None] * len(items)
    rows: list[dict[str, Any]] = []
    indexes: dict[str, int] = {}
    for index, event in enumerate(_validated(items)):
        if isinstance(event, ValidationError):
            message, _ = validation_message(event)
            results[index] = EventResult(index=index, id=_raw_id(items[index]),
                                         status="rejected",
                                         error=EventError(code="invalid_event", message=message))
            continue
        if event.project is not None and event.project != project.slug:
            results[index] = EventResult(index=index, id=event.id, status="rejected",
                                         error=EventError(
                code="project_mismatch",
                message=f"event project {event.project!r} is not this key's project "
                        f"{project.slug!r}"))
            continue
        if event.id in indexes:  # the same id twice in one batch: the first one counts
            results[index] = EventResult(index=index, id=event.id, status="duplicate")
            continue
        indexes[event.id] = index
        rows.append(_row(event, project, received))
    inserted: set[str] = set()
    if rows:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            inserted = _insert_postgres(session, rows)
        elif dialect == "sqlite":
            inserted = _insert_sqlite(session, rows)
        else:
            raise RuntimeError(f"unsupported database dialect {dialect!r}")
        new_rows = [r for r in rows if r["event_id"] in inserted]
        if new_rows:
            _upsert_rollups(session, _rollups(new_rows))
    session.commit()
    for event_id, index in indexes.items():
        status: Literal["accepted", "duplicate"] = (
            "accepted" if event_id in inserted else "duplicate")
        # Built from values just checked: model_construct skips re-validating 500 of them.
        results[index] = EventResult.model_construct(index=index, id=event_id, status=status)
    final = [r for r in results if r is not None]
    return TrackResult(
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final), results=final)


def _copy_rows(rows: Sequence[dict[str, Any]]) -> io.StringIO:
    """``rows`` as PostgreSQL COPY CSV, each led by its position in the batch.

    Written by the `csv` module (C code, about twice as fast as formatting each value in
    Python). In CSV an empty unquoted field is NULL: None is written so, and no text value
    is ever empty (every text field of the wire schema has ``min_length=1``; a test keeps
    it so). Times become naive UTC, as the columns hold them, and tags JSON text.
    """
    buffer = io.StringIO()
    write_row = csv.writer(buffer, lineterminator="\n").writerow
    dumps = json.dumps
    for ordinal, row in enumerate(rows):
        values = [ordinal, *map(row.__getitem__, _COLUMNS)]
        for index in _TIME_FIELDS:  # aware UTC in the row
            values[index] = values[index].replace(tzinfo=None)
        values[_TAGS_FIELD] = dumps(values[_TAGS_FIELD])
        write_row(values)
    buffer.seek(0)
    return buffer


def _insert_postgres(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store ``rows`` (ids unique among them); the event ids that were not stored before.

    COPY into a temporary staging table, then one INSERT ... SELECT in batch order with
    ON CONFLICT DO NOTHING: idempotency and its concurrency behaviour are the unique
    index's (a row another transaction is inserting is waited for, then skipped). The
    staging table lives as long as the connection and is emptied at every commit or
    rollback of a transaction that used it. (Measured and dropped: looking the batch's ids
    up first and COPYing the new rows straight into ``cost_events`` was slower.)
    """
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        # Created in this transaction if missing (also after a rollback dropped it); a no-op
        # otherwise. Temporary tables live in pg_temp, so the name cannot hit a real table.
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS AS "
                    f"SELECT 0 AS ordinal, {_COLUMN_LIST} FROM cost_events WITH NO DATA")
        cur.copy_expert(f"COPY {_STAGE} (ordinal, {_COLUMN_LIST}) FROM STDIN "
                        "WITH (FORMAT csv)", _copy_rows(rows))
        cur.execute(f"INSERT INTO cost_events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
                    f"FROM {_STAGE} ORDER BY ordinal "
                    "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id")
        return {r[0] for r in cur.fetchall()}
    finally:
        cur.close()


def _insert_sqlite(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store ``rows`` (ids unique among them); the event ids that were not stored before.

    One prepared ``INSERT ... ON CONFLICT DO NOTHING`` run per row through the driver: its
    row count (1 or 0) says whether that row is new. SQLite runs one writer at a time and the
    first insert takes the write lock for the rest of the transaction, so no other batch can
    store one of these ids in between.
    """
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    sql = (f"INSERT INTO cost_events ({columns}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           "ON CONFLICT (project_id, event_id) DO NOTHING")
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    # Parameters first: the first execute takes the write lock, and other workers wait on it.
    value = _sqlite_value
    params = [[v if (kind := type(v)) is int or kind is str or v is None else value(v)
               for v in map(row.__getitem__, _COLUMNS)] for row in rows]
    cur = dbapi.cursor()
    inserted: set[str] = set()
    try:
        for row, values in zip(rows, params, strict=True):
            cur.execute(sql, values)
            if cur.rowcount == 1:
                inserted.add(row["event_id"])
    finally:
        cur.close()
    return inserted


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is datetime:  # SQLAlchemy's SQLite DateTime text: naive UTC, always microseconds
        return value.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
    if kind is dict:
        return json.dumps(value)
    return value


def _upsert_rollups(session: Session, rollups: list[dict[str, Any]]) -> None:
    stmt = _insert(session, _ROLLUPS)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_ROLLUP_KEY),
        set_={name: _ROLLUPS.c[name] + stmt.excluded[name] for name in _ROLLUP_SUMS})
    session.execute(stmt, rollups)
