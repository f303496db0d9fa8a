"""`llmlab._worker`: every event reaches a real local server exactly once, whatever it does.

Counting is always by id at the server (`CaptureServer.arrivals`), so a resend that the server
deduplicated still shows up as a second arrival here.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing._capture_server import CaptureServer, make_event, make_events
from llmlab.transport import HTTPTransport, InMemoryTransport, SendResult, Transport

KEY = "llm_test_key"
#: Tiny delays so retry paths run in milliseconds.
FAST: dict[str, Any] = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.05,
                        "atexit": False, "handle_sigterm": False}

MakeWorker = Callable[..., Worker]


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer(api_key=KEY) as capture:
        yield capture


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def make_worker(server: CaptureServer, spool_dir: Path) -> Iterator[MakeWorker]:
    """Build workers against the capture server (by default) and always shut them down."""
    made: list[Worker] = []

    def make(transport: Transport | None = None, *, key: str = KEY, spool: bool = True,
             timeout: float = 2.0, **options: Any) -> Worker:
        worker = Worker(transport or HTTPTransport(server.url, key, timeout=timeout),
                        spool=Spool(spool_dir) if spool else None, **{**FAST, **options})
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.shutdown(timeout=0.5)


def assert_exactly_once(server: CaptureServer, events: list[dict[str, Any]]) -> None:
    arrivals = server.arrivals
    assert {e["id"] for e in events} <= set(arrivals)
    assert {e["id"]: arrivals[e["id"]] for e in events if arrivals[e["id"]] != 1} == {}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout)


class BlockingTransport(Transport):
    """A transport that holds every send until released: a worker stuck on the network."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        self.entered.set()
        self.release.wait(10)
        return SendResult.all_accepted(events)


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


class TestRetries:
    def test_server_errors_are_retried_then_delivered_once(self, server: CaptureServer,
                                                           make_worker: MakeWorker) -> None:
        """Two 500s are retried with backoff; the batch then lands once."""
        server.fail_next(2, 500)
        worker = make_worker()
        events = make_events(5)
        for event in events:
            worker.submit(event)
        assert worker.flush(5)
        assert_exactly_once(server, events)
        assert worker.stats()["retried"] == 2

    def test_retry_after_is_honoured(self, server: CaptureServer,
                                     make_worker: MakeWorker) -> None:
        """A 429 with ``Retry-After`` delays the next attempt at least that long."""
        server.fail_next(1, 429, retry_after=0.3)
        worker = make_worker()
        started = time.monotonic()
        worker.submit(make_event())
        assert worker.flush(5)
        assert time.monotonic() - started >= 0.3

    def test_connection_reset_is_retried(self, server: CaptureServer,
                                         make_worker: MakeWorker) -> None:
        """A connection reset mid-request is retried and the events land once."""
        server.set_mode("reset", times=2)
        worker = make_worker()
        events = make_events(10)
        for event in events:
            worker.submit(event)
        assert worker.flush(5)
        assert_exactly_once(server, events)

    def test_slow_server_still_delivers(self, server: CaptureServer,
                                        make_worker: MakeWorker) -> None:
        """A slow (but answering) server only delays delivery."""
        server.set_mode("slow", delay=0.2, times=1)
        worker = make_worker()
        worker.submit(make_event())
        assert worker.flush(5)

    def test_short_outage_is_bridged_by_retries(self, server: CaptureServer,
                                                make_worker: MakeWorker) -> None:
        """A server down for less than the retry budget loses nothing and spools nothing."""
        server.down()
        worker = make_worker(backoff_initial=0.05, backoff_max=0.2, max_retries=8)
        events = make_events(20)
        for event in events:
            worker.submit(event)
        time.sleep(0.2)
        server.up()
        assert worker.flush(5)
        assert_exactly_once(server, events)
        assert worker.stats()["spooled"] == 0

    def test_long_outage_spools_then_replays_once(self, server: CaptureServer,
                                                  make_worker: MakeWorker) -> None:
        """Past the retry budget batches go to disk; when the server is back they land once."""
        server.down()
        worker = make_worker(max_retries=2)
        events = make_events(30)
        for event in events:
            worker.submit(event)
        assert worker.flush(1) is False
        assert worker.stats()["spooled"] == 30
        server.up()
        assert server.wait_for(30, timeout=5)
        assert_exactly_once(server, events)
        assert wait_until(lambda: worker.stats()["spool_events"] == 0)

    def test_outage_memory_is_bounded_by_spilling(self, server: CaptureServer,
                                                  make_worker: MakeWorker) -> None:
        """During an outage the queue stays under its cap and events spill to disk, not drop."""
        server.down()
        worker = make_worker(queue_size=500, batch_size=50, max_retries=3)
        worker.submit(make_event())
        assert wait_until(lambda: worker.stats()["retried"] >= 1)  # the outage has been seen
        peak = 0
        for n, event in enumerate(make_events(2000)):
            assert worker.submit(event)
            if n % 50 == 0:
                peak = max(peak, worker.stats()["queued"])
                time.sleep(0.01)  # 5,000 events/s, far above a real LLM call rate
        worker.shutdown(2)
        stats = worker.stats()
        assert peak <= 500 and stats["dropped"] == 0
        assert stats["spooled"] == stats["spool_events"] == 2001

    def test_a_stuck_worker_spills_instead_of_dropping(self, server: CaptureServer,
                                                       make_worker: MakeWorker) -> None:
        """While a request hangs on a black-holed server the queue spills to disk, not drops."""
        server.set_mode("blackhole")
        worker = make_worker(timeout=10.0, queue_size=600, batch_size=50)
        for event in make_events(50, "first"):
            worker.submit(event)
        assert wait_until(lambda: bool(server.requests))
        later = make_events(900, "later")
        for n in range(0, 900, 50):
            assert all(worker.submit(e) for e in later[n:n + 50])
            time.sleep(0.1)
        stats = worker.stats()
        assert stats["dropped"] == 0 and stats["queued"] <= 600 and stats["spooled"] >= 300

    def test_no_spool_holds_events_in_memory_until_recovery(self, server: CaptureServer,
                                                            make_worker: MakeWorker) -> None:
        """Without a spool an outage keeps events queued (bounded) and delivers them later."""
        server.down()
        worker = make_worker(spool=False, max_retries=1)
        events = make_events(20)
        for event in events:
            worker.submit(event)
        assert worker.flush(0.5) is False
        server.up()
        assert worker.flush(5)
        assert_exactly_once(server, events)


class TestPerEventResults:
    def test_rejected_events_are_counted_and_not_retried(self, server: CaptureServer,
                                                         make_worker: MakeWorker,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
        """A per-event rejection is logged with its reason, counted, and never sent again."""
        events = make_events(4)
        server.reject_ids = {events[0]["id"]}
        worker = make_worker()
        for event in events:
            worker.submit(event)
        assert worker.flush(5)
        assert worker.stats()["rejected"] == 1 and worker.stats()["sent"] == 3
        sent_ids = [e["id"] for r in server.requests for e in r.events]
        assert sent_ids.count(events[0]["id"]) == 1
        assert "invalid_event" in caplog.text

    def test_duplicates_count_as_delivered(self, server: CaptureServer,
                                           make_worker: MakeWorker) -> None:
        """An id the server already has is a duplicate: delivered, not an error."""
        worker = make_worker()
        event = make_event()
        worker.submit(event)
        worker.submit(dict(event))
        assert worker.flush(5)
        stats = worker.stats()
        assert (stats["sent"], stats["duplicates"], stats["rejected"]) == (1, 1, 0)

    def test_too_large_batches_are_split(self, server: CaptureServer,
                                         make_worker: MakeWorker) -> None:
        """A 413 splits the batch in halves until the pieces fit; all events land once."""
        server.max_body_bytes = 3000  # a few gzip'd events per request at most
        worker = make_worker(batch_size=64)
        events = [make_event(function=os.urandom(200).hex()) for _ in range(64)]
        for event in events:
            worker.submit(event)
        assert worker.flush(5)
        assert any(r.status == 413 for r in server.requests)
        assert_exactly_once(server, events)

    def test_an_event_too_large_alone_is_rejected(self, server: CaptureServer,
                                                  make_worker: MakeWorker) -> None:
        """One event the server will never take is rejected; its neighbours still land."""
        server.max_body_bytes = 3000
        worker = make_worker()
        big = make_event(function=os.urandom(4000).hex())
        small = make_events(3)
        for event in [big, *small]:
            worker.submit(event)
        assert worker.flush(5)
        assert worker.stats()["rejected"] == 1
        assert_exactly_once(server, small)


class TestAuthFailure:
    def test_bad_key_keeps_events_for_a_fixed_key(self, server: CaptureServer,
                                                  make_worker: MakeWorker,
                                                  caplog: pytest.LogCaptureFixture) -> None:
        """401 is logged once, events are spooled (not dropped), and a fixed key delivers them."""
        worker = make_worker(key="wrong", batch_size=5)
        events = make_events(15)
        with caplog.at_level(logging.ERROR, logger="llmlab"):
            for event in events:
                worker.submit(event)
            worker.flush(1)
            worker.shutdown(1)
        assert server.ids == set()
        assert worker.stats()["spool_events"] == 15 and worker.stats()["dropped"] == 0
        assert len([r for r in caplog.records if "API key" in r.getMessage()]) == 1
        fixed = make_worker()
        assert wait_until(lambda: fixed.stats()["spool_events"] == 0)
        assert_exactly_once(server, events)


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


WORKER_SCRIPT = """
import os, sys, time
from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing._capture_server import make_events
from llmlab.transport import HTTPTransport
url, spool_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
worker = Worker(HTTPTransport(url, "{key}", timeout=1), spool=Spool(spool_dir),
                backoff_initial=0.005, backoff_max=0.05, shutdown_timeout=1.0,
                flush_interval=30, batch_size=1000, handle_sigterm=(mode == "sigterm"))
"""


class TestProcessExit:
    def script(self, body: str) -> str:
        return WORKER_SCRIPT.format(key=KEY) + textwrap.dedent(body)

    def test_exit_while_down_leaves_a_spool_the_next_process_delivers(
            self, server: CaptureServer, spool_dir: Path) -> None:
        """A process exiting normally while the server is down spools its queue at exit;
        the next process replays it and every event lands once."""
        server.down()
        produce = self.script("""
            for event in make_events(50, "proc"):
                worker.submit(event)
        """)
        result = run_python(produce, server.url, str(spool_dir), "exit")
        assert result.returncode == 0, result.stderr
        assert Spool(spool_dir).pending()[1] == 50
        server.up()
        replay = self.script("""
            deadline = time.monotonic() + 10
            while worker.stats()["spool_events"] and time.monotonic() < deadline:
                time.sleep(0.02)
            print(worker.stats()["sent"])
        """)
        result = run_python(replay, server.url, str(spool_dir), "replay")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "50"
        assert_exactly_once(server, make_events(50, "proc"))

    @pytest.mark.parametrize("flush", [True, False])
    def test_os_exit_loses_the_queue_unless_flushed(self, server: CaptureServer,
                                                    spool_dir: Path, flush: bool) -> None:
        """``os._exit`` skips atexit: queued events are lost unless flush() ran first."""
        body = self.script(f"""
            for event in make_events(20, "celery"):
                worker.submit(event)
            if {flush}:
                assert worker.flush(5)
            os._exit(0)
        """)
        result = run_python(body, server.url, str(spool_dir), "exit")
        assert result.returncode == 0, result.stderr
        assert len(server.ids) == (20 if flush else 0)

    def test_sigterm_spools_and_keeps_the_default_exit(self, server: CaptureServer,
                                                       spool_dir: Path) -> None:
        """On SIGTERM the queue is spooled, then the process still dies of SIGTERM."""
        server.down()
        body = self.script("""
            for event in make_events(30, "term"):
                worker.submit(event)
            print("ready", flush=True)
            time.sleep(30)
        """)
        self._terminate(body, server, spool_dir, expect=-signal.SIGTERM)

    def test_sigterm_chains_to_the_hosts_handler(self, server: CaptureServer,
                                                 spool_dir: Path) -> None:
        """A handler installed before llmlab still runs after the queue is spooled."""
        server.down()
        body = textwrap.dedent("""
            import signal, sys
            signal.signal(signal.SIGTERM, lambda *a: (print("host", flush=True), sys.exit(3)))
        """) + self.script("""
            for event in make_events(30, "term"):
                worker.submit(event)
            print("ready", flush=True)
            time.sleep(30)
        """)
        out = self._terminate(body, server, spool_dir, expect=3)
        assert "host" in out

    def test_sigterm_during_a_shutdown_lets_it_finish_spooling(self, server: CaptureServer,
                                                               spool_dir: Path) -> None:
        """A SIGTERM that interrupts a shutdown already running (atexit, llmlab.shutdown())
        waits for it to spool the queue, then kills the process as before (it used to kill
        it at once: nothing was spooled)."""
        server.mode = "blackhole"  # the batch in flight never gets an answer
        body = self.script("""
            import signal, threading
            for event in make_events(30, "term"):
                worker.submit(event)
            worker.flush(0.3)  # the batch is now in flight, black-holed
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
            print("ready", flush=True)
            worker.shutdown(timeout=3)  # the signal lands while this joins the worker
            time.sleep(30)  # not reached: the deferred SIGTERM kills the process
        """)
        self._terminate(body, server, spool_dir, expect=-signal.SIGTERM, send=False)

    def _terminate(self, body: str, server: CaptureServer, spool_dir: Path,
                   expect: int, send: bool = True) -> str:
        proc = subprocess.Popen([sys.executable, "-c", body, server.url, str(spool_dir),
                                 "sigterm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        if send:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == expect, err
        assert Spool(spool_dir).pending()[1] == 30
        return out
