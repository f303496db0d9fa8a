"""OTLP/HTTP trace bodies: decode an ``ExportTraceServiceRequest``, encode its response.

Both OTLP/HTTP encodings are read, gzip-compressed or not (the decompressed size is bounded
like the track route's): binary protobuf (``application/x-protobuf``, what exporters send by
default) and OTLP/JSON (``application/json``). OTLP/JSON is the protobuf JSON mapping except
that trace and span ids are hex instead of base64, so the ids are rewritten to base64 and the
document is then parsed by protobuf's own JSON parser: one decoder checks both encodings, and
unknown fields are ignored as the OTLP specification asks of receivers.

The response is an ``ExportTraceServiceResponse`` in the request's encoding: empty when every
span was taken, else with ``partial_success`` (how many spans were rejected, and why).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from llmlab_server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from llmlab_server.services.ingest import gunzip, json_object

__all__ = ["JSON", "PROTOBUF", "Span", "decode", "encode_response", "media_type"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
Scalar = str | bool | int | float
#: The id fields OTLP/JSON writes in hex, per object kind: spans and their links.
_SPAN_IDS = ("traceId", "spanId", "parentSpanId")
_LINK_IDS = ("traceId", "spanId")


@dataclass(frozen=True, slots=True)
class Span:
    """One span, flattened: its resource's attributes under its own (the span's win)."""

    trace_id: bytes
    span_id: bytes
    name: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Scalar | tuple[Scalar, ...]]


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` from a Content-Type header; 415 for anything else."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(
            f"Send OTLP as {PROTOBUF!r} or {JSON!r}, not {mime or 'no Content-Type'!r}.")
    return mime


def decode(raw: bytes, mime: str, encoding: str | None, *, max_bytes: int) -> list[Span]:
    """The spans of an OTLP/HTTP trace export body (400 when it is not one)."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    coding = (encoding or "identity").strip().lower()
    if coding == "gzip":
        raw = gunzip(raw, max_bytes)
    elif coding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; use gzip.",
                                   code="unsupported_encoding")
    request = _from_json(raw) if mime == JSON else _from_protobuf(raw)
    return list(_spans(request))


def _from_protobuf(raw: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise BadRequest(f"The body is not an OTLP ExportTraceServiceRequest: {exc}.",
                         code="invalid_protobuf") from None
    return request


def _from_json(raw: bytes) -> ExportTraceServiceRequest:
    body = json_object(raw, "an OTLP/JSON ExportTraceServiceRequest object", "invalid_otlp")
    for obj, fields in _id_holders(body):
        for name in fields:
            value = obj.get(name)
            if isinstance(value, str):
                try:
                    obj[name] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise BadRequest(f"{name} {value[:40]!r} is not hex (OTLP/JSON ids are hex).",
                                     code="invalid_otlp", param=name) from None
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(body, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise BadRequest(f"The body is not an OTLP/JSON ExportTraceServiceRequest: {exc}",
                         code="invalid_otlp") from None
    return request


def _list(obj: Any, key: str) -> list[Any]:
    # A wrong shape is left in place for protobuf's parser to report.
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _id_holders(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """The span and link objects of an OTLP/JSON body, with the names of their id fields."""
    for resource_spans in _list(body, "resourceSpans"):
        for scope_spans in _list(resource_spans, "scopeSpans"):
            for span in _list(scope_spans, "spans"):
                if isinstance(span, dict):
                    yield span, _SPAN_IDS
                    yield from ((link, _LINK_IDS) for link in _list(span, "links")
                                if isinstance(link, dict))


def _value(value: AnyValue) -> Scalar | tuple[Scalar, ...] | None:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        items = (_value(v) for v in value.array_value.values)
        return tuple(v for v in items if v is not None and not isinstance(v, tuple))
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        scalar: Scalar = getattr(value, kind)
        return scalar
    return None  # kvlist and bytes values carry nothing llmlab reads


def _attributes(pairs: Any) -> dict[str, Scalar | tuple[Scalar, ...]]:
    out: dict[str, Scalar | tuple[Scalar, ...]] = {}
    pair: KeyValue
    for pair in pairs:
        value = _value(pair.value)
        if value is not None:
            out[pair.key] = value
    return out


def _spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(trace_id=span.trace_id, span_id=span.span_id, name=span.name,
                           start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
                           error=span.status.code == Status.STATUS_CODE_ERROR,
                           attributes={**resource, **_attributes(span.attributes)})


def encode_response(mime: str, rejected: int, message: str) -> bytes:
    """An ``ExportTraceServiceResponse`` in ``mime``: partial success when spans were rejected."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    if mime == PROTOBUF:
        data: bytes = response.SerializeToString()
        return data
    text: str = json_format.MessageToJson(response, indent=None)
    return text.encode()
