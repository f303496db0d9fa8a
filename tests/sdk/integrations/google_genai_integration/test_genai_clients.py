"""The google-genai integration: wrapping one client, the provider name, the version gate."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from genai_helpers import FLASH, FLASH_COST, TEXT, USAGE, client, uninstrumented

import llmlab
from llmlab.integrations.google_genai import GoogleGenAIIntegration, model_name
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


class TestWrapClient:
    def test_wrap_under_global_instrumentation_counts_once(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """llmlab.wrap on an already patched library still records each call once."""
        fake.configure("google", usage=USAGE)
        wrapped = llmlab.wrap(client(fake))
        wrapped.models.generate_content(model=FLASH, contents="hi")
        list(wrapped.models.generate_content_stream(model=FLASH, contents="hi"))

        async def main() -> None:
            await wrapped.aio.models.generate_content(model=FLASH, contents="hi")

        asyncio.run(main())
        assert [e.stream for e in events] == [False, True, False]
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    def test_wrap_alone_instruments_the_instance(self, fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
        """Without global patching, a wrapped client is recorded and an unwrapped one is not."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            wrapped = llmlab.wrap(client(fake))
            wrapped.models.generate_content(model=FLASH, contents="hi")
            llmlab.wrap(wrapped)  # wrapping twice does not double count
            wrapped.models.generate_content(model=FLASH, contents="hi")
            client(fake).models.generate_content(model=FLASH, contents="hi")
        assert len(events) == 2 and events[0].cost is not None
        assert events[0].cost.total == FLASH_COST

    def test_wrap_async_client_alone(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """``llmlab.wrap(client.aio)`` instruments that async client only."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            made = client(fake)
            assert llmlab.wrap(made.aio) is made.aio

            async def main() -> None:
                await made.aio.models.generate_content(model=FLASH, contents="hi")

            asyncio.run(main())
            made.models.generate_content(model=FLASH, contents="hi")  # the sync side: not wrapped
        [event] = events
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_wrap_client_rejects_other_types(self) -> None:
        """wrap_client is False for anything but a genai.Client or its AsyncClient."""
        assert GoogleGenAIIntegration().wrap_client(object()) is False


class TestProvider:
    def test_vertex_call_is_priced_as_vertex(self, fake: FakeProvider,
                                             events: list[CostEvent]) -> None:
        """A Vertex AI call (plain and streamed) is priced from the vertex catalogue entries."""
        fake.configure("google", usage=USAGE)
        vertex = client(fake, vertexai=True)
        assert vertex.models.generate_content(model=FLASH, contents="hi").text == TEXT
        list(vertex.models.generate_content_stream(model=FLASH, contents="hi"))
        assert [(e.provider, e.model, e.stream, e.status) for e in events] == [
            ("vertex", FLASH, False, "ok"), ("vertex", FLASH, True, "ok")]
        # vertex/gemini-2.5-flash has the same list prices as the Gemini API
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    @pytest.mark.parametrize(("raw", "name"), [
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("projects/p/locations/l/publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("tunedModels/abc-123", "tunedModels/abc-123"),
        ("", None),
        (None, None),
    ])
    def test_model_name(self, raw: Any, name: str | None) -> None:
        """Resource paths are reduced to the bare model name; tuned models are kept whole."""
        assert model_name(raw) == name


class TestVersionGate:
    def test_falls_back_to_public_methods(self, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
        """Without the per-request methods the public ones are patched and a note is logged."""
        import google.genai.models as models_module

        def method(self: Any, **kwargs: Any) -> None:
            return None

        public = {"generate_content": method, "generate_content_stream": method}
        monkeypatch.setattr(models_module, "Models", type("Models", (), dict(public)))
        monkeypatch.setattr(models_module, "AsyncModels", type("AsyncModels", (), dict(public)))
        monkeypatch.setattr(GoogleGenAIIntegration, "_noted_fallback", False)
        with caplog.at_level(logging.INFO, logger="llmlab"):
            targets = GoogleGenAIIntegration._targets()
        assert sorted({name for _, name, _, _ in targets}) == [
            "generate_content", "generate_content_stream"]
        assert "patching the public ones" in caplog.text

    def test_patches_the_per_request_methods(self) -> None:
        """On google-genai 3.x the private per-request methods are the ones patched."""
        names = {(owner.__name__, name) for owner, name, _, _ in GoogleGenAIIntegration._targets()}
        assert names == {("Models", "_generate_content"), ("Models", "_generate_content_stream"),
                         ("AsyncModels", "_generate_content"),
                         ("AsyncModels", "_generate_content_stream")}
