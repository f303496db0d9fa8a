"""Per-event outcomes: the delivery counters, the logs of refusals, and what `flush()` reports.

Every event that leaves the worker's memory ends here exactly once: delivered (``sent`` or
``duplicates``), ``rejected`` by the server (or unencodable), written to the spool, or
dropped. Rejections and refusals are counted per reason (``rejected_<code>``,
``refused_<code>``), and the ones the app must fix (`llmlab._rejections`) are logged once per
reason with the fix, however many events they hit.

*Trouble* is anything a `flush()` must report: an event spooled or dropped, or rejected for a
reason the app must fix. `flush()` returns False when there was trouble since the previous
flush returned (or since the worker started).

All state is guarded by the worker's condition (shared, so that flush waiters are woken by
the thread that settles events).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, Protocol
from weakref import WeakSet

from llmlab._rejections import APP_FIXABLE_EVENT_CODES, event_advice, reason_of, refusal_advice
from llmlab._spool import Spool
from llmlab.transport import EventResult, SendResult

__all__ = ["ACK_LISTENERS", "COUNTERS", "AckListener", "Results"]

logger = logging.getLogger("llmlab")

#: The counters every `stats()` has, per-reason ones aside.
COUNTERS = ("sent", "duplicates", "rejected", "refused", "dropped", "retried", "spooled",
            "replayed")
#: Invalid events logged at WARNING one by one before the rest go to DEBUG.
_LOUD_REJECTIONS = 20


class AckListener(Protocol):
    """Told the ids of events the server acknowledged; must not raise."""

    def acknowledged(self, event_ids: list[str]) -> None: ...


#: Told by every worker of the process, as each response is settled, which events the server
#: stored (or had stored): the budget guard (`llmlab._budgets`) stops counting their spend
#: once a status requested afterwards includes them. Module-wide so a forked child's rebuilt
#: `Results` still reach it.
ACK_LISTENERS: WeakSet[AckListener] = WeakSet()


class Results:
    """Counts final outcomes and tells `flush()` whether anything went wrong."""

    def __init__(self, cond: threading.Condition, spool: Spool | None) -> None:
        self._cond = cond
        self._spool = spool
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.by_reason: Counter[str] = Counter()  # "rejected_<code>", "refused_<code>"
        #: Live events (taken from the queue) that left memory: settled, spooled or dropped.
        self.settled = 0
        #: Live events spooled or dropped instead of delivered.
        self.lost = 0
        self._trouble = 0
        # Trouble when the last flush() returned; a forked child's spool keeps its count.
        self._flushed_at = self.trouble()
        self._loud_rejections = _LOUD_REJECTIONS
        self._advised: set[str] = set()  # reasons already logged with their fix

    # -- outcomes -------------------------------------------------------------------------------

    def settle(self, results: list[tuple[str, EventResult]], live: bool) -> None:
        """Count final per-event outcomes; rejected events are logged, never retried."""
        if not results:
            return
        counts = {"sent": 0, "duplicates": 0, "rejected": 0}
        reasons: Counter[str] = Counter()
        fixable = 0
        for event_id, result in results:
            if result.status == "accepted":
                counts["sent"] += 1
            elif result.status == "duplicate":
                counts["duplicates"] += 1  # already stored: as good as delivered
            else:
                counts["rejected"] += 1
                code = reason_of(result.code, None)
                reasons[f"rejected_{code}"] += 1
                fixable += code in APP_FIXABLE_EVENT_CODES
                self._log_rejection(event_id, code, result.reason or code)
        if ACK_LISTENERS:  # before flush() waiters wake: a flush that returned has told them
            acked = [event_id for event_id, result in results if result.status != "rejected"]
            for listener in list(ACK_LISTENERS):
                listener.acknowledged(acked)
        with self._cond:
            for key, value in counts.items():
                self.counts[key] += value
            self.by_reason.update(reasons)
            self._trouble += fixable
            if live:
                self.settled += len(results)
                self._cond.notify_all()

    def _log_rejection(self, event_id: str, code: str, reason: str) -> None:
        advice = event_advice(code, reason) if code in APP_FIXABLE_EVENT_CODES else None
        if advice is not None:
            if self._first(code):
                logger.warning("llmlab: the server rejected events (%s): %s. They are not "
                               "retried; stats()['rejected_%s'] counts them", code, advice, code)
            logger.debug("llmlab: event %s rejected: %s", event_id, reason)
            return
        self._loud_rejections -= 1
        log = logger.warning if self._loud_rejections >= 0 else logger.debug
        log("llmlab: event %s rejected, not retried: %s", event_id, reason)

    def reject_unencodable(self, event: Any, why: str, live: bool) -> None:
        """An event that can never be sent: counted as rejected (``rejected_unencodable``)."""
        event_id = event.get("id") if isinstance(event, dict) else None
        self.settle([(str(event_id), EventResult("rejected", f"invalid event: {why}",
                                                 "unencodable"))], live)

    def refused(self, outcome: SendResult) -> str:
        """The server refused a whole batch for its configuration: log the fix once per
        reason; returns the reason (`reason_of`)."""
        code = reason_of(outcome.code, outcome.status_code)
        if self._first(f"refused:{code}"):
            where = "the spool" if self._spool is not None else "memory"
            logger.error("llmlab: the server refused events (%s): %s. They are kept in %s and "
                         "delivered once this is fixed", outcome.error or code,
                         refusal_advice(outcome.status_code, outcome.code), where)
        return code

    def _first(self, reason: str) -> bool:
        """True the first time ``reason`` is seen by this worker."""
        with self._cond:
            if reason in self._advised:
                return False
            self._advised.add(reason)
            return True

    def spooled(self, count: int, written: int, live: bool, refusal: str | None) -> None:
        """``count`` events went to the spool (``written`` of them made it to disk)."""
        with self._cond:
            if written:
                self.counts["spooled"] += written
            else:
                self.counts["dropped"] += count
            if refusal is not None:
                self.counts["refused"] += count
                self.by_reason[f"refused_{refusal}"] += count
            self._lose(count, live)

    def dropped(self, count: int, live: bool) -> None:
        """``count`` events were dropped (logged by the caller)."""
        with self._cond:
            self.counts["dropped"] += count
            self._lose(count, live)

    def _lose(self, count: int, live: bool) -> None:
        self._trouble += count
        if live:
            self.settled += count
            self.lost += count
        self._cond.notify_all()

    def count(self, key: str, value: int = 1) -> None:
        """Add to a plain counter (``retried``, ``replayed``)."""
        with self._cond:
            self.counts[key] += value

    # -- what flush() and stats() read ------------------------------------------------------------

    def trouble(self) -> int:
        """Events spooled, dropped (the spool's cap included) or rejected for a reason the
        app must fix, so far."""
        return self._trouble + (self._spool.dropped if self._spool is not None else 0)

    def flush_mark(self) -> int:
        """The trouble count a flush starting now compares against (caller holds the lock)."""
        return self._flushed_at

    def flush_clean(self, mark: int) -> bool:
        """Whether there was no trouble since ``mark``; moves the mark for the next flush
        (caller holds the lock)."""
        now = self.trouble()
        self._flushed_at = max(self._flushed_at, now)
        return now == mark

    def stats(self) -> dict[str, int]:
        """The counters, per-reason ones included (caller holds the lock)."""
        out = dict(self.counts)
        out.update(self.by_reason)
        if self._spool is not None:
            out["dropped"] += self._spool.dropped
        return out
