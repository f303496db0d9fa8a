"""Replaying the disk spool: what this or an earlier process could not deliver.

The worker replays the spool when it starts (so simply starting the next process delivers
what the last one left), after an outage ends, and every ``replay_interval`` seconds for
files other processes left behind. One file at a time, oldest first: a file is claimed
(atomically, so two processes never replay the same one), sent through the `Sender`, and
deleted once every event in it is settled; what is left goes back to the spool and starts
(or continues) an outage. During an outage the oldest spooled batch is the probe.

The *start-up replay* is the first pass, until no file is left to claim. `flush()` waits for
it too (`startup_pending`), and a flush during an outage makes it probe once more. During
`shutdown()` it goes on until the drain deadline; a file whose request outlives the
shutdown is given back to the spool whole by `take_over` (its ids make a resend harmless).

Replayed events are not *live* (they were counted when they were spooled), so they never
move what `flush()` waits for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from llmlab._event_items import encode_all
from llmlab._outage import Outage
from llmlab._results import Results
from llmlab._sending import SHUTTING_DOWN, Sender
from llmlab._spool import Spool, SpoolFile
from llmlab._spool_dirs import adopt_legacy

__all__ = ["Replayer"]

logger = logging.getLogger("llmlab")


class Replayer:
    """Replays one spooled file per `step`, when one is due."""

    def __init__(self, spool: Spool | None, sender: Sender, results: Results, outage: Outage,
                 cond: threading.Condition, *, interval: float, closed: Callable[[], bool],
                 draining_until: Callable[[], float | None],
                 flush_gen: Callable[[], int]) -> None:
        """``cond`` (the worker's) is notified when the start-up replay ends or fails;
        ``draining_until()`` is the shutdown's drain deadline (None before one starts);
        ``flush_gen()`` changes with every `flush()` (each may force one probe)."""
        self.spool = spool
        self._sender = sender
        self._results = results
        self._outage = outage
        self._cond = cond
        self.interval = interval
        self._closed = closed
        self._draining_until = draining_until
        self._flush_gen = flush_gen
        self._probed_gen = flush_gen()
        #: Replay file after file without waiting (at start, after an outage).
        self.active = spool is not None
        #: The start-up replay has not finished: files of earlier processes may be left.
        self.startup_pending = spool is not None
        #: Replay steps that left events in the spool (a failed delivery), ever.
        self.failures = 0
        self._next_check = 0.0
        self._current: SpoolFile | None = None  # the file being replayed
        self._current_lock = threading.Lock()

    def wake(self) -> None:
        """Replay everything now (the server just came back, or a spill wrote files)."""
        self.active = self.spool is not None

    def ready(self, now: float) -> bool:
        """Whether a replay step is due at ``now`` (monotonic)."""
        if self.spool is None:
            return False
        if self._closed():
            # Shutting down: only the start-up replay goes on, until the drain deadline.
            deadline = self._draining_until()
            return (self.startup_pending and not self._outage.down and deadline is not None
                    and now < deadline)
        if self._outage.down:
            # The oldest spooled batch is the probe; a flush waiting for the start-up
            # replay forces one.
            return now >= self._outage.next_probe or (
                self.startup_pending and self._flush_gen() != self._probed_gen)
        return self.active or now >= self._next_check

    def step(self) -> bool:
        """Replay one spooled file (oldest first); False when there was nothing to do."""
        now = time.monotonic()
        if self.spool is None or not self.ready(now):
            return False
        self._probed_gen = self._flush_gen()
        if self.spool.legacy_root is not None:
            root, self.spool.legacy_root = self.spool.legacy_root, None
            try:
                adopt_legacy(root, self.spool)
            except Exception:  # the host app never sees our failures
                logger.warning("llmlab: could not adopt spool files at %s", root, exc_info=True)
        claimed: SpoolFile | None = self.spool.claim()
        if claimed is None:
            self.active = False
            self._next_check = now + self.interval
            if self._outage.down:
                # Nothing to probe with: wait for events.
                self._outage.next_probe = now + self._outage.probe_interval
            self._end_startup(failed=False)
            return False
        with self._current_lock:
            self._current = claimed
        self.active = True
        items = encode_all(claimed.events,
                           lambda event, why: self._results.reject_unencodable(event, why, False))
        self._results.count("replayed", len(claimed.events))
        delivery = self._sender.deliver(items, live=False, probe=self._outage.down)
        with self._current_lock:
            if self._current is not claimed:
                return True  # shutdown() gave the file back (`take_over`)
            self._current = None
        if delivery.left:
            self.spool.release(claimed, [i.line for i in delivery.left])
            if delivery.why != SHUTTING_DOWN:  # cut short by shutdown(): not an outage
                self._outage.enter(delivery.why, delivery.refusal)
            self._end_startup(failed=True)
        else:
            self.spool.complete(claimed)
            self._outage.leave()
        return True

    def _end_startup(self, *, failed: bool) -> None:
        """A pass ended: the start-up replay is done (nothing left to claim), or it failed."""
        with self._cond:
            if failed:
                self.failures += 1
            elif self.startup_pending:
                self.startup_pending = False
            else:
                return
            self._cond.notify_all()

    def take_over(self) -> None:
        """For shutdown(), when the delivery thread is stuck in a replay (a hung request):
        give the file back to the spool, whole, for a later process."""
        with self._current_lock:
            claimed, self._current = self._current, None
        if claimed is not None and self.spool is not None:
            self.spool.release(claimed)
