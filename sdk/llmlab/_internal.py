"""llmlab's own failures inside a provider call: logged on the ``llmlab`` logger, never raised.

Code that runs inside a provider call goes through `capture_internal_exceptions()` (or calls
`log_internal_error()` from an ``except`` block): the host app never sees an llmlab bug.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from llmlab.errors import BudgetExceededError

__all__ = ["INTERNAL_ERROR", "capture_internal_exceptions", "log_internal_error",
           "run_callback"]

logger = logging.getLogger("llmlab")
#: Marks log records of errors llmlab swallowed (the test suite turns them into failures).
INTERNAL_ERROR = "llmlab_internal_error"


class _CaptureInternalExceptions:
    """Log and swallow any exception raised inside the block (the SDK contract).

    A class rather than a @contextmanager: it runs several times per provider call, and a
    generator-based context manager costs several microseconds each time.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False
        if issubclass(exc_type, BudgetExceededError):
            return False
        logger.error("llmlab: internal error (ignored; your call is unaffected)",
                     exc_info=(exc_type, exc, tb), extra={INTERNAL_ERROR: True})  # type: ignore[arg-type]
        return True


_CAPTURE = _CaptureInternalExceptions()


def capture_internal_exceptions() -> _CaptureInternalExceptions:
    """Log and swallow any exception raised inside the ``with`` block (the SDK contract)."""
    return _CAPTURE


def log_internal_error() -> None:
    """Log the exception being handled as one of llmlab's own (swallowed) failures."""
    logger.error("llmlab: internal error (ignored; your call is unaffected)", exc_info=True,
                 extra={INTERNAL_ERROR: True})


def run_callback(callback: Callable[[Any], None], value: Any) -> None:
    """Call a user callback; its failure is the user's bug, logged and never raised."""
    try:
        callback(value)
    except Exception:
        logger.exception("llmlab: callback %r raised (ignored)", callback)
