"""`llmlab._worker` submit and delivery: every event reaches a real local server exactly once.

Counting is always by id at the server (`CaptureServer.arrivals`), so a resend that the server
deduplicated still shows up as a second arrival here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from pathlib import Path

from worker_helpers import BlockingTransport, MakeWorker, assert_exactly_once, wait_until

from llmlab._worker import Worker
from llmlab.testing._capture_server import CaptureServer, make_event, make_events
from llmlab.transport import InMemoryTransport


class TestSubmit:
    def test_submit_accepts_and_delivers(self, server: CaptureServer,
                                         make_worker: MakeWorker) -> None:
        """A submitted event is shipped and counted as sent."""
        worker = make_worker()
        event = make_event()
        assert worker.submit(event) is True
        assert worker.flush(5) is True
        assert server.ids == {event["id"]} and worker.stats()["sent"] == 1

    def test_submit_never_raises_on_bad_events(self, make_worker: MakeWorker) -> None:
        """Events that can never be sent are rejected and counted, never raised to the caller."""
        worker = make_worker()
        for bad in (None, {"no": "id"}, {"id": "x", "value": object()}, {"id": "y", "n": 1e999}):
            worker.submit(bad)  # type: ignore[arg-type]
        worker.flush(5)
        assert worker.stats()["rejected"] == 4

    def test_text_utf8_cannot_hold_does_not_stop_its_batch(self, server: CaptureServer,
                                                          make_worker: MakeWorker) -> None:
        """A lone surrogate (a name decoded from bad bytes with os.fsdecode) is sent as "?":
        the event and the five around it arrive (the whole batch used to be lost)."""
        worker = make_worker()
        events = [*make_events(5), make_event(user_id=os.fsdecode(b"bob\xff"))]
        for event in events:
            worker.submit(event)
        assert worker.flush(5) is True
        assert server.ids == {e["id"] for e in events} and worker.stats()["sent"] == 6
        assert {e["user_id"] for e in server.events if e["id"] == events[-1]["id"]} == {"bob?"}

    def test_a_redirect_keeps_the_events_on_disk(self, server: CaptureServer,
                                                 make_worker: MakeWorker,
                                                 spool_dir: Path) -> None:
        """An answer that says nothing about the events (here a 308 the SDK does not follow)
        keeps them in the spool: none is counted as rejected (all were, and were lost)."""
        server.fail_next(100, 308)
        worker = make_worker()
        events = make_events(4)
        for event in events:
            worker.submit(event)
        worker.flush(2)
        worker.shutdown(timeout=2)
        assert worker.stats()["rejected"] == 0
        spooled = {json.loads(line)["id"] for f in spool_dir.glob("*.jsonl")
                   for line in f.read_text().splitlines()}
        assert spooled == {e["id"] for e in events}

    def test_an_append_racing_the_shutdown_drain_is_taken_or_counted(self) -> None:
        """A lock-free submit() whose append lands just after shutdown() emptied the queue
        is found by `_appended` and counted as dropped (its event used to be cleared away
        while submit() returned True)."""
        late = make_event()

        class RacyQueue(deque):  # type: ignore[type-arg]
            armed = True

            def __bool__(self) -> bool:
                if self.armed and not len(self):
                    self.armed = False
                    deque.append(self, late)  # the racing append, once the drain saw "empty"
                    return False
                return len(self) > 0

        worker = Worker(InMemoryTransport(), atexit=False, handle_sigterm=False)
        worker._queue = RacyQueue()
        worker.shutdown(timeout=1)
        assert worker._appended(late) is False  # what submit() does after seeing _closed
        assert not worker._queue and worker.stats()["dropped"] == 1

    def test_full_queue_drops_and_counts(self, make_worker: MakeWorker) -> None:
        """With the worker stuck and no spool, a full queue makes submit return False and count."""
        transport = BlockingTransport()
        worker = make_worker(transport, spool=False, queue_size=10, batch_size=1)
        worker.submit(make_event())
        assert transport.entered.wait(5)
        results = [worker.submit(make_event()) for _ in range(25)]
        assert results.count(True) == 10
        assert worker.stats()["dropped"] == 15 and worker.stats()["queued"] == 10
        transport.release.set()

    def test_submit_does_not_wait_on_a_black_holed_server(self, server: CaptureServer,
                                                          make_worker: MakeWorker) -> None:
        """While the worker waits on a server that never answers, submit stays instant."""
        server.set_mode("blackhole")
        worker = make_worker(timeout=5.0, batch_size=10, queue_size=100_000)
        for event in make_events(10, "first"):
            worker.submit(event)
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.requests, "the worker should be stuck in a request"
        durations = []
        for event in make_events(5000, "later"):
            started = time.perf_counter()
            assert worker.submit(event)
            durations.append(time.perf_counter() - started)
        durations.sort()
        # Generous bounds: these only fail if submit waited for the network (seconds).
        assert sum(durations) < 1.0 and durations[int(len(durations) * 0.99)] < 0.005
        assert worker.stats()["queued"] >= 4900


class TestDelivery:
    def test_every_event_arrives_exactly_once(self, server: CaptureServer,
                                              make_worker: MakeWorker) -> None:
        """Events from several threads all arrive, each id exactly once."""
        worker = make_worker(batch_size=50)
        batches = [make_events(500, f"t{n}") for n in range(4)]
        threads = [threading.Thread(target=lambda b=b: [worker.submit(e) for e in b])
                   for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert worker.flush(10)
        assert_exactly_once(server, [e for b in batches for e in b])
        assert worker.stats()["sent"] == 2000

    def test_batches_respect_the_count_limit(self, server: CaptureServer,
                                             make_worker: MakeWorker) -> None:
        """No request carries more than ``batch_size`` events."""
        worker = make_worker(batch_size=30)
        for event in make_events(200):
            worker.submit(event)
        assert worker.flush(5)
        assert max(len(r.events) for r in server.requests) <= 30

    def test_batches_respect_the_byte_limit(self, server: CaptureServer,
                                            make_worker: MakeWorker) -> None:
        """Requests are cut before ``batch_bytes`` of encoded events."""
        worker = make_worker(batch_bytes=4096)
        events = [make_event(function="x" * 200) for _ in range(60)]
        for event in events:
            worker.submit(event)
        assert worker.flush(5)
        assert len(server.requests) >= 4 and all(len(r.events) < 60 for r in server.requests)
        assert_exactly_once(server, events)

    def test_partial_batch_goes_after_the_flush_interval(self, server: CaptureServer,
                                                        make_worker: MakeWorker) -> None:
        """A few events are sent on the timer, without a flush()."""
        worker = make_worker(flush_interval=0.1)
        for event in make_events(3):
            worker.submit(event)
        assert server.wait_for(3, timeout=3)
        assert wait_until(lambda: worker.stats()["sent"] == 3)

    def test_delivery_does_not_need_the_callers_event_loop(self, server: CaptureServer,
                                                           make_worker: MakeWorker) -> None:
        """Events submitted inside a running asyncio loop are shipped by the worker thread."""
        import asyncio

        worker = make_worker()

        async def produce() -> None:
            for event in make_events(5):
                worker.submit(event)

        asyncio.run(produce())  # the loop is gone before delivery happens
        assert server.wait_for(5, timeout=3)
