"""`llmlab._worker`: when `submit()` wakes the delivery thread, and when it appends without
the lock (`Worker._free_limit`)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from worker_helpers import FAST, BlockingTransport

from llmlab._worker import Worker
from llmlab.testing._capture_server import make_events
from llmlab.transport import SendResult, Transport

#: A batch of 10 in a queue of 1,000: the pause mark is at 250.
SMALL: dict[str, Any] = {**FAST, "queue_size": 1000, "batch_size": 10}


class Refusing(Transport):
    """A server never reached: the worker enters an outage."""

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        return SendResult(retry=True, error="unreachable")


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The queue's length at each submit that took the worker's lock."""
    sizes: list[int] = []
    original = Worker._submit_locked

    def noting(self: Worker, event: Any) -> bool:
        sizes.append(len(self._queue))
        return original(self, event)

    monkeypatch.setattr(Worker, "_submit_locked", noting)
    return sizes


def test_while_the_worker_takes_batches_a_submit_takes_no_lock(locked: list[int]) -> None:
    """Once the delivery thread is woken for a batch, the submits after it append without
    the lock (it takes the next batch without being woken again), up to the pause mark;
    and none of those events waits for the flush interval."""
    transport = BlockingTransport()
    worker = Worker(transport, spool=None, **{**SMALL, "flush_interval": 60.0})
    events = make_events(210, "busy")
    try:
        [worker.submit(event) for event in events[:10]]  # the first wakes the thread; the tenth a batch
        assert transport.entered.wait(5)
        assert locked == [0, 9]
        assert all([worker.submit(event) for event in events[10:]])
        # 200 more below the pause mark (249): only the one into the emptied queue locks.
        assert locked == [0, 9, 0]
        transport.release.set()
        deadline = time.monotonic() + 5  # far less than the 60 s flush interval
        while len(transport.ids) < 210 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(transport.ids) == sorted(event["id"] for event in events)
    finally:
        transport.release.set()
        worker.shutdown(timeout=2)


def test_during_an_outage_each_submit_past_a_batch_wakes_the_worker(
        locked: list[int]) -> None:
    """With the server down the spill thread must hear of the queue's growth: every submit
    past a batch takes the lock again."""
    worker = Worker(Refusing(), spool=None, **{**SMALL, "max_retries": 0,
                                               "backoff_max": 60.0})
    try:
        worker.submit(make_events(1, "first")[0])
        assert worker.flush(0.5) is False  # the outage has begun
        locked.clear()
        assert all([worker.submit(event) for event in make_events(50, "held")])
        assert len([size for size in locked if size >= 9]) >= 40
    finally:
        worker.shutdown(timeout=0.5)
