"""Event ingestion: decode a batch, validate and price each event, store it once, roll it up.

Everything for one batch happens in one transaction: events are inserted with
``INSERT ... ON CONFLICT (project_id, event_id) DO NOTHING`` and only the rows that were new are
added to ``cost_rollups_hourly`` with an upsert, so a batch sent twice is stored once and
counted once.

How, for speed (see "Server ingest" in docs/performance.md):

* A body of valid events is validated straight from its bytes in one pydantic call
  (`ingest_body`); only a body that fails is decoded with `json` and validated event by event,
  so each event gets its own result and message.
* Each event becomes one tuple of driver-ready values (ints, floats, bools, text, None) in
  ``_COLUMNS`` order: times as naive-UTC text, tags as JSON text, money as integer nano-USD.
* On PostgreSQL the tuples are streamed as ``COPY`` text, one ``%`` format per row, into a
  per-connection temporary table (``ON COMMIT DELETE ROWS``) and moved with one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING event_id``.
* On SQLite the tuples go through the driver's prepared ``INSERT ... ON CONFLICT DO NOTHING``
  one by one; the row count says which were new.
* The 207 body is validated once as a whole and serialised by pydantic.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from operator import is_, itemgetter
from typing import Any

from psycopg2.extras import execute_values
from pydantic import ValidationError
from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from llmlab.pricing import CostBreakdown
from llmlab.pricing import cost as price
from llmlab.schema import CostEvent, EventCost
from llmlab_server.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
    validation_message,
)
from llmlab_server.models import MAX_ID, CostEventRow, Project, utcnow
from llmlab_server.schemas import TrackBatch, TrackResult

__all__ = ["MAX_EVENT_COST_NANOS", "decode_batch", "ingest", "ingest_body", "to_nanos"]

_EVENTS: Table = CostEventRow.__table__  # type: ignore[assignment]
#: The columns an ingest writes (all but the surrogate key), in the order of `_row`'s tuple.
_COLUMNS = (
    "project_id", "event_id", "timestamp", "received_at", "provider", "model",
    "requested_model", "operation", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens", "audio_input_tokens",
    "audio_output_tokens", "image_input_tokens", "image_output_tokens", "cost_nanos",
    "cost_input_nanos", "cost_cache_read_nanos", "cost_cache_write_nanos", "cost_output_nanos",
    "cost_reasoning_nanos", "server_cost_nanos", "priced", "server_priced", "cost_mismatch",
    "pricing_version", "latency_ms", "ttfb_ms", "stream", "estimated", "status", "error_type",
    "service_tier", "job_id", "user_id", "function", "tags", "environment", "sdk_name",
    "sdk_version")
_COLUMN_LIST = ", ".join(f'"{c}"' for c in _COLUMNS)
_STAGE = "llmlab_ingest_stage"  # a temporary table: pg_temp, never shadows cost_events
(_ID, _TIME, _PROVIDER, _MODEL, _COST, _SERVER_COST, _STATUS, _LATENCY) = map(
    _COLUMNS.index, ("event_id", "timestamp", "provider", "model", "cost_nanos",
                     "server_cost_nanos", "status", "latency_ms"))
#: The most one event may cost, client's or server's price ($1,000,000 in nano-USD; the wire
#: schema allows $1e9). A real call costs cents to a few dollars; the dearest catalogued rate
#: is $600 per million output tokens, so even a million-token answer is 1,600 times below the
#: cap. An event above it is a bug or an attack: rejected, it cannot swamp budgets.
MAX_EVENT_COST_NANOS = 10**15
_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _CACHE_WRITE_1H, _REASONING = map(
    _COLUMNS.index, ("input_tokens", "output_tokens", "cache_read_tokens",
                     "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens"))
_ROLLUP_KEY = ("project_id", "hour", "provider", "model")
_ROLLUP_SUMS = ("cost_nanos", "calls", "errors", "input_tokens", "output_tokens",
                "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "latency_ms_sum",
                "latency_count")
_ROLLUP_COLUMNS = _ROLLUP_KEY + _ROLLUP_SUMS
_INTEGER_SUMS = _ROLLUP_SUMS[:-2] + _ROLLUP_SUMS[-1:]  # all but latency_ms_sum (a float)
#: The integer sums saturate at BIGINT's maximum instead of overflowing: an absurd cost or
#: token count (the schema allows up to $1e9 an event) must not fail every later batch of
#: its hour and model, which the SDK would retry for ever. (SQLite turns an overflowing
#: integer sum into a real number, which min() brings back to the maximum.)
_SATURATED_SUM = {
    "postgresql": "LEAST(cost_rollups_hourly.{c}::numeric + excluded.{c}, {max})::bigint",
    "sqlite": "min(cost_rollups_hourly.{c} + excluded.{c}, {max})",
}
_ROLLUP_UPSERT = {dialect: (
    f"INSERT INTO cost_rollups_hourly ({', '.join(_ROLLUP_COLUMNS)}) VALUES {{values}} "
    f"ON CONFLICT ({', '.join(_ROLLUP_KEY)}) DO UPDATE SET " + ", ".join(
        f"{c} = " + (saturated.format(c=c, max=MAX_ID) if c in _INTEGER_SUMS
                     else f"cost_rollups_hourly.{c} + excluded.{c}")
        for c in _ROLLUP_SUMS)) for dialect, saturated in _SATURATED_SUM.items()}
#: The positions of the columns that may hold NULL, and COPY's text for each row shape.
_NULLABLE = tuple(i for i, name in enumerate(_COLUMNS) if _EVENTS.c[name].nullable)
_nullable_values = itemgetter(*_NULLABLE)
_NO_VALUES = (None,) * len(_NULLABLE)
_COPY_FORMATS: dict[tuple[bool, ...], tuple[str, int]] = {}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def to_nanos(amount: Decimal) -> int:
    """USD as integer nano-USD, rounded half-even."""
    if not amount:
        return 0  # most components of most events: skip the Decimal arithmetic
    return round(amount.scaleb(9))  # Decimal's round() is half-even, and exact


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


def _body_bytes(raw: bytes, content_type: str | None, encoding: str | None,
                max_bytes: int) -> bytes:
    """The JSON text of a request body: media type checked, size limited, gzip inflated."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json" and not mime.endswith("+json"):
        raise UnsupportedMediaType("Send JSON with 'Content-Type: application/json'.")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    coding = (encoding or "identity").strip().lower()
    if coding == "gzip":
        return _gunzip(raw, max_bytes)
    if coding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; use gzip.",
                                   code="unsupported_encoding")
    return raw


def _items(raw: bytes, max_batch: int) -> list[Any]:
    """The raw events of a JSON body: one event object, or ``{"events": [...]}``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    except RecursionError:  # "[[[[…" nested deeper than the interpreter's stack
        raise BadRequest("The body is nested too deeply.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be one event object or {\"events\": [...]}.",
                         code="invalid_body")
    if "events" not in body:
        return [body]
    events = body["events"]
    if not isinstance(events, list) or len(body) != 1:
        raise BadRequest("'events' must be a list of events, alone in the body.",
                         code="invalid_body", param="events")
    _check_batch_size(len(events), max_batch)
    return events


def _check_batch_size(size: int, max_batch: int) -> None:
    if size > max_batch:
        raise Unprocessable(f"At most {max_batch} events per batch; got {size}.",
                            code="batch_too_large", param="events")


def decode_batch(raw: bytes, content_type: str | None, encoding: str | None, *,
                 max_bytes: int, max_batch: int) -> list[Any]:
    """The list of raw events in a request body (one event or ``{"events": [...]}``)."""
    return _items(_body_bytes(raw, content_type, encoding, max_bytes), max_batch)


def ingest_body(session: Session, project: Project, raw: bytes, content_type: str | None,
                encoding: str | None, *, max_bytes: int, max_batch: int) -> TrackResult:
    """`ingest` a request body; the whole body is validated at once when it is all valid.

    Any other body (one bare event, an invalid event, bad JSON) goes through `decode_batch`
    and event-by-event validation, which give the same results and errors as always.
    """
    data = _body_bytes(raw, content_type, encoding, max_bytes)
    try:
        events = TrackBatch.model_validate_json(data).events  # all valid: one call
    except ValidationError:
        return ingest(session, project, _items(data, max_batch))
    _check_batch_size(len(events), max_batch)
    return _ingest_checked(session, project, events, events)


def _server_price(event: CostEvent, slug: str) -> CostBreakdown | None:
    try:  # the wire schema checked the usage by Usage's rules: it is priced as it is
        result = price(event.model, event.usage, event.provider, at=event.timestamp,
                       service_tier=event.service_tier, project=slug)
    except Exception:  # an engine failure must not lose the event: store it unpriced
        return None
    return result if result.priced else None


def _db_time(value: datetime) -> str:
    """An aware time as the naive-UTC text both databases store (SQLAlchemy's SQLite form)."""
    iso = value.isoformat(" ", "microseconds")
    if iso.endswith("+00:00"):  # UTC, as the SDK sends: a quarter cheaper than converting
        return iso[:-6]
    offset = value.utcoffset()
    naive = value.replace(tzinfo=None)
    return (naive - offset if offset else naive).isoformat(" ", "microseconds")


def _tags_encoder() -> Callable[[dict[str, str]], str]:
    """JSON text of a tags dict, remembered by content (events of a batch share tag sets)."""
    seen: dict[tuple[tuple[str, str], ...], str] = {}
    dumps = json.JSONEncoder(ensure_ascii=False).encode

    def encode(tags: dict[str, str]) -> str:
        if not tags:
            return "{}"
        key = tuple(tags.items())
        text = seen.get(key)
        if text is None:
            text = seen[key] = dumps(tags)
        return text

    return encode


def _row(event: CostEvent, project_id: int, slug: str, received: str,
         tags: Callable[[dict[str, str]], str]) -> tuple[Any, ...]:
    """The stored row of ``event``: its values in ``_COLUMNS`` order, ready for the driver."""
    server = _server_price(event, slug)
    cost = event.cost
    client = cost if cost is not None and cost.priced else None
    server_nanos = to_nanos(server.total) if server is not None else None
    source: EventCost | CostBreakdown | None
    if client is not None:
        source, total, version = client, to_nanos(client.total), client.pricing_version
        mismatch = server_nanos is not None and abs(total - server_nanos) > max(
            1, server_nanos // 1_000_000)
    elif server is not None:
        source, total, version, mismatch = server, server_nanos or 0, server.pricing_version, False
    else:
        source, total, version, mismatch = None, 0, None, False
    if source is not None:
        parts = (to_nanos(source.input), to_nanos(source.cache_read),
                 to_nanos(source.cache_write), to_nanos(source.output),
                 to_nanos(source.reasoning))
    else:
        parts = (0, 0, 0, 0, 0)
    u = event.usage
    sdk = event.sdk
    return (
        project_id, event.id, _db_time(event.timestamp), received, event.provider, event.model,
        event.requested_model, event.operation, u.input_tokens, u.output_tokens,
        u.cache_read_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.reasoning_tokens,
        u.audio_input_tokens, u.audio_output_tokens, u.image_input_tokens,
        u.image_output_tokens, total, *parts, server_nanos, source is not None,
        client is None and server is not None, mismatch, version, event.latency_ms,
        event.ttfb_ms, event.stream, event.estimated, event.status, event.error_type,
        event.service_tier, event.job_id, event.user_id, event.function, tags(event.tags),
        event.environment, sdk.name if sdk else None, sdk.version if sdk else None)


def _raw_id(item: Any) -> str | None:
    raw = item.get("id") if isinstance(item, dict) else None
    return raw[:128] if isinstance(raw, str) else None


def _rollups(project_id: int, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The hourly rollup increments of ``rows``, one per (hour, provider, model), as
    ``_ROLLUP_KEY + _ROLLUP_SUMS`` tuples."""
    sums: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        key = (row[_TIME][:13], row[_PROVIDER], row[_MODEL])  # "YYYY-MM-DD HH": the hour
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0]
        acc[0] += row[_COST]
        acc[1] += 1
        acc[2] += row[_STATUS] == "error"
        acc[3] += row[_INPUT]
        acc[4] += row[_OUTPUT]
        acc[5] += row[_CACHE_READ]
        acc[6] += row[_CACHE_WRITE] + row[_CACHE_WRITE_1H]
        acc[7] += row[_REASONING]
        if row[_LATENCY] is not None:
            acc[8] += row[_LATENCY]
            acc[9] += 1
    # A fixed order makes concurrent upserts lock rows in the same order: no deadlocks.
    # Integer sums are capped like the upsert caps them (Python's ints do not overflow).
    return [(project_id, f"{hour}:00:00.000000", provider, model,
             *(min(v, MAX_ID) if isinstance(v, int) else v for v in sums[hour, provider, model]))
            for hour, provider, model in sorted(sums)]


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
    return _ingest_checked(session, project, items, _validated(items))


def _ingest_checked(session: Session, project: Project, items: Sequence[Any],
                    checked: Sequence[CostEvent | ValidationError]) -> TrackResult:
    """Store the valid ones of ``checked`` (``items`` validated, in order); their results."""
    project_id, slug = project.id, project.slug
    received = _db_time(utcnow())
    tags = _tags_encoder()
    results: list[dict[str, Any] | None] = [None] * len(checked)
    rows: list[tuple[Any, ...]] = []
    indexes: dict[str, int] = {}
    rejected = duplicates = 0
    for index, event in enumerate(checked):
        if isinstance(event, ValidationError):
            message, _ = validation_message(event)
            results[index] = _rejected(index, _raw_id(items[index]), "invalid_event", message)
            rejected += 1
        elif event.project is not None and event.project != slug:
            results[index] = _rejected(
                index, event.id, "project_mismatch",
                f"event project {event.project!r} is not this key's project {slug!r}")
            rejected += 1
        elif event.id in indexes:  # the same id twice in one batch: the first one counts
            results[index] = {"index": index, "id": event.id, "status": "duplicate"}
            duplicates += 1
        else:
            row = _row(event, project_id, slug, received, tags)
            if max(row[_COST], row[_SERVER_COST] or 0) > MAX_EVENT_COST_NANOS:
                results[index] = _rejected(
                    index, event.id, "cost_too_large",
                    f"the event costs more than ${MAX_EVENT_COST_NANOS // 10**9:,}, "
                    "the most one call is accepted at")
                rejected += 1
                continue
            indexes[event.id] = index
            rows.append(row)
    inserted = _store(session, project_id, rows)  # committed
    for event_id, index in indexes.items():
        new = event_id in inserted
        results[index] = {"index": index, "id": event_id,
                          "status": "accepted" if new else "duplicate"}
        duplicates += not new
    # One validation of the whole result: about a quarter of building 500 models one by one.
    return TrackResult.model_validate({
        "accepted": len(inserted), "duplicates": duplicates, "rejected": rejected,
        "results": results})


def _rejected(index: int, event_id: str | None, code: str, message: str) -> dict[str, Any]:
    return {"index": index, "id": event_id, "status": "rejected",
            "error": {"code": code, "message": message}}


def _store(session: Session, project_id: int, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Insert ``rows``, roll up the new ones and commit; the ids that were new.

    ``cost_events`` has no foreign key to ``projects`` (its per-row trigger query was ~12 %
    of PostgreSQL's ingest CPU): the project row is checked once per batch instead, under
    the lock the foreign key would have taken. A deletion of the project waits for this
    batch (and its delete trigger then deletes these events too); a project deleted before
    gets no events: the batch is refused with 404.
    """
    if not rows:
        session.commit()
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        _check_project(session, project_id, " FOR KEY SHARE")  # a deletion waits for us
        inserted = _insert_postgres(session, rows)
    elif dialect == "sqlite":
        inserted = _insert_sqlite(session, rows)
        _check_project(session, project_id)  # under SQLite's write lock, taken by the inserts
    else:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    new_rows = rows if len(inserted) == len(rows) else [r for r in rows if r[_ID] in inserted]
    if new_rows:
        _upsert_rollups(session, dialect, _rollups(project_id, new_rows))
    session.commit()
    return inserted


def _check_project(session: Session, project_id: int, lock: str = "") -> None:
    """Raise 404 (and roll back) unless the project still exists (``lock``: the row lock
    to take on it until the commit)."""
    found = session.execute(text(f"SELECT id FROM projects WHERE id = :p{lock}"),
                            {"p": project_id}).first()
    if found is None:
        session.rollback()
        raise NotFound("No such project: it was deleted.", param="project")


def _copy_text(rows: Sequence[tuple[Any, ...]]) -> str:
    """``rows`` as PostgreSQL COPY text, each led by its position in the batch.

    Each row is one ``%`` format (C code, about three times faster than the ``csv`` module
    over the same values), chosen by which of its nullable columns are NULL: those print
    ``\\N`` and consume their None. A row whose text needs escaping (a backslash, tab, newline
    or carriage return in a value) is written value by value instead.
    """
    out: list[str] = []
    append = out.append
    formats = _COPY_FORMATS
    last_tab = len(_COLUMNS) - 1
    for ordinal, row in enumerate(rows):
        nulls = tuple(map(is_, _nullable_values(row), _NO_VALUES))
        spec = formats.get(nulls) or _copy_format(nulls)
        line = spec[0] % row
        if (line.count("\\") != spec[1] or line.count("\t") != last_tab or "\n" in line
                or "\r" in line):
            line = "\t".join("\\N" if v is None else str(v).translate(_COPY_ESCAPES)
                             for v in row)
        append(f"{ordinal}\t{line}\n")
    return "".join(out)


def _copy_format(nulls: tuple[bool, ...]) -> tuple[str, int]:
    """The COPY format of rows whose nullable columns are NULL where ``nulls`` says."""
    null_at = {position for position, null in zip(_NULLABLE, nulls, strict=True) if null}
    fields = ["\\N%.0s" if i in null_at else "%s" for i in range(len(_COLUMNS))]
    spec = _COPY_FORMATS[nulls] = ("\t".join(fields), len(null_at))
    return spec


def _insert_postgres(session: Session, rows: Sequence[tuple[Any, ...]]) -> set[str]:
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
        cur.copy_expert(f"COPY {_STAGE} (ordinal, {_COLUMN_LIST}) FROM STDIN",
                        io.StringIO(_copy_text(rows)))
        cur.execute(f"INSERT INTO cost_events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
                    f"FROM {_STAGE} ORDER BY ordinal "
                    "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id")
        return {r[0] for r in cur.fetchall()}
    finally:
        cur.close()


def _insert_sqlite(session: Session, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Store ``rows`` (ids unique among them); the event ids that were not stored before.

    One prepared ``INSERT ... ON CONFLICT DO NOTHING`` run per row through the driver: its
    row count (1 or 0) says whether that row is new. SQLite runs one writer at a time and the
    first insert takes the write lock for the rest of the transaction, so no other batch can
    store one of these ids in between.
    """
    sql = (f"INSERT INTO cost_events ({_COLUMN_LIST}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))}) "
           "ON CONFLICT (project_id, event_id) DO NOTHING")
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    inserted: set[str] = set()
    try:
        for row in rows:
            cur.execute(sql, row)
            if cur.rowcount == 1:
                inserted.add(row[_ID])
    finally:
        cur.close()
    return inserted


def _upsert_rollups(session: Session, dialect: str, rollups: list[tuple[Any, ...]]) -> None:
    """Add ``rollups`` to the stored sums: one statement on PostgreSQL, one per row on SQLite.

    Plain SQL through the driver: SQLAlchemy's statement building and bulk path cost more
    than the upsert itself (about 2 ms of a 500-event batch).
    """
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        if dialect == "postgresql":
            execute_values(cur, _ROLLUP_UPSERT[dialect].format(values="%s"), rollups,
                           page_size=len(rollups))
        else:
            cur.executemany(_ROLLUP_UPSERT["sqlite"].format(
                values=f"({', '.join('?' * len(_ROLLUP_COLUMNS))})"), rollups)
    finally:
        cur.close()
