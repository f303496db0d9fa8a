"""The worker's ties to the process: fork, interpreter exit and SIGTERM.

- **fork**: an ``os.register_at_fork`` hook resets every live worker in the child (a fresh
  queue, lock, thread and HTTP client); the parent's buffered events stay the parent's.
- **exit**: an ``atexit`` hook shuts every live worker down within its deadline, spooling
  what is left.
- **SIGTERM**: `SigtermHook` spools on SIGTERM, then does whatever the previous handler did
  (chained, not stolen); a signal that lands during a shutdown waits for it to finish.

Workers register themselves (weakly: a worker nobody holds is not kept alive by this).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

__all__ = ["Hooked", "SigtermHook", "register"]

logger = logging.getLogger("llmlab")


class Hooked(Protocol):
    """What the hooks need of a worker."""

    #: Whether the exit hook shuts this worker down.
    run_at_exit: bool

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within the deadline, spool the rest, stop."""

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child."""

    def shutting_down_here(self) -> bool:
        """Whether the calling thread is running this worker's shutdown."""

    def after_shutdown(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the running shutdown ends."""


_workers: weakref.WeakSet[Hooked] = weakref.WeakSet()


def register(worker: Hooked) -> None:
    """Reset ``worker`` after fork and shut it down at exit, while it lives."""
    _workers.add(worker)


class SigtermHook:
    """A SIGTERM handler that shuts one worker down, then chains to the previous handler."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._handler: Callable[..., None] | None = None

    def install(self, worker: Hooked) -> None:
        """Install the handler (only from the main thread, and only over a Python handler
        or the default: an ignored SIGTERM, or one handled in C, is left alone)."""
        if threading.current_thread() is not threading.main_thread() \
                or not hasattr(signal, "SIGTERM"):
            return
        try:
            previous = signal.getsignal(signal.SIGTERM)
        except (ValueError, OSError):
            return
        if previous is signal.SIG_IGN or previous is None:
            return
        ref = weakref.ref(worker)

        def chain(signum: int, frame: FrameType | None) -> None:
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                # Re-deliver with the default action so the exit status stays "killed by SIGTERM".
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        def handler(signum: int, frame: FrameType | None) -> None:
            target = ref()
            if target is not None and target.shutting_down_here():
                # The signal interrupted this thread's own shutdown (atexit, llmlab.shutdown):
                # let it finish spooling, then act (dying now would lose the queue).
                target.after_shutdown(lambda: chain(signum, frame))
                return
            if target is not None:
                target.shutdown()  # waits for a shutdown another thread is running
            chain(signum, frame)

        try:
            signal.signal(signal.SIGTERM, handler)
        except (ValueError, OSError):
            return
        self._previous, self._handler = previous, handler

    def uninstall(self) -> None:
        """Put the previous handler back, if ours is still the one installed."""
        if self._previous is None:
            return
        try:
            if threading.current_thread() is threading.main_thread() \
                    and signal.getsignal(signal.SIGTERM) is self._handler:
                signal.signal(signal.SIGTERM, self._previous)
                self._previous = None
        except (ValueError, OSError):
            pass


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        try:
            worker.after_fork_in_child()
        except Exception:
            logger.debug("llmlab: could not reset the worker after fork", exc_info=True)


def _at_exit() -> None:
    """Shut every live worker down within its deadline and spool what is left."""
    for worker in list(_workers):
        if worker.run_at_exit:
            worker.shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
