"""Grounding fees through google-generativeai (the legacy SDK) and LiteLLM's usage type."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest

from llmlab.schema import CostEvent
from llmlab.testing import FakeCharges, FakeProvider, FakeUsage
from llmlab.usage import Usage

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the package warns that it is deprecated
    legacy = pytest.importorskip("google.generativeai")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def rest(fake: FakeProvider) -> None:
    legacy.configure(api_key="k", transport="rest",
                     client_options={"api_endpoint": fake.google_legacy_endpoint})
    fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=200),
                   charges=FakeCharges(web_searches=3))


def test_legacy_grounding_is_billed_per_prompt(events: list[CostEvent]) -> None:
    # gemini-2.5-flash: 1000 * $0.30/M + 200 * $2.50/M = 0.0008; one grounded prompt $0.035.
    response = legacy.GenerativeModel("gemini-2.5-flash").generate_content("Where?")
    assert list(response.candidates[0].grounding_metadata.web_search_queries) == [
        "query 0", "query 1", "query 2"]
    [event] = events
    assert event.usage.tools == {"web_search": 3}
    assert event.cost is not None
    assert (event.cost.tools, event.cost.total) == (Decimal("0.035"), Decimal("0.0358"))


def test_legacy_stream_grounding_is_billed_per_query(events: list[CostEvent]) -> None:
    # gemini-3-flash-preview: 1000 * $0.50/M + 200 * $3/M = 0.0011; 3 queries * $14/1k.
    for _ in legacy.GenerativeModel("gemini-3-flash-preview").generate_content("Where?",
                                                                               stream=True):
        pass
    [event] = events
    assert event.cost is not None
    assert (event.cost.tools, event.cost.total) == (Decimal("0.042"), Decimal("0.0431"))


def test_litellm_usage_passes_server_tool_use_on() -> None:
    litellm_types = pytest.importorskip("litellm.types.utils")
    usage = litellm_types.Usage(prompt_tokens=100, completion_tokens=20,
                                server_tool_use=litellm_types.ServerToolUse(web_search_requests=4))
    assert Usage.from_any(usage).tools == {"web_search": 4}


def test_litellm_gemini_grounding_is_read_from_prompt_details() -> None:
    litellm_types = pytest.importorskip("litellm.types.utils")
    usage = litellm_types.Usage(
        prompt_tokens=100, completion_tokens=20,
        prompt_tokens_details=litellm_types.PromptTokensDetailsWrapper(web_search_requests=2))
    assert Usage.from_any(usage).tools == {"web_search": 2}
