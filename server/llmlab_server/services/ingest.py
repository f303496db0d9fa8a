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
* The rows are stored by `llmlab_server.services.ingest_store` (COPY on PostgreSQL, a
  prepared insert on SQLite) with their rollups.
* A project over a quota (`llmlab_server.services.quotas`) gets 429 (events per day or
  minute) or 507 (events stored) before any event is priced; when quotas are off that check
  is one comparison.
* The 207 body is validated once as a whole and serialised by pydantic.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from llmlab.pricing import CostBreakdown
from llmlab.pricing import cost as price
from llmlab.schema import CostEvent, EventCost
from llmlab_server.errors import (
    BadRequest,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
    validation_message,
)
from llmlab_server.models import Project, utcnow
from llmlab_server.schemas import TrackBatch, TrackResult
from llmlab_server.services import quotas
from llmlab_server.services.ingest_store import _COLUMNS as _COLUMNS
from llmlab_server.services.ingest_store import _COST, _SERVER_COST, store
from llmlab_server.services.ingest_store import _check_project as _check_project
from llmlab_server.services.ingest_store import _copy_text as _copy_text

__all__ = ["MAX_EVENT_COST_NANOS", "decode_batch", "ingest", "ingest_body", "to_nanos"]

#: The most one event may cost, client's or server's price ($1,000,000 in nano-USD; the wire
#: schema allows $1e9). A real call costs cents to a few dollars; the dearest catalogued rate
#: is $600 per million output tokens, so even a million-token answer is 1,600 times below the
#: cap. An event above it is a bug or an attack: rejected, it cannot swamp budgets.
MAX_EVENT_COST_NANOS = 10**15



def to_nanos(amount: Decimal) -> int:
    """USD as integer nano-USD, rounded half-even."""
    if not amount:
        return 0  # most components of most events: skip the Decimal arithmetic
    return round(amount.scaleb(9))  # Decimal's round() is half-even, and exact


def gunzip(raw: bytes, limit: int) -> bytes:
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
        return gunzip(raw, max_bytes)
    if coding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; use gzip.",
                                   code="unsupported_encoding")
    return raw


def json_object(raw: bytes, expected: str, code: str) -> dict[str, Any]:
    """A JSON body that must be an object; 400 ``invalid_json``, or ``code`` saying that the
    body must be ``expected``, otherwise (shared by the track and OTLP routes)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    except RecursionError:  # "[[[[…" nested deeper than the interpreter's stack
        raise BadRequest("The body is nested too deeply.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The body must be {expected}.", code=code)
    return body


def _items(raw: bytes, max_batch: int) -> list[Any]:
    """The raw events of a JSON body: one event object, or ``{"events": [...]}``."""
    body = json_object(raw, "one event object or {\"events\": [...]}", "invalid_body")
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
    counted = quotas.check(session, project.id)  # before any validating or pricing
    try:
        events = TrackBatch.model_validate_json(data).events  # all valid: one call
    except ValidationError:
        items = _items(data, max_batch)
        return _ingest_checked(session, project, items, _validated(items), counted)
    _check_batch_size(len(events), max_batch)
    return _ingest_checked(session, project, events, events, counted)


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
        tools_nanos = to_nanos(source.tools) if source.tools else 0
    else:
        parts, tools_nanos = (0, 0, 0, 0, 0), 0
    u = event.usage
    sdk = event.sdk
    provider_nanos, provider_mismatch = _provider_cost(event, total if source else None)
    return (
        project_id, event.id, _db_time(event.timestamp), received, event.provider, event.model,
        event.requested_model, event.operation, u.input_tokens, u.output_tokens,
        u.cache_read_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.reasoning_tokens,
        u.audio_input_tokens, u.audio_output_tokens, u.image_input_tokens,
        u.image_output_tokens, total, *parts, server_nanos, source is not None,
        client is None and server is not None, mismatch, version, event.latency_ms,
        event.ttfb_ms, event.stream, event.estimated, event.status, event.error_type,
        event.service_tier, event.job_id, event.user_id, event.function, tags(event.tags),
        event.environment, sdk.name if sdk else None, sdk.version if sdk else None,
        tools_nanos, json.dumps(u.tools, sort_keys=True) if u.tools else None, provider_nanos,
        provider_mismatch)


def _provider_cost(event: CostEvent, total: int | None) -> tuple[int | None, bool]:
    """(the provider's own figure in nano-USD, whether it disagrees with ``total``, the
    stored cost): more than 1 % apart, and more than $0.000001, is a disagreement."""
    if event.provider_cost is None:
        return None, False
    reported = to_nanos(event.provider_cost)
    if total is None:
        return reported, False
    return reported, abs(total - reported) > max(1_000, reported // 100)


def _raw_id(item: Any) -> str | None:
    raw = item.get("id") if isinstance(item, dict) else None
    return raw[:128] if isinstance(raw, str) else None



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
    """Validate, price and store ``items`` for ``project``; per-event results, one commit.

    Raises `llmlab_server.errors.RateLimited` (429 ``quota_exceeded``) when the project has
    used up its events per day or minute, and `llmlab_server.errors.StorageFull` (507
    ``storage_quota_exceeded``) when it stores as many events as it may
    (`llmlab_server.services.quotas`); either before any event is priced, or after the insert,
    when the batch would pass the quota (then nothing of it is stored).
    """
    counted = quotas.check(session, project.id)
    return _ingest_checked(session, project, items, _validated(items), counted)


def _ingest_checked(session: Session, project: Project, items: Sequence[Any],
                    checked: Sequence[CostEvent | ValidationError],
                    counted: quotas.Counted | None) -> TrackResult:
    """Store the valid ones of ``checked`` (``items`` validated, in order); their results
    (``counted``: adds the new events to the project's quota usage)."""
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
    inserted = store(session, project_id, rows, counted)  # committed
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


