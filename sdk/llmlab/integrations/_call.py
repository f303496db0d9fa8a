"""`Call`: one provider call while it runs, then the record the tracker builds its event from."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmlab._estimate import estimate_prompt_tokens, tokens_for_chars
from llmlab._internal import log_internal_error
from llmlab._tracker import NonRecordingTracker
from llmlab.usage import Usage

if TYPE_CHECKING:
    from llmlab._budget_routes import Token

__all__ = ["RELEASED", "Call", "UsageSource"]

_perf_counter = time.perf_counter
#: What a finished call's ``kwargs`` become: a large request is not kept alive by a record.
RELEASED: dict[str, Any] = {}

#: A call's usage: a `Usage`, or the provider's own usage object, which `Usage.from_any`
#: normalises when the event is built (on the worker thread when the call is deferred).
UsageSource = Usage | Any


class Call:
    """One provider call: its timing and identity while it runs, then its record.

    `finish` fills in the outcome and hands the call itself to the tracker (once), which
    builds its event from these fields, now or later on the worker thread.
    """

    __slots__ = ("_done", "error_type", "estimated", "extra", "kwargs", "latency_ms", "model",
                 "operation", "provider", "region", "requested_model", "reservation", "started",
                 "status", "stream", "tracker", "ttfb_ms", "usage", "when")

    def __init__(self, tracker: NonRecordingTracker, provider: str, requested_model: str | None,
                 operation: str, kwargs: dict[str, Any], started: float | None = None,
                 reservation: Token | None = None) -> None:
        self.tracker = tracker
        #: The budget guard's reservation of the call's worst case, settled by its event.
        self.reservation = reservation
        self.provider = provider
        self.requested_model = requested_model
        self.operation = operation
        self.kwargs = kwargs
        self.started = _perf_counter() if started is None else started
        self.ttfb_ms: float | None = None
        #: The region the client bills in (`CallSpec.region`), added to the record's extra.
        self.region: str | None = None
        self._done = False

    def elapsed_ms(self) -> float:
        """Milliseconds since the call started (microsecond resolution)."""
        return int((_perf_counter() - self.started) * 1_000_000) / 1000

    def mark_first_chunk(self) -> None:
        """Remember the time to the first streamed chunk."""
        if self.ttfb_ms is None:
            self.ttfb_ms = self.elapsed_ms()

    def finish(self, model: str | None, usage: UsageSource | None, *,
               stream: bool = False, estimated_output_chars: int = 0, status: str = "ok",
               error_type: str | None = None, **extra: Any) -> None:
        """Record the call (once; later calls are ignored).

        ``usage`` may be the provider's own usage object, normalised later (on the worker
        thread when nothing needs the priced event now).
        """
        if self._done:
            return
        self._done = True
        try:
            self._set_outcome(model, usage, stream, estimated_output_chars, status, error_type,
                              extra, _perf_counter(), time.time())
            self.tracker.record_call(self)
        except Exception:
            log_internal_error()
            self.keep_reservation()

    def keep_reservation(self) -> None:
        """Keep the call's budget reservation as spend: its event could not be built, so
        its real cost is unknown (a no-op once its event settled it)."""
        guard = getattr(self.tracker, "budget_guard", None)
        if self.reservation is not None and guard is not None:
            try:
                guard.keep(self.reservation)
            except Exception:
                log_internal_error()

    def _set_outcome(self, model: str | None, usage: UsageSource | None, stream: bool,
                     estimated_output_chars: int, status: str, error_type: str | None,
                     extra: dict[str, Any], ended: float, when: float) -> None:
        """Fill in the record's outcome fields (``ended``: `perf_counter` time; ``when``:
        wall-clock time) and release the request."""
        self.latency_ms = int((ended - self.started) * 1_000_000) / 1000
        self.when = when
        self.estimated = False
        if usage is None:
            usage = self._estimate(estimated_output_chars) if status != "error" else Usage()
            self.estimated = status != "error"
        self.model = model or self.requested_model or "unknown"
        self.usage = usage
        self.stream = stream
        self.status = status
        self.error_type = error_type
        self.extra = extra if self.region is None else {**extra, "region": self.region}
        self.kwargs = RELEASED  # a large request is not kept alive by a queued record

    def fail(self, exc: BaseException, *, stream: bool = False) -> None:
        """Record a failed call (no usage was billed that we can see)."""
        self.finish(None, None, stream=stream, status="error", error_type=type(exc).__name__)

    def _estimate(self, output_chars: int) -> Usage:
        return Usage(input_tokens=estimate_prompt_tokens(self.kwargs),
                     output_tokens=tokens_for_chars(output_chars))
