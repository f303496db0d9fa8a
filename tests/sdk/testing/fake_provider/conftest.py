"""FakeProvider test fixtures: one server per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_provider_helpers import TEXT, USAGE

from llmlab.testing._fake_provider import (
    FakeProvider,
    fake_provider,
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProvider]:
    yield from fake_provider(usage=USAGE, text=TEXT, stream_chunks=4)


@pytest.fixture
def fp(server: FakeProvider) -> FakeProvider:
    server.reset()
    return server
