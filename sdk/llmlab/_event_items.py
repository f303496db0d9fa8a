"""Queued events made ready to send: each one built and encoded once, on the worker thread.

The JSON line made here is both the measure a batch is cut by (``batch_bytes``) and the
record the spool writes, so an event is never encoded twice. An `Item` stands for its event
from then on (back in the queue after a cut batch, in a batch `shutdown()` takes over): a
deferred event built twice would get a second id, and be counted twice by the budget guard.
What can never be encoded is named (a reason string) so the caller can count it as rejected
instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from llmlab._json import dumps

__all__ = ["SETTLED", "Item", "encode", "encode_all"]


class _Settled:
    """The type of `SETTLED`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SETTLED"


#: Stands in a batch for an event already settled (rejected as unencodable): skipped.
SETTLED = _Settled()


@dataclass
class Item:
    """One event, encoded once: the JSON line is both the size measure and the spool record."""

    id: str
    event: dict[str, Any]
    line: str


def encode(event: Any) -> Item | str:
    """The encoded event, or why it can never be sent.

    An event is a wire dict, or a *deferred event*: a tuple whose first item, called with the
    tuple, builds the wire dict here, on the worker thread, and returns None when it cannot
    (the tracker defers pricing calls this way: a tuple is the cheapest record to make on
    the calling thread). An `Item` is returned as it is: it was built already.
    """
    if type(event) is Item:
        return event
    if type(event) is tuple and event and callable(event[0]):
        try:
            event = event[0](event)
        except Exception as exc:  # builders log their own failures; this is a last guard
            return f"its wire form could not be built: {exc!r}"
        if not isinstance(event, dict):
            return "its wire form could not be built (see the error logged above)"
    elif not isinstance(event, dict):
        return f"not a dict: {type(event).__name__}"
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        return "missing string 'id'"
    try:
        line = dumps(event)
    except (TypeError, ValueError) as exc:
        return f"not JSON serialisable: {exc}"
    return Item(event_id, event, line)


def encode_all(events: Iterable[Any], reject: Callable[[Any, str], None]) -> list[Item]:
    """The encodable ``events`` as items; ``reject(event, why)`` is told about the others
    (`SETTLED` placeholders are skipped)."""
    items = []
    for event in events:
        if event is SETTLED:
            continue
        item = encode(event)
        if isinstance(item, str):
            reject(event, item)
        else:
            items.append(item)
    return items
