"""Events an older server refuses for the wire fields added since the first release.

A server of an earlier release validates events with ``extra="forbid"``: an event carrying a
field added since (``usage.tools``, ``cost.tools``, ``provider_cost``) is rejected there as
``invalid_event`` with one "Extra inputs are not permitted" error per such field, and a
rejected event is never retried. Upgrading the SDK before the server must not lose events,
so `downgraded` makes the event an older server takes (those fields left out; ``cost.total``
keeps the tool fees, so the spend is the same) and the sender sends it again, once. A
rejection naming any other error is final, as before.
"""

from __future__ import annotations

from llmlab._event_items import Item
from llmlab._json import dumps
from llmlab.transport import EventResult

__all__ = ["ADDED_FIELDS", "downgraded"]

#: Wire fields added after the first release, as the locations a validation error names.
ADDED_FIELDS = frozenset({("usage", "tools"), ("cost", "tools"), ("provider_cost",)})
#: pydantic's message for a field an ``extra="forbid"`` model does not know.
_EXTRA = "Extra inputs are not permitted"


def _refused_fields(outcome: EventResult) -> list[tuple[str, ...]] | None:
    """The added fields a rejection names when they are all it is about, else None."""
    if outcome.status != "rejected" or outcome.code != "invalid_event" or not outcome.reason:
        return None
    _, _, message = outcome.reason.partition(": ")  # "invalid_event: <loc>: <msg>; ..."
    fields = []
    for part in message.split("; "):
        loc, sep, msg = part.partition(": ")
        path = tuple(loc.split("."))
        if not sep or msg.strip() != _EXTRA or path not in ADDED_FIELDS:
            return None
        fields.append(path)
    return fields or None


def downgraded(item: Item, outcome: EventResult) -> Item | None:
    """``item`` without the added fields ``outcome`` (an older server's rejection) names,
    to send again; None when the rejection is about anything else, or the event has none
    of those fields left to drop (a second rejection is final)."""
    fields = _refused_fields(outcome)
    if fields is None:
        return None
    event = dict(item.event)
    dropped = False
    for path in fields:
        if len(path) == 1:
            dropped |= event.pop(path[0], None) is not None
            continue
        parent = event.get(path[0])
        if isinstance(parent, dict) and path[1] in parent:
            event[path[0]] = {k: v for k, v in parent.items() if k != path[1]}
            dropped = True
    if not dropped:
        return None
    return Item(item.id, event, dumps(event))

