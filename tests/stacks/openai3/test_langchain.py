"""LangChain (langchain-openai) and LangGraph: every chat and embedding call priced once."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langgraph.graph import END, START, StateGraph
from stack_helpers import EMBED_COST, EMBED_USAGE, GPT_4O_COST, assert_each_call_once

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


def chat(fake: FakeProvider) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o", base_url=fake.openai_base_url, api_key="sk-test",
                      max_retries=0)


class TestLangChain:
    def test_invoke_and_stream_are_priced_once(self, fake: FakeProvider,
                                               events: list[CostEvent]) -> None:
        """invoke, stream, ainvoke and astream: four requests, four exact attributed events."""
        model = chat(fake)
        with llmlab.track(job="lc", user="u-1", tags={"stack": "langchain"}) as scope:
            assert model.invoke("hi").content
            assert "".join(str(c.content) for c in model.stream("hi"))

            async def run() -> None:
                await model.ainvoke("hi")
                async for _ in model.astream("hi"):
                    pass

            asyncio.run(run())
        assert_each_call_once(fake, events)
        assert [e.stream for e in events] == [False, True, False, True]
        for event in events:
            assert (event.provider, event.model, event.job_id, event.user_id) == (
                "openai", "gpt-4o", "lc", "u-1")
            assert event.tags == {"stack": "langchain"}
            assert event.cost is not None and event.cost.total == GPT_4O_COST
            assert not event.estimated
        assert (scope.calls, scope.cost) == (4, 4 * GPT_4O_COST)

    def test_embeddings_are_priced(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """OpenAIEmbeddings (without its tiktoken length check, which downloads encodings)."""
        fake.configure("openai", usage=EMBED_USAGE)
        embedder = OpenAIEmbeddings(model="text-embedding-3-small", base_url=fake.openai_base_url,
                                    api_key="sk-test", check_embedding_ctx_length=False)
        with llmlab.track(job="index"):
            assert len(embedder.embed_documents(["a", "b"])) == 2
            assert embedder.embed_query("a")
        assert_each_call_once(fake, events)
        for event in events:
            assert (event.operation, event.model, event.job_id) == (
                "embeddings", "text-embedding-3-small", "index")
            assert event.cost is not None and event.cost.total == EMBED_COST


class State(TypedDict):
    question: str
    draft: str
    answer: str


class TestLangGraph:
    def test_each_node_is_priced_and_attributed(self, fake: FakeProvider,
                                                events: list[CostEvent]) -> None:
        """A two-node graph: each node's call carries the node's scope; streamed runs too."""
        model = chat(fake)

        def draft(state: State) -> dict[str, str]:
            with llmlab.track(tags={"node": "draft"}):
                return {"draft": str(model.invoke(state["question"]).content)}

        def review(state: State) -> dict[str, str]:
            with llmlab.track(tags={"node": "review"}):
                text = "".join(str(c.content) for c in model.stream(state["draft"]))
            return {"answer": text}

        builder = StateGraph(State)
        builder.add_node("draft", draft)
        builder.add_node("review", review)
        builder.add_edge(START, "draft")
        builder.add_edge("draft", "review")
        builder.add_edge("review", END)
        graph = builder.compile()
        with llmlab.track(job="graph-1") as scope:
            assert graph.invoke({"question": "hi"})["answer"]
            for _ in graph.stream({"question": "again"}):
                pass
        assert_each_call_once(fake, events)
        assert [(e.tags["node"], e.stream) for e in events] == [
            ("draft", False), ("review", True), ("draft", False), ("review", True)]
        for event in events:
            assert event.job_id == "graph-1" and event.model == "gpt-4o"
            assert event.cost is not None and event.cost.total == GPT_4O_COST
        assert (scope.calls, scope.cost) == (4, 4 * GPT_4O_COST)
