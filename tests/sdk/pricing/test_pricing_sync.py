"""The SDK prices with its server's catalogue: pulled in the background with an ETag, cached,
kept when the server cannot be reached, never blocking `init` or a call (``_sync.py``)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import llmlab
from llmlab._tracker import get_tracker
from llmlab.pricing import Catalogue
from llmlab.pricing._sync import DEFAULT_SYNC_INTERVAL, PricingSync, cache_path
from llmlab.pricing._update import update_catalogue
from llmlab.testing import FakeProvider, FakeUsage
from llmlab.transport import InMemoryTransport

MESSAGES = [{"role": "user", "content": "hello"}]
USAGE = FakeUsage(input_tokens=1000, output_tokens=100)
BUNDLED_COST = Decimal("0.0035")  # 1000 x 2.5e-6 + 100 x 1e-5
SERVER_COST = Decimal("0.0028")  # the server's price: 1000 x 2e-6 + 100 x 8e-6
CUT = {"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                  "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    ingest_key: str
    read_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``llmlab serve`` process whose catalogue was cut with ``llmlab server pricing
    update`` (its own home: the test process keeps the bundled prices)."""
    home = tmp_path_factory.mktemp("server-home")
    table = home / "prices.json"
    table.write_text(json.dumps(CUT))
    update_catalogue(table, effective_from="2020-01-01", path=home / "catalogue.json")
    port = free_port()
    env = {**os.environ, "LLMLAB_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from llmlab.cli import main; main()", "serve", "--port",
         str(port), "--database", f"sqlite:///{home / 'llmlab.db'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=10) as http:
            token = http.post("/api/auth/signup", json={
                "email": f"s{secrets.token_hex(4)}@example.com",
                "password": "correct horse battery"}).json()["data"]["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            project = http.post("/api/projects", json={"name": "Sync"},
                                headers=auth).json()["data"]
            keys = [http.post("/api/keys", headers=auth, json={
                "project_id": project["id"], "name": scope, "scopes": [scope]}
            ).json()["data"]["key"] for scope in ("ingest", "read")]
        yield Server(url, *keys)
    finally:
        process.terminate()
        process.wait(10)


def chat(fake: FakeProvider) -> Any:
    client = openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def first_pull(timeout: float = 20) -> None:
    sync = get_tracker().pricing_sync  # type: ignore[attr-defined]
    assert sync.first_pull.wait(timeout)


@pytest.fixture(autouse=True)
def _shut_down() -> Iterator[None]:
    yield
    llmlab.shutdown()
    llmlab.uninstrument()


class TestAgainstTheServer:
    """The real worker path: init, a pull, an openai call priced and delivered."""

    def test_a_call_is_priced_with_the_servers_catalogue(
            self, server: Server, fake: FakeProvider, tmp_path: Path) -> None:
        """The server's price (not the bundled one) prices the call, on the SDK and as
        delivered; the catalogue and its ETag are cached for the next process."""
        fake.configure("openai", usage=USAGE)
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000, "output_tokens": 100}
                           ).total == BUNDLED_COST
        llmlab.init(api_key=server.ingest_key, base_url=server.url, home=tmp_path,
                    ledger=False, auto_instrument=["openai"])
        first_pull()
        chat(fake)
        assert llmlab.flush(timeout=10)
        events = httpx.get(f"{server.url}/api/events", params={"limit": 10}, headers={
            "Authorization": f"Bearer {server.read_key}"}).json()["data"]["events"]
        event = events[0]
        assert Decimal(event["cost"]) == SERVER_COST
        assert event["cost_mismatch"] is False and event["server_priced"] is False
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000, "output_tokens": 100}
                           ).total == SERVER_COST
        cached = json.loads(cache_path(tmp_path).read_text())
        assert cached["base_url"] == server.url and cached["etag"].startswith('"')
        assert cached["catalogue"]["models"]["openai/gpt-4o"]["prices"][-1][
            "effective_from"] == "2020-01-01"

    def test_the_next_process_revalidates_with_the_etag(self, server: Server,
                                                        tmp_path: Path) -> None:
        """A second start sends the cached ETag and gets a 304 (the cache is not rewritten)."""
        llmlab.init(api_key=server.ingest_key, base_url=server.url, home=tmp_path,
                    ledger=False, auto_instrument=False)
        first_pull()
        stamp = cache_path(tmp_path).stat().st_mtime_ns
        llmlab.shutdown()
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.0025")
        llmlab.init(api_key=server.ingest_key, base_url=server.url, home=tmp_path,
                    ledger=False, auto_instrument=False)
        first_pull()
        sync = get_tracker().pricing_sync  # type: ignore[attr-defined]
        assert sync.pull() is True and sync.etag is not None
        assert cache_path(tmp_path).stat().st_mtime_ns == stamp
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.002")

    def test_overrides_made_in_code_still_win(self, server: Server, tmp_path: Path) -> None:
        """set_price on the process catalogue beats the server's price, before and after the
        pull replaced the catalogue, and after shutdown."""
        Catalogue.default().set_price("gpt-4o", provider="openai", input="1", output="4")
        Catalogue.default().set_markup(10, project="marked")
        llmlab.init(api_key=server.ingest_key, base_url=server.url, home=tmp_path,
                    ledger=False, auto_instrument=False)
        first_pull()
        assert llmlab.cost("gpt-4o-mini", {"input_tokens": 1000}).total == Decimal("0.00015")
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.001")
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}, project="marked").total == \
            Decimal("0.0011")
        assert Catalogue.default().source["origin"].endswith("prices.json")  # the server's
        llmlab.shutdown()
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.001")

    def test_shutdown_goes_back_to_the_local_catalogue(self, server: Server,
                                                       tmp_path: Path) -> None:
        """The server's layer belongs to the tracker that pulled it."""
        llmlab.init(api_key=server.ingest_key, base_url=server.url, home=tmp_path,
                    ledger=False, auto_instrument=False)
        first_pull()
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.002")
        llmlab.shutdown()
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.0025")


class _Stub(BaseHTTPRequestHandler):
    """Stands in for the network: answers the catalogue route as told, counts requests."""

    requests: list[dict[str, str]] = []
    delay = 0.0
    status = 503
    body = b""

    def do_GET(self) -> None:
        if self.path.startswith("/api/pricing/catalogue"):  # not the budget guard's
            type(self).requests.append({k.lower(): v for k, v in self.headers.items()})
        time.sleep(self.delay)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Stub", (_Stub,), {"requests": [], "delay": 0.0, "status": 503, "body": b""})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", handler
    httpd.shutdown()
    httpd.server_close()


def init_against(url: str, tmp_path: Path, **kwargs: Any) -> InMemoryTransport:
    transport = InMemoryTransport()
    llmlab.init(api_key="llm_test", base_url=url, transport=transport, home=tmp_path,
                ledger=False, auto_instrument=["openai"], **kwargs)
    return transport


class TestWithoutTheServer:
    """Offline, broken answers, opt-out: the bundled (or cached) prices, and no waiting."""

    def test_offline_keeps_the_bundled_prices(self, fake: FakeProvider, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
        """Nothing listens: the pull fails quietly and calls are priced as before."""
        caplog.set_level(logging.INFO, logger="llmlab")
        fake.configure("openai", usage=USAGE)
        transport = init_against(f"http://127.0.0.1:{free_port()}", tmp_path)
        first_pull()
        chat(fake)
        assert llmlab.flush(timeout=10)
        (event,) = [e for batch in transport.batches for e in batch]
        assert Decimal(event["cost"]["total"]) == BUNDLED_COST
        assert "could not fetch the server's pricing catalogue" in caplog.text
        assert not cache_path(tmp_path).exists()

    def test_a_bad_answer_keeps_the_cached_copy(self, stub: tuple[str, type[_Stub]],
                                                tmp_path: Path, server: Server) -> None:
        """A server that answers 503 after a good pull: the cached copy stays in force."""
        url, handler = stub
        llmlab.init(api_key=server.ingest_key, base_url=server.url, home=tmp_path,
                    ledger=False, auto_instrument=False)
        first_pull()
        llmlab.shutdown()
        cached = json.loads(cache_path(tmp_path).read_text())
        cached["base_url"] = url  # the same catalogue, as cached from the stub's address
        cache_path(tmp_path).write_text(json.dumps(cached))
        init_against(url, tmp_path)
        first_pull()
        assert handler.requests and handler.requests[0]["if-none-match"] == cached["etag"]
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.002")

    def test_a_malformed_catalogue_is_not_used(self, stub: tuple[str, type[_Stub]],
                                                tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
        """A 200 whose model has a rate that is not a number: warned, not used, not cached."""
        url, handler = stub
        handler.status = 200
        handler.body = json.dumps({"format": 1, "pricing_version": "2027-01-01", "models": {
            "openai/gpt-4o": {"provider": "openai", "name": "gpt-4o", "prices": [
                {"effective_from": None, "rates": {"standard": {"input": "cheap"}}}]}}}).encode()
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            init_against(url, tmp_path)
            first_pull()
        assert "malformed catalogue entry openai/gpt-4o" in caplog.text
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.0025")
        assert not cache_path(tmp_path).exists()

    def test_init_and_calls_never_wait_for_the_server(
            self, stub: tuple[str, type[_Stub]], fake: FakeProvider, tmp_path: Path) -> None:
        """A server that takes 3 s to answer: init and a call return long before."""
        url, handler = stub
        handler.delay = 3.0
        fake.configure("openai", usage=USAGE)
        started = time.perf_counter()
        init_against(url, tmp_path)
        chat(fake)
        assert time.perf_counter() - started < 1.5
        deadline = time.monotonic() + 5
        while not handler.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert handler.requests  # the pull is under way, off the caller's thread

    def test_it_asks_again_every_interval(self, stub: tuple[str, type[_Stub]],
                                          tmp_path: Path) -> None:
        """Daily in production (DEFAULT_SYNC_INTERVAL); every 0.1 s here. Stopped, it stops."""
        url, handler = stub
        assert DEFAULT_SYNC_INTERVAL == 24 * 3600
        sync = PricingSync(url, "llm_test", tmp_path, lambda catalogue: None, interval=0.1)
        sync.start()
        deadline = time.monotonic() + 10
        while len(handler.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        sync.stop()
        assert len(handler.requests) >= 3
        time.sleep(0.3)
        count = len(handler.requests)
        time.sleep(0.3)
        assert len(handler.requests) == count

    @pytest.mark.parametrize("how", ["argument", "environment"])
    def test_opt_out(self, stub: tuple[str, type[_Stub]], tmp_path: Path, how: str,
                     monkeypatch: pytest.MonkeyPatch) -> None:
        """pricing_sync=False or LLMLAB_PRICING_SYNC=0: no request, no sync thread."""
        url, handler = stub
        if how == "environment":
            monkeypatch.setenv("LLMLAB_PRICING_SYNC", "0")
            init_against(url, tmp_path)
        else:
            init_against(url, tmp_path, pricing_sync=False)
        time.sleep(0.3)
        assert handler.requests == []
        assert getattr(get_tracker(), "pricing_sync", None) is None


def test_no_network_at_import_or_local_use(tmp_path: Path) -> None:
    """Importing llmlab, pricing a call and init() without a server open no connection."""
    code = """
import socket
attempts = []
def refuse(self, address):
    attempts.append(address)
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.create_connection = lambda *a, **k: refuse(None, a[0])
import llmlab, llmlab.pricing
llmlab.cost("gpt-4o", {"input_tokens": 10, "output_tokens": 5})
llmlab.init(ledger=False, auto_instrument=False)
llmlab.shutdown()
assert attempts == [], attempts
print("no network")
"""
    env = {**os.environ, "LLMLAB_HOME": str(tmp_path)}
    env.pop("LLMLAB_BASE_URL", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no network"


def _gpt4o(**rates: Any) -> dict[str, Any]:
    return {"provider": "openai", "name": "gpt-4o", "prices": [
        {"effective_from": None, "rates": {"standard": {"input": "0.000002",
                                                         "output": "0.000008", **rates}}}]}


HOSTILE = {
    "negative": {"models": {"openai/gpt-4o": _gpt4o(input="-0.001")}},
    "nan": {"models": {"openai/gpt-4o": _gpt4o(input="NaN")}},
    "infinite": {"models": {"openai/gpt-4o": _gpt4o(output="Infinity")}},
    "absurd": {"models": {"openai/gpt-4o": _gpt4o(input="1e400")}},
    "negative multiplier": {"models": {"openai/gpt-4o": {**_gpt4o(), "prices": [
        {**_gpt4o()["prices"][0], "multipliers": {"us": "-3"}}]}}},
    "negative tool fee": {"models": {}, "tools": {"openai": {"web_search": "-5"}}},
    "tool table of the wrong type": {"models": {}, "tools": {"openai": "free"}},
}


class TestHostileCatalogue:
    """A broken or hostile server's catalogue is refused whole (warned, not used, not cached):
    nothing prices a call below zero, as NaN or infinity, and the refresh thread lives on."""

    @pytest.mark.parametrize("case", list(HOSTILE))
    def test_it_is_refused_and_the_bundled_prices_stay(
            self, stub: tuple[str, type[_Stub]], tmp_path: Path, case: str,
            caplog: pytest.LogCaptureFixture) -> None:
        url, handler = stub
        handler.status = 200
        handler.body = json.dumps({"format": 1, "pricing_version": "2099-01-01",
                                   **HOSTILE[case]}).encode()
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            init_against(url, tmp_path)
            first_pull(timeout=10)
        assert "could not fetch the server's pricing catalogue" in caplog.text
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.0025")
        assert not cache_path(tmp_path).exists()
        sync = get_tracker().pricing_sync  # type: ignore[attr-defined]
        assert sync._thread is not None and sync._thread.is_alive()

    def test_an_oversized_answer_is_not_read_whole(
            self, stub: tuple[str, type[_Stub]], tmp_path: Path) -> None:
        """A valid catalogue padded past 32 MB: refused (a server cannot exhaust memory)."""
        url, handler = stub
        handler.status = 200
        handler.body = json.dumps({"format": 1, "pricing_version": "2099-01-01",
                                   "source": {"pad": "x" * (33 * 1024 * 1024)},
                                   "models": {"openai/gpt-4o": _gpt4o()}}).encode()
        init_against(url, tmp_path)
        first_pull(timeout=20)
        assert llmlab.cost("gpt-4o", {"input_tokens": 1000}).total == Decimal("0.0025")
        assert not cache_path(tmp_path).exists()


def test_concurrent_cache_writes_never_collide(tmp_path: Path) -> None:
    """Two processes (threads here) caching at once: each write is whole, none fails."""
    from llmlab.pricing._user_catalogue import write_layer

    path = cache_path(tmp_path)
    documents = [{"writer": n, "pad": "y" * 200_000} for n in range(4)]
    errors: list[BaseException] = []

    def write(document: dict[str, Any]) -> None:
        for _ in range(40):
            try:
                write_layer(path, document)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(d,)) for d in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert json.loads(path.read_text()) in documents
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
