"""LlamaIndex (llama-index-llms-openai and -embeddings-openai, which pin openai 2.x): chat,
completion, streams and embeddings priced once through the openai integration."""

from __future__ import annotations

import asyncio
import logging

import openai
import pytest
from llama_index.core.llms import ChatMessage
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI
from stack_helpers import EMBED_COST, EMBED_USAGE, GPT_4O_COST, assert_each_call_once

import llmlab
from llmlab.integrations import _versions
from llmlab.integrations.openai import OpenAIIntegration
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


def llm(fake: FakeProvider) -> OpenAI:
    return OpenAI(model="gpt-4o", api_base=fake.openai_base_url, api_key="sk-test", max_retries=0)


def test_runs_on_openai_2() -> None:
    """What this module proves: the integration on the 2.x line LlamaIndex pins."""
    assert openai.__version__.startswith("2.")


class TestLlamaIndex:
    def test_chat_complete_and_streams(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """chat, complete, stream_chat, stream_complete, achat, astream_chat: six events."""
        model = llm(fake)
        messages = [ChatMessage(role="user", content="hi")]
        with llmlab.track(job="rag", user="u-3", tags={"stack": "llamaindex"}) as scope:
            assert model.chat(messages).message.content
            assert model.complete("hi").text
            assert "".join(r.delta or "" for r in model.stream_chat(messages))
            assert "".join(r.delta or "" for r in model.stream_complete("hi"))

            async def run() -> None:
                await model.achat(messages)
                async for _ in await model.astream_chat(messages):
                    pass

            asyncio.run(run())
        assert_each_call_once(fake, events)
        assert [e.stream for e in events] == [False, False, True, True, False, True]
        for event in events:
            assert (event.provider, event.model, event.job_id, event.user_id) == (
                "openai", "gpt-4o", "rag", "u-3")
            assert event.tags == {"stack": "llamaindex"}
            assert event.cost is not None and event.cost.total == GPT_4O_COST
            assert not event.estimated
        assert (scope.calls, scope.cost) == (6, 6 * GPT_4O_COST)

    def test_embeddings(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """OpenAIEmbedding: text, query and batch embeddings, each request priced."""
        fake.configure("openai", usage=EMBED_USAGE)
        embedder = OpenAIEmbedding(model="text-embedding-3-small", api_base=fake.openai_base_url,
                                   api_key="sk-test", max_retries=0)
        with llmlab.track(job="ingest"):
            assert embedder.get_text_embedding("a")
            assert embedder.get_query_embedding("a")
            assert len(embedder.get_text_embedding_batch(["a", "b"])) == 2
        assert_each_call_once(fake, events)
        assert len(events) == 3
        for event in events:
            assert (event.operation, event.model, event.job_id) == (
                "embeddings", "text-embedding-3-small", "ingest")
            assert event.cost is not None and event.cost.total == EMBED_COST


class TestUnsupportedVersionWarning:
    def test_warned_once_with_the_range(self, caplog: pytest.LogCaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
        """An openai release outside the supported range is said once at WARNING, not at
        DEBUG, and names the range; the installed 2.x itself is within it."""
        _versions.check("openai", OpenAIIntegration.min_version, OpenAIIntegration.max_version)
        monkeypatch.setattr(OpenAIIntegration, "min_version", (99, 0))
        monkeypatch.setattr(_versions, "_WARNED", set())
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            for _ in range(3):
                assert "openai" not in llmlab.instrument()
        [record] = [r for r in caplog.records if "openai" in r.getMessage()]
        assert record.levelno == logging.WARNING
        assert f"openai {openai.__version__} is installed" in record.getMessage()
        assert "openai>=99.0,<4" in record.getMessage()
        llmlab.uninstrument()
