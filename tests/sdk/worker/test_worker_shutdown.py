"""`llmlab._worker` flush, shutdown and fork: nothing lost, nothing sent twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from worker_helpers import MakeWorker, assert_exactly_once

from llmlab._spool import Spool
from llmlab.testing._capture_server import CaptureServer, make_event, make_events
from llmlab.transport import InMemoryTransport


class TestFlushAndShutdown:
    def test_flush_with_nothing_queued_is_immediate(self, make_worker: MakeWorker) -> None:
        """flush() on an idle worker returns True at once."""
        started = time.monotonic()
        assert make_worker().flush(5) and time.monotonic() - started < 0.1

    def test_flush_and_shutdown_keep_their_deadline_on_a_black_hole(
            self, server: CaptureServer, make_worker: MakeWorker, spool_dir: Path) -> None:
        """Against a server that never answers, flush and shutdown return on time and the
        in-flight and queued events end up in the spool, which a later worker delivers once."""
        server.set_mode("blackhole")
        worker = make_worker(timeout=10.0, batch_size=10)
        events = make_events(25)
        for event in events:
            worker.submit(event)
        started = time.monotonic()
        assert worker.flush(0.3) is False
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        assert worker.shutdown(0.5) is False
        assert time.monotonic() - started < 1.0
        assert Spool(spool_dir).pending()[1] == 25
        server.set_mode("ok")
        make_worker()
        assert server.wait_for(25, timeout=5)
        assert_exactly_once(server, events)

    def test_submit_after_shutdown_is_refused(self, make_worker: MakeWorker) -> None:
        """After shutdown() submit returns False and counts a drop; shutdown is idempotent."""
        worker = make_worker(transport=InMemoryTransport())
        assert worker.shutdown(1) is True
        assert worker.submit(make_event()) is False
        assert worker.stats()["dropped"] == 1
        assert worker.shutdown(1) is True

    def test_submits_racing_shutdown_are_all_accounted_for(self, spool_dir: Path,
                                                           make_worker: MakeWorker) -> None:
        """Threads submitting while shutdown() runs: each event submit() accepted is delivered
        or spooled, each it refused is counted as dropped, none vanishes."""
        transport = InMemoryTransport()
        worker = make_worker(transport=transport, flush_interval=30, batch_size=1000)
        batches = [make_events(3000, f"r{n}") for n in range(3)]
        accepted: list[list[str]] = [[] for _ in batches]
        started = threading.Barrier(len(batches) + 1)

        def submit_all(n: int) -> None:
            started.wait()
            accepted[n] = [e["id"] for e in batches[n] if worker.submit(e)]

        threads = [threading.Thread(target=submit_all, args=(n,)) for n in range(len(batches))]
        for thread in threads:
            thread.start()
        started.wait()
        time.sleep(0.002)
        worker.shutdown(5)
        for thread in threads:
            thread.join()
        delivered = {e["id"] for batch in transport.batches for e in batch}
        spooled: set[str] = set()
        while (claimed := Spool(spool_dir).claim()) is not None:
            spooled |= {e["id"] for e in claimed.events}
        ok = {event_id for ids in accepted for event_id in ids}
        refused = sum(len(b) for b in batches) - len(ok)
        assert ok <= delivered | spooled
        assert worker.stats()["dropped"] == refused
        assert not worker.stats()["queued"]

    def test_an_append_that_missed_the_final_drain_is_taken_back(
            self, make_worker: MakeWorker) -> None:
        """The lock-free append of submit() lost the race with shutdown()'s final drain: the
        event is taken back out of the queue and counted as dropped, never left behind."""
        worker = make_worker(transport=InMemoryTransport())
        assert worker.submit(make_event())
        assert worker.shutdown(1)
        late = make_event()
        worker._queue.append(late)  # what submit() did after its check, before seeing _closed
        assert worker._appended(late) is False
        assert late not in worker._queue and worker.stats()["dropped"] == 1

    def test_shutdown_delivers_what_is_queued(self, server: CaptureServer,
                                              make_worker: MakeWorker) -> None:
        """shutdown() sends queued events before stopping when the server is up."""
        worker = make_worker(flush_interval=30, batch_size=1000)
        events = make_events(40)
        for event in events:
            worker.submit(event)
        assert worker.shutdown(5) is True
        assert_exactly_once(server, events)

    def test_stats_has_every_counter(self, make_worker: MakeWorker) -> None:
        """stats() reports the documented counters."""
        assert {"queued", "in_flight", "sent", "duplicates", "retried", "spooled", "replayed",
                "rejected", "dropped", "spool_files", "spool_events",
                "spool_dropped_total"} <= set(make_worker().stats())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestFork:
    def test_child_sends_its_own_events_and_never_the_parents(self, server: CaptureServer,
                                                              make_worker: MakeWorker) -> None:
        """A forked child gets a fresh worker: it delivers its events, the parent's buffered
        events are delivered once, by the parent."""
        worker = make_worker(flush_interval=30, batch_size=1000)
        parent_events = make_events(10, "parent")
        for event in parent_events:
            worker.submit(event)
        child_events = make_events(5, "child")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                ok = all(worker.submit(e) for e in child_events) and worker.flush(5)
                stats = worker.stats()
                code = 0 if ok and stats["sent"] == 5 and stats["queued"] == 0 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert worker.flush(5)
        assert_exactly_once(server, parent_events + child_events)
        assert len(server.ids) == 15

    def test_a_spool_lock_held_at_the_fork_does_not_hang_the_child(
            self, make_worker: MakeWorker) -> None:
        """Another thread held the spool's lock when the process forked: the child gets a
        lock of its own and can spool (its shutdown used to block the host for good)."""
        worker = make_worker(transport=InMemoryTransport())
        assert worker.spool is not None
        with worker.spool._lock:  # held across the fork, as by a thread of the parent
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    signal.alarm(5)  # a deadlock ends the child instead of the test run
                    code = 0 if worker.spool.write(['{"id": "child"}']) == 1 else 1
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
