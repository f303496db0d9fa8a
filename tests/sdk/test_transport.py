"""`llmlab.transport`: one attempt per batch against a real local server, classified right."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from llmlab._ledger import LedgerTransport, read_ledger
from llmlab.testing._capture_server import CaptureServer, make_event, make_events
from llmlab.transport import (
    EventResult,
    HTTPTransport,
    InMemoryTransport,
    SendResult,
    parse_retry_after,
)

KEY = "llm_test_key"


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer(api_key=KEY) as capture:
        yield capture


@pytest.fixture
def transport(server: CaptureServer) -> Iterator[HTTPTransport]:
    http = HTTPTransport(server.url, KEY, timeout=2.0)
    yield http
    http.close()


class TestHTTPTransportSuccess:
    def test_accepts_batch_with_gzip_and_bearer(self, server: CaptureServer,
                                                 transport: HTTPTransport) -> None:
        """A batch is POSTed gzip-compressed with the bearer key and every event is accepted."""
        events = make_events(3)
        result = transport.send(events)
        assert result.ok and result.status_code == 207
        assert {r.status for r in result.results.values()} == {"accepted"}
        assert set(result.results) == {e["id"] for e in events}
        request = server.requests[0]
        assert request.headers["content-encoding"] == "gzip"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert server.ids == {e["id"] for e in events}

    def test_reports_duplicates(self, transport: HTTPTransport) -> None:
        """An id the server already stored comes back as a duplicate, not an error."""
        event = make_event()
        transport.send([event])
        assert transport.send([event]).results[event["id"]] == EventResult("duplicate")

    def test_partial_rejection_keeps_reason_per_id(self, server: CaptureServer,
                                                   transport: HTTPTransport) -> None:
        """Per-event rejections are keyed by id and carry the server's code and message."""
        events = make_events(3)
        server.reject_ids = {events[1]["id"]}
        result = transport.send(events)
        assert result.ok
        assert result.results[events[0]["id"]].status == "accepted"
        rejected = result.results[events[1]["id"]]
        assert rejected.status == "rejected" and "invalid_event" in (rejected.reason or "")

    def test_a_rejection_carries_the_servers_code(self, server: CaptureServer,
                                                  transport: HTTPTransport) -> None:
        """A per-event rejection also carries the server's error code alone, which the
        worker counts and advises by."""
        events = make_events(2)
        server.reject_ids = {events[0]["id"]}
        assert transport.send(events).results[events[0]["id"]].code == "invalid_event"

    def test_plain_json_when_gzip_disabled(self, server: CaptureServer) -> None:
        """With ``gzip=False`` the body goes uncompressed."""
        http = HTTPTransport(server.url, KEY, gzip=False)
        assert http.send(make_events(1)).ok
        assert "content-encoding" not in server.requests[0].headers
        http.close()

    def test_falls_back_to_plain_json_on_415(self, server: CaptureServer,
                                             transport: HTTPTransport) -> None:
        """A 415 (gzip refused) makes the transport resend uncompressed, and stay so."""
        server.fail_next(1, 415)
        assert transport.send(make_events(1)).ok
        assert not transport.gzip
        assert "content-encoding" not in server.requests[-1].headers


class TestHTTPTransportFailures:
    def test_server_error_is_retryable(self, server: CaptureServer,
                                       transport: HTTPTransport) -> None:
        """A 500 asks for a retry of the whole batch."""
        server.fail_next(1, 500)
        result = transport.send(make_events(2))
        assert result.retry and not result.results and result.status_code == 500

    def test_429_carries_retry_after(self, server: CaptureServer,
                                     transport: HTTPTransport) -> None:
        """A 429 is retryable and its Retry-After becomes the hint."""
        server.fail_next(1, 429, retry_after=7)
        result = transport.send(make_events(1))
        assert result.retry and result.retry_after == 7.0

    def test_413_asks_for_a_split(self, server: CaptureServer, transport: HTTPTransport) -> None:
        """A body over the server's limit asks the worker to split the batch."""
        server.max_body_bytes = 10
        result = transport.send(make_events(4))
        assert result.split and not result.retry

    def test_413_for_one_event_rejects_it(self, server: CaptureServer,
                                          transport: HTTPTransport) -> None:
        """A single event too big to ever pass is rejected, not retried."""
        server.max_body_bytes = 10
        event = make_event()
        assert transport.send([event]).results[event["id"]].status == "rejected"

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_failure_holds(self, server: CaptureServer, status: int) -> None:
        """401/403 mean "keep the events for a fixed key", neither retry nor reject."""
        http = HTTPTransport(server.url, "wrong-key")
        if status == 403:
            server.fail_next(1, 403)
        result = http.send(make_events(1))
        assert result.hold and not result.retry and not result.results
        http.close()

    def test_a_refused_key_carries_the_servers_code(self, server: CaptureServer) -> None:
        """A 401 hold carries the error code (``invalid_api_key``) that picks the fix the
        worker logs."""
        http = HTTPTransport(server.url, "wrong-key")
        result = http.send(make_events(1))
        assert result.hold and (result.status_code, result.code) == (401, "invalid_api_key")
        http.close()

    def test_a_redirect_names_where_it_leads(self) -> None:
        """A redirect's Location is in the error line: it is the URL the fix needs."""
        target = "https://llmlab.example/api/events/track"

        def redirect(request: httpx.Request) -> httpx.Response:
            return httpx.Response(308, headers={"Location": target})

        http = HTTPTransport("http://llmlab.example", KEY, client_factory=lambda: httpx.Client(
            transport=httpx.MockTransport(redirect)))
        result = http.send(make_events(1))
        assert result.hold and f"HTTP 308 (redirect to {target})" == result.error

    @pytest.mark.parametrize("status", [301, 308, 404, 407, 410, 418])
    def test_other_statuses_hold_the_batch(self, server: CaptureServer,
                                           transport: HTTPTransport, status: int) -> None:
        """A redirect (never followed), a proxy's 407 or any status the server does not use
        for bad events keeps the whole batch for later: neither split nor rejected (every
        event used to end up rejected, one by one, and was lost)."""
        server.fail_next(1, status)
        result = transport.send(make_events(3))
        assert result.hold and not result.split and not result.retry and not result.results

    def test_connection_refused_is_retryable(self, server: CaptureServer) -> None:
        """A server that is not listening gives a retryable connection error."""
        server.down()
        http = HTTPTransport(server.url, KEY)
        result = http.send(make_events(1))
        assert result.retry and result.status_code is None and "Connect" in (result.error or "")
        http.close()

    def test_connection_reset_is_retryable(self, server: CaptureServer,
                                           transport: HTTPTransport) -> None:
        """A connection reset mid-request is retryable."""
        server.set_mode("reset", times=1)
        assert transport.send(make_events(1)).retry

    def test_black_hole_times_out_retryably(self, server: CaptureServer) -> None:
        """A server that never answers costs at most the timeout, then asks for a retry."""
        server.set_mode("blackhole")
        http = HTTPTransport(server.url, KEY, timeout=0.3)
        started = time.monotonic()
        result = http.send(make_events(1))
        assert result.retry and time.monotonic() - started < 2.0
        http.close()

    def test_unserialisable_event_is_rejected(self, transport: HTTPTransport) -> None:
        """An event json cannot encode is rejected instead of raising."""
        result = transport.send([{"id": "x", "bad": object()}])
        assert result.results["x"].status == "rejected"


class TestParseRetryAfter:
    def test_seconds(self) -> None:
        """Delta-seconds parse, fractions included."""
        assert parse_retry_after("2") == 2.0 and parse_retry_after("0.25") == 0.25

    def test_http_date(self) -> None:
        """An HTTP date becomes the seconds until then."""
        when = datetime.now(UTC) + timedelta(seconds=30)
        seconds = parse_retry_after(format_datetime(when, usegmt=True))
        assert seconds is not None and 25 <= seconds <= 31

    @pytest.mark.parametrize("value", [None, "", "soon", "nan"])
    def test_garbage_is_none(self, value: str | None) -> None:
        """Anything unparseable gives no hint."""
        assert parse_retry_after(value) is None

    def test_past_is_zero(self) -> None:
        """A negative delay is clamped to zero."""
        assert parse_retry_after("-5") == 0.0


class TestInMemoryTransport:
    def test_records_and_deduplicates(self) -> None:
        """Batches are recorded and a repeated id is reported as a duplicate."""
        memory = InMemoryTransport()
        memory.send([{"id": "a"}, {"id": "b"}])
        assert memory.send([{"id": "a"}]).results["a"].status == "duplicate"
        assert [e["id"] for e in memory.events] == ["a", "b"] and len(memory.batches) == 2

    def test_fails_on_demand_and_rejects(self) -> None:
        """``fail_next`` and ``reject`` drive the failure paths."""
        memory = InMemoryTransport()
        memory.fail_next(1, SendResult(hold=True))
        memory.reject["b"] = "bad"
        assert memory.send([{"id": "a"}]).hold
        assert memory.send([{"id": "b"}]).results["b"] == EventResult("rejected", "bad")

    def test_a_rejection_reason_names_its_code(self) -> None:
        """A ``reject`` reason written ``"code: message"`` sets the result's code, as the
        server's rejections do."""
        memory = InMemoryTransport()
        memory.reject["a"] = "project_mismatch: not this key's project"
        assert memory.send([{"id": "a"}]).results["a"].code == "project_mismatch"


class TestCaptureServer:
    def test_down_and_up_keep_the_port_and_the_store(self, server: CaptureServer,
                                                     transport: HTTPTransport) -> None:
        """Restarting the capture server keeps its URL and what it stored."""
        event = make_event()
        transport.send([event])
        port = server.port
        server.down()
        assert transport.send(make_events(1)).retry
        server.up()
        assert server.port == port
        assert transport.send([event]).results[event["id"]].status == "duplicate"


class TestLedgerTransport:
    """The local JSONL ledger (no server configured)."""

    def test_a_torn_last_line_does_not_swallow_the_next_event(self, tmp_path: Path) -> None:
        """A crash mid-append leaves a line without its newline; the next batch starts on a
        line of its own, so only the torn event is unreadable (the next one was lost too)."""
        ledger = LedgerTransport(tmp_path)
        first, second, third = make_events(3)
        ledger.send([first])
        [path] = tmp_path.glob("*.jsonl")
        with open(path, "ab") as fh:
            fh.write(b'{"id":"torn","times')  # the crash
        ledger.send([second, third])
        assert [e["id"] for e in read_ledger(tmp_path)] == [first["id"], second["id"],
                                                             third["id"]]

    def test_text_utf8_cannot_hold_is_written_as_a_question_mark(self, tmp_path: Path) -> None:
        """A lone surrogate neither fails the write nor stops the ledger."""
        ledger = LedgerTransport(tmp_path)
        event = make_event(user_id=os.fsdecode(b"bob\xff"))
        assert ledger.send([event]).results[event["id"]].status == "accepted"
        assert [e["user_id"] for e in read_ledger(tmp_path)] == ["bob?"]
