"""The process-wide tracker: turns calls into priced events and hands them to the worker.

Before `llmlab.init()` the tracker is a `NonRecordingTracker`, so every public function is a
silent no-op. Code that runs inside a provider call goes through
`capture_internal_exceptions()`: llmlab's own failures are logged on the ``llmlab`` logger and
swallowed, never raised into the host app.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmlab import _consts
from llmlab._event_wire import RecordedCall, call_fields, no_attribution, wire_event
from llmlab._internal import (
    INTERNAL_ERROR,
    capture_internal_exceptions,
    log_internal_error,
    run_callback,
)
from llmlab._paths import home_dir
from llmlab._scope import _CURRENT as _CURRENT_SCOPE
from llmlab._scope import Scope, add_to_scopes, current_scope
from llmlab.pricing import Catalogue
from llmlab.schema import CostEvent
from llmlab.transport import Transport
from llmlab.usage import Usage

if TYPE_CHECKING:
    from llmlab._budget_routes import Token

__all__ = ["INTERNAL_ERROR", "NonRecordingTracker", "Options", "RecordedCall", "Tracker",
           "capture_internal_exceptions", "get_tracker", "log_internal_error", "set_tracker"]

logger = logging.getLogger("llmlab")


@dataclass
class Options:
    """Everything `llmlab.init()` accepts, resolved."""

    api_key: str | None = None
    base_url: str | None = None
    project: str | None = None
    environment: str | None = None
    on_event: list[Callable[[CostEvent], None]] = field(default_factory=list)
    on_scope: list[Callable[[Scope], None]] = field(default_factory=list)
    transport: Transport | None = None
    ledger: bool = True
    serverless: bool = False
    openai_stream_usage: bool = True
    flush_timeout: float = _consts.DEFAULT_FLUSH_TIMEOUT
    home: Path = field(default_factory=home_dir)
    catalogue: Catalogue | None = None
    budgets: bool = True
    on_budget_alert: Callable[[Any], None] | None = None
    budget_refresh_interval: float = 15.0
    #: `Worker` settings: queue_size, batch_size, batch_bytes, flush_interval, max_retries, …
    worker_options: dict[str, Any] = field(default_factory=dict)


class NonRecordingTracker:
    """The tracker before `init()`: records nothing, costs nothing."""

    active = False
    options = Options()
    #: Server budgets checked before each call (`BudgetGuard`), when there are any.
    budget_guard: Any = None
    #: The delivery `Worker` events are queued to, when there is one.
    worker: Any = None
    #: The pricing `Catalogue` (the active tracker's).
    catalogue: Any = None

    def record_usage(self, **_: Any) -> dict[str, Any] | None:
        """Do nothing (llmlab is not initialised)."""
        return None

    def record_call(self, call: RecordedCall) -> None:
        """Do nothing (llmlab is not initialised)."""

    def defers_pricing(self) -> bool:
        """Nothing is priced (llmlab is not initialised)."""
        return False

    def build_deferred(self, call: RecordedCall) -> dict[str, Any] | None:
        """Nothing to build (llmlab is not initialised)."""
        return None

    def capture(self, wire: dict[str, Any]) -> None:
        """Do nothing (llmlab is not initialised)."""

    def check_budget(self, provider: str, model: str,
                     estimate: Callable[[], Decimal]) -> int | None:
        """Scopes with max_cost still apply before init() (nothing is reserved)."""
        scope = current_scope()
        if scope is not None and _has_max_cost(scope):
            scope.check(estimate())
        return None

    def scope_finished(self, scope: Scope, failed: bool) -> None:
        """Do nothing (llmlab is not initialised)."""

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing to flush."""
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Nothing to shut down."""

    def stats(self) -> dict[str, int]:
        """All zeros."""
        return {"queued": 0, "sent": 0, "retried": 0, "spooled": 0, "rejected": 0, "refused": 0,
                "dropped": 0}


def _has_max_cost(scope: Scope | None) -> bool:
    while scope is not None:
        if scope.max_cost is not None:
            return True
        scope = scope.parent
    return False


class Tracker(NonRecordingTracker):
    """The active tracker made by `llmlab.init()`."""

    active = True

    def __init__(self, options: Options) -> None:
        self.options = options
        self.catalogue = options.catalogue or Catalogue.default()
        self.worker = self._make_worker(options)
        self.budget_guard = self._make_guard(options)
        self._pid = os.getpid()

    @staticmethod
    def _make_guard(options: Options) -> Any:
        if not (options.budgets and options.api_key and options.base_url):
            return None
        from llmlab._budgets import BudgetGuard
        from llmlab.client import Client

        client = Client(options.api_key, options.base_url, timeout=5.0)

        def fetch() -> list[Mapping[str, Any]]:
            return client.budget_status(project=options.project)

        guard = BudgetGuard(fetch, refresh_interval=options.budget_refresh_interval,
                            on_alert=options.on_budget_alert, project=options.project)
        guard.start()
        return guard

    @staticmethod
    def _make_worker(options: Options) -> Any:
        from llmlab._spool import Spool
        from llmlab._spool_dirs import spool_directory
        from llmlab._worker import Worker

        own = Spool(spool_directory(options.home, options.project, options.api_key))
        own.legacy_root = options.home / "spool"  # an earlier version's files: adopted
        spool: Spool | None = own
        if options.transport is not None:
            transport = options.transport
        elif options.api_key and options.base_url:
            from llmlab.transport import HTTPTransport

            transport = HTTPTransport(options.base_url, options.api_key)
        elif options.ledger:
            from llmlab._ledger import LedgerTransport

            # The ledger is the local disk already; the spool is kept for a server, so
            # events spooled for one are never replayed into the ledger instead.
            transport, spool = LedgerTransport(options.home / "ledger"), None
        else:
            return None
        return Worker(transport, spool=spool, **options.worker_options)

    # -- the per-call path (hot) -------------------------------------------------------------

    def defers_pricing(self) -> bool:
        """Whether a call finishing now may be priced on the worker: nothing on the calling
        thread needs its price (no enclosing scope, no ``on_event`` callback). Budgets do
        not need it: the call's worst case was reserved at its check, and the worker settles
        the reservation when it prices the event (`BudgetGuard.reserve`)."""
        return _CURRENT_SCOPE.get() is None and not self.options.on_event

    def record_call(self, call: RecordedCall) -> None:
        """Record one finished provider call.

        When `defers_pricing`, the call goes to the worker as it is and is priced and built
        there (`build_deferred`): the caller pays for a queue append, not for reading usage,
        pricing and building the event.
        """
        if self.defers_pricing():
            if self.worker is not None:
                self.worker.submit((_build_deferred, self, call))
            return
        self.record_usage(timestamp=datetime.fromtimestamp(call.when, UTC),
                          reservation=call.reservation, **call_fields(call))

    def record_usage(  # type: ignore[override]
        self,
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
        provider_cost: Decimal | None = None,
        timestamp: datetime | None = None,
        cost: Mapping[str, Any] | None = None,
        attribution: Mapping[str, Any] | None = None,
        validate: bool = False,
        reservation: Token | None = None,
    ) -> dict[str, Any]:
        """Price one call and capture its event now; returns the event's wire dict.

        The event is built directly as a wire dict (money as `Decimal` and the time as
        `datetime` until the worker encodes them, see `llmlab._json`); a `CostEvent` model is
        made only for those who ask for one (``on_event`` callbacks, ``Scope.events``).
        With ``validate`` (caller-made values, `llmlab.record`) it is checked against the
        wire schema first: an invalid event raises ``ValueError`` and is not captured.
        ``reservation``: the budget guard's reservation for the call (`check_budget`),
        settled here.
        """
        when = timestamp or datetime.now(UTC)
        scope = current_scope()
        attrs = scope.attribution() if scope is not None else no_attribution()
        if attribution:
            for key, value in attribution.items():
                if key == "tags":
                    attrs["tags"] = {**attrs["tags"], **value}
                elif value is not None:
                    attrs[key] = value
        wire, total, priced = wire_event(
            self.catalogue, self.options.project, self.options.environment,
            when, attrs, provider=provider, model=model, usage=usage,
            requested_model=requested_model, operation=operation, latency_ms=latency_ms,
            ttfb_ms=ttfb_ms, stream=stream, status=status, error_type=error_type,
            estimated=estimated, service_tier=service_tier, region=region, cost=cost,
            provider_cost=provider_cost)
        if validate:
            CostEvent.model_validate(wire)
        # Counted before it is queued: its acknowledgement must find it in the guard.
        self._count_for_budgets(wire, attrs, total, reservation)
        self.capture(wire, total, priced)
        return wire

    def build_deferred(self, call: RecordedCall) -> dict[str, Any] | None:
        """The wire event of a call `record_call` deferred (runs on the worker thread), and
        the settlement of its budget reservation; None when it could not be built (logged
        as an internal error; the reservation is then kept as spend)."""
        reservation = call.reservation
        with capture_internal_exceptions():
            attrs = no_attribution()
            wire, total, _ = wire_event(self.catalogue, self.options.project,
                                        self.options.environment,
                                        datetime.fromtimestamp(call.when, UTC), attrs,
                                        **call_fields(call))
            self._count_for_budgets(wire, attrs, total, reservation)
            return wire
        if reservation is not None and self.budget_guard is not None:
            self.budget_guard.keep(reservation)
        return None

    def _count_for_budgets(self, wire: dict[str, Any], attrs: Mapping[str, Any],
                           total: Decimal, reservation: Token | None = None) -> None:
        if self.budget_guard is not None:
            tags = attrs["tags"]
            self.budget_guard.record_attributed(
                (wire.get("project"), attrs["job_id"], attrs["user_id"], wire["model"],
                 tuple(tags.items()) if tags else ()), total, wire["id"], reservation)

    def capture(self, wire: dict[str, Any], total: Decimal = Decimal(0),
                priced: bool = True) -> None:
        """Count an event in its scopes, tell the callbacks, queue it for delivery."""
        add_to_scopes(wire, total, priced)
        if self.options.on_event:
            event = CostEvent.model_validate(wire)
            for callback in self.options.on_event:
                run_callback(callback, event)
        if self.worker is not None:
            self.worker.submit(wire)

    def enforces_budgets(self) -> bool:
        """Whether the server has budgets this process checks calls against."""
        return self.budget_guard is not None and self.budget_guard.has_budgets()

    def check_budget(self, provider: str, model: str,
                     estimate: Callable[[], Decimal]) -> int | None:
        """Raise `BudgetExceededError` if the call's worst case would break a limit; else
        reserve it in the block budgets covering the call and return the reservation (None:
        nothing reserved), which the call's event settles when it is priced."""
        scope = _CURRENT_SCOPE.get()
        if scope is not None and _has_max_cost(scope):
            scope.check(estimate())
        guard = self.budget_guard
        if guard is None:
            return None
        if scope is None:  # the common case, per call: no job, user or tags to match
            return guard.reserve(  # type: ignore[no-any-return]
                (self.options.project, None, None, model, ()), estimate)
        attrs = scope.attribution()
        tags = attrs["tags"]
        return guard.reserve(  # type: ignore[no-any-return]
            (attrs["project"] or self.options.project, attrs["job_id"], attrs["user_id"],
             model, tuple(tags.items()) if tags else ()), estimate)

    def scope_finished(self, scope: Scope, failed: bool) -> None:
        """Log the scope's job summary, tell the callbacks, flush in serverless mode."""
        if scope.calls:
            logger.info("llmlab: %s%s", scope.summary(), " (failed)" if failed else "")
        for callback in self.options.on_scope:
            run_callback(callback, scope)
        if self.options.serverless and scope.parent is None:
            self.flush(self.options.flush_timeout)

    # -- delivery ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds until every queued event is settled; see
        `llmlab.flush` for when it returns False."""
        if self.worker is None:
            return True
        return bool(self.worker.flush(self.options.flush_timeout if timeout is None else timeout))

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush, then stop the worker; later events are dropped until the next `init()`."""
        if self.budget_guard is not None:
            self.budget_guard.stop()
        if self.worker is not None:
            self.worker.shutdown(timeout)  # None: the worker's shutdown_timeout (2 s)

    def stats(self) -> dict[str, int]:
        """Delivery counters (see `llmlab.stats`)."""
        if self.worker is None:
            return super().stats()
        return dict(self.worker.stats())


def _build_deferred(record: tuple[Any, ...]) -> dict[str, Any] | None:
    """The worker's builder of a deferred ``(_build_deferred, tracker, call)`` record."""
    _, tracker, call = record
    return tracker.build_deferred(call)  # type: ignore[no-any-return]


_TRACKER: NonRecordingTracker = NonRecordingTracker()
_TRACKER_LOCK = threading.Lock()


def get_tracker() -> NonRecordingTracker:
    """The current tracker (a no-op one before `init()`)."""
    return _TRACKER


def set_tracker(tracker: NonRecordingTracker) -> NonRecordingTracker:
    """Install ``tracker``; returns the previous one (which the caller shuts down)."""
    global _TRACKER
    with _TRACKER_LOCK:
        previous, _TRACKER = _TRACKER, tracker
    return previous

