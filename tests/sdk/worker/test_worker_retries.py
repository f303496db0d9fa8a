"""`llmlab._worker` against a failing server: retries, per-event results, auth failures.

Counting is by id at the server (`CaptureServer.arrivals`), so a deduplicated resend still
shows up as a second arrival here.
"""

from __future__ import annotations

import logging
import os
import time

import pytest
from worker_helpers import MakeWorker, assert_exactly_once, wait_until

from llmlab.testing._capture_server import CaptureServer, make_event, make_events


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
