"""SDK fixtures: a fake provider, an initialised llmlab capturing events, and the SDK contract.

The autouse `fail_on_swallowed_errors` turns every error llmlab swallowed (logged with the
``llmlab_internal_error`` marker) into a test failure, as sentry-python's suite does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import llmlab
from llmlab._tracker import INTERNAL_ERROR
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


class _SwallowedErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, INTERNAL_ERROR, False):
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_swallowed_errors() -> Iterator[None]:
    """Fail the test if llmlab swallowed an internal error during it."""
    handler = _SwallowedErrors()
    logger = logging.getLogger("llmlab")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.records:
        details = "\n".join(handler.format(r) + "\n" + (handler.formatter or logging.Formatter())
                            .formatException(r.exc_info) if r.exc_info else r.getMessage()
                            for r in handler.records)
        pytest.fail(f"llmlab swallowed {len(handler.records)} internal error(s):\n{details}")


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """One FakeProvider for the session (reset before each test by `fake`)."""
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fake(fake_provider_server: FakeProvider) -> FakeProvider:
    """The session's FakeProvider, reset to its defaults."""
    fake_provider_server.reset()
    return fake_provider_server


@pytest.fixture
def events() -> Iterator[list[CostEvent]]:
    """llmlab initialised offline (no server, no ledger) with every integration patched in;
    yields the list of recorded events."""
    recorded: list[CostEvent] = []
    llmlab.init(ledger=False, on_event=recorded.append, auto_instrument=True)
    try:
        yield recorded
    finally:
        llmlab.shutdown()
        llmlab.uninstrument()
