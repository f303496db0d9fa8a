"""Built-in tool charges: normalised counts, catalogue prices, the engine and the wire.

Usage and response objects are built from the installed SDKs' own types.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from llmlab._tools import gemini_tools, openai_response_tools
from llmlab.errors import UsageError
from llmlab.pricing import Catalogue
from llmlab.pricing._litellm import convert_table, convert_tool_prices
from llmlab.schema import CostEvent, EventUsage
from llmlab.usage import Usage

anthropic_types = pytest.importorskip("anthropic.types")
gtypes = pytest.importorskip("google.genai.types")
responses = pytest.importorskip("openai.types.responses")

EVENT: dict[str, Any] = {"id": "e1", "timestamp": "2026-11-22T10:00:00Z",
                         "provider": "anthropic", "model": "claude-sonnet-4-5"}


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue.bundled()


def test_anthropic_server_tool_use_is_read_from_the_sdk_type() -> None:
    usage = anthropic_types.Usage(
        input_tokens=100, output_tokens=20,
        server_tool_use=anthropic_types.ServerToolUsage(web_search_requests=5,
                                                        web_fetch_requests=1))
    assert Usage.from_any(usage).tools == {"web_search": 5, "web_fetch": 1}


def test_proxied_server_tool_use_is_read_from_openai_shaped_usage() -> None:
    # LiteLLM passes Anthropic's counts through in an OpenAI-shaped usage.
    usage = Usage.from_any({"prompt_tokens": 10, "completion_tokens": 2,
                            "server_tool_use": {"web_search_requests": 3}})
    assert usage.tools == {"web_search": 3}


def test_gemini_grounding_is_read_from_the_sdk_types() -> None:
    response = gtypes.GenerateContentResponse(candidates=[gtypes.Candidate(
        grounding_metadata=gtypes.GroundingMetadata(web_search_queries=["a", "b"],
                                                    google_maps_widget_context_token="t"))])
    assert gemini_tools(response) == {"web_search": 2, "maps_grounding": 1}
    assert gemini_tools(gtypes.GenerateContentResponse(candidates=[gtypes.Candidate()])) == {}


def test_gemini_image_output_tokens_are_read_from_the_sdk_type() -> None:
    meta = gtypes.GenerateContentResponseUsageMetadata(
        prompt_token_count=10, candidates_token_count=1300, candidates_tokens_details=[
            gtypes.ModalityTokenCount(modality=gtypes.MediaModality.TEXT, token_count=10),
            gtypes.ModalityTokenCount(modality=gtypes.MediaModality.IMAGE, token_count=1290)])
    usage = Usage.from_any(meta)
    assert (usage.output_tokens, usage.image_output_tokens) == (1300, 1290)


def test_openai_response_items_are_counted_from_the_sdk_types() -> None:
    response = responses.Response.model_validate({
        "id": "r", "object": "response", "created_at": 0, "model": "gpt-5",
        "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [{"type": "image_generation", "model": "gpt-image-1-mini"}],
        "output": [
            {"type": "web_search_call", "id": "w1", "status": "completed",
             "action": {"type": "search", "query": "q"}},
            {"type": "web_search_call", "id": "w2", "status": "completed",
             "action": {"type": "search", "query": "q"}},
            {"type": "code_interpreter_call", "id": "c1", "status": "completed", "code": "1",
             "container_id": "cntr_a", "outputs": []},
            {"type": "code_interpreter_call", "id": "c2", "status": "completed", "code": "2",
             "container_id": "cntr_a", "outputs": []},
            {"type": "image_generation_call", "id": "i1", "status": "completed", "result": "x",
             "quality": "low", "size": "1024x1024"},
            {"type": "image_generation_call", "id": "i2", "status": "failed", "result": None}]})
    assert openai_response_tools(response) == {
        "web_search": 2, "code_interpreter": 1,  # one container, used twice
        "image_generation:gpt-image-1-mini:low:1024x1024": 1}  # a failed image is not billed


def test_tool_counts_add_and_are_validated() -> None:
    total = Usage(10, 2, tools={"web_search": 1}) + Usage(5, 1, tools={"web_search": 2,
                                                                         "file_search": 1})
    assert total.tools == {"web_search": 3, "file_search": 1}
    with pytest.raises(UsageError):
        Usage(1, 1, tools={"Web Search": 1})
    with pytest.raises(UsageError):
        Usage(1, 1, tools={"web_search": -1})
    with pytest.raises(TypeError):
        total.tools["web_search"] = 9  # type: ignore[index]


def test_tools_are_priced_per_use(catalogue: Catalogue) -> None:
    # claude-sonnet-4-5, 5 web searches at $10/1k: 26.5 % of the bill was missing.
    cost = catalogue.cost("claude-sonnet-4-5", Usage(1000, 200, tools={"web_search": 5}),
                          "anthropic")
    assert cost.tools == Decimal("0.05")
    assert cost.total == Decimal("0.056")
    assert cost.to_wire()["tools"] == "0.05"


def test_per_prompt_tools_bill_once(catalogue: Catalogue) -> None:
    flash = catalogue.cost("gemini-2.5-flash", Usage(1000, 200, tools={"web_search": 4}),
                           "google")
    gemini3 = catalogue.cost("gemini-3-flash-preview", Usage(1000, 200, tools={"web_search": 4}),
                             "google")
    assert (flash.tools, gemini3.tools) == (Decimal("0.035"), Decimal("0.056"))


def test_provider_prices_stand_in_for_a_model_without_its_own(catalogue: Catalogue) -> None:
    # gpt-4o lists no search price: OpenAI's $10/1k web search call; file search $2.50/1k.
    cost = catalogue.cost("gpt-4o", Usage(0, 0, tools={"web_search": 1, "file_search": 2}),
                          "openai")
    assert cost.tools == Decimal("0.015")


def test_markup_scales_tool_fees(catalogue: Catalogue) -> None:
    catalogue.set_markup(10)
    cost = catalogue.cost("claude-sonnet-4-5", Usage(0, 0, tools={"web_search": 10}),
                          "anthropic")
    assert cost.tools == Decimal("0.11") and cost.total == cost.tools


def test_an_unpriced_tool_is_counted_and_warned_once(catalogue: Catalogue,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    usage = Usage(1000, 0, tools={"mystery_tool": 2})
    with caplog.at_level(logging.WARNING, logger="llmlab"):
        first = catalogue.cost("claude-sonnet-4-5", usage, "anthropic")
        catalogue.cost("claude-sonnet-4-5", usage, "anthropic")
    assert first.unpriced_tools == ("mystery_tool",) and first.tools == 0
    assert first.total == Decimal("0.003")
    assert sum("mystery_tool" in r.getMessage() for r in caplog.records) == 1
    assert "tools" not in first.to_wire()


def test_the_catalogue_keeps_tool_prices_through_save(catalogue: Catalogue, tmp_path: Any) -> None:
    catalogue.save(tmp_path / "c.json")
    again = Catalogue.from_file(tmp_path / "c.json")
    assert again.tool_prices == catalogue.tool_prices
    usage = Usage(0, 0, tools={"web_search": 3})
    assert again.cost("gemini-2.5-flash", usage, "google").tools == Decimal("0.035")


def test_table_tool_fields_convert() -> None:
    table = {
        "gemini/gemini-x": {"litellm_provider": "gemini", "mode": "chat",
                            "input_cost_per_token": 1e-7,
                            "search_context_cost_per_query": {"search_context_size_medium": 0.014},
                            "google_maps_grounding_cost_per_query": 0.014,
                            "web_search_billing_unit": "per_query"},
        "gemini/gemini-y": {"litellm_provider": "gemini", "mode": "chat",
                            "input_cost_per_token": 1e-7, "search_context_cost_per_query": 0.035},
        "gemini/gemini-y-image": {"litellm_provider": "gemini", "mode": "image_generation",
                                  "input_cost_per_token": 1e-7, "output_cost_per_image_token": 3e-5},
        "openai/container": {"litellm_provider": "openai", "mode": "chat",
                             "code_interpreter_cost_per_session": 0.03},
        "low/1024-x-1024/gpt-image-9": {"litellm_provider": "openai",
                                        "mode": "image_generation", "input_cost_per_image": 0.01},
    }
    models = convert_table(table)
    assert models["google/gemini-x"]["prices"][0]["tools"] == {
        "prices": {"maps_grounding": "0.014", "web_search": "0.014"}}
    assert models["google/gemini-y"]["prices"][0]["tools"] == {
        "prices": {"web_search": "0.035"}, "per_prompt": ["web_search"]}
    assert models["google/gemini-y-image"]["prices"][0]["rates"]["standard"]["image_output"] == "0.00003"
    openai_tools = convert_tool_prices(table)["openai"]["prices"]
    assert openai_tools["code_interpreter"] == "0.03"
    assert openai_tools["image_generation:gpt-image-9:low:1024x1024"] == "0.01"


def test_old_events_validate_without_the_new_fields() -> None:
    event = CostEvent.model_validate({**EVENT, "usage": {"input_tokens": 10},
                                      "cost": {"total": "0.00003"}})
    assert event.usage.tools == {} and event.cost is not None and event.cost.tools == 0
    assert event.provider_cost is None
    wire = event.to_wire()
    assert "tools" not in wire["usage"] and "tools" not in wire["cost"]
    assert "provider_cost" not in wire


def test_events_with_tools_round_trip() -> None:
    event = CostEvent.model_validate({
        **EVENT, "usage": {"input_tokens": 10, "tools": {"web_search": 5}},
        "cost": {"tools": "0.05", "total": "0.05003"}, "provider_cost": "0.05003"})
    again = CostEvent.model_validate(event.to_wire())
    assert again == event and again.usage.tools == {"web_search": 5}


@pytest.mark.parametrize("tools", [{"Web": 1}, {"web_search": -1}, {"web_search": 1.5},
                                   {f"k{i}": 1 for i in range(33)}])
def test_bad_tool_counts_are_refused_on_the_wire(tools: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EventUsage.model_validate({"input_tokens": 1, "tools": tools})
