"""Where live events go when they cannot be delivered now: the spool, else back to the queue.

`Spiller.park` is the one door from memory to disk for events taken from the queue: a batch
left over after its retries, a batch during an outage, whatever shutdown finds still queued,
and the chunks the spill thread moves out of a queue that a stuck worker lets grow, or that
nears its cap whatever the reason (`WorkerThread._spill_due`). Every event through it is
counted once (``spooled``, or ``dropped`` when the disk refuses it and ``refused`` too when
the server's refusal is why).

Without a spool, parked events go back to the front of the queue (in order, as the items
they were encoded into: never built twice) while there is room, and are dropped, logged and
counted past it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from llmlab._event_items import Item, encode_all
from llmlab._outage import Outage
from llmlab._results import Results
from llmlab._spool import Spool

__all__ = ["Spiller"]

logger = logging.getLogger("llmlab")


class Spiller:
    """Parks undeliverable events; runs the spill thread."""

    def __init__(self, spool: Spool | None, results: Results, outage: Outage,
                 put_back: Callable[[list[Any]], list[Any]]) -> None:
        """``put_back(events)`` returns events to the front of the queue and hands back
        those that found no room (all of them once the worker is closed)."""
        self.spool = spool
        self._results = results
        self._outage = outage
        self._put_back = put_back

    def park(self, items: list[Item], *, live: bool) -> None:
        """Undeliverable now: to the spool if there is one, else back to the queue or dropped."""
        if not items:
            return
        if self.spool is not None:
            written = self.spool.write([i.line for i in items])
            self._results.spooled(len(items), written, live, self._outage.refusal)
            return
        rest = self._put_back(list(items))
        if rest:
            self._results.dropped(len(rest), live)
            logger.warning("llmlab: dropped %d undeliverable events (no spool configured)",
                           len(rest))

    def run(self, take: Callable[[], list[Any] | None], spilled: Callable[[], None]) -> None:
        """The spill thread: park each chunk ``take()`` hands over, until it returns None;
        ``spilled()`` after each.

        The worker can be stuck for a whole request timeout (a black-holed server) or a
        retry backoff; at high submit rates its queue would fill and drop. Spilling costs
        disk, not events.
        """
        while True:
            chunk = take()
            if chunk is None:
                return
            items = encode_all(chunk, self._reject)
            try:
                self.park(items, live=True)
                spilled()
            except Exception:
                logger.exception("llmlab: internal error while spilling to the spool")

    def _reject(self, event: Any, why: str) -> None:
        self._results.reject_unencodable(event, why, True)
