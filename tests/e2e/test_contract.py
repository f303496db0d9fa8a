"""The SDK and the server agree: events captured from real clients sum to the server's summary,
and delivery is exactly once across outages and processes against the real server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
from google import genai
from google.genai import types

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

from .conftest import LiveServer, Tenant

NANO = Decimal("0.000000001")


def run_sdk_workload(fake: FakeProvider, project: str) -> None:
    """A realistic mix: OpenAI chat (plain, streamed), Responses, embeddings; Anthropic with
    cache writes and a streamed helper; Gemini with thinking, sync and async; a failed call."""
    fake.configure("openai", usage=FakeUsage(input_tokens=1200, output_tokens=300,
                                             cached_tokens=1000, reasoning_tokens=120))
    fake.configure("anthropic", usage=FakeUsage(input_tokens=50, output_tokens=400,
                                                cached_tokens=3000, cache_creation_5m_tokens=700,
                                                cache_creation_1h_tokens=900))
    fake.configure("google", usage=FakeUsage(input_tokens=2000, output_tokens=300,
                                             reasoning_tokens=500, cached_tokens=600))
    oai = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
    ant = anthropic.Anthropic(api_key="k", base_url=fake.anthropic_base_url, max_retries=0)
    gem = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.google_base_url))
    messages = [{"role": "user", "content": "hello"}]
    with llmlab.track(job="contract", user="cust-1", tags={"feature": "qa"}):
        oai.chat.completions.create(model="gpt-4o", messages=messages)
        for _ in oai.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
            pass
        oai.responses.create(model="gpt-6-sol", input="hi")
        oai.embeddings.create(model="text-embedding-3-small", input="hi")
        ant.messages.create(model="claude-opus-5-5", max_tokens=500, messages=messages)
        with ant.messages.stream(model="claude-haiku-4-5", max_tokens=500,
                                 messages=messages) as stream:
            stream.get_final_message()
        gem.models.generate_content(model="gemini-2.5-pro", contents="hi")

        async def async_gemini() -> None:
            await gem.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")

        asyncio.run(async_gemini())
        fake.fail_next(500, provider="openai")
        with contextlib.suppress(openai.InternalServerError):
            oai.chat.completions.create(model="gpt-4o", messages=messages)


class TestSummaryContract:
    def test_server_summary_matches_captured_events_to_the_nano_dollar(
            self, live_server: LiveServer, tenant: Tenant) -> None:
        """Events from real SDK clients, shipped by the worker, sum on the server to exactly the
        SDK's own costs, per provider and in total."""
        captured: list[CostEvent] = []
        llmlab.init(api_key=tenant.key, base_url=live_server.url, project=tenant.project_slug,
                    on_event=captured.append, flush_interval=0.05)
        try:
            with FakeProvider() as fake:
                run_sdk_workload(fake, tenant.project_slug)
            assert llmlab.flush(10)
            stats = llmlab.stats()
        finally:
            llmlab.shutdown()
            llmlab.uninstrument()
        assert stats["sent"] == len(captured) == 9 and stats["rejected"] == 0
        client = llmlab.Client(tenant.key, live_server.url)
        summary = client.summary(project=tenant.project_id, group_by="provider")
        expected: dict[str, Decimal] = {}
        for event in captured:
            assert event.cost is not None and event.cost.priced
            expected[event.provider] = expected.get(event.provider, Decimal(0)) + event.cost.total
        got = {row["key"]: Decimal(row["cost"]) for row in summary["groups"]}
        assert got == {p: v.quantize(NANO) for p, v in expected.items()}
        assert Decimal(summary["totals"]["cost"]) == sum(expected.values()).quantize(NANO)
        assert summary["totals"]["calls"] == 9 and summary["totals"]["errors"] == 1
        assert set(got) == {"openai", "anthropic", "google"}


class TestDeliveryAgainstTheRealServer:
    def test_events_of_a_process_that_exited_during_an_outage_arrive_once(
            self, tmp_path: Path, live_server: LiveServer, tenant: Tenant) -> None:
        """A process records events while the server is down and exits; the next process
        delivers the spool to the real server, and every event is stored exactly once."""
        live_server.stop()
        home = tmp_path / "home"
        script = textwrap.dedent(f"""
            import llmlab
            llmlab.init(api_key={tenant.key!r}, base_url={live_server.url!r},
                        auto_instrument=False, max_retries=1, backoff_initial=0.01,
                        backoff_max=0.05, flush_interval=0.05)
            for i in range(25):
                llmlab.record("openai", "gpt-4o", {{"prompt_tokens": 100, "completion_tokens": 10}})
            llmlab.flush(2)
            llmlab.shutdown(2)
            print(llmlab.stats() if False else "done")
        """)
        env = {**os.environ, "LLMLAB_HOME": str(home)}
        first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                               text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert list((home / "spool").rglob("*.jsonl")), "the outage left no spool"
        live_server.start()
        replay = textwrap.dedent(f"""
            import llmlab
            llmlab.init(api_key={tenant.key!r}, base_url={live_server.url!r},
                        auto_instrument=False, flush_interval=0.05)
            import time
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and llmlab.stats()["replayed"] < 25:
                time.sleep(0.05)
            llmlab.shutdown(5)
        """)
        second = subprocess.run([sys.executable, "-c", replay], env=env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        summary = llmlab.Client(tenant.key, live_server.url).summary(project=tenant.project_id)
        assert summary["totals"]["calls"] == 25
        assert Decimal(summary["totals"]["cost"]) == 25 * Decimal("0.00035")

    def test_replayed_events_are_acknowledged_as_duplicates_and_stored_once(
            self, live_server: LiveServer, tenant: Tenant) -> None:
        """Sending the same events again (a retry after a lost answer) counts them as
        delivered duplicates; the real server stores and sums them once."""
        from llmlab._worker import Worker
        from llmlab.testing import make_event
        from llmlab.transport import HTTPTransport

        events = [make_event(f"dup-{n}", project=tenant.project_slug) for n in range(40)]
        for attempt in range(2):
            worker = Worker(HTTPTransport(live_server.url, tenant.key), atexit=False,
                            handle_sigterm=False, flush_interval=0.05)
            for event in events:
                assert worker.submit(dict(event))
            assert worker.flush(10)
            stats = worker.stats()
            worker.shutdown(5)
            assert (stats["sent"], stats["duplicates"]) == ((40, 0) if attempt == 0 else (0, 40))
        summary = llmlab.Client(tenant.key, live_server.url).summary(project=tenant.project_id)
        assert summary["totals"]["calls"] == 40
