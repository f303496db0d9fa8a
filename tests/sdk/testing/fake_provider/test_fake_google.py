"""FakeProvider against the real google-genai and google-generativeai clients."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest
from fake_provider_helpers import TEXT, genai_client, genai_errors, genai_types, httpx2

from llmlab.testing._fake_provider import (
    FakeFunctionCall,
    FakeProvider,
)


def test_genai_generate_content_usage(fp: FakeProvider) -> None:
    """generate_content parses every usageMetadata count and the modelVersion."""
    with genai_client(fp) as client:
        resp = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    u = resp.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.thoughts_token_count) == (
        2000,
        300,
        120,
    )
    assert (u.cached_content_token_count, u.tool_use_prompt_token_count) == (1000, 11)
    assert u.total_token_count == 2000 + 300 + 120 + 11
    assert resp.model_version == "gemini-2.5-flash" and resp.text == TEXT
    assert fp.requests[0].path == "/v1/models/gemini-2.5-flash:generateContent"
    assert fp.requests[0].headers["x-goog-api-key"] == "test-key"


def test_genai_stream_usage_is_cumulative(fp: FakeProvider) -> None:
    """generate_content_stream yields every chunk, each with the running usage, the last exact."""
    with genai_client(fp) as client:
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text for c in chunks) == TEXT and len(chunks) == 4
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 300
    assert all(c.usage_metadata.prompt_token_count == 2000 for c in chunks)
    assert fp.requests[0].query == {"alt": "sse"}


def test_genai_async(fp: FakeProvider) -> None:
    """client.aio.models parses usage for generate_content and generate_content_stream."""

    async def main() -> tuple[Any, list[Any]]:
        async with genai_client(fp).aio as aio:
            resp = await aio.models.generate_content(model="gemini-2.5-pro", contents="hi")
            chunks = [
                c
                async for c in await aio.models.generate_content_stream(model="gemini-2.5-pro", contents="hi")
            ]
            return resp, chunks

    resp, chunks = asyncio.run(main())
    assert resp.usage_metadata.thoughts_token_count == 120
    assert chunks[-1].usage_metadata.total_token_count == 2431


def test_genai_automatic_function_calling_makes_two_billed_calls(fp: FakeProvider) -> None:
    """With a configured functionCall, google-genai AFC makes two HTTP calls, each with usage."""
    fp.configure("google", function_call=FakeFunctionCall(args={"city": "Paris"}))
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Return the weather for a city."""
        calls.append(city)
        return f"sunny in {city}"

    with genai_client(fp) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resp = client.models.generate_content(
            model="gemini-2.5-flash",
            contents="weather in Paris?",
            config=genai_types.GenerateContentConfig(tools=[get_weather]),
        )
    assert calls == ["Paris"] and resp.text == TEXT
    first, second = fp.requests
    assert "functionResponse" in second.body["contents"][-1]["parts"][0]
    assert "functionResponse" not in json.dumps(first.body)
    assert resp.usage_metadata.prompt_token_count == 2000


def test_genai_error_is_api_error(fp: FakeProvider) -> None:
    """An injected 429 surfaces as google.genai.errors.ClientError (an APIError) with its status."""
    fp.fail_next(429, provider="google")
    with genai_client(fp) as client, pytest.raises(genai_errors.APIError) as info:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert isinstance(info.value, genai_errors.ClientError)
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")


def test_genai_broken_stream_raises(fp: FakeProvider) -> None:
    """A cut Gemini stream raises in the client (no continuation token, so no silent resume)."""
    fp.break_next_stream(after_chunks=1)
    received: list[Any] = []
    with genai_client(fp) as client, pytest.raises(httpx2.RemoteProtocolError):
        for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            received.append(chunk)
    assert len(received) == 1 and len(fp.requests) == 1


# google-generativeai itself passes a protobuf argument that protobuf 5 deprecates.
pytestmark_legacy = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def legacy(fp: FakeProvider) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns that it is deprecated
        legacy_genai = pytest.importorskip("google.generativeai")
    legacy_genai.configure(
        api_key="test-key",
        transport="rest",
        client_options={"api_endpoint": fp.google_legacy_endpoint},
    )
    return legacy_genai


@pytestmark_legacy
def test_legacy_rest_generate_content(fp: FakeProvider, legacy: Any) -> None:
    """Legacy REST generate_content (plain and stream=True JSON-array) parses usage_metadata."""
    model = legacy.GenerativeModel("gemini-1.5-flash")
    resp = model.generate_content("hi")
    stream = model.generate_content("hi", stream=True)
    pieces = [chunk.text for chunk in stream]
    assert resp.text == TEXT and "".join(pieces) == TEXT and len(pieces) == 4
    for usage in (resp.usage_metadata, stream.usage_metadata):
        assert (usage.prompt_token_count, usage.candidates_token_count) == (2000, 300)
        assert usage.cached_content_token_count == 1000
    paths = [(r.path, r.query) for r in fp.requests]
    assert paths == [
        ("/v1beta/models/gemini-1.5-flash:generateContent", {"$alt": "json;enum-encoding=int"}),
        (
            "/v1beta/models/gemini-1.5-flash:streamGenerateContent",
            {"$alt": "json;enum-encoding=int"},
        ),
    ]


@pytestmark_legacy
def test_legacy_rest_error(fp: FakeProvider, legacy: Any) -> None:
    """An injected 429 surfaces from the legacy REST client as google.api_core TooManyRequests."""
    from google.api_core import exceptions as core_exceptions

    fp.fail_next(429)
    with pytest.raises(core_exceptions.TooManyRequests):
        legacy.GenerativeModel("gemini-1.5-flash").generate_content("hi")


@pytestmark_legacy
def test_legacy_async_rest_is_not_supported(fp: FakeProvider, legacy: Any) -> None:
    """Pins the quirk: with transport="rest" generate_content_async sends the request synchronously,
    then fails awaiting the result, so the async legacy path must use gRPC."""
    with pytest.raises(TypeError, match="await"):
        asyncio.run(legacy.GenerativeModel("gemini-1.5-flash").generate_content_async("hi"))
    assert len(fp.requests) == 1


@pytestmark_legacy
def test_legacy_async_via_grpc(fp: FakeProvider, legacy: Any) -> None:
    """generate_content_async (plain, stream, error, broken stream) works via the gRPC frontend."""
    from google.api_core import exceptions as core_exceptions
    from google.generativeai import client as legacy_client

    async def main() -> tuple[Any, list[str], Any]:
        async_client = fp.google_legacy_async_client()
        legacy_client._client_manager.clients["generative_async"] = async_client
        try:
            model = legacy.GenerativeModel("gemini-1.5-flash")
            resp = await model.generate_content_async("hi")
            stream = await model.generate_content_async("hi", stream=True)
            pieces = [chunk.text async for chunk in stream]
            fp.fail_next(429)
            with pytest.raises(core_exceptions.TooManyRequests):
                await model.generate_content_async("hi")
            fp.break_next_stream(after_chunks=1)
            with pytest.raises(core_exceptions.ServiceUnavailable):
                broken = await model.generate_content_async("hi", stream=True)
                _ = [chunk async for chunk in broken]
            return resp, pieces, stream
        finally:
            await async_client.transport.close()

    resp, pieces, stream = asyncio.run(main())
    assert resp.usage_metadata.prompt_token_count == 2000 and resp.text == TEXT
    assert "".join(pieces) == TEXT and stream.usage_metadata.candidates_token_count == 300
    assert fp.requests[0].path == "/google.ai.generativelanguage.v1beta.GenerativeService/GenerateContent"
    assert fp.requests[0].body["model"] == "models/gemini-1.5-flash"
    assert len(fp.requests) == 4
