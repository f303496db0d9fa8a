"""Sending one batch until every event in it is settled: retries, splits and refusals.

Each attempt goes through the `Transport` (one request, never raising). Per-event results
settle events as they come (`Results.settle`); what is left is resent:

- transient failures (connection errors, timeouts, 408/425/429/5xx) are retried with
  tenacity: exponential backoff with jitter, honouring ``Retry-After`` (a wait over
  `MAX_RETRY_AFTER` counts as "down": the batch is given up at once), at most
  ``max_retries`` times, one attempt only for a probe during an outage;
- a batch refused as a whole for its size or content (413, 400/422) is resent in halves,
  which isolates the one event the server will never take (then rejected);
- an event an older server rejects only for wire fields added since its release is sent
  again without them (`llmlab._wire_compat`), once;
- a refusal of the configuration (401/403/404, a redirect…) ends the delivery at once: the
  events go back to the caller, which spools them, with the reason for the logs' advice.

During shutdown no attempt starts, and no backoff sleeps, past the drain deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from llmlab._event_items import Item
from llmlab._rejections import reason_of
from llmlab._results import Results
from llmlab._wire_compat import downgraded
from llmlab.transport import EventResult, SendResult, Transport

__all__ = ["MAX_RETRY_AFTER", "SHUTTING_DOWN", "Delivery", "Sender"]

logger = logging.getLogger("llmlab")

#: A server asking for more than this is treated as "down": the batch is spooled instead.
MAX_RETRY_AFTER = 120.0
#: Why events are left when shutdown's drain deadline stopped their delivery.
SHUTTING_DOWN = "shutting down"


@dataclass
class Delivery:
    """What is left of a batch after `Sender.deliver`."""

    #: Events not settled: the caller spools them (or keeps them in memory).
    left: list[Item]
    #: Why they are left, for the logs ("" when nothing is).
    why: str = ""
    #: The reason (error code) when the server refused the configuration, else None.
    refusal: str | None = None


def _exponential_jitter(first: float, most: float) -> tenacity.wait_exponential_jitter:
    """tenacity's exponential backoff with jitter: ``first``, doubling, up to ``most``.

    tenacity 9.2 renamed ``initial`` to ``multiplier`` (the old name warns); 8.2 to 9.1
    know only ``initial``.
    """
    try:
        return tenacity.wait_exponential_jitter(  # type: ignore[call-arg,unused-ignore]
            multiplier=first, max=most, jitter=first)
    except TypeError:
        return tenacity.wait_exponential_jitter(initial=first, max=most, jitter=first)


class Sender:
    """Delivers batches through a transport with the retry policy above."""

    def __init__(self, transport: Transport, results: Results, cond: threading.Condition,
                 drain_deadline: Callable[[], float | None], *, max_retries: int,
                 backoff_initial: float, backoff_max: float) -> None:
        """``drain_deadline()`` is None until shutdown starts, then the time (monotonic) by
        which sending must stop; ``cond`` is notified when it is set (it wakes backoffs)."""
        self.transport = transport
        self._results = results
        self._cond = cond
        self._drain_deadline = drain_deadline
        self.max_retries = max_retries
        self._backoff = _exponential_jitter(backoff_initial, backoff_max)
        #: When the current wait on the server (a request, a backoff) began (monotonic); 0.0
        #: while not waiting. The caller's side reads it: pausing the app cannot help then.
        self.waiting_since = 0.0

    def deliver(self, items: list[Item], *, live: bool, probe: bool) -> Delivery:
        """Send until every item is settled, or the rest cannot be for now."""
        work = [items]
        while work:
            pending, outcome = self._send_with_retries(work.pop(0), live=live, probe=probe)
            if not pending:
                continue
            if outcome.split and len(pending) > 1:
                # Halving isolates the event that makes a batch too big or unacceptable.
                middle = len(pending) // 2
                work[0:0] = [pending[:middle], pending[middle:]]
                continue
            if outcome.split:
                self._results.settle([(pending[0].id, EventResult(
                    "rejected", outcome.error or "refused by the server",
                    reason_of(outcome.code, outcome.status_code)))], live)
                continue
            rest = pending + [i for part in work for i in part]
            if outcome.hold:
                return Delivery(rest, f"refused: {outcome.error}", self._results.refused(outcome))
            return Delivery(rest, outcome.error or "delivery failed")
        return Delivery([])

    def _send_with_retries(self, part: list[Item], *, live: bool,
                           probe: bool) -> tuple[list[Item], SendResult]:
        """One batch through tenacity; returns the still-unsettled events and the last result."""
        pending = part

        def attempt() -> SendResult:
            result, downgraded_some = send_once()
            if downgraded_some:  # an older server: resent at once without its unknown fields
                result, _ = send_once()
            if pending and result.ok:
                result.retry = True  # a 2xx that left events unsettled: send those again
            return result

        def send_once() -> tuple[SendResult, bool]:
            """One request; (its result, whether events were downgraded to send again)."""
            nonlocal pending
            deadline = self._drain_deadline()
            if deadline is not None and time.monotonic() >= deadline:
                return SendResult(retry=True, error=SHUTTING_DOWN), False
            self.waiting_since = time.monotonic()
            try:
                result = self.transport.send_encoded([i.event for i in pending],
                                                     [i.line for i in pending])
            except Exception as exc:  # a custom transport broke its no-raise contract
                logger.debug("llmlab: transport raised", exc_info=True)
                result = SendResult(retry=True, error=f"{type(exc).__name__}: {exc}")
            finally:
                self.waiting_since = 0.0
            older: dict[str, Item] = {}
            if result.results:
                settled: list[tuple[str, EventResult]] = []
                seen: set[str] = set()
                for item in pending:
                    outcome = result.results.get(item.id)
                    if outcome is None:
                        continue
                    again = downgraded(item, outcome)  # an older server: sent again without
                    if again is not None:              # the fields it does not know
                        older[item.id] = again
                        continue
                    if item.id in seen and outcome.status == "accepted":
                        outcome = EventResult("duplicate")  # one id twice in a batch: stored once
                    seen.add(item.id)
                    settled.append((item.id, outcome))
                self._results.settle(settled, live)
                pending = [older.get(i.id, i) for i in pending
                           if i.id not in result.results or i.id in older]
            return result, bool(older)

        def should_retry(result: SendResult) -> bool:
            return bool(result.retry and pending)

        attempts = 1 if probe else self.max_retries + 1

        def should_stop(state: tenacity.RetryCallState) -> bool:
            return state.attempt_number >= attempts or self._stop_retrying(state)

        retrying = tenacity.Retrying(
            stop=should_stop,
            wait=self._wait,
            retry=tenacity.retry_if_result(should_retry),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            retry_error_callback=_last_result,
        )
        outcome: SendResult = retrying(attempt)
        return pending, outcome

    def _stop_retrying(self, state: tenacity.RetryCallState) -> bool:
        result = _result_of(state)
        if result is not None and result.retry_after is not None \
                and result.retry_after > MAX_RETRY_AFTER:
            return True
        deadline = self._drain_deadline()
        if deadline is not None:
            return time.monotonic() + state.upcoming_sleep >= deadline
        return False

    def _wait(self, state: tenacity.RetryCallState) -> float:
        result = _result_of(state)
        if result is not None and result.retry_after is not None:
            return min(result.retry_after, MAX_RETRY_AFTER)
        return float(self._backoff(state))

    def _sleep(self, seconds: float) -> None:
        """Back off, but wake up for shutdown."""
        self.waiting_since = time.monotonic()
        end = self.waiting_since + seconds
        try:
            with self._cond:
                while self._drain_deadline() is None:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(remaining)
        finally:
            self.waiting_since = 0.0

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        self._results.count("retried")
        result = _result_of(state)
        logger.debug("llmlab: retrying a batch in %.2fs: %s", state.upcoming_sleep,
                     result.error if result else "error")


def _result_of(state: tenacity.RetryCallState) -> SendResult | None:
    if state.outcome is None or state.outcome.failed:
        return None
    result: SendResult = state.outcome.result()
    return result


def _last_result(state: tenacity.RetryCallState) -> SendResult:
    """Retries exhausted: hand back the last attempt's result instead of raising."""
    if state.outcome is None or state.outcome.failed:
        return SendResult(retry=True, error="delivery failed")
    result: SendResult = state.outcome.result()
    return result
