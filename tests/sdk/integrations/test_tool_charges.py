"""Charges beyond tokens, through the real provider SDK clients against the FakeProvider.

Built-in tools (Anthropic server tools, OpenAI Responses tool items, Gemini grounding), Gemini
IMAGE output tokens and a provider-reported cost (OpenRouter's ``usage.cost``). Every expected
amount is worked out by hand from the documented prices (docs/pricing.md, "Tools").
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from llmlab.schema import CostEvent
from llmlab.testing import FakeCharges, FakeProvider
from llmlab.testing._fake_wire import FakeUsage

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")
genai = pytest.importorskip("google.genai")
from google.genai import types as gtypes  # noqa: E402

USAGE = FakeUsage(input_tokens=1000, output_tokens=200)


def only(events: list[CostEvent]) -> CostEvent:
    assert len(events) == 1, events
    return events[0]


def assert_cost(event: CostEvent, tools: str, total: str) -> None:
    assert event.cost is not None and event.cost.priced
    assert event.cost.tools == Decimal(tools)
    assert event.cost.total == Decimal(total)
    parts = (event.cost.input + event.cost.cache_read + event.cost.cache_write
             + event.cost.output + event.cost.reasoning + event.cost.tools)
    assert parts == event.cost.total


# -- Anthropic: usage.server_tool_use ------------------------------------------------------

#: claude-sonnet-4-5: 1000 * $3/M + 200 * $15/M = 0.006; 5 searches * $10/1k = 0.05; web
#: fetch has no fee.
SONNET_TOOLS, SONNET_TOTAL = "0.05", "0.056"
ANTHROPIC_KW: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 256,
                                "messages": [{"role": "user", "content": "Search"}]}


def _anthropic(fake: FakeProvider) -> Any:
    fake.configure("anthropic", usage=USAGE, charges=FakeCharges(web_searches=5, web_fetches=2))
    return anthropic.Anthropic(api_key="k", base_url=fake.anthropic_base_url, max_retries=0)


def test_anthropic_web_search_is_billed(fake: FakeProvider, events: list[CostEvent]) -> None:
    message = _anthropic(fake).messages.create(**ANTHROPIC_KW)
    assert message.usage.server_tool_use.web_search_requests == 5  # the SDK's own type
    event = only(events)
    assert event.usage.tools == {"web_search": 5, "web_fetch": 2}
    assert_cost(event, SONNET_TOOLS, SONNET_TOTAL)


def test_anthropic_stream_web_search_is_billed(fake: FakeProvider,
                                               events: list[CostEvent]) -> None:
    with _anthropic(fake).messages.stream(**ANTHROPIC_KW) as stream:
        final = stream.get_final_message()
    assert final.usage.server_tool_use.web_search_requests == 5
    event = only(events)
    assert event.usage.tools == {"web_search": 5, "web_fetch": 2}
    assert_cost(event, SONNET_TOOLS, SONNET_TOTAL)


# -- OpenAI Responses: tool output items ---------------------------------------------------

#: gpt-5: 1000 * $1.25/M + 200 * $10/M = 0.00325; 2 web searches * $10/1k + 1 file search *
#: $2.50/1k + 1 container * $0.03 = 0.0525.
GPT5_TOOLS, GPT5_TOTAL = "0.0525", "0.05575"
RESPONSES_CHARGES = FakeCharges(web_searches=2, file_searches=1, containers=1)


def _openai(fake: FakeProvider, charges: FakeCharges) -> Any:
    fake.configure("openai", usage=USAGE, charges=charges)
    return openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)


def test_openai_responses_tools_are_billed(fake: FakeProvider, events: list[CostEvent]) -> None:
    response = _openai(fake, RESPONSES_CHARGES).responses.create(model="gpt-5", input="Find it")
    kinds = [item.type for item in response.output]
    assert kinds.count("web_search_call") == 2 and "code_interpreter_call" in kinds
    event = only(events)
    assert event.usage.tools == {"web_search": 2, "file_search": 1, "code_interpreter": 1}
    assert_cost(event, GPT5_TOOLS, GPT5_TOTAL)


def test_openai_responses_stream_tools_are_billed(fake: FakeProvider,
                                                  events: list[CostEvent]) -> None:
    client = _openai(fake, RESPONSES_CHARGES)
    for _ in client.responses.create(model="gpt-5", input="Find it", stream=True):
        pass
    assert_cost(only(events), GPT5_TOOLS, GPT5_TOTAL)


def test_openai_async_responses_tools_are_billed(fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
    fake.configure("openai", usage=USAGE, charges=RESPONSES_CHARGES)

    async def call() -> None:
        client = openai.AsyncOpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
        await client.responses.create(model="gpt-5", input="Find it")
        await client.close()

    asyncio.run(call())
    assert_cost(only(events), GPT5_TOOLS, GPT5_TOTAL)


def test_openai_web_search_of_a_non_reasoning_model(fake: FakeProvider,
                                                    events: list[CostEvent]) -> None:
    # gpt-4.1: 1000 * $2/M + 200 * $8/M = 0.0036; one search at $25/1k.
    _openai(fake, FakeCharges(web_searches=1)).responses.create(model="gpt-4.1", input="x")
    assert_cost(only(events), "0.025", "0.0286")


@pytest.mark.parametrize(("charges", "kind", "fee"), [
    # gpt-image-1 high 1024x1536: $0.25 per image (the default tool model).
    (FakeCharges(images=(("high", "1024x1536"),)), "image_generation:gpt-image-1:high:1024x1536",
     "0.25"),
    # The tool's own model, gpt-image-1-mini low 1024x1024: $0.005.
    (FakeCharges(images=(("low", "1024x1024"),), image_tool_model="gpt-image-1-mini"),
     "image_generation:gpt-image-1-mini:low:1024x1024", "0.005"),
    # "auto" quality and size price as medium 1024x1024: $0.042.
    (FakeCharges(images=(("auto", "auto"),)), "image_generation:gpt-image-1:auto:auto", "0.042"),
])
def test_openai_image_generation_tool_is_billed(fake: FakeProvider, events: list[CostEvent],
                                                charges: FakeCharges, kind: str,
                                                fee: str) -> None:
    _openai(fake, charges).responses.create(model="gpt-5", input="Draw a cat")
    event = only(events)
    assert event.usage.tools == {kind: 1}
    assert_cost(event, fee, str(Decimal("0.00325") + Decimal(fee)))


def test_openai_provider_cost_is_recorded(fake: FakeProvider, events: list[CostEvent]) -> None:
    # OpenRouter reports the billed charge in usage.cost (an extra field to the openai SDK).
    completion = _openai(fake, FakeCharges(provider_cost=0.0123)).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert completion.usage.model_extra == {"cost": 0.0123}
    event = only(events)
    assert event.provider_cost == Decimal("0.0123")
    # llmlab's own figure is kept beside it: 1000 * $0.15/M + 200 * $0.60/M.
    assert event.cost is not None and event.cost.total == Decimal("0.00027")


def test_openai_stream_provider_cost_is_recorded(fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
    client = _openai(fake, FakeCharges(provider_cost=0.0004))
    for _ in client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                            messages=[{"role": "user", "content": "hi"}]):
        pass
    assert only(events).provider_cost == Decimal("0.0004")


def test_no_charges_leave_the_event_as_before(fake: FakeProvider,
                                              events: list[CostEvent]) -> None:
    _openai(fake, FakeCharges()).responses.create(model="gpt-5", input="x")
    event = only(events)
    assert event.usage.tools == {} and event.provider_cost is None
    wire = event.to_wire()
    assert "tools" not in wire["usage"] and "tools" not in wire["cost"]
    assert "provider_cost" not in wire


# -- Gemini: grounding metadata and IMAGE output tokens ------------------------------------


def _genai(fake: FakeProvider, charges: FakeCharges, usage: FakeUsage = USAGE) -> Any:
    fake.configure("google", usage=usage, charges=charges)
    return genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url=fake.google_base_url))


@pytest.mark.parametrize(("model", "charges", "tools", "fee", "tokens"), [
    # Gemini 2.5: one grounded prompt at $35/1k, however many queries it ran.
    ("gemini-2.5-flash", FakeCharges(web_searches=3), {"web_search": 3}, "0.035", "0.0008"),
    # Gemini 3: each search query at $14/1k (1000 * $0.50/M + 200 * $3/M = 0.0011).
    ("gemini-3-flash-preview", FakeCharges(web_searches=3), {"web_search": 3}, "0.042",
     "0.0011"),
    # Grounding with Google Maps on Gemini 2.5: $25/1k grounded prompts.
    ("gemini-2.5-flash", FakeCharges(maps_grounding=True), {"maps_grounding": 1}, "0.025",
     "0.0008"),
])
def test_gemini_grounding_is_billed(fake: FakeProvider, events: list[CostEvent], model: str,
                                    charges: FakeCharges, tools: dict[str, int], fee: str,
                                    tokens: str) -> None:
    client = _genai(fake, charges)  # kept: a dropped genai.Client closes its connection
    response = client.models.generate_content(model=model, contents="Where?")
    assert response.candidates[0].grounding_metadata is not None
    event = only(events)
    assert event.usage.tools == tools
    assert_cost(event, fee, str(Decimal(tokens) + Decimal(fee)))


def test_gemini_stream_grounding_is_billed(fake: FakeProvider, events: list[CostEvent]) -> None:
    client = _genai(fake, FakeCharges(web_searches=2))
    for _ in client.models.generate_content_stream(model="gemini-3-flash-preview",
                                                   contents="Where?"):
        pass
    event = only(events)
    assert event.usage.tools == {"web_search": 2}
    assert_cost(event, "0.028", "0.0291")  # 0.0011 of tokens + 2 queries * $14/1k


def test_gemini_image_output_tokens_bill_at_the_image_rate(fake: FakeProvider,
                                                           events: list[CostEvent]) -> None:
    # gemini-2.5-flash-image: 10 * $0.30/M in; 10 text tokens * $2.50/M and 1290 image
    # tokens * $30/M out = 0.000003 + 0.000025 + 0.0387.
    usage = FakeUsage(input_tokens=10, output_tokens=1300)
    client = _genai(fake, FakeCharges(image_output_tokens=1290), usage)
    response = client.models.generate_content(model="gemini-2.5-flash-image", contents="A cat")
    details = response.usage_metadata.candidates_tokens_details
    assert [d.modality for d in details] == [gtypes.MediaModality.TEXT, gtypes.MediaModality.IMAGE]
    event = only(events)
    assert event.usage.image_output_tokens == 1290
    assert event.cost is not None and event.cost.output == Decimal("0.038725")
    assert event.cost.total == Decimal("0.038728")
