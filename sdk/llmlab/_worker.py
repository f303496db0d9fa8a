"""The background worker: queue events, batch them, deliver them exactly once, spool the rest.

``submit()`` only appends to a bounded in-memory queue; it never blocks on the network or the
disk, and never raises. A daemon thread batches the queue (by count, bytes and time), hands each
batch to a `Transport`, retries transient failures with tenacity (exponential backoff with
jitter, honouring ``Retry-After``, a bounded number of attempts per batch), settles every event
by id (accepted or duplicate: delivered; rejected: logged and counted, never retried), and writes
what it cannot deliver to the disk `Spool`, which the next worker start (in any process)
replays. Event ids make every resend idempotent, so "at least once on the wire" is "exactly once
at the server".

When a batch exhausts its retries the worker enters *outage mode*: new batches go straight to the
spool (memory stays flat) and one probe attempt is made every ``backoff_max`` seconds; the first
success ends the outage and replays the spool.

Fork safety: an ``os.register_at_fork`` hook gives the child a fresh queue, lock, thread and HTTP
client; the parent's buffered events stay the parent's. Nothing here uses the caller's asyncio
loop. See ``docs/delivery.md`` for the guarantees and the settings.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import tenacity

from llmlab._json import dumps
from llmlab._spool import Spool, SpoolFile
from llmlab.transport import EventResult, SendResult, Transport

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "Worker",
]

logger = logging.getLogger("llmlab")

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_BYTES = 1_000_000
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 2.0
DEFAULT_REPLAY_INTERVAL = 30.0
#: A server asking for more than this is treated as "down": the batch is spooled instead.
MAX_RETRY_AFTER = 120.0
_IDLE_WAIT = 1.0
_STUCK_AFTER = 1.0
_LOUD_REJECTIONS = 20


@dataclass
class _Item:
    """One event, encoded once: the JSON line is both the size measure and the spool record."""

    id: str
    event: dict[str, Any]
    line: str


def _encode(event: Any) -> _Item | str:
    """The encoded event, or why it can never be sent.

    An event is a wire dict, or a *deferred event*: a tuple whose first item, called with the
    tuple, builds the wire dict here, on the worker thread, and returns None when it cannot
    (the tracker defers pricing calls this way: a tuple is the cheapest record to make on
    the calling thread).
    """
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
    return _Item(event_id, event, line)


class Worker:
    """Delivers events on a daemon thread; see the module docstring.

    >>> from llmlab.transport import InMemoryTransport
    >>> worker = Worker(InMemoryTransport(), atexit=False, handle_sigterm=False)
    >>> worker.submit({"id": "e1", "model": "gpt-4o"})
    True
    >>> worker.flush(timeout=5)
    True
    >>> worker.stats()["sent"]
    1
    >>> worker.shutdown()
    True
    """

    def __init__(
        self,
        transport: Transport,
        *,
        spool: Spool | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        replay_interval: float = DEFAULT_REPLAY_INTERVAL,
        atexit: bool = True,
        handle_sigterm: bool = True,
    ) -> None:
        self.transport = transport
        self.spool = spool
        self.queue_size = max(1, queue_size)
        self.batch_size = max(1, batch_size)
        self.batch_bytes = max(1024, batch_bytes)
        self.flush_interval = max(0.0, flush_interval)
        self.max_retries = max(0, max_retries)
        self.backoff_initial = max(0.0, backoff_initial)
        self.backoff_max = max(self.backoff_initial, backoff_max)
        self.shutdown_timeout = shutdown_timeout
        self.replay_interval = replay_interval
        self._backoff = tenacity.wait_exponential_jitter(
            initial=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial)
        # Spill the oldest queued events to disk while a batch is backing off, before the queue
        # is full, so a long outage costs disk, not memory and not dropped events.
        self._high_water = min(self.queue_size, max(self.batch_size, self.queue_size // 2))
        # submit() appends without the lock only while the queue stays below both thresholds.
        self._quiet_limit = min(self.batch_size, self._high_water) - 1
        self._closed = False
        self._atexit = atexit
        self._sigterm_previous: Any = None
        self._init_state()
        _workers.add(self)
        if handle_sigterm:
            self._install_sigterm()
        if spool is not None:
            self._ensure_thread()  # replay what earlier processes left behind

    def _init_state(self) -> None:
        """Everything a forked child must rebuild (and nothing it may inherit)."""
        # RLock: a SIGTERM handler runs on the main thread and may interrupt submit() there.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[Any] = deque()
        self._inflight: list[Any] | None = None
        self._thread: threading.Thread | None = None
        self._spiller: threading.Thread | None = None
        self._spill_cond = threading.Condition(self._lock)
        self._inflight_since = 0.0
        self._pid = os.getpid()
        self._stopping = False
        self._drain_deadline = 0.0
        self._flush_waiters = 0
        self._flush_gen = 0  # bumped by flush(); a flush may force one probe during an outage
        self._probed_gen = 0
        self._first_seen: float | None = None
        self._shutdown_done = False
        self._finished = threading.Event()  # set when a shutdown has spooled what was left
        self._shutdown_owner: int | None = None  # the thread inside _shutdown, if any
        self._after_shutdown: Callable[[], None] | None = None  # a signal it interrupted
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._replay_active = self.spool is not None
        self._next_replay_check = 0.0
        self._held_logged = False
        self._drop_logged = 0
        self._loud_rejections = _LOUD_REJECTIONS
        # Counters (written under the lock, or only by the worker thread). Events ever
        # submitted = ``_taken`` + ``len(_queue)``: submit() may append without the lock.
        self._taken = 0  # events taken out of the queue (net of those put back)
        self._settled = 0  # live events that left memory: delivered, rejected, spooled or dropped
        self._lost = 0  # live events spooled or dropped (not delivered)
        self._c = dict.fromkeys(("sent", "duplicates", "rejected", "dropped", "retried",
                                 "spooled", "replayed"), 0)

    # -- the caller's side: never blocks, never raises ---------------------------------------------

    def submit(self, event: Any) -> bool:
        """Queue one wire event (a dict, or a deferred event, see `_encode`); False (and
        counted) when it was not accepted. Never raises."""
        try:
            queue = self._queue
            # The common case takes no lock (this runs on every provider call): a non-empty
            # queue below every threshold the worker is woken at, so a plain append (atomic)
            # is all there is to do. A shutdown racing the append is settled in `_appended`.
            if 0 < len(queue) < self._quiet_limit and not self._closed:
                queue.append(event)
                return True if not self._closed else self._appended(event)
            return self._submit_locked(event)
        except Exception:
            logger.debug("llmlab: submit failed", exc_info=True)
            return False

    def _appended(self, event: Any) -> bool:
        """After a lock-free append that a shutdown raced: True, unless the event missed the
        shutdown's final drain (then it is taken back and counted as dropped)."""
        with self._lock:
            if self._shutdown_done:
                try:
                    self._queue.remove(event)
                except ValueError:
                    return True  # the shutdown took it
                self._c["dropped"] += 1
                return False
            return True  # the shutdown has not drained yet: it will take it

    def _submit_locked(self, event: Any) -> bool:
        try:
            with self._lock:
                if self._closed:
                    self._c["dropped"] += 1
                    return False
                queue = self._queue
                size = len(queue)
                if size >= self.queue_size:
                    self._c["dropped"] += 1
                    dropped = self._c["dropped"]
                    full = True
                else:
                    queue.append(event)
                    size += 1
                    full = False
                    # Wake the worker only at the thresholds it waits for, not on every event.
                    if size == 1 or size >= self.batch_size:
                        self._cond.notify()
                    if size >= self._high_water:
                        self._spill_cond.notify()
            if full:
                if dropped == 1 or dropped % 10_000 == 0:
                    logger.warning("llmlab: event queue full (%d); dropped %d events so far",
                                   self.queue_size, dropped)
                return False
            if self._thread is None:
                self._ensure_thread()
            return True
        except Exception:
            logger.debug("llmlab: submit failed", exc_info=True)
            return False

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued now; True when it was all delivered before ``timeout`` seconds.

        False means the deadline passed (the events are still queued and keep being retried) or
        some were spooled or dropped instead of delivered; `stats()` says which.
        """
        try:
            deadline = time.monotonic() + max(0.0, timeout)
            with self._cond:
                target, lost = self._taken + len(self._queue), self._lost
                if self._settled >= target:
                    return True
                self._flush_waiters += 1
                self._flush_gen += 1
                self._cond.notify_all()
            self._ensure_thread()
            with self._cond:
                try:
                    while self._settled < target:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    return self._settled >= target and self._lost == lost
                finally:
                    self._flush_waiters -= 1
        except Exception:
            logger.debug("llmlab: flush failed", exc_info=True)
            return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` seconds, spool whatever is left, stop. Idempotent.

        Returns True when everything still queued was delivered (nothing spooled or dropped).
        """
        try:
            return self._shutdown(self.shutdown_timeout if timeout is None else timeout)
        except Exception:
            logger.debug("llmlab: shutdown failed", exc_info=True)
            return False

    def _shutdown(self, timeout: float) -> bool:
        start = time.monotonic()
        deadline = start + max(0.0, timeout)
        with self._cond:
            if self._shutdown_done or self._stopping:
                running = self._stopping and not self._finished.is_set()
                if running and self._shutdown_owner != threading.get_ident():
                    wait = True  # another thread is shutting down: let it finish spooling
                else:
                    return self._settled >= self._taken + len(self._queue)
            else:
                wait = False
                self._shutdown_owner = threading.get_ident()
                target, lost = self._taken + len(self._queue), self._lost
                self._closed = True
                self._stopping = True
                # Keep a slice of the deadline for handing leftovers to the spool ourselves.
                self._drain_deadline = start + max(0.0, timeout) * 0.8
                self._cond.notify_all()
        if wait:
            self._finished.wait(max(0.0, timeout))
            with self._cond:
                return self._settled >= self._taken + len(self._queue)
        try:
            return self._shutdown_now(deadline, timeout, target, lost)
        finally:
            self._shutdown_owner = None
            self._finished.set()
            deferred, self._after_shutdown = self._after_shutdown, None
            if deferred is not None:  # a SIGTERM interrupted this shutdown: act on it now
                deferred()

    def _shutdown_now(self, deadline: float, timeout: float, target: int, lost: int) -> bool:
        """Join the thread, spool what is left, stop; True when ``target`` events settled
        and none more was ``lost``."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic() - min(0.2, timeout * 0.1)))
        with self._cond:
            # The thread is stuck (black-holed request) or gone: take over what it still holds.
            # Popped one by one, not copied then cleared: a lock-free append racing this
            # either is taken here or stays queued, where `_appended` finds and counts it.
            queue, leftovers = self._queue, []
            while queue:
                leftovers.append(queue.popleft())
            self._taken += len(leftovers)
            if self._inflight is not None and thread is not None and thread.is_alive():
                leftovers = self._inflight + leftovers
                self._inflight = None
            self._shutdown_done = True
        if leftovers:
            items = [self._item_or_reject(e) for e in leftovers]
            self._park([i for i in items if i is not None], live=True)
        if thread is None or not thread.is_alive():
            self.transport.close()
        self._uninstall_sigterm()
        with self._cond:
            return self._settled >= target and self._lost == lost

    def stats(self) -> dict[str, int]:
        """Counters: queued, in_flight, sent, duplicates, retried, spooled, replayed, rejected,
        dropped, spool_files, spool_events, spool_dropped_total."""
        with self._lock:
            out = {"queued": len(self._queue),
                   "in_flight": len(self._inflight or ()), **self._c}
        if self.spool is not None:
            out["dropped"] += self.spool.dropped
            out["spool_files"], out["spool_events"] = self.spool.pending()
            out["spool_dropped_total"] = self.spool.dropped_total
        else:
            out["spool_files"] = out["spool_events"] = out["spool_dropped_total"] = 0
        return out

    # -- thread management --------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._closed and not self._stopping:
                return
            if self._shutdown_done:
                return
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._run, name="llmlab-worker", daemon=True)
            try:
                thread.start()
                if self.spool is not None and self._spiller is None:
                    self._spiller = threading.Thread(target=self._spill_loop, daemon=True,
                                                     name="llmlab-spill")
                    self._spiller.start()
            except RuntimeError:  # interpreter shutting down: shutdown() spools the queue
                logger.debug("llmlab: could not start the worker thread", exc_info=True)
            self._thread = thread

    def _after_fork_in_child(self) -> None:
        """The child starts empty: the parent's queued events are the parent's to deliver."""
        self._init_state()
        self.transport.after_fork()
        if self.spool is not None:
            self.spool.after_fork()

    def _run(self) -> None:
        while True:
            try:
                replayed = self._replay_step()
                batch = self._next_batch(block=not replayed)
                if batch is None:
                    return
                if batch:
                    self._process(batch)
            except Exception:
                logger.exception("llmlab: internal error in the delivery worker")
                time.sleep(0.05)

    # -- batching -----------------------------------------------------------------------------

    def _flush_pending(self) -> bool:
        """A flush() asked for delivery and no probe has been made for it yet."""
        return self._flush_gen != self._probed_gen

    def _next_batch(self, block: bool = True) -> list[Any] | None:
        """Raw events for the next batch; [] when there is other work first; None to exit."""
        with self._cond:
            while True:
                size = len(self._queue)
                now = time.monotonic()
                if self._stopping:
                    if not size:
                        return None
                    break
                # Without a spool an outage keeps events in memory (bounded) until the next probe.
                hold = (self._down_since is not None and self.spool is None
                        and now < self._next_probe and not self._flush_pending())
                if not hold:
                    if size >= self.batch_size or (size and self._flush_waiters):
                        break
                    if size:
                        if self._first_seen is None:
                            self._first_seen = now
                        if now - self._first_seen >= self.flush_interval:
                            break
                    if not block or self._replay_ready(now):
                        return []
                if hold:
                    wait = self._next_probe - now
                elif self._first_seen is not None and size:
                    wait = self._first_seen + self.flush_interval - now
                else:
                    wait = _IDLE_WAIT
                self._cond.wait(max(0.001, min(wait, _IDLE_WAIT)))
            batch = [self._queue.popleft() for _ in range(min(size, self.batch_size))]
            self._taken += len(batch)
            self._first_seen = None
            self._inflight = batch
            self._inflight_since = now
            return batch

    def _process(self, raw: list[Any]) -> None:
        items: list[_Item] = []
        size = 2
        for index, event in enumerate(raw):
            item = self._item_or_reject(event, live=True)
            if item is None:
                continue
            if items and size + len(item.line) + 1 > self.batch_bytes:
                with self._cond:  # over the byte budget: the rest goes back, in order
                    self._queue.extendleft(reversed(raw[index:]))
                    self._taken -= len(raw) - index
                    if self._inflight is raw:
                        del raw[index:]
                break
            items.append(item)
            size += len(item.line) + 1
        if not items:
            self._finish(raw)
            return
        probe = self._down_since is not None
        if probe and not self._stopping and not self._flush_pending() \
                and time.monotonic() < self._next_probe:
            left, why = items, "the server is unreachable"  # outage: straight to the spool
        else:
            self._probed_gen = self._flush_gen
            left, why = self._deliver(items, live=True, probe=probe)
        if not self._finish(raw):
            return  # shutdown() took this batch over and spooled it
        if left:
            self._park(left, live=True)
            self._enter_outage(why)
        else:
            self._leave_outage()

    def _finish(self, raw: list[Any]) -> bool:
        """Release the in-flight batch; False when shutdown() already took it over."""
        with self._cond:
            if self._inflight is not raw:
                return False
            self._inflight = None
            return True

    def _item_or_reject(self, event: Any, live: bool = True) -> _Item | None:
        item = _encode(event)
        if isinstance(item, str):
            event_id = event.get("id") if isinstance(event, dict) else None
            self._settle([(str(event_id), EventResult("rejected", f"invalid event: {item}"))], live)
            return None
        return item

    # -- delivery -----------------------------------------------------------------------------

    def _deliver(self, items: list[_Item], *, live: bool, probe: bool) -> tuple[list[_Item], str]:
        """Send until every item is settled; return the unsettled ones and why."""
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
                self._settle([(pending[0].id, EventResult(
                    "rejected", outcome.error or "refused by the server"))], live)
                continue
            rest = pending + [i for part in work for i in part]
            if outcome.hold:
                if not self._held_logged:
                    self._held_logged = True
                    logger.error(
                        "llmlab: the server refused the API key or URL (%s); events are kept in "
                        "the spool and will be delivered once the configuration is fixed",
                        outcome.error)
                return rest, f"refused: {outcome.error}"
            return rest, outcome.error or "delivery failed"
        return [], ""

    def _send_with_retries(self, part: list[_Item], *, live: bool,
                           probe: bool) -> tuple[list[_Item], SendResult]:
        """One batch through tenacity; returns the still-unsettled events and the last result."""
        pending = part

        def attempt() -> SendResult:
            nonlocal pending
            if self._stopping and time.monotonic() >= self._drain_deadline:
                return SendResult(retry=True, error="shutting down")
            try:
                result = self.transport.send_encoded([i.event for i in pending],
                                                     [i.line for i in pending])
            except Exception as exc:  # a custom transport broke its no-raise contract
                logger.debug("llmlab: transport raised", exc_info=True)
                result = SendResult(retry=True, error=f"{type(exc).__name__}: {exc}")
            if result.results:
                settled: list[tuple[str, EventResult]] = []
                seen: set[str] = set()
                for item in pending:
                    outcome = result.results.get(item.id)
                    if outcome is None:
                        continue
                    if item.id in seen and outcome.status == "accepted":
                        outcome = EventResult("duplicate")  # one id twice in a batch: stored once
                    seen.add(item.id)
                    settled.append((item.id, outcome))
                self._settle(settled, live)
                pending = [i for i in pending if i.id not in result.results]
            if pending and result.ok:
                result.retry = True  # a 2xx that left events unsettled: send those again
            return result

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
        if self._stopping:
            return time.monotonic() + state.upcoming_sleep >= self._drain_deadline
        return False

    def _wait(self, state: tenacity.RetryCallState) -> float:
        result = _result_of(state)
        if result is not None and result.retry_after is not None:
            return min(result.retry_after, MAX_RETRY_AFTER)
        return float(self._backoff(state))

    def _sleep(self, seconds: float) -> None:
        """Back off, but wake up for shutdown."""
        end = time.monotonic() + seconds
        with self._cond:
            while not self._stopping:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _spill_loop(self) -> None:
        """Move the oldest queued events to the spool while the worker is stuck.

        The worker can be stuck for a whole request timeout (a black-holed server) or a retry
        backoff; at high submit rates the queue would fill and drop. Spilling costs disk, not
        events. It only runs when the queue is past half its cap *and* the worker has held its
        batch for over a second, so a healthy burst is never written to disk.
        """
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        return
                    held = time.monotonic() - self._inflight_since
                    busy = self._inflight is not None and held > _STUCK_AFTER
                    high = len(self._queue) >= self._high_water
                    if high and (busy or self._down_since is not None):
                        break
                    # When high, look again as soon as the batch would count as stuck.
                    wait = max(0.02, _STUCK_AFTER - held) if high and self._inflight else _IDLE_WAIT
                    self._spill_cond.wait(min(wait, _IDLE_WAIT))
                count = min(self.batch_size * 10, len(self._queue) - self._high_water // 2)
                chunk = [self._queue.popleft() for _ in range(max(1, count))]
                self._taken += len(chunk)
            items = [self._item_or_reject(e) for e in chunk]
            try:
                self._park([i for i in items if i is not None], live=True)
            except Exception:
                logger.exception("llmlab: internal error while spilling to the spool")

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        self._c["retried"] += 1
        result = _result_of(state)
        logger.debug("llmlab: retrying a batch in %.2fs: %s", state.upcoming_sleep,
                     result.error if result else "error")

    def _settle(self, results: list[tuple[str, EventResult]], live: bool) -> None:
        """Count final outcomes; rejected events are logged (once each) and never retried."""
        if not results:
            return
        counts = {"sent": 0, "duplicates": 0, "rejected": 0}
        for event_id, result in results:
            if result.status == "accepted":
                counts["sent"] += 1
            elif result.status == "duplicate":
                counts["duplicates"] += 1  # already stored: as good as delivered
            else:
                counts["rejected"] += 1
                self._loud_rejections -= 1
                log = logger.warning if self._loud_rejections >= 0 else logger.debug
                log("llmlab: event %s rejected, not retried: %s", event_id, result.reason)
        with self._cond:
            for key, value in counts.items():
                self._c[key] += value
            if live:
                self._settled += len(results)
                self._cond.notify_all()

    def _park(self, items: list[_Item], *, live: bool) -> None:
        """Undeliverable now: to the spool if there is one, else back to the queue or dropped."""
        if not items:
            return
        if self.spool is not None:
            written = self.spool.write([i.line for i in items])
            with self._cond:
                if written:
                    self._c["spooled"] += written
                else:
                    self._c["dropped"] += len(items)
                if live:
                    self._settled += len(items)
                    self._lost += len(items)
                self._cond.notify_all()
            return
        with self._cond:
            if not self._closed:
                room = max(0, self.queue_size - len(self._queue))
                self._queue.extendleft(reversed([i.event for i in items[:room]]))
                self._taken -= len(items[:room])
                items = items[room:]
            if items:
                self._c["dropped"] += len(items)
                if live:
                    self._settled += len(items)
                    self._lost += len(items)
                logger.warning("llmlab: dropped %d undeliverable events (no spool configured)",
                               len(items))
            self._cond.notify_all()

    def _enter_outage(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("llmlab: cannot deliver events (%s); %s, probing every %.1fs", why,
                           "spooling them to disk" if self.spool else "holding them in memory",
                           self.backoff_max)
        self._next_probe = time.monotonic() + self.backoff_max

    def _leave_outage(self) -> None:
        if self._down_since is not None:
            logger.info("llmlab: event delivery recovered after %.1fs",
                        time.monotonic() - self._down_since)
            self._down_since = None
            self._replay_active = self.spool is not None

    # -- spool replay -------------------------------------------------------------------------

    def _replay_ready(self, now: float) -> bool:
        if self.spool is None or self._closed:
            return False
        if self._down_since is not None:
            return now >= self._next_probe  # during an outage the oldest spooled batch is the probe
        return self._replay_active or now >= self._next_replay_check

    def _replay_step(self) -> bool:
        """Replay one spooled file (oldest first); False when there is nothing to do."""
        now = time.monotonic()
        if self.spool is None or not self._replay_ready(now):
            return False
        claimed: SpoolFile | None = self.spool.claim()
        if claimed is None:
            self._replay_active = False
            self._next_replay_check = now + self.replay_interval
            if self._down_since is not None:
                self._next_probe = now + self.backoff_max  # nothing to probe with: wait for events
            return False
        self._replay_active = True
        items = [i for i in (self._item_or_reject(e, live=False) for e in claimed.events) if i]
        with self._cond:
            self._c["replayed"] += len(claimed.events)
        left, why = self._deliver(items, live=False, probe=self._down_since is not None)
        if left:
            self.spool.release(claimed, [i.line for i in left])
            self._enter_outage(why)
        else:
            self.spool.complete(claimed)
            self._leave_outage()
        return True

    # -- process exit -------------------------------------------------------------------------

    def _install_sigterm(self) -> None:
        """Spool on SIGTERM, then do whatever the previous handler did (chained, not stolen)."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal,
                                                                                   "SIGTERM"):
            return
        try:
            previous = signal.getsignal(signal.SIGTERM)
        except (ValueError, OSError):
            return
        if previous is signal.SIG_IGN or previous is None:
            return  # the host ignores SIGTERM or handles it in C: leave it alone
        ref = weakref.ref(self)

        def chain(signum: int, frame: FrameType | None) -> None:
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                # Re-deliver with the default action so the exit status stays "killed by SIGTERM".
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        def handler(signum: int, frame: FrameType | None) -> None:
            worker = ref()
            if worker is not None and worker._shutdown_owner == threading.get_ident():
                # The signal interrupted this thread's own shutdown (atexit, llmlab.shutdown):
                # let it finish spooling, then act (dying now would lose the queue).
                worker._after_shutdown = lambda: chain(signum, frame)
                return
            if worker is not None:
                worker.shutdown()  # waits for a shutdown another thread is running
            chain(signum, frame)

        try:
            signal.signal(signal.SIGTERM, handler)
        except (ValueError, OSError):
            return
        self._sigterm_previous = previous
        self._sigterm_handler: Callable[..., None] = handler

    def _uninstall_sigterm(self) -> None:
        if self._sigterm_previous is None:
            return
        try:
            if threading.current_thread() is threading.main_thread() \
                    and signal.getsignal(signal.SIGTERM) is self._sigterm_handler:
                signal.signal(signal.SIGTERM, self._sigterm_previous)
                self._sigterm_previous = None
        except (ValueError, OSError):
            pass


_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


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


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        try:
            worker._after_fork_in_child()
        except Exception:
            logger.debug("llmlab: could not reset the worker after fork", exc_info=True)


def _at_exit() -> None:
    """Flush every live worker with its deadline and spool what is left."""
    for worker in list(_workers):
        if worker._atexit:
            worker.shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
