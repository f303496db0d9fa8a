"""The functions `llmlab/__init__.py` exports: each delegates to the process-wide tracker."""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from llmlab import integrations
from llmlab._env import env_bool
from llmlab._scope import Scope, _checked_tags
from llmlab._tracker import (
    NonRecordingTracker,
    Options,
    Tracker,
    capture_internal_exceptions,
    get_tracker,
    set_tracker,
)
from llmlab.errors import ConfigurationError
from llmlab.pricing import Catalogue
from llmlab.schema import CostEvent
from llmlab.transport import Transport
from llmlab.usage import Usage

__all__ = ["flush", "init", "instrument", "record", "shutdown", "stats", "uninstrument", "wrap"]

logger = logging.getLogger("llmlab")
_ATEXIT_REGISTERED = False


def init(
    api_key: str | None = None,
    base_url: str | None = None,
    project: str | None = None,
    *,
    environment: str | None = None,
    on_event: Callable[[CostEvent], None] | Iterable[Callable[[CostEvent], None]] | None = None,
    on_scope: Callable[[Scope], None] | Iterable[Callable[[Scope], None]] | None = None,
    transport: Transport | None = None,
    auto_instrument: bool | Iterable[str] = True,
    ledger: bool = True,
    serverless: bool = False,
    openai_stream_usage: bool = True,
    home: str | Path | None = None,
    catalogue: Catalogue | None = None,
    budgets: bool = True,
    on_budget_alert: Callable[[Any], None] | None = None,
    budget_refresh_interval: float = 15.0,
    pricing_sync: bool | None = None,
    **worker_options: Any,
) -> None:
    """Start tracking: price every instrumented call and ship its event.

    Arguments fall back to ``LLMLAB_API_KEY``, ``LLMLAB_BASE_URL``, ``LLMLAB_PROJECT`` and
    ``LLMLAB_ENVIRONMENT``. With no server configured, events go to ``on_event`` callbacks and
    the local ledger (``~/.llmlab/ledger/``), so llmlab is useful offline. ``auto_instrument``
    patches every installed provider SDK (or the named ones). ``serverless=True`` flushes when
    each outermost scope ends (AWS Lambda, Cloud Run jobs). With a server, ``budgets=True``
    enforces the project's ``block`` budgets before each call (from a status refreshed in the
    background) and calls ``on_budget_alert`` for ``alert`` budgets. With a server,
    ``pricing_sync`` (default ``$LLMLAB_PRICING_SYNC``, on) prices with the server's catalogue,
    pulled in the background (docs/pricing.md). Calling `init` again
    replaces the previous configuration.

    >>> import llmlab
    >>> llmlab.init(project="support-bot", auto_instrument=False, ledger=False)
    >>> llmlab.shutdown()
    """
    global _ATEXIT_REGISTERED
    api_key = api_key or os.environ.get("LLMLAB_API_KEY") or None
    base_url = base_url or os.environ.get("LLMLAB_BASE_URL") or None
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, got {base_url!r}")
    if base_url and not api_key and transport is None:
        raise ConfigurationError("a base_url needs an api_key (or LLMLAB_API_KEY)")
    sync_prices = env_bool("LLMLAB_PRICING_SYNC", True) if pricing_sync is None else pricing_sync
    options = Options(
        api_key=api_key, base_url=base_url.rstrip("/") if base_url else None,
        project=project or os.environ.get("LLMLAB_PROJECT") or None,
        environment=environment or os.environ.get("LLMLAB_ENVIRONMENT") or None,
        on_event=_callbacks(on_event), on_scope=_callbacks(on_scope), transport=transport,
        ledger=ledger, serverless=serverless, openai_stream_usage=openai_stream_usage,
        catalogue=catalogue, budgets=budgets, on_budget_alert=on_budget_alert,
        budget_refresh_interval=budget_refresh_interval,
        worker_options=dict(worker_options),
    )
    if home is not None:
        options.home = Path(home)
    tracker = Tracker(options)
    previous = set_tracker(tracker)
    _stop_pricing_sync(previous)
    previous.shutdown()
    if sync_prices:
        _start_pricing_sync(tracker, options)
    if auto_instrument:
        names = () if auto_instrument is True else tuple(auto_instrument)
        integrations.instrument(*names)
    if not _ATEXIT_REGISTERED:
        atexit.register(_flush_at_exit)
        _ATEXIT_REGISTERED = True


def _start_pricing_sync(tracker: Tracker, options: Options) -> None:
    """Price with the server's catalogue, pulled off-thread (`llmlab.pricing._sync`)."""
    if not (options.api_key and options.base_url) or options.catalogue is not None:
        return
    from llmlab.pricing._sync import PricingSync

    def use(catalogue: Catalogue) -> None:
        tracker.catalogue = catalogue

    tracker.pricing_sync = PricingSync(options.base_url, options.api_key,  # type: ignore[attr-defined]
                                       options.home, use)
    tracker.pricing_sync.start()  # type: ignore[attr-defined]


def _stop_pricing_sync(tracker: Any) -> None:
    sync = getattr(tracker, "pricing_sync", None)
    if sync is not None:
        sync.stop()


def _callbacks(value: Any) -> list[Any]:
    if value is None:
        return []
    if callable(value):
        return [value]
    return list(value)


def _flush_at_exit() -> None:
    with capture_internal_exceptions():
        get_tracker().shutdown()


def instrument(*names: str) -> list[str]:
    """Patch every installed supported provider SDK (or the named ones); idempotent.

    Names: ``openai``, ``anthropic``, ``google_genai``, ``google_generativeai``.
    Returns the integrations now active.
    """
    return integrations.instrument(*names)


def uninstrument(*names: str) -> None:
    """Remove llmlab's patches (from every library, or the named ones)."""
    integrations.uninstrument(*names)


def wrap(client: Any) -> Any:
    """Instrument one provider client instance and return it (no global patching).

    >>> import llmlab, openai  # doctest: +SKIP
    >>> client = llmlab.wrap(openai.OpenAI())  # doctest: +SKIP
    """
    return integrations.wrap_client(client)


def record(
    provider: str,
    model: str,
    usage: Any = None,
    *,
    cost: Mapping[str, Any] | None = None,
    operation: str = "manual",
    project: str | None = None,
    job: str | None = None,
    user: str | None = None,
    tags: Mapping[str, str] | None = None,
    latency_ms: float | None = None,
    status: str = "ok",
    timestamp: datetime | None = None,
) -> CostEvent | None:
    """Record a call made with a client llmlab does not wrap; returns the event.

    ``usage`` is any provider's usage object or dict (or `llmlab.usage.Usage`); ``cost``
    overrides the catalogue's price (a wire cost dict with decimal strings). Attribution
    comes from the enclosing scope, overridden by the arguments. Bad usage, a bad cost or
    bad attribution raise ``ValueError`` (this is your call, not a provider's). Before
    `init()` it returns None.

    >>> import llmlab
    >>> llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 5})
    """
    tracker = get_tracker()
    if not tracker.active:
        return None
    normalised = Usage() if usage is None else Usage.from_any(usage, provider)
    attribution = {"project": project, "job_id": job, "user_id": user,
                   "tags": _checked_tags(tags)}
    wire = tracker.record_usage(provider=provider, model=model, usage=normalised,
                                operation=operation, latency_ms=latency_ms, status=status,
                                timestamp=timestamp, cost=cost, attribution=attribution,
                                validate=True)  # a bad event raises before it is counted
    return CostEvent.model_validate(wire) if wire is not None else None


def flush(timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` seconds (default 5) for queued events to be delivered, and for
    what earlier processes left in the disk spool (the start-up replay).

    Returns True when every event queued before the call was settled in time, the start-up
    replay is over, and nothing went wrong since the previous ``flush()`` returned (or since
    `init`). False when the deadline passed, the spool could not be delivered (the server is
    down), or since then an event was spooled, dropped, or rejected for a reason the app must
    fix (``project=`` not the API key's project; a revoked key or one without the ``ingest``
    scope): the reason and its fix are logged once, `stats` counts it. Events the server finds
    invalid are counted as ``rejected`` without making it False. Call it before a process
    ends (a CLI, a cron job, Celery's ``os._exit``, a Lambda handler returning).
    """
    return get_tracker().flush(timeout)


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop; llmlab is a no-op again until the next `init()`."""
    previous = set_tracker(NonRecordingTracker())
    _stop_pricing_sync(previous)
    previous.shutdown(timeout)


def stats() -> dict[str, int]:
    """Delivery counters: queued, sent, duplicates, retried, spooled, replayed, rejected,
    refused, dropped, the spool's size, and one ``rejected_<code>`` or ``refused_<code>`` per
    reason the server gave (``rejected_project_mismatch``, ``refused_invalid_api_key``…)."""
    return get_tracker().stats()
