"""Agent frameworks on openai 3.x: the OpenAI Agents SDK and Pydantic AI, every model call
priced once and attributed to the scope the agent runs in."""

from __future__ import annotations

import asyncio

import agents
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import NativeOutput
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider
from stack_helpers import GPT_4O_COST, assert_each_call_once

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


def assert_priced(events: list[CostEvent], operation: str, job: str, streams: list[bool]) -> None:
    assert [e.stream for e in events] == streams
    for event in events:
        assert (event.provider, event.model, event.operation, event.job_id) == (
            "openai", "gpt-4o", operation, job)
        assert event.cost is not None and event.cost.total == GPT_4O_COST
        assert not event.estimated


@pytest.fixture(autouse=True)
def _no_agents_tracing() -> None:
    """The Agents SDK exports its traces to OpenAI by default: nothing leaves the machine."""
    agents.set_tracing_disabled(True)


class TestOpenAIAgents:
    @pytest.mark.parametrize("api", ["responses", "chat.completions"])
    def test_run_and_run_streamed_are_priced_once(self, fake: FakeProvider,
                                                  events: list[CostEvent], api: str) -> None:
        """Runner.run and Runner.run_streamed, on the Responses and the Chat Completions models."""
        client = AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
        model: agents.Model = (agents.OpenAIResponsesModel("gpt-4o", client) if api == "responses"
                               else agents.OpenAIChatCompletionsModel("gpt-4o", client))
        agent = agents.Agent(name="helper", instructions="Answer briefly.", model=model)

        async def run() -> None:
            with llmlab.track(job="agents"):
                result = await agents.Runner.run(agent, "hi")
                assert result.final_output
                streamed = agents.Runner.run_streamed(agent, "again")
                async for _ in streamed.stream_events():
                    pass
                assert streamed.final_output

        asyncio.run(run())
        assert_each_call_once(fake, events)
        assert_priced(events, api, "agents", [False, True])


class City(BaseModel):
    name: str
    country: str


class TestPydanticAI:
    @pytest.mark.parametrize("model_class", [OpenAIChatModel, OpenAIResponsesModel])
    def test_run_stream_and_structured_output(self, fake: FakeProvider, events: list[CostEvent],
                                              model_class: type) -> None:
        """run_sync with a structured (native) output_type, and run_stream: one event each."""
        provider = OpenAIProvider(base_url=fake.openai_base_url, api_key="sk-test")
        model = model_class("gpt-4o", provider=provider)
        operation = "responses" if model_class is OpenAIResponsesModel else "chat.completions"
        with llmlab.track(job="pydantic-ai", user="u-2") as scope:
            city = PydanticAgent(model, output_type=NativeOutput(City)).run_sync("Paris?").output
            assert isinstance(city, City)

            async def stream() -> None:
                async with PydanticAgent(model).run_stream("hi") as result:
                    async for _ in result.stream_text():
                        pass

            asyncio.run(stream())
        assert_each_call_once(fake, events)
        assert_priced(events, operation, "pydantic-ai", [False, True])
        assert {e.user_id for e in events} == {"u-2"}
        assert (scope.calls, scope.cost) == (2, 2 * GPT_4O_COST)
