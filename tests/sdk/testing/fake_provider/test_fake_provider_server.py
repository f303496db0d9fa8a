"""FakeProvider itself: lifecycle, request log, routing, configuration, delays."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from fake_provider_helpers import (
    CLAUDE,
    MESSAGES,
    TEXT,
    anthropic_client,
    genai_client,
    openai,
    openai_client,
)

from llmlab.testing._fake_provider import (
    FakeProvider,
)


def test_url_requires_start_and_stop_is_idempotent() -> None:
    """A FakeProvider has no URL until started and can be stopped twice."""
    fake = FakeProvider()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        assert fake.url.startswith("http://127.0.0.1:")
        assert fake.openai_base_url == fake.url + "/v1"
    fake.stop()


def test_records_requests_and_reset_forgets_them(fp: FakeProvider) -> None:
    """Requests are recorded with parsed body and lower-cased headers; reset() clears them."""
    assert fp.requests == []
    with openai_client(fp) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (req,) = fp.requests
    assert (req.method, req.path, req.provider, req.endpoint) == (
        "POST",
        "/v1/chat/completions",
        "openai",
        "openai.chat",
    )
    assert req.body["messages"] == MESSAGES and req.headers["authorization"] == "Bearer sk-test"
    fp.reset()
    assert fp.requests == []


def test_unknown_route_is_a_404_with_provider_shaped_body(fp: FakeProvider) -> None:
    """An unknown path answers 404 with an OpenAI-style error body and is still recorded."""
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(fp.url + "/v1/nope", data=b"{}")
    with info.value:
        assert info.value.code == 404
        assert "error" in json.loads(info.value.read())
    assert fp.requests[0].endpoint is None


def test_configure_one_provider_leaves_the_others(fp: FakeProvider) -> None:
    """configure(provider=...) changes only that provider's answers."""
    fp.configure("anthropic", model="claude-reported", text="only anthropic")
    with anthropic_client(fp) as client:
        msg = client.messages.create(model=CLAUDE, max_tokens=5, messages=MESSAGES)
    with openai_client(fp) as oai:
        chat = oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert (msg.model, msg.content[0].text) == ("claude-reported", "only anthropic")
    assert (chat.model, chat.choices[0].message.content) == ("gpt-4o", TEXT)


def test_burst_of_concurrent_async_requests(fp: FakeProvider) -> None:
    """Fifty simultaneous async calls all succeed (the listen backlog does not reset them)."""

    async def main() -> list[Any]:
        async with openai.AsyncOpenAI(api_key="k", base_url=fp.openai_base_url, max_retries=0) as client:
            calls = [client.chat.completions.create(model="gpt-4o", messages=MESSAGES) for _ in range(50)]
            return list(await asyncio.gather(*calls))

    assert all(r.usage.total_tokens == 2300 for r in asyncio.run(main()))
    assert len(fp.requests) == 50


def test_count_tokens_endpoints(fp: FakeProvider) -> None:
    """Anthropic and Gemini token-counting endpoints answer with the configured input tokens."""
    with anthropic_client(fp) as client:
        counted = client.messages.count_tokens(model=CLAUDE, messages=MESSAGES)
    with genai_client(fp) as gclient:
        gcounted = gclient.models.count_tokens(model="gemini-2.5-flash", contents="hi")
    assert counted.input_tokens == 2000 and gcounted.total_tokens == 2000


def test_first_byte_and_chunk_delays_are_applied(fp: FakeProvider) -> None:
    """first_byte_delay and chunk_delay slow the answer down by at least the configured time."""
    fp.configure(first_byte_delay=0.05, chunk_delay=0.01)
    with openai_client(fp) as client:
        start = time.perf_counter()
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.05 + 0.01 * (len(chunks) - 1)
