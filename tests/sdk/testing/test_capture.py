"""`capture_events()`: what a user's test sees, starting from a process where llmlab was never set up."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import llmlab
from llmlab import integrations
from llmlab.schema import CostEvent
from llmlab.testing import CaptureServer, FakeProvider, FakeUsage, capture_events

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "Summarise my invoices"}]


@pytest.fixture(autouse=True)
def unpatched() -> Iterator[None]:
    """Start as a fresh process does (no integration patched) and leave no patch behind."""
    llmlab.uninstrument()
    yield
    llmlab.shutdown()
    llmlab.uninstrument()


def chat(fake: FakeProvider, *, wrap: bool = False) -> Any:
    """One chat call through a plain (or `llmlab.wrap`-ped) client to the fake."""
    client = openai.OpenAI(api_key="test", base_url=fake.openai_base_url, max_retries=0)
    if wrap:
        client = llmlab.wrap(client)
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def record() -> CostEvent | None:
    return llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 2})


class TestNotInitialised:
    def test_a_plain_client_made_in_the_block_is_recorded(self, fake: FakeProvider) -> None:
        """A plain openai.OpenAI() made inside the block is recorded and priced, as in docs/sdk.md's
        testing example (it raised IndexError when the block patched nothing)."""
        fake.openai.usage = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000)
        with capture_events() as events:
            chat(fake)
        assert [(e.model, e.cost and e.cost.total) for e in events] == [("gpt-4o", Decimal("0.00475"))]

    def test_the_block_leaves_llmlab_as_it_found_it(self, fake: FakeProvider) -> None:
        """After the block llmlab is a no-op again and the patches it added are gone."""
        with capture_events() as events:
            assert "openai" in integrations.installed()
        assert integrations.installed() == []
        assert record() is None
        chat(fake)
        assert events == []

    def test_integrations_enabled_before_the_block_stay_enabled(self, fake: FakeProvider) -> None:
        """An integration the application had enabled is still patched after the block."""
        llmlab.instrument("openai")
        with capture_events():
            pass
        assert integrations.installed() == ["openai", "openai_media"]

    def test_auto_instrument_false_sees_only_wrapped_clients(self, fake: FakeProvider) -> None:
        """With auto_instrument=False nothing is patched: a plain client is not recorded, a wrapped
        one and llmlab.record are."""
        with capture_events(auto_instrument=False) as events:
            chat(fake)
            chat(fake, wrap=True)
            record()
        assert [e.operation for e in events] == ["chat.completions", "manual"]
        assert integrations.installed() == []

    def test_auto_instrument_names_patch_only_those(self) -> None:
        """A list of names patches only those libraries, as llmlab.init(auto_instrument=[...])."""
        with capture_events(auto_instrument=["anthropic"]):
            installed = integrations.installed()
        assert "openai" not in installed

    def test_offline_even_when_a_server_is_configured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_BASE_URL and LLMLAB_API_KEY in the environment do not make the block ship events;
        LLMLAB_PROJECT still attributes them."""
        with CaptureServer(api_key="llm_test") as server:
            monkeypatch.setenv("LLMLAB_BASE_URL", server.url)
            monkeypatch.setenv("LLMLAB_API_KEY", "llm_test")
            monkeypatch.setenv("LLMLAB_PROJECT", "env-project")
            with capture_events() as events:
                record()
            assert server.requests == []
        assert [e.project for e in events] == ["env-project"]


class TestInitialised:
    def test_the_application_configuration_is_left_alone(self, fake: FakeProvider) -> None:
        """When the application initialised llmlab without patching, the block collects what it
        records (a plain client is still not seen) and changes nothing: llmlab stays initialised."""
        seen_by_app: list[CostEvent] = []
        llmlab.init(ledger=False, auto_instrument=False, on_event=seen_by_app.append)
        with capture_events() as events:
            chat(fake)
            record()
        assert [e.id for e in events] == [e.id for e in seen_by_app]
        assert len(events) == 1
        assert integrations.installed() == []
        assert record() is not None
