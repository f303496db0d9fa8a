"""JSON encoding of wire events, done on the delivery worker's thread.

The per-call path leaves money as `Decimal` and the timestamp as an aware `datetime` in the
event dict; turning them into wire strings (``"0.00475"``, ``"2026-11-22T10:00:00.123Z"``)
happens here, off the caller's thread.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llmlab.pricing._engine import money

__all__ = ["dumps", "to_bytes", "wire_default"]


def wire_default(value: Any) -> Any:
    """`json.dumps` ``default=`` for the types the per-call path leaves in an event."""
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# One encoder, built once: json.dumps() with options builds a new one on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            default=wire_default)


def dumps(value: Any) -> str:
    """Compact JSON of an event (or a batch), Decimals and datetimes in wire form."""
    return _ENCODER.encode(value)


def to_bytes(text: str) -> bytes:
    """UTF-8 of encoded events. Text UTF-8 cannot hold (a lone surrogate, as in a name decoded
    from bad bytes with ``os.fsdecode``) is written as "?": the event, and the batch and spool
    file around it, still go out instead of failing to encode again and again."""
    return text.encode("utf-8", "replace")
