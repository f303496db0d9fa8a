"""One call's priced wire event, built from what the integration recorded.

The tracker builds events here on the calling thread (scopes, ``on_event`` callbacks) or on
the delivery worker (every other call, see `llmlab._tracker.Tracker.record_call`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from llmlab import _consts
from llmlab.pricing import Catalogue
from llmlab.schema import EventCost, new_event_id
from llmlab.usage import Usage

if TYPE_CHECKING:
    from llmlab._budget_routes import Token

__all__ = ["RecordedCall", "call_fields", "no_attribution", "wire_event"]

_SDK = {"name": _consts.SDK_NAME, "version": _consts.SDK_VERSION}


class RecordedCall(Protocol):
    """A finished provider call, as `Call` in ``llmlab.integrations._call`` holds it."""

    provider: str
    model: str
    usage: Usage | Any
    requested_model: str | None
    operation: str
    latency_ms: float
    ttfb_ms: float | None
    stream: bool
    status: str
    error_type: str | None
    estimated: bool
    #: ``service_tier`` and ``region`` when the provider's response said.
    extra: dict[str, Any]
    #: The wall-clock time the call finished (``time.time()``).
    when: float
    #: The budget guard's reservation of the call's worst case (`BudgetGuard.reserve`),
    #: settled when the event is priced; None when nothing was reserved.
    reservation: Token | None


def no_attribution() -> dict[str, Any]:
    """The attribution of a call outside any scope."""
    return {"project": None, "job_id": None, "user_id": None, "function": None, "tags": {}}


def call_fields(call: RecordedCall) -> dict[str, Any]:
    """`Tracker.record_usage` keywords of a recorded call."""
    return {"provider": call.provider, "model": call.model, "usage": call.usage,
            "requested_model": call.requested_model, "operation": call.operation,
            "latency_ms": call.latency_ms, "ttfb_ms": call.ttfb_ms, "stream": call.stream,
            "status": call.status, "error_type": call.error_type, "estimated": call.estimated,
            **call.extra}


def wire_event(
    catalogue: Catalogue,
    default_project: str | None,
    environment: str | None,
    when: datetime,
    attrs: dict[str, Any],
    *,
    provider: str,
    model: str,
    usage: Usage | Any,
    requested_model: str | None = None,
    operation: str = "chat.completions",
    latency_ms: float | None = None,
    ttfb_ms: float | None = None,
    stream: bool = False,
    status: str = "ok",
    error_type: str | None = None,
    estimated: bool = False,
    service_tier: str | None = None,
    region: str | None = None,
    cost: Mapping[str, Any] | None = None,
    provider_cost: Decimal | None = None,
) -> tuple[dict[str, Any], Decimal, bool]:
    """The priced wire event of one call, its total and whether it was priced.

    Built directly as a wire dict (money as `Decimal` and the time as `datetime` until the
    worker encodes them, see `llmlab._json`).
    """
    if not isinstance(usage, Usage):  # a provider's usage object, normalised only now
        usage = Usage.from_any(usage, provider)
    project = attrs["project"] or default_project
    if cost is not None:
        wire_cost = EventCost.model_validate(cost)
        total, priced, cost_dict = wire_cost.total, wire_cost.priced, wire_cost.model_dump(
            mode="json")
        if not wire_cost.tools:  # a field older servers do not know: sent only when set
            cost_dict.pop("tools", None)
    else:
        breakdown = catalogue.cost(model, usage, provider, at=when, service_tier=service_tier,
                                   region=region, project=project)
        if not breakdown.priced and requested_model and requested_model != model:
            breakdown = catalogue.cost(requested_model, usage, provider, at=when,
                                       service_tier=service_tier, region=region,
                                       project=project)
        total, priced = breakdown.total, breakdown.priced
        # Decimals stay Decimals here (the worker's encoder writes them as wire strings),
        # and zero components are left out (the wire format defaults them to "0").
        cost_dict = {"total": total, "currency": "USD", "priced": priced,
                     "pricing_version": breakdown.pricing_version}
        for name in ("input", "cache_read", "cache_write", "output", "reasoning", "tools"):
            amount = getattr(breakdown, name)
            if amount:
                cost_dict[name] = amount
    wire: dict[str, Any] = {
        "schema_version": 1, "id": new_event_id(), "timestamp": when, "provider": provider,
        "model": model, "operation": operation, "usage": usage.to_sparse_dict(),
        "cost": cost_dict, "stream": stream, "status": status, "tags": attrs["tags"],
        "sdk": _SDK,
    }
    # Fields that are None or False are left out: the schema defaults them, and every key
    # not sent is one the worker does not encode.
    for key, value in (("requested_model", requested_model), ("latency_ms", latency_ms),
                       ("ttfb_ms", ttfb_ms), ("estimated", estimated),
                       ("error_type", error_type), ("service_tier", service_tier),
                       ("project", project), ("job_id", attrs["job_id"]),
                       ("user_id", attrs["user_id"]), ("function", attrs["function"]),
                       ("environment", environment), ("provider_cost", provider_cost)):
        if value:
            wire[key] = value
    return wire, total, priced
