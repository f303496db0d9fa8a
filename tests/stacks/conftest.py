"""Fixtures of the stacks suite: the libraries teams build on, driven against the fake provider.

These tests need libraries that conflict with the main environment's openai 3.x, so they run
in their own environments (``make test-stacks``): ``openai3/`` beside openai 3.x, ``openai2/``
beside the openai 2.x that LlamaIndex, Instructor and OpenLIT pin. The main suite skips this
folder (``norecursedirs`` in pyproject.toml).

Each test checks every call's exact cost and attribution, and that the provider received as
many requests as llmlab recorded events (nothing counted twice, nothing missed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import USAGE  # tests/stacks, on sys.path through this conftest

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
        pytest.fail("llmlab swallowed: " + "; ".join(r.getMessage() for r in handler.records))


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """One FakeProvider for the session."""
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fake(fake_provider_server: FakeProvider) -> FakeProvider:
    """The session's FakeProvider, reset, answering with `USAGE`."""
    fake_provider_server.reset()
    fake_provider_server.configure("openai", usage=USAGE)
    return fake_provider_server


@pytest.fixture
def events(tmp_path: Path) -> Iterator[list[CostEvent]]:
    """llmlab initialised offline, as the docs say (``init`` patches the installed SDKs);
    yields the events recorded, each priced on the calling thread."""
    recorded: list[CostEvent] = []
    llmlab.init(ledger=False, on_event=recorded.append, auto_instrument=True, home=tmp_path)
    try:
        yield recorded
    finally:
        llmlab.shutdown()
        llmlab.uninstrument()


@pytest.fixture
def doc_env(fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[FakeProvider]:
    """What a docs block runs in: a new process's llmlab (not initialised, nothing patched), a
    temporary working directory, and the provider SDKs pointed at the fake by environment."""
    llmlab.shutdown()
    llmlab.uninstrument()
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):  # the SDK's, LlamaIndex's
        monkeypatch.setenv(name, fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    try:
        yield fake
    finally:
        llmlab.shutdown()
        llmlab.uninstrument()
