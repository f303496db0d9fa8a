"""The SDK budget guard: block budgets refuse calls before they are made, spend the server
acknowledged counts once, and alerts fire once."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

import llmlab
from llmlab._budgets import BudgetAlert, BudgetGuard
from llmlab._results import ACK_LISTENERS
from llmlab._tracker import get_tracker
from llmlab._worker import Worker
from llmlab.errors import BudgetExceededError
from llmlab.schema import new_event_id
from llmlab.testing import FakeProvider, FakeUsage
from llmlab.transport import InMemoryTransport

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


class StatusServer:
    """A local llmlab-like server: GET /api/budgets/status answers what the test sets, and
    POST /api/events/track accepts every event (207 with per-event results). With
    ``count_ingested`` each budget's ``spent`` also adds the events stored so far, as the
    real server's does."""

    def __init__(self) -> None:
        self.budgets: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.ingested: list[dict[str, Any]] = []
        self.down = False
        self.count_ingested = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                budgets = outer.budgets
                if outer.count_ingested:
                    stored = sum((Decimal(e["cost"]["total"]) for e in outer.ingested),
                                 Decimal(0))
                    budgets = [{**b, "spent": str(Decimal(b["spent"]) + stored)}
                               for b in budgets]
                body = json.dumps({"success": True, "data": {"budgets": budgets},
                                   "error": None}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                events = json.loads(raw)["events"]
                outer.ingested.extend(events)
                body = json.dumps({"success": True, "error": None, "data": {
                    "accepted": len(events), "duplicates": 0, "rejected": 0,
                    "results": [{"index": i, "id": e["id"], "status": "accepted"}
                                for i, e in enumerate(events)]}}).encode()
                self.send_response(207)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def budget(**changes: Any) -> dict[str, Any]:
    """A monthly block budget of $0.01 on project support-bot, nothing spent yet."""
    return {"id": "b_1", "name": "monthly cap", "action": "block",
            "scope": {"project": "support-bot"}, "amount": "0.01", "spent": "0",
            "thresholds": [50, 80, 100], "period": "monthly",
            "period_start": "2026-11-01T00:00:00Z", "resets_at": "2026-12-01T00:00:00Z",
            **changes}


class TestGuardWithServer:
    def test_block_budget_stops_the_call_that_would_cross_it(
            self, status: StatusServer, fake: FakeProvider) -> None:
        """Spend recorded locally plus the next call's worst case passing the limit is refused,
        and the provider receives no request for it."""
        status.budgets = [budget(spent="0.006")]
        fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
        llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                    auto_instrument=["openai"], budget_refresh_interval=60)
        try:
            guard = get_tracker().budget_guard
            assert wait_for(lambda: bool(guard.budgets))  # fetched in the background
            client = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100)
            # Priced on the worker: until then its reservation (its worst case, below the
            # 1,000 prompt tokens the fake bills for "hi") counts; flushed, its real cost.
            assert llmlab.flush(5)
            with pytest.raises(BudgetExceededError) as info:
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100)
            assert llmlab.flush(5)
        finally:
            llmlab.shutdown()
        assert len(status.ingested) == 1  # the refused call was never made, so never recorded
        error = info.value
        assert (error.budget_id, error.limit) == ("b_1", Decimal("0.01"))
        assert error.spent == Decimal("0.006") + Decimal("0.0035")
        assert error.estimate > 0 and error.resets_at is not None
        assert len(fake.requests) == 1

    def test_other_projects_and_alert_budgets_do_not_block(self, status: StatusServer) -> None:
        """A budget of another project, or with action alert, never refuses a call."""
        status.budgets = [budget(scope={"project": "other"}, spent="5"),
                          budget(id="b_2", action="alert", spent="5")]
        guard = BudgetGuard(lambda: llmlab.Client("k", status.url).budget_status())
        assert guard.refresh()
        guard.check({"project": "support-bot", "model": "gpt-4o"}, lambda: Decimal("1"))

    def test_unreachable_server_keeps_the_last_status(self, status: StatusServer) -> None:
        """With the server down, the guard enforces its last known status plus local spend."""
        status.budgets = [budget(spent="0.009")]
        guard = BudgetGuard(lambda: llmlab.Client("k", status.url).budget_status())
        assert guard.refresh()
        status.down = True
        assert not guard.refresh()
        guard.record({"project": "support-bot"}, Decimal("0.0005"))
        with pytest.raises(BudgetExceededError):
            guard.check({"project": "support-bot"}, lambda: Decimal("0.001"))


class TestScopesAndAlerts:
    def test_narrow_scopes_match_only_their_calls(self) -> None:
        """Job, user, tag and model narrowing decide which calls a budget covers."""
        budgets = [budget(id="job", scope={"project": "p", "job": "nightly"}),
                   budget(id="tag", scope={"project": "p", "tag": "feature=search"}),
                   budget(id="model", scope={"project": "p", "model": "gpt-4o"})]
        guard = BudgetGuard(lambda: budgets)
        guard.refresh()
        refused = []
        for call in ({"project": "p", "job": "nightly"},
                     {"project": "p", "tags": {"feature": "search"}},
                     {"project": "p", "model": "gpt-4o"},
                     {"project": "p", "job": "other", "model": "o3", "tags": {"feature": "x"}}):
            try:
                guard.check(call, lambda: Decimal("1"))
            except BudgetExceededError as exc:
                refused.append(exc.budget_id)
            else:
                refused.append(None)
        assert refused == ["job", "tag", "model", None]

    def test_a_job_budget_counts_the_calls_of_that_job_only(
            self, status: StatusServer, fake: FakeProvider) -> None:
        """Through the tracker: calls inside `track(job=...)` count toward and are checked
        against their job's budget; calls outside it are neither."""
        status.budgets = [budget(scope={"project": "support-bot", "job": "nightly"},
                                 amount="0.004")]
        fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
        llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                    auto_instrument=["openai"], budget_refresh_interval=60)
        try:
            assert wait_for(get_tracker().budget_guard.has_budgets)
            client = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
            for _ in range(3):  # $0.0035 each, outside the job: not counted toward it
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                               max_tokens=100)
            with llmlab.track(job="nightly"):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                               max_tokens=100)
                with pytest.raises(BudgetExceededError) as info:
                    client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                   max_tokens=100)
        finally:
            llmlab.shutdown()
        assert info.value.spent == Decimal("0.0035") and len(fake.requests) == 4

    def test_alert_thresholds_fire_once_each(self) -> None:
        """Crossing 50 %, 80 % and 100 % of an alert budget calls back once per threshold."""
        alerts: list[BudgetAlert] = []
        guard = BudgetGuard(lambda: [budget(action="alert", amount="1")], on_alert=alerts.append)
        guard.refresh()
        for _ in range(12):
            guard.record({"project": "support-bot"}, Decimal("0.1"))
        assert [a.threshold for a in alerts] == [50, 80, 100]
        assert alerts[0].spent == Decimal("0.5")


class TestClient:
    def test_errors_become_api_errors(self) -> None:
        """An unreachable server is an APIError naming the URL."""
        client = llmlab.Client("k", "http://127.0.0.1:9")
        with pytest.raises(llmlab.APIError, match="cannot reach"):
            client.health()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestGuardAfterFork:
    def test_a_forked_child_refreshes_its_budgets(self) -> None:
        """Threads do not survive fork: the child (gunicorn --preload, a multiprocessing
        pool) restarts the refreshes, so its budgets are not frozen at the parent's last
        status, and it starts without the parent's unacknowledged spend (the parent's
        worker delivers those events, and the parent keeps counting them)."""
        fetched: list[int] = []
        def fetch() -> list[Any]:
            fetched.append(os.getpid())
            return [budget()]

        guard = BudgetGuard(fetch, refresh_interval=0.02)
        guard.start()
        try:
            assert wait_for(guard.has_budgets)
            guard.record({"project": "support-bot"}, Decimal("0.009"), new_event_id())
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    deadline = time.monotonic() + 5
                    while os.getpid() not in fetched and time.monotonic() < deadline:
                        time.sleep(0.01)
                    guard.check({"project": "support-bot"}, lambda: Decimal("0.005"))
                    code = 0 if os.getpid() in fetched else 1
                finally:
                    os._exit(code)
            with pytest.raises(BudgetExceededError):  # the parent still counts it
                guard.check({"project": "support-bot"}, lambda: Decimal("0.005"))
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        finally:
            guard.stop()



class TestAcknowledgedSpend:
    """Local spend stops counting once a status requested after its acknowledgement has it."""

    def test_spend_the_server_acknowledged_is_not_counted_twice(
            self, status: StatusServer, fake: FakeProvider) -> None:
        """Issue #20: $0.00225 spent and acknowledged against a $0.005 block budget, then a
        call whose worst case is $0.0005425 is allowed (it was refused as "spent $0.00450",
        the acknowledged spend counted once by the server and again locally)."""
        status.budgets = [budget(amount="0.005")]
        status.count_ingested = True
        fake.configure("openai", usage=FakeUsage(input_tokens=500, output_tokens=100))
        llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                    auto_instrument=["openai"], budget_refresh_interval=60)
        try:
            guard = get_tracker().budget_guard
            assert wait_for(guard.has_budgets)
            client = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100)
            assert llmlab.flush(5)  # delivered and acknowledged
            assert guard.refresh() and guard.budgets[0].spent == Decimal("0.00225")
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=52)
            assert wait_for(lambda: guard.reservations == 0)  # priced on the worker
            # The second call is not acknowledged yet: it counts locally, once.
            with pytest.raises(BudgetExceededError) as info:
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                               max_tokens=400)
        finally:
            llmlab.shutdown()
        assert info.value.spent == Decimal("0.00225") * 2
        assert len(fake.requests) == 2

    def test_spend_acknowledged_during_the_status_request_keeps_counting(self) -> None:
        """An acknowledgement that arrives while the status is being requested may not be in
        that status: its spend counts until the next status, which has it."""
        transport = InMemoryTransport()
        worker = Worker(transport, atexit=False, handle_sigterm=False)
        spent = ["0"]

        def fetch() -> list[dict[str, Any]]:
            assert worker.flush(5)  # the acknowledgement arrives after the request started
            return [budget(spent=spent[0])]

        guard = BudgetGuard(fetch)
        try:
            assert guard.refresh()
            event_id = new_event_id()
            guard.record({"project": "support-bot"}, Decimal("0.004"), event_id)
            worker.submit({"id": event_id, "project": "support-bot"})
            assert guard.refresh()  # the server had not stored it when it answered
            with pytest.raises(BudgetExceededError) as info:
                guard.check({"project": "support-bot"}, lambda: Decimal("0.0065"))
            assert info.value.spent == Decimal("0.004")
            spent[0] = "0.004"
            assert guard.refresh()  # requested after the acknowledgement: it has it
            guard.check({"project": "support-bot"}, lambda: Decimal("0.0055"))
        finally:
            guard.stop()
            worker.shutdown()

    def test_a_finished_flush_has_told_the_guard(self) -> None:
        """Acknowledgements reach the guard before flush() returns, so a status requested
        right after a flush includes the flushed calls and releases them."""

        class Slow:
            """An acknowledgement listener that waits for the test."""

            def __init__(self) -> None:
                self.release = threading.Event()
                self.told: list[str] = []

            def acknowledged(self, event_ids: list[str]) -> None:
                self.release.wait(10)
                self.told.extend(event_ids)

        transport = InMemoryTransport()
        worker = Worker(transport, atexit=False, handle_sigterm=False)
        listener = Slow()
        ACK_LISTENERS.add(listener)
        try:
            worker.submit({"id": "e1"})
            assert not worker.flush(0.5)  # settled only once the listener was told
            listener.release.set()
            assert worker.flush(5) and listener.told == ["e1"]
        finally:
            ACK_LISTENERS.discard(listener)
            listener.release.set()
            worker.shutdown()

    def test_rejected_spend_keeps_counting(self) -> None:
        """The server never counts an event it rejected: its spend stays counted locally."""
        transport = InMemoryTransport()
        worker = Worker(transport, atexit=False, handle_sigterm=False)
        guard = BudgetGuard(lambda: [budget()])
        try:
            assert guard.refresh()
            event_id = new_event_id()
            transport.reject[event_id] = "invalid_event: test"
            guard.record({"project": "support-bot"}, Decimal("0.004"), event_id)
            worker.submit({"id": event_id, "project": "support-bot"})
            worker.flush(5)
            assert worker.stats()["rejected"] == 1
            assert guard.refresh()
            with pytest.raises(BudgetExceededError):
                guard.check({"project": "support-bot"}, lambda: Decimal("0.0065"))
        finally:
            guard.stop()
            worker.shutdown()


class TestConfiguration:
    def test_calls_without_a_project_count_toward_the_keys_budgets(
            self, status: StatusServer, fake: FakeProvider) -> None:
        """Without ``project=`` the server files events under the key's project, and the guard
        reads that project's budgets: they apply to calls with no project."""
        status.budgets = [budget(spent="0.0095")]
        llmlab.init(api_key="llm_test", base_url=status.url, auto_instrument=["openai"],
                    budget_refresh_interval=60)
        try:
            assert wait_for(get_tracker().budget_guard.has_budgets)
            client = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
            with pytest.raises(BudgetExceededError):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                               max_tokens=100)
        finally:
            llmlab.shutdown()
        assert not fake.requests
