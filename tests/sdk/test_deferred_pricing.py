"""Where a call is priced: on the worker when nothing in the calling thread needs the price,
on the calling thread when a scope or an ``on_event`` callback does (a budget does not: see
test_budgets.py, ``TestReservations``)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import llmlab
from llmlab.pricing import Catalogue
from llmlab.testing import FakeProvider, FakeUsage
from llmlab.transport import InMemoryTransport

MESSAGES = [{"role": "user", "content": "hello"}]
USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
GPT_4O_COST = Decimal("0.00475")  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5


class ThreadNotingCatalogue(Catalogue):
    """The bundled catalogue, noting which thread priced each call."""

    def __init__(self) -> None:
        bundled = Catalogue.bundled()
        super().__init__({"pricing_version": bundled.pricing_version, "source": bundled.source,
                          "models": bundled._raw})
        self.threads: list[int] = []

    def cost(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.get_ident())
        return super().cost(*args, **kwargs)


@pytest.fixture
def catalogue() -> ThreadNotingCatalogue:
    return ThreadNotingCatalogue()


@pytest.fixture
def transport(catalogue: ThreadNotingCatalogue, tmp_path: Path) -> Any:
    transport = InMemoryTransport()
    llmlab.init(ledger=False, transport=transport, catalogue=catalogue, home=tmp_path,
                auto_instrument=["openai", "anthropic", "google_genai"])
    yield transport
    llmlab.shutdown()
    llmlab.uninstrument()


def chat(fake: FakeProvider, **kwargs: Any) -> Any:
    client = openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **kwargs)


def delivered(transport: InMemoryTransport) -> list[dict[str, Any]]:
    assert llmlab.flush(timeout=10)
    return [event for batch in transport.batches for event in batch]


def test_a_call_outside_any_scope_is_priced_on_the_worker(
        fake: FakeProvider, transport: InMemoryTransport,
        catalogue: ThreadNotingCatalogue) -> None:
    fake.configure("openai", usage=USAGE)
    chat(fake)
    stream = list(chat(fake, stream=True))
    assert stream
    events = delivered(transport)
    assert [Decimal(e["cost"]["total"]) for e in events] == [GPT_4O_COST, GPT_4O_COST]
    assert len(catalogue.threads) == 2
    assert threading.get_ident() not in catalogue.threads


def test_a_call_in_a_scope_is_priced_at_once(
        fake: FakeProvider, transport: InMemoryTransport,
        catalogue: ThreadNotingCatalogue) -> None:
    fake.configure("openai", usage=USAGE)
    with llmlab.track(job="nightly") as scope:
        chat(fake)
        assert scope.cost == GPT_4O_COST  # no flush needed: the scope knows already
    assert catalogue.threads == [threading.get_ident()]
    [event] = delivered(transport)
    assert event["job_id"] == "nightly" and Decimal(event["cost"]["total"]) == GPT_4O_COST


def test_an_on_event_callback_gets_the_event_on_the_calling_thread(
        fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure("openai", usage=USAGE)
    seen: list[int] = []
    llmlab.init(ledger=False, transport=InMemoryTransport(), home=tmp_path,
                auto_instrument=["openai"], on_event=lambda e: seen.append(threading.get_ident()))
    try:
        chat(fake)
    finally:
        llmlab.shutdown()
        llmlab.uninstrument()
    assert seen == [threading.get_ident()]


def test_deferred_and_immediate_events_are_the_same(
        fake: FakeProvider, transport: InMemoryTransport) -> None:
    """Apart from id, time and latency, a call priced later is the call priced now."""
    fake.configure("openai", usage=USAGE)
    chat(fake, service_tier="flex")
    with llmlab.track():
        chat(fake, service_tier="flex")
    later, now = delivered(transport)
    volatile = ("id", "timestamp", "latency_ms", "ttfb_ms")
    assert {k: v for k, v in later.items() if k not in volatile} == {
        k: v for k, v in now.items() if k not in volatile}
    assert later["cost"]["total"] == now["cost"]["total"]


def test_usage_the_worker_cannot_read_is_logged_and_rejected_never_raised(
        fake: FakeProvider, transport: InMemoryTransport,
        fail_on_swallowed_errors: list[logging.LogRecord]) -> None:
    # More cached than prompt tokens: the usage adapter refuses it when the event is built.
    fake.configure("openai", usage=FakeUsage(input_tokens=10, output_tokens=5,
                                             cached_tokens=50))
    response = chat(fake)
    assert response.usage is not None and response.usage.prompt_tokens == 10
    assert delivered(transport) == []
    assert llmlab.stats()["rejected"] == 1
    [record] = fail_on_swallowed_errors
    assert "exceed input_tokens" in str(record.exc_info[1] if record.exc_info else "")
    fail_on_swallowed_errors.clear()


_PACKAGE_DIR = os.path.dirname(llmlab.__file__) + os.sep


def _is_llmlab_code(filename: str) -> bool:
    """Whether a code object comes from the llmlab package itself (not just any path with an
    ``llmlab`` folder in it: a checkout named llmlab holds ``.venv/.../site-packages/openai``)."""
    return filename.startswith(_PACKAGE_DIR)


def test_the_profile_filter_ignores_provider_code_inside_a_checkout_named_llmlab() -> None:
    """Code of the provider SDK installed in a checkout folder named llmlab is not counted
    as llmlab's own (the fast-path test failed in a fresh `git clone` into llmlab/)."""
    import openai.resources.chat.completions as completions

    checkout = os.path.dirname(os.path.dirname(_PACKAGE_DIR.rstrip(os.sep)))
    inside = os.path.join(checkout, "llmlab", ".venv", "lib", "site-packages", "openai", "x.py")
    assert not _is_llmlab_code(inside)
    assert not _is_llmlab_code(completions.__file__)
    assert _is_llmlab_code(llmlab.api.__file__)


def _llmlab_functions_called(run: Any) -> set[str]:
    """Names of the llmlab functions the calling thread entered while ``run()`` ran."""
    names: set[str] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and _is_llmlab_code(frame.f_code.co_filename):
            names.add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return names


def test_a_plain_call_outside_any_scope_takes_the_fast_path(
        fake: FakeProvider, transport: InMemoryTransport) -> None:
    """No `Call` is made on the calling thread: the call is queued as a tuple and built on
    the worker; in a scope the full path records it at once."""
    fake.configure("openai", usage=USAGE)
    fast = _llmlab_functions_called(lambda: chat(fake))
    assert "_build_plain" not in fast and "_begin" not in fast and "__init__" not in fast
    assert "submit" in fast
    with llmlab.track():
        full = _llmlab_functions_called(lambda: chat(fake))
    assert "_begin" in full
    assert [Decimal(e["cost"]["total"]) for e in delivered(transport)] == [GPT_4O_COST] * 2


def test_a_plain_anthropic_call_takes_the_fast_path_and_raw_responses_do_not(
        fake: FakeProvider, transport: InMemoryTransport) -> None:
    """A ``Message`` is queued as a tuple with its usage fields, normalised on the worker; a
    raw response goes through the full path (its ``parse()`` must keep working), and both
    are costed once, alike."""
    import anthropic

    fake.configure("anthropic", usage=FakeUsage(input_tokens=1000, output_tokens=100))
    client = anthropic.Anthropic(api_key="sk-test", base_url=fake.anthropic_base_url,
                                 max_retries=0)
    kwargs: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 100,
                              "messages": MESSAGES}
    fast = _llmlab_functions_called(lambda: client.messages.create(**kwargs))
    assert "submit" in fast and "_begin" not in fast and "_handle_result" not in fast
    assert "from_any" not in fast  # the usage is normalised on the worker
    raw: list[Any] = []
    full = _llmlab_functions_called(
        lambda: raw.append(client.messages.with_raw_response.create(**kwargs)))
    assert "_handle_result" in full
    assert raw[0].parse().usage.input_tokens == 1000
    events = delivered(transport)
    assert len(events) == 2 and {e["provider"] for e in events} == {"anthropic"}
    # claude-haiku-4-5: 1000 x $1/M in + 100 x $5/M out
    assert [Decimal(e["cost"]["total"]) for e in events] == [Decimal("0.0015")] * 2


def test_gemini_usage_is_normalised_on_the_worker(
        fake: FakeProvider, transport: InMemoryTransport) -> None:
    """A plain and a streamed google-genai call hand the SDK's usage metadata to the tracker
    as it is; the worker normalises it, to the same cost as before."""
    from google import genai
    from google.genai import types

    fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=100))
    client = genai.Client(api_key="k",
                          http_options=types.HttpOptions(base_url=fake.google_base_url))
    plain = _llmlab_functions_called(
        lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hi"))
    assert "submit" in plain and "_begin" not in plain and "from_any" not in plain
    streamed = _llmlab_functions_called(lambda: list(client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="hi")))
    assert "on_chunk" in streamed and "from_any" not in streamed
    events = delivered(transport)
    assert [e["usage"] for e in events] == [{"input_tokens": 1000, "output_tokens": 100}] * 2
    # gemini-2.5-flash: 1000 x $0.30/M in + 100 x $2.50/M out
    assert [Decimal(e["cost"]["total"]) for e in events] == [Decimal("0.00055")] * 2


def _client_without_usage() -> openai.OpenAI:
    """An OpenAI-compatible server that leaves ``usage`` out of its answers."""
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello!"}}]}
    http = httpx2.Client(transport=httpx2.MockTransport(
        lambda request: httpx2.Response(200, json=body)))
    return openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1",
                         http_client=http, max_retries=0)


def test_a_response_without_usage_is_estimated_from_the_request_on_both_paths(
        transport: InMemoryTransport) -> None:
    """The estimate needs the request, which the caller may change once the call returns,
    so the fast path hands such a call to the full path before returning."""
    client = _client_without_usage()
    messages = [{"role": "user", "content": "word " * 200}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    with llmlab.track():
        client.chat.completions.create(model="gpt-4o", messages=messages)
    messages.clear()  # what a caller may do next; the estimates were taken before
    later, now = delivered(transport)
    assert later["estimated"] is True and later["usage"] == now["usage"]
    assert later["usage"]["input_tokens"] > 200  # 200 words, taken before the clear()
    assert later["cost"]["total"] == now["cost"]["total"]


def test_calls_on_many_threads_are_each_recorded_once(
        fake: FakeProvider, transport: InMemoryTransport) -> None:
    """The once-only guard of a sync call is per thread: calls running at the same time on
    other threads are neither hidden nor counted twice."""
    fake.configure("openai", usage=USAGE, first_byte_delay=0.02)
    threads = [threading.Thread(target=lambda: [chat(fake) for _ in range(5)])
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = delivered(transport)
    assert len(events) == 40 and len({e["id"] for e in events}) == 40
    assert all(Decimal(e["cost"]["total"]) == GPT_4O_COST for e in events)
