"""The background worker: the caller's side of event delivery.

``submit()`` only appends to a bounded in-memory queue; it never blocks on the network or the
disk, and never raises. A caller that outruns the worker without ever releasing the GIL (a
cache, a local model) pauses for a moment past a mark, so the worker keeps up instead of the
queue dropping events (`Worker._submit_locked`). `flush()` waits for what is queued and for
the start-up replay of the spool, `shutdown()` spools what is left and stops, `stats()`
counts everything. The rest is done off the caller's thread, one module per delivery stage:

- `llmlab._worker_thread`: the queue's state; the delivery thread that cuts it into batches
  (by count, bytes and time) and the spill thread;
- `llmlab._event_items`: each event encoded once (the batch's size measure, the spool record);
- `llmlab._sending`: tenacity retries with backoff and ``Retry-After``, splits, refusals;
- `llmlab._results`: each event settled by id, counted; refusals logged with their fix;
- `llmlab._spill`: what cannot be delivered now goes to the disk `Spool`;
- `llmlab._outage`: after a failed delivery, spool new batches and probe now and then;
- `llmlab._replay`: the spool replayed at start (in any process), after an outage, periodically;
- `llmlab._process_hooks`: fork safety, the exit hook, SIGTERM.

Event ids make every resend idempotent, so "at least once on the wire" is "exactly once at
the server". Nothing here uses the caller's asyncio loop. See ``docs/delivery.md`` for the
guarantees and the settings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from llmlab._event_items import encode_all
from llmlab._process_hooks import SigtermHook, register
from llmlab._spool import Spool
from llmlab._worker_thread import WorkerThread
from llmlab.transport import Transport

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

#: How long a submit() past the pause mark gives the worker the GIL: long enough for the OS
#: to wake a waiting thread and hand it over (a bare ``sleep(0)`` often loses that race).
_PAUSE = 0.0001
#: The longest a submit() waits for room in a full queue that a thread of ours is draining.
_FULL_WAIT = 0.1


class Worker(WorkerThread):
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
        super().__init__(transport, spool, queue_size=queue_size, batch_size=batch_size,
                         batch_bytes=batch_bytes, flush_interval=flush_interval,
                         max_retries=max_retries, backoff_initial=backoff_initial,
                         backoff_max=backoff_max, replay_interval=replay_interval)
        self.shutdown_timeout = shutdown_timeout
        self._warned_full = False
        self.run_at_exit = atexit
        self._sigterm = SigtermHook()
        register(self)
        if handle_sigterm:
            self._sigterm.install(self)
        if spool is not None:
            self._ensure_thread()  # replay what earlier processes left behind

    def submit(self, event: Any) -> bool:
        """Queue one wire event (a dict, or a deferred event, see `llmlab._event_items`);
        False (and counted) when it was not accepted. Never raises."""
        try:
            queue = self._queue
            # The common case takes no lock (this runs on every provider call): a non-empty
            # queue below every threshold a thread must be woken at (`_free_limit`), so a
            # plain append (atomic) is all there is to do. A shutdown racing the append is
            # settled in `_appended`; a delivery thread that started waiting meanwhile is
            # woken by the next submit that takes the lock, or by its own clock.
            if 0 < len(queue) < self._free_limit and not self._closed:
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
                self._results.dropped(1, live=False)
                return False
            return True  # the shutdown has not drained yet: it will take it

    def _submit_locked(self, event: Any) -> bool:
        """`submit` at the thresholds: wake the threads; past the high-water mark, let them run.

        A caller that never releases the GIL would leave the worker a sliver of the
        interpreter (it waits 5 ms for each hand-over, and hands it back at its next I/O),
        so a fast enough loop filled the queue and dropped events with the server up. Past
        the pause mark, while a thread of ours can use the time (`_pause_helps`), the caller
        sleeps ``_PAUSE``; at the cap it waits up to ``_FULL_WAIT`` for room before dropping.
        """
        try:
            with self._lock:
                if self._closed:
                    self._results.dropped(1, live=False)
                    return False
                queue = self._queue
                if len(queue) >= self.queue_size:
                    self._wait_for_room()
                    if self._closed:
                        self._results.dropped(1, live=False)
                        return False
                size = len(queue)
                full = size >= self.queue_size
                if full:
                    self._results.dropped(1, live=False)
                    warn, self._warned_full = not self._warned_full, True
                else:
                    queue.append(event)
                    size += 1
                    # Wake the worker only at the thresholds it waits for, not on every event.
                    if size == 1 or size >= self.batch_size:
                        self._cond.notify()
                        if size >= self.batch_size:
                            self._taking_batches()  # when it runs: no need to wake it again
                    if size >= self._high_water:
                        self._spill_cond.notify()
                    pause = size >= self._pause_mark and self._pause_helps()
            if full:
                (logger.warning if warn else logger.debug)(
                    "llmlab: event queue full (%d events) and the worker cannot make room: "
                    "dropping events; stats()['dropped'] counts them", self.queue_size)
                return False
            if self._thread is None:
                self._ensure_thread()
            if pause:
                time.sleep(_PAUSE)
            return True
        except Exception:
            logger.debug("llmlab: submit failed", exc_info=True)
            return False

    def _wait_for_room(self) -> None:
        """The queue is full: wait (bounded) while a thread of ours drains it (lock held)."""
        deadline = time.monotonic() + _FULL_WAIT
        while len(self._queue) >= self.queue_size and not self._closed and self._pause_helps():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._room.wait(remaining)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued now, and wait for the start-up replay of the spool; True
        when it was all settled before ``timeout`` seconds and nothing went wrong since the
        previous flush returned (or since the start).

        False means the deadline passed (the events are still queued and keep being retried),
        the start-up replay left events in the spool (the server is down), or since the
        previous flush some event was spooled, dropped, or rejected for a reason the app must
        fix (logged, with the fix); `stats()` says which.
        """
        try:
            deadline = time.monotonic() + max(0.0, timeout)
            replay = self._replayer
            with self._cond:
                target, mark = self._taken + len(self._queue), self._results.flush_mark()
                failures = replay.failures
                if self._results.settled >= target and not replay.startup_pending:
                    return self._results.flush_clean(mark)
                self._flush_waiters += 1
                self._flush_gen += 1
                self._cond.notify_all()
            self._ensure_thread()
            with self._cond:
                try:
                    # The start-up replay too: a short-lived process (a CLI, a cron job) that
                    # flushes before it exits delivers what earlier processes left.
                    while self._results.settled < target or (
                            replay.startup_pending and replay.failures == failures
                            and not self._closed):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    done = self._results.settled >= target and not replay.startup_pending
                    return self._results.flush_clean(mark) and done
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
                    return self._results.settled >= self._taken + len(self._queue)
            else:
                wait = False
                self._shutdown_owner = threading.get_ident()
                target, lost = self._taken + len(self._queue), self._results.lost
                self._closed = True
                # Keep a slice of the deadline for handing leftovers to the spool ourselves.
                self._drain_deadline = start + max(0.0, timeout) * 0.8
                self._stopping = True
                self._cond.notify_all()
        if wait:
            self._finished.wait(max(0.0, timeout))
            with self._cond:
                return self._results.settled >= self._taken + len(self._queue)
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
        stuck = thread is not None and thread.is_alive()
        # The build lock first: the in-flight batch is taken between two builds, never
        # during one (each event is built once, by the thread or here).
        with self._build_lock, self._cond:
            # The thread is stuck (black-holed request) or gone: take over what it still holds.
            # Popped one by one, not copied then cleared: a lock-free append racing this
            # either is taken here or stays queued, where `_appended` finds and counts it.
            queue, leftovers = self._queue, []
            while queue:
                leftovers.append(queue.popleft())
            self._taken += len(leftovers)
            if self._inflight is not None and stuck:
                leftovers = self._inflight + leftovers
                self._inflight = None
            self._shutdown_done = True
            self._room.notify_all()
        if stuck:
            self._replayer.take_over()  # a spool file being replayed goes back, whole
        if leftovers:
            self._spiller.park(encode_all(leftovers, self._reject_live), live=True)
        if thread is None or not thread.is_alive():
            self.transport.close()
        self._sigterm.uninstall()
        with self._cond:
            return self._results.settled >= target and self._results.lost == lost

    def stats(self) -> dict[str, int]:
        """Counters: queued, in_flight, sent, duplicates, retried, spooled, replayed, rejected,
        refused, dropped, spool_files, spool_events, spool_dropped_total, and one
        ``rejected_<code>`` / ``refused_<code>`` per reason seen."""
        with self._lock:
            out = {"queued": len(self._queue), "in_flight": len(self._inflight or ()),
                   **self._results.stats()}
        if self.spool is not None:
            out["spool_files"], out["spool_events"] = self.spool.pending()
            out["spool_dropped_total"] = self.spool.dropped_total
        else:
            out["spool_files"] = out["spool_events"] = out["spool_dropped_total"] = 0
        return out

    # -- for llmlab._process_hooks ------------------------------------------------------------

    def shutting_down_here(self) -> bool:
        """Whether the calling thread is running this worker's shutdown."""
        return self._shutdown_owner == threading.get_ident()

    def after_shutdown(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the shutdown in progress has spooled what was left."""
        self._after_shutdown = action
