"""google-genai integration fixtures: clients closed after each test, a frozen heap per module."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from genai_helpers import close_clients

from llmlab import integrations


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_clients()


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap() -> Iterator[None]:
    """Import every instrumented SDK once, then move that heap out of the collector's way:
    full collections otherwise take most of this module's run time."""
    integrations.instrument()
    integrations.uninstrument()
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
