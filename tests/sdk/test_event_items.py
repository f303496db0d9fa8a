"""`llmlab._event_items`: each queued event is built and encoded once, with one id, whatever
the batching does to it (a batch cut at ``batch_bytes``, a stuck batch that `shutdown()` takes
over and spools)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from llmlab._event_items import SETTLED, Item, encode, encode_all
from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.schema import new_event_id
from llmlab.testing._capture_server import make_event
from llmlab.transport import InMemoryTransport, SendResult, Transport

QUIET: dict[str, Any] = {"flush_interval": 0.05, "atexit": False, "handle_sigterm": False}


class Builds:
    """Deferred events (as the tracker queues them) whose builds are counted per record."""

    def __init__(self) -> None:
        self.count: Counter[int] = Counter()
        self._lock = threading.Lock()

    def record(self, n: int) -> tuple[Any, ...]:
        return (self._build, n)

    def _build(self, record: tuple[Any, ...]) -> dict[str, Any]:
        # A fresh id per build, as the tracker's builders make: a second build is a second event.
        with self._lock:
            self.count[record[1]] += 1
        return make_event(new_event_id(), job_id=f"record-{record[1]}", tags={"pad": "x" * 300})


def test_a_batch_cut_at_the_byte_limit_builds_each_event_once() -> None:
    """Events put back after a batch is cut at ``batch_bytes`` keep their wire form: one
    build (so one budget count) and one id each, all delivered once."""
    builds, transport = Builds(), InMemoryTransport()
    worker = Worker(transport, batch_size=50, batch_bytes=1024, **QUIET)
    try:
        for n in range(40):
            worker.submit(builds.record(n))
        assert worker.flush(10) is True
    finally:
        worker.shutdown(timeout=1)
    sent = [event for batch in transport.batches for event in batch]
    assert len(transport.batches) > 1  # the byte limit did cut
    assert builds.count == dict.fromkeys(range(40), 1)
    assert len(sent) == len({e["id"] for e in sent}) == 40
    assert worker.stats()["sent"] == 40


class Stuck(Transport):
    """Holds every send until released: a request hanging on the network."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        self.seen.extend(e["id"] for e in events)
        self.entered.set()
        self.release.wait(10)
        return SendResult(retry=True, error="hung")


def test_a_stuck_batch_taken_over_by_shutdown_keeps_its_ids(tmp_path: Path) -> None:
    """shutdown() spools a batch stuck in a hanging request as it was built: the ids on the
    wire and in the spool are the same (the server can dedupe them) and nothing is built
    twice."""
    builds, transport = Builds(), Stuck()
    worker = Worker(transport, spool=Spool(tmp_path), batch_size=10, **QUIET)
    try:
        for n in range(10):
            worker.submit(builds.record(n))
        assert transport.entered.wait(5)
        worker.shutdown(timeout=0.5)
    finally:
        transport.release.set()
    spooled = [json.loads(line)["id"] for f in tmp_path.glob("*.jsonl")
               for line in f.read_text().splitlines()]
    assert builds.count == dict.fromkeys(range(10), 1)
    assert sorted(spooled) == sorted(transport.seen) and len(set(spooled)) == 10


def test_an_item_is_its_own_encoding() -> None:
    """`encode` hands an already encoded event back as it is, and `encode_all` skips the
    placeholder of an event settled already."""
    item = encode(make_event("a"))
    assert isinstance(item, Item)
    assert encode(item) is item
    rejected: list[Any] = []
    assert encode_all([SETTLED, item], lambda event, why: rejected.append(event)) == [item]
    assert rejected == []
