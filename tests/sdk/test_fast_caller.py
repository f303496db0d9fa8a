"""`llmlab._worker`: a caller that never waits loses no event, with the server up or down.

A cache, a local model or a mock answers without releasing the GIL, so the worker only runs
when the caller lets it. These tests submit far more events than the queue holds from such a
loop (the test's own thread, no sleeps) and count every event at the server or in the spool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing._capture_server import CaptureServer, make_events
from llmlab.transport import HTTPTransport, SendResult, Transport

KEY = "llm_test_key"
#: Tiny delays so retry paths run in milliseconds; a queue far smaller than the load.
SMALL: dict[str, Any] = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.05,
                         "queue_size": 100, "batch_size": 10, "atexit": False,
                         "handle_sigterm": False}


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer(api_key=KEY) as capture:
        yield capture


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def spooled_ids(spool_dir: Path) -> set[str]:
    """The ids in the spool, read again if a replay claimed or deleted a file meanwhile."""
    while True:
        try:
            return {json.loads(line)["id"] for f in spool_dir.glob("*.jsonl*")
                    for line in f.read_text().splitlines() if line.strip()}
        except FileNotFoundError:
            continue


def submit_all(worker: Worker, events: list[dict[str, Any]]) -> list[bool]:
    """Submit in a tight loop: the calling thread never waits on its own."""
    return [worker.submit(event) for event in events]


def test_a_caller_that_never_waits_loses_nothing_with_the_server_up(
        server: CaptureServer, spool_dir: Path) -> None:
    """20 times the queue's size submitted without a pause: every event reaches the server or
    the spool, none is dropped (the queue used to overflow while the worker starved)."""
    worker = Worker(HTTPTransport(server.url, KEY), spool=Spool(spool_dir), **SMALL)
    events = make_events(2000, "fast")
    try:
        assert all(submit_all(worker, events))
        worker.flush(30)
    finally:
        worker.shutdown(timeout=2)
    assert worker.stats()["dropped"] == 0
    assert server.ids | spooled_ids(spool_dir) == {e["id"] for e in events}


def test_a_caller_that_never_waits_loses_nothing_with_the_server_down(
        server: CaptureServer, spool_dir: Path) -> None:
    """With the server down the same load goes to the spool, none dropped; it is delivered,
    each event once, when the server is back."""
    server.down()
    worker = Worker(HTTPTransport(server.url, KEY), spool=Spool(spool_dir), **SMALL)
    events = make_events(2000, "fast-down")
    try:
        assert all(submit_all(worker, events))
        assert worker.flush(5) is False  # spooled: reported
        assert worker.stats()["dropped"] == 0
        assert spooled_ids(spool_dir) == {e["id"] for e in events}
        server.up()
        assert server.wait_for(len(events), timeout=30)
        assert server.ids == {e["id"] for e in events}
        assert max(server.arrivals[e["id"]] for e in events) == 1
    finally:
        worker.shutdown(timeout=2)


class _Refusing(Transport):
    """A transport that is never reached: a worker with nothing to make room with."""

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        return SendResult(retry=True, error="unreachable")


def test_a_drop_that_cannot_be_avoided_is_counted_and_warned_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """Without a spool during an outage nothing can make room: a full queue drops, counts
    every drop in stats() and logs one WARNING, not one per event."""
    worker = Worker(_Refusing(), spool=None, **{**SMALL, "max_retries": 0,
                                                "backoff_max": 60.0})
    try:
        worker.submit(make_events(1, "first")[0])
        assert worker.flush(0.5) is False  # the outage has begun: events are held in memory
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            results = submit_all(worker, make_events(20_100, "held"))
        warnings = [r for r in caplog.records
                    if r.levelno == logging.WARNING and "queue full" in r.getMessage()]
        assert results.count(False) == worker.stats()["dropped"] > 0
        assert len(warnings) == 1
    finally:
        worker.shutdown(timeout=0.5)
