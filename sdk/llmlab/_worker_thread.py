"""The worker's thread side: the queue's state, and the threads that drain it.

`WorkerThread` holds what the caller's side (`llmlab._worker.Worker`) and the threads share:
the queue, its lock and conditions, the in-flight batch, and the delivery stages. Its
delivery thread cuts the queue into batches (at ``batch_size`` events, ``batch_bytes`` of
encoded JSON, or ``flush_interval`` seconds after a batch's first event; at once for a
`flush()`), moves each through the stages (`llmlab._sending`, `llmlab._results`,
`llmlab._spill`, `llmlab._outage`) and replays the spool between batches
(`llmlab._replay`). A spill thread moves the oldest queued events to the spool while the
delivery thread is stuck, or when the queue nears its cap (`_spill_due`).

A caller that never waits (a cache, a local model: it never releases the GIL) would starve
both threads and fill the queue; `_pause_helps` tells the caller's side when a short pause
gives them the interpreter.

Everything here is rebuilt in a forked child (`after_fork_in_child`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from llmlab._event_items import SETTLED, Item, encode
from llmlab._outage import Outage
from llmlab._replay import Replayer
from llmlab._results import Results
from llmlab._sending import Delivery, Sender
from llmlab._spill import Spiller
from llmlab._spool import Spool
from llmlab.transport import Transport

__all__ = ["WorkerThread"]

logger = logging.getLogger("llmlab")

_IDLE_WAIT = 1.0
_STUCK_AFTER = 1.0
#: A request (or backoff) longer than this waits on the server, not on the GIL: pausing the
#: caller would not help the delivery thread then (the spill thread makes room instead).
_WAITING_ON_SERVER = 0.05


class WorkerThread:
    """The state the caller's side and the threads share, and the threads' work."""

    def __init__(self, transport: Transport, spool: Spool | None, *, queue_size: int,
                 batch_size: int, batch_bytes: int, flush_interval: float, max_retries: int,
                 backoff_initial: float, backoff_max: float, replay_interval: float) -> None:
        self.transport = transport
        self.spool = spool
        self.queue_size = max(1, queue_size)
        self.batch_size = max(1, batch_size)
        self.batch_bytes = max(1024, batch_bytes)
        self.flush_interval = max(0.0, flush_interval)
        self.max_retries = max(0, max_retries)
        self.backoff_initial = max(0.0, backoff_initial)
        self.backoff_max = max(self.backoff_initial, backoff_max)
        self.replay_interval = replay_interval
        # The high-water mark: well above a healthy worker's backlog (a batch or two), far
        # below the cap. Past it the oldest queued events spill to disk while a batch is
        # stuck or backing off (a long outage costs disk, not memory, not dropped events).
        self._high_water = min(self.queue_size,
                               max(2 * self.batch_size, self.queue_size // 10))
        # Past this a submit() may pause its caller (`_pause_helps`): higher, so a paced
        # caller that a busy machine's worker lags behind for a moment is left alone.
        self._pause_mark = min(self.queue_size, max(self._high_water, self.queue_size // 4))
        # Past this the queue spills whatever the worker is doing: disk, not dropped events.
        self._spill_mark = max(self._pause_mark, self.queue_size // 2)
        # submit() appends without the lock below `_free_limit` (`Worker.submit`): below every
        # threshold a thread waits for (`_quiet_limit`), or, while the delivery thread is
        # taking batches and the server is up, below the pause mark (`_busy_limit`): that
        # thread takes the next batch without being woken, and the spill thread watches a
        # batch held too long on its own clock.
        self._quiet_limit = min(self.batch_size, self._high_water) - 1
        self._busy_limit = max(self._quiet_limit, self._pause_mark - 1)
        self._closed = False
        self._init_state()

    def _init_state(self) -> None:
        """Everything a forked child must rebuild (and nothing it may inherit)."""
        # RLock: a SIGTERM handler runs on the main thread and may interrupt submit() there.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        # Notified when events leave the queue, for a submit() that found it full.
        self._room = threading.Condition(self._lock)
        # Held while an event of the in-flight batch is built, and by shutdown() to take the
        # batch over: an event is built by one of them, once. Taken before ``_lock``.
        self._build_lock = threading.Lock()
        self._queue: deque[Any] = deque()
        self._inflight: list[Any] | None = None
        self._thread: threading.Thread | None = None
        self._spill_thread: threading.Thread | None = None
        self._spill_cond = threading.Condition(self._lock)
        self._inflight_since = 0.0
        self._stopping = False
        self._drain_deadline = 0.0
        self._flush_waiters = 0
        self._flush_gen = 0  # bumped by flush(); a flush may force one probe during an outage
        self._probed_gen = 0
        self._first_seen: float | None = None
        self._free_limit = self._quiet_limit
        self._shutdown_done = False
        self._finished = threading.Event()  # set when a shutdown has spooled what was left
        self._shutdown_owner: int | None = None  # the thread inside _shutdown, if any
        self._after_shutdown: Callable[[], None] | None = None  # a signal it interrupted
        # Events ever submitted = ``_taken`` + ``len(_queue)``: submit() may append without
        # the lock. ``_results.settled`` counts those that left memory since.
        self._taken = 0  # events taken out of the queue (net of those put back)
        # The delivery stages (they share the lock, so they are rebuilt with it).
        self._results = Results(self._cond, self.spool)
        self._outage = Outage(self.backoff_max, spooling=self.spool is not None)
        self._sender = Sender(self.transport, self._results, self._cond, self._draining_until,
                              max_retries=self.max_retries, backoff_initial=self.backoff_initial,
                              backoff_max=self.backoff_max)
        self._replayer = Replayer(self.spool, self._sender, self._results, self._outage,
                                  self._cond, interval=self.replay_interval,
                                  closed=self._is_closed, draining_until=self._draining_until,
                                  flush_gen=self._current_flush_gen)
        self._spiller = Spiller(self.spool, self._results, self._outage, self._put_back)

    def _draining_until(self) -> float | None:
        """None until shutdown starts; then the time by which delivery must stop."""
        return self._drain_deadline if self._stopping else None

    def _is_closed(self) -> bool:
        return self._closed

    def _current_flush_gen(self) -> int:
        return self._flush_gen

    # -- threads and fork ---------------------------------------------------------------------

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
                if self.spool is not None and self._spill_thread is None:
                    self._spill_thread = threading.Thread(target=self._spill_loop, daemon=True,
                                                          name="llmlab-spill")
                    self._spill_thread.start()
            except RuntimeError:  # interpreter shutting down: shutdown() spools the queue
                logger.debug("llmlab: could not start the worker thread", exc_info=True)
            self._thread = thread

    def after_fork_in_child(self) -> None:
        """The child starts empty: the parent's queued events are the parent's to deliver."""
        self._init_state()
        self.transport.after_fork()
        if self.spool is not None:
            self.spool.after_fork()

    def _run(self) -> None:
        while True:
            try:
                replayed = self._replayer.step()
                batch = self._next_batch(block=not replayed)
                if batch is None:
                    return
                if batch:
                    self._process(batch)
            except Exception:
                logger.exception("llmlab: internal error in the delivery worker")
                time.sleep(0.05)

    # -- batching -----------------------------------------------------------------------------

    def _taking_batches(self) -> None:
        """The delivery thread takes a batch now and looks at the queue again before it
        waits: until then a submit below the pause mark need not wake it, unless the server
        is down (the spill thread must hear of the queue's growth). Lock held."""
        self._free_limit = self._quiet_limit if self._outage.down else self._busy_limit

    def _flush_pending(self) -> bool:
        """A flush() asked for delivery and no probe has been made for it yet."""
        return self._flush_gen != self._probed_gen

    def _next_batch(self, block: bool = True) -> list[Any] | None:
        """Raw events for the next batch; [] when there is other work first; None to exit."""
        outage = self._outage
        with self._cond:
            while True:
                size = len(self._queue)
                now = time.monotonic()
                if self._stopping:
                    if not size:  # done, unless the start-up replay may go on until the deadline
                        return [] if self._replayer.ready(now) else None
                    break
                # Without a spool an outage keeps events in memory (bounded) until the next probe.
                hold = (outage.down and self.spool is None
                        and now < outage.next_probe and not self._flush_pending())
                if not hold:
                    if size >= self.batch_size or (size and self._flush_waiters):
                        break
                    if size:
                        if self._first_seen is None:
                            self._first_seen = now
                        if now - self._first_seen >= self.flush_interval:
                            break
                    if not block or self._replayer.ready(now):
                        return []
                if hold:
                    wait = outage.next_probe - now
                elif self._first_seen is not None and size:
                    wait = self._first_seen + self.flush_interval - now
                else:
                    wait = _IDLE_WAIT
                self._free_limit = self._quiet_limit  # waiting: a submit must wake it
                self._cond.wait(max(0.001, min(wait, _IDLE_WAIT)))
            batch = [self._queue.popleft() for _ in range(min(size, self.batch_size))]
            self._taking_batches()
            self._taken += len(batch)
            self._room.notify_all()
            self._first_seen = None
            self._inflight = batch
            self._inflight_since = now
            return batch

    def _process(self, raw: list[Any]) -> None:
        """Deliver one batch; park what is left and enter (or leave) outage mode."""
        items = self._build(raw)
        if items is None:
            return  # shutdown() took this batch over
        if not items:
            self._finish(raw)
            return
        outage = self._outage
        if outage.down and not self._stopping and not self._flush_pending() \
                and time.monotonic() < outage.next_probe:
            # Outage: straight to the spool.
            delivery = Delivery(items, "the server is unreachable", outage.refusal)
        else:
            self._probed_gen = self._flush_gen
            delivery = self._sender.deliver(items, live=True, probe=outage.down)
        if not self._finish(raw):
            return  # shutdown() took this batch over and spooled it
        if delivery.left:
            outage.enter(delivery.why, delivery.refusal)  # first: parking counts a refusal
            self._spiller.park(delivery.left, live=True)
        elif outage.leave():
            self._replayer.wake()

    def _build(self, raw: list[Any]) -> list[Item] | None:
        """The batch's events built and encoded, each exactly once, up to ``batch_bytes``.

        Each event's `Item` replaces it in ``raw`` (the in-flight batch) as it is made, so
        whoever handles it later (the queue, for the events past ``batch_bytes``; shutdown(),
        for a batch it takes over) reuses the same wire event: same id, no second build.
        None when shutdown() took the batch over first (it owns the rest).
        """
        items: list[Item] = []
        size = 2
        for index in range(len(raw)):
            with self._build_lock:
                if self._inflight is not raw:
                    return None
                event = raw[index]
                item = encode(event)
                raw[index] = SETTLED if isinstance(item, str) else item
            if isinstance(item, str):
                self._results.reject_unencodable(event, item, True)
                continue
            if items and size + len(item.line) + 1 > self.batch_bytes:
                with self._cond:  # over the byte budget: the rest goes back, in order
                    if self._inflight is not raw:
                        return None
                    self._queue.extendleft(reversed(raw[index:]))
                    self._taken -= len(raw) - index
                    del raw[index:]
                break
            items.append(item)
            size += len(item.line) + 1
        return items

    def _finish(self, raw: list[Any]) -> bool:
        """Release the in-flight batch; False when shutdown() already took it over."""
        with self._cond:
            if self._inflight is not raw:
                return False
            self._inflight = None
            return True

    def _reject_live(self, event: Any, why: str) -> None:
        self._results.reject_unencodable(event, why, True)

    def _put_back(self, events: list[Any]) -> list[Any]:
        """Return ``events`` to the front of the queue, in order, while there is room (none
        once closed); the events that found none."""
        with self._cond:
            rest = events
            if not self._closed:
                room = max(0, self.queue_size - len(self._queue))
                self._queue.extendleft(reversed(events[:room]))
                self._taken -= len(events[:room])
                rest = events[room:]
            self._cond.notify_all()
            return rest

    # -- spilling a queue that a stuck worker lets grow, or that nears its cap -------------

    def _spill_loop(self) -> None:
        self._spiller.run(self._take_spill_chunk, self._spilled)

    def _spilled(self) -> None:
        """A chunk is on disk: while the server is up, the replay delivers it soon."""
        if not self._outage.down:
            self._replayer.wake()

    def _take_spill_chunk(self) -> list[Any] | None:
        """Wait until the queue must spill; the oldest events to move, or None once closed."""
        with self._lock:
            while True:
                if self._closed:
                    return None
                wait = self._spill_wait()
                if wait <= 0:
                    break
                self._spill_cond.wait(wait)
            count = min(self.batch_size * 10, len(self._queue) - self._high_water // 2)
            chunk = [self._queue.popleft() for _ in range(max(1, count))]
            self._taken += len(chunk)
            self._room.notify_all()
            return chunk

    def _spill_due(self) -> bool:
        """The queue is past the high-water mark *and* the worker has held its batch for over
        a second or is in an outage (so a healthy burst is never written to disk); or the
        queue is half full, whatever the reason."""
        size = len(self._queue)
        if size < self._high_water:
            return False
        held = time.monotonic() - self._inflight_since
        busy = self._inflight is not None and held > _STUCK_AFTER
        return busy or self._outage.down or size >= self._spill_mark

    def _pause_helps(self) -> bool:
        """Whether a caller that finds the queue past the pause mark should pause (caller
        holds the lock): a thread of this worker can use the interpreter to make room.

        That is the spill thread once spilling is due, or the delivery thread unless it is
        waiting on the server (a hung request: pausing would only slow the app down) or
        holds events in memory during an outage (no spool: nothing to make room with).
        """
        thread = self._thread
        if thread is None or thread.ident == threading.get_ident() or not thread.is_alive():
            return False
        if self.spool is not None and self._spill_due():
            return True
        waiting = self._sender.waiting_since
        if waiting and time.monotonic() - waiting > _WAITING_ON_SERVER:
            return False
        return self.spool is not None or not self._outage.down

    def _spill_wait(self) -> float:
        """0 when the queue must spill now (`_spill_due`), else how long to wait before
        looking again (as soon as a batch would count as stuck when the queue is high)."""
        if self._spill_due():
            return 0.0
        held = time.monotonic() - self._inflight_since
        high = len(self._queue) >= self._high_water
        wait = max(0.02, _STUCK_AFTER - held) if high and self._inflight else _IDLE_WAIT
        return min(wait, _IDLE_WAIT)
