"""Replaying the disk spool: what this or an earlier process could not deliver.

The worker replays the spool when it starts (so simply starting the next process delivers
what the last one left), after an outage ends, and every ``replay_interval`` seconds for
files other processes left behind. One file at a time, oldest first: a file is claimed
(atomically, so two processes never replay the same one), sent through the `Sender`, and
deleted once every event in it is settled; what is left goes back to the spool and starts
(or continues) an outage. During an outage the oldest spooled batch is the probe.

Replayed events are not *live* (they were counted when they were spooled), so they never
move what `flush()` waits for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llmlab._event_items import encode_all
from llmlab._outage import Outage
from llmlab._results import Results
from llmlab._sending import Sender
from llmlab._spool import Spool, SpoolFile

__all__ = ["Replayer"]


class Replayer:
    """Replays one spooled file per `step`, when one is due."""

    def __init__(self, spool: Spool | None, sender: Sender, results: Results, outage: Outage,
                 *, interval: float, closed: Callable[[], bool]) -> None:
        self.spool = spool
        self._sender = sender
        self._results = results
        self._outage = outage
        self.interval = interval
        self._closed = closed
        #: Replay file after file without waiting (at start, after an outage).
        self.active = spool is not None
        self._next_check = 0.0

    def wake(self) -> None:
        """Replay everything now (the server just came back)."""
        self.active = self.spool is not None

    def ready(self, now: float) -> bool:
        """Whether a replay step is due at ``now`` (monotonic)."""
        if self.spool is None or self._closed():
            return False
        if self._outage.down:
            return now >= self._outage.next_probe  # the oldest spooled batch is the probe
        return self.active or now >= self._next_check

    def step(self) -> bool:
        """Replay one spooled file (oldest first); False when there was nothing to do."""
        now = time.monotonic()
        if self.spool is None or not self.ready(now):
            return False
        claimed: SpoolFile | None = self.spool.claim()
        if claimed is None:
            self.active = False
            self._next_check = now + self.interval
            if self._outage.down:
                # Nothing to probe with: wait for events.
                self._outage.next_probe = now + self._outage.probe_interval
            return False
        self.active = True
        items = encode_all(claimed.events,
                           lambda event, why: self._results.reject_unencodable(event, why, False))
        self._results.count("replayed", len(claimed.events))
        delivery = self._sender.deliver(items, live=False, probe=self._outage.down)
        if delivery.left:
            self.spool.release(claimed, [i.line for i in delivery.left])
            self._outage.enter(delivery.why, delivery.refusal)
        else:
            self.spool.complete(claimed)
            self._outage.leave()
        return True
