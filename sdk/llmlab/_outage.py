"""Outage mode: the server cannot take events now, so stop hammering it and keep memory flat.

A batch that exhausts its retries, or that the server refuses for the configuration (a
revoked key, a wrong URL), starts an outage. During one, the worker writes new batches
straight to the spool (without a spool it holds them in memory until the next probe) and
makes one probe attempt every ``backoff_max`` seconds, with the oldest spooled batch; the
first success ends the outage and the spool is replayed.
"""

from __future__ import annotations

import logging
import time

__all__ = ["Outage"]

logger = logging.getLogger("llmlab")


class Outage:
    """Whether the server is considered down, since when, and when to probe it next."""

    def __init__(self, probe_interval: float, *, spooling: bool) -> None:
        self.probe_interval = probe_interval
        self._spooling = spooling
        #: When the outage began (monotonic), or None when the server is up.
        self.down_since: float | None = None
        #: When the next probe may be sent (monotonic).
        self.next_probe = 0.0
        #: The reason the server last refused the configuration (an error code), if that is
        #: why it is down; events spooled meanwhile are counted as ``refused``.
        self.refusal: str | None = None

    @property
    def down(self) -> bool:
        """True during an outage."""
        return self.down_since is not None

    def enter(self, why: str, refusal: str | None = None) -> None:
        """A delivery failed: start (or continue) the outage; the next probe waits."""
        self.refusal = refusal
        if self.down_since is None:
            self.down_since = time.monotonic()
            # A refusal was logged already, with its fix; an outage is news only otherwise.
            log = logger.debug if refusal is not None else logger.warning
            log("llmlab: cannot deliver events (%s); %s, probing every %.1fs", why,
                "spooling them to disk" if self._spooling else "holding them in memory",
                self.probe_interval)
        self.next_probe = time.monotonic() + self.probe_interval

    def leave(self) -> bool:
        """A delivery succeeded: end the outage; True when one was running."""
        if self.down_since is None:
            return False
        logger.info("llmlab: event delivery recovered after %.1fs",
                    time.monotonic() - self.down_since)
        self.down_since = None
        self.refusal = None
        return True
