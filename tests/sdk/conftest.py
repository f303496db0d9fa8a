"""SDK fixtures: a fake provider, an initialised llmlab capturing events, and the SDK contract.

The autouse `fail_on_swallowed_errors` turns every error llmlab swallowed (logged with the
``llmlab_internal_error`` marker) into a test failure, as sentry-python's suite does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmlab
from llmlab._tracker import INTERNAL_ERROR
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider
from llmlab.transport import InMemoryTransport


class _SwallowedErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, INTERNAL_ERROR, False):
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_swallowed_errors() -> Iterator[list[logging.LogRecord]]:
    """Fail the test if llmlab swallowed an internal error during it.

    A test that provokes one on purpose requests this fixture, checks the records it
    yields, and clears them.
    """
    handler = _SwallowedErrors()
    logger = logging.getLogger("llmlab")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
    if handler.records:
        details = "\n".join(handler.format(r) + "\n" + (handler.formatter or logging.Formatter())
                            .formatException(r.exc_info) if r.exc_info else r.getMessage()
                            for r in handler.records)
        pytest.fail(f"llmlab swallowed {len(handler.records)} internal error(s):\n{details}")


@pytest.fixture
def status() -> Iterator[Any]:
    """A local budget-status server (`test_budgets.StatusServer`), closed after the test."""
    from test_budgets import StatusServer

    server = StatusServer()
    yield server
    server.close()


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


class _Delivered(list[CostEvent]):
    """The events a transport received through the worker; every read flushes first, so a
    test reads them exactly as it reads the events given to ``on_event``."""

    def __init__(self, transport: InMemoryTransport) -> None:
        super().__init__()
        self._transport = transport

    def _sync(self) -> None:
        assert llmlab.flush(timeout=10), "the worker did not deliver in time"
        delivered = [CostEvent.model_validate(e) for batch in self._transport.batches
                     for e in batch]
        super().clear()
        super().extend(delivered)

    def __len__(self) -> int:
        self._sync()
        return super().__len__()

    def __iter__(self) -> Iterator[CostEvent]:
        self._sync()
        return super().__iter__()

    def __getitem__(self, index: Any) -> Any:
        self._sync()
        return super().__getitem__(index)

    def __eq__(self, other: object) -> bool:
        self._sync()
        return super().__eq__(other)

    def __repr__(self) -> str:
        self._sync()
        return super().__repr__()


@pytest.fixture(params=["immediate", "deferred"])
def events(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[CostEvent]]:
    """llmlab initialised offline with every integration patched in; yields the recorded
    events. Every test using it runs twice: "immediate" collects them with an ``on_event``
    callback (so each call is priced on the calling thread), "deferred" through the worker
    into an in-memory transport (each call outside a scope is priced on the worker)."""
    if request.param == "immediate":
        recorded: list[CostEvent] = []
        llmlab.init(ledger=False, on_event=recorded.append, auto_instrument=True, home=tmp_path)
    else:
        transport = InMemoryTransport()
        recorded = _Delivered(transport)
        llmlab.init(ledger=False, transport=transport, auto_instrument=True, home=tmp_path)
    try:
        yield recorded
    finally:
        llmlab.shutdown()
        llmlab.uninstrument()
