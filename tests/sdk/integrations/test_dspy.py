"""DSPy: real dspy programs against the fake provider, on DSPy's default engine (its vendored
lm15, recorded by the dspy integration) and on its LiteLLM engine (the LiteLLM integration)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import llmlab
from llmlab._tracker import get_tracker
from llmlab.integrations import _versions, installed
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

# DSPy imports LiteLLM, which downloads its price map at import unless told not to (DSPy's
# model metadata reads the same setting).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
dspy = pytest.importorskip("dspy")

from dspy.clients.engines.lm15_engine import AsyncLM15Engine, LM15Engine  # noqa: E402

from llmlab.integrations.dspy import DSPyIntegration  # noqa: E402

D = Decimal
# gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M.
USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
GPT_4O_COST = D("0.00475")  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5
#: Anthropic's own fields (input excludes the 300 cache reads and 150 writes, which lm15 also
#: reports apart); claude-haiku-4-5: 1000 x $1/M + 300 x $0.10/M + 100 x $1.25/M (5-minute
#: writes) + 50 x $2/M (1-hour writes) + 200 x $5/M.
HAIKU_USAGE = FakeUsage(input_tokens=1000, output_tokens=200, cached_tokens=300,
                        cache_creation_5m_tokens=100, cache_creation_1h_tokens=50,
                        reasoning_tokens=40)
HAIKU_COST = D("0.002255")
#: gemini-2.5-flash: 1000 uncached x 3e-7 + 1000 cached x 3e-8 + (300 + 120 thoughts) x 2.5e-6.
FLASH_USAGE = FakeUsage(input_tokens=2000, output_tokens=300, cached_tokens=1000,
                        reasoning_tokens=120)
FLASH_COST = D("0.00138")
#: provider → (fake provider, dspy model, llmlab model, usage, cost of one call).
CASES = {
    "openai": ("openai", "openai/gpt-4o", "gpt-4o", USAGE, GPT_4O_COST),
    "anthropic": ("anthropic", "anthropic/claude-haiku-4-5", "claude-haiku-4-5", HAIKU_USAGE,
                  HAIKU_COST),
    "google": ("google", "gemini/gemini-2.5-flash", "gemini-2.5-flash", FLASH_USAGE, FLASH_COST),
}
# What DSPy's ChatAdapter parses as the answer, so the program makes exactly one call.
ANSWER = "[[ ## answer ## ]]\n4\n\n[[ ## completed ## ]]"
COT_ANSWER = "[[ ## reasoning ## ]]\n2 and 2\n\n" + ANSWER


def lm(fake: FakeProvider, **kwargs: object) -> object:
    """A dspy.LM on the fake provider, DSPy's response cache off (a hit bills nothing)."""
    return dspy.LM("openai/gpt-4o", api_base=fake.openai_base_url, api_key="sk-test",
                   cache=False, **kwargs)


def native(fake: FakeProvider, provider: str, cache: bool = False) -> Any:
    """A dspy.LM on its default engine (lm15), pointed at the fake's ``provider`` API."""
    base = {"openai": fake.openai_base_url, "anthropic": fake.anthropic_base_url + "/v1",
            "google": fake.google_base_url + "/v1beta"}[provider]
    return dspy.LM(CASES[provider][1], api_base=base, api_key="k", cache=cache)


def configure(fake: FakeProvider, provider: str, text: str = ANSWER) -> None:
    fake.configure(CASES[provider][0], usage=CASES[provider][3], text=text)  # type: ignore[arg-type]


def assert_lm15_requests(fake: FakeProvider, count: int) -> None:
    """The fake received ``count`` requests, all from DSPy's lm15 transport."""
    assert len(fake.requests) == count
    assert all(r.headers["user-agent"].startswith("lm15/") for r in fake.requests)


class TestLiteLLMEngine:
    def test_predict_is_priced_once(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A Predict call on dspy.LM's LiteLLM engine makes one request and one exact event
        (the lm15 engines are not reached, so nothing is counted twice)."""
        fake.configure("openai", usage=USAGE, text=ANSWER)
        with dspy.context(lm=lm(fake, engine="litellm")), llmlab.track(job="qa") as scope:
            prediction = dspy.Predict("question -> answer")(question="2+2?")
        assert prediction.answer == "4"
        [event] = events
        assert len(fake.requests) == 1
        assert not fake.requests[0].headers["user-agent"].startswith("lm15/")
        assert (event.provider, event.model, event.job_id) == ("openai", "gpt-4o", "qa")
        assert event.cost is not None and event.cost.total == GPT_4O_COST
        assert (scope.calls, scope.cost) == (1, GPT_4O_COST)

    def test_async_predict_is_priced_once(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """Predict.acall goes through litellm.acompletion and is recorded once."""
        fake.configure("openai", usage=USAGE, text=ANSWER)

        async def run() -> object:
            with dspy.context(lm=lm(fake, engine="litellm")), llmlab.track(job="qa-async"):
                return await dspy.Predict("question -> answer").acall(question="2+2?")

        assert asyncio.run(run()).answer == "4"  # type: ignore[attr-defined]
        [event] = events
        assert event.job_id == "qa-async" and event.cost is not None
        assert event.cost.total == GPT_4O_COST

    def test_default_engine_choosing_litellm_is_recorded_once(
            self, fake: FakeProvider, events: list[CostEvent],
            monkeypatch: pytest.MonkeyPatch) -> None:
        """An ``OPENAI_BASE_URL`` in the environment makes DSPy's default engine send the
        request through LiteLLM (as docs/integrations.md#dspy says): one event, not two."""
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        fake.configure("openai", usage=USAGE, text=ANSWER)
        with dspy.context(lm=dspy.LM("openai/gpt-4o", api_key="sk-test", cache=False)):
            assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
        [request] = fake.requests
        assert not request.headers["user-agent"].startswith("lm15/")
        [event] = events
        assert event.cost is not None and event.cost.total == GPT_4O_COST


@pytest.mark.parametrize("provider", list(CASES))
class TestDefaultEngine:
    def test_predict(self, fake: FakeProvider, events: list[CostEvent], provider: str) -> None:
        """dspy.LM's default engine (lm15 on raw sockets): one request, one exact event,
        attributed to the scope, cache tokens priced at their rates."""
        configure(fake, provider)
        _, _, model, _, cost = CASES[provider]
        with dspy.context(lm=native(fake, provider)), \
                llmlab.track(job="qa", user="u-1") as scope:
            assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
        assert_lm15_requests(fake, 1)
        [event] = events
        assert (event.provider, event.model, event.job_id, event.user_id) == (
            provider, model, "qa", "u-1")
        assert (event.status, event.estimated) == ("ok", False)
        assert event.cost is not None and event.cost.total == cost
        assert (scope.calls, scope.cost) == (1, cost)

    def test_predict_outside_a_scope(self, fake: FakeProvider, events: list[CostEvent],
                                     provider: str) -> None:
        """Outside track() (the deferred run prices on the worker): the same exact event."""
        configure(fake, provider)
        with dspy.context(lm=native(fake, provider)):
            dspy.Predict("question -> answer")(question="2+2?")
        assert_lm15_requests(fake, 1)
        [event] = events
        assert event.cost is not None and event.cost.total == CASES[provider][4]

    def test_async_chain_of_thought(self, fake: FakeProvider, events: list[CostEvent],
                                    provider: str) -> None:
        """ChainOfThought.acall goes through AsyncLM15Engine: recorded once, in its scope."""
        configure(fake, provider, COT_ANSWER)

        async def run() -> Any:
            with dspy.context(lm=native(fake, provider)), llmlab.track(job="cot") as scope:
                first = await dspy.ChainOfThought("question -> answer").acall(question="2+2?")
                second = await dspy.ChainOfThought("question -> answer").acall(question="3+1?")
            return first, second, scope

        first, second, scope = asyncio.run(run())
        assert (first.answer, first.reasoning, second.answer) == ("4", "2 and 2", "4")
        assert_lm15_requests(fake, 2)
        assert len(events) == 2
        cost = CASES[provider][4]
        assert [(e.job_id, e.cost.total if e.cost else None) for e in events] == [
            ("cot", cost), ("cot", cost)]
        assert (scope.calls, scope.cost) == (2, 2 * cost)

    @pytest.mark.parametrize("async_streaming", [True, False])
    def test_streamify(self, fake: FakeProvider, events: list[CostEvent], provider: str,
                       async_streaming: bool) -> None:
        """dspy.streamify streams through the engine's ``stream``: one exact event when it
        ends (an Anthropic stream's prompt and cache counts come from its message_start)."""
        configure(fake, provider)
        listener = dspy.streaming.StreamListener(signature_field_name="answer")
        program = dspy.streamify(dspy.Predict("question -> answer"), stream_listeners=[listener],
                                 async_streaming=async_streaming)

        async def consume() -> list[Any]:
            return [item async for item in program(question="2+2?")]

        with dspy.context(lm=native(fake, provider)), llmlab.track(job="stream") as scope:
            items = asyncio.run(consume()) if async_streaming else list(program(
                question="2+2?"))
        assert items[-1].answer == "4"
        assert any(isinstance(i, dspy.streaming.StreamResponse) for i in items)
        assert_lm15_requests(fake, 1)
        [event] = events
        assert (event.provider, event.model, event.job_id, event.status) == (
            provider, CASES[provider][2], "stream", "ok")
        assert not event.estimated and event.cost is not None
        assert (scope.calls, event.cost.total) == (1, CASES[provider][4])

    def test_dspy_cache_hit_is_not_a_call(self, fake: FakeProvider, events: list[CostEvent],
                                          provider: str) -> None:
        """With DSPy's response cache on, the repeated question is answered from it: one
        request, one event, and the scope counts one call."""
        configure(fake, provider)
        question = f"2+2? {uuid.uuid4()}"  # never in DSPy's on-disk cache from an earlier run
        with dspy.context(lm=native(fake, provider, cache=True)), llmlab.track() as scope:
            for _ in range(3):
                assert dspy.Predict("question -> answer")(question=question).answer == "4"
        assert_lm15_requests(fake, 1)
        assert len(events) == 1 and scope.calls == 1

    def test_budget_stops_the_call_before_the_request(
            self, fake: FakeProvider, events: list[CostEvent], provider: str) -> None:
        """A max_cost scope the worst case would pass refuses the call before lm15 sends
        anything, sync and async; DSPy reports it as the LM error it wraps."""
        configure(fake, provider)
        for run_async in (False, True):
            with pytest.raises(Exception) as info, dspy.context(lm=native(fake, provider)), \
                    llmlab.track(max_cost=D("0.00001")):
                predict = dspy.Predict("question -> answer")
                if run_async:
                    asyncio.run(predict.acall(question="2+2?"))
                else:
                    predict(question="2+2?")
            assert _caused_by_budget(info.value)
        assert fake.requests == [] and events == []

    def test_each_retried_attempt_is_one_event(
            self, fake: FakeProvider, events: list[CostEvent], provider: str) -> None:
        """DSPy retries a 429 (num_retries): two requests, two events, the failed one $0."""
        configure(fake, provider)
        fake.fail_next(429, retry_after=0.01, provider=CASES[provider][0])  # type: ignore[arg-type]
        model = native(fake, provider)
        model.num_retries = 1
        with dspy.context(lm=model), llmlab.track() as scope:
            assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
        assert_lm15_requests(fake, 2)
        assert [(e.status, e.cost.total if e.cost else None) for e in events] == [
            ("error", 0), ("ok", CASES[provider][4])]
        assert scope.calls == 2 and scope.cost == CASES[provider][4]

    def test_provider_error_is_reraised_and_recorded(
            self, fake: FakeProvider, events: list[CostEvent], provider: str) -> None:
        """A provider's 400 reaches the caller as DSPy raises it; one failed event, $0."""
        configure(fake, provider)
        fake.fail_next(400, provider=CASES[provider][0])  # type: ignore[arg-type]
        with pytest.raises(Exception) as info, dspy.context(lm=native(fake, provider)):
            dspy.Predict("question -> answer")(question="2+2?")
        assert not _caused_by_budget(info.value)
        assert_lm15_requests(fake, 1)
        [event] = events
        assert event.status == "error" and event.cost is not None and event.cost.total == 0


class _BudgetStatus(BaseHTTPRequestHandler):
    """llmlab's budget status route, answering one block budget of $0.01 with $0.0099 spent."""

    def do_GET(self) -> None:
        body = json.dumps({"success": True, "error": None, "data": {"budgets": [{
            "id": "b_1", "name": "cap", "action": "block", "scope": {"project": "qa-bot"},
            "amount": "0.01", "spent": "0.0099", "thresholds": [100], "period": "monthly",
            "period_start": "2026-12-01T00:00:00Z", "resets_at": "2027-01-01T00:00:00Z"}]}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_block_budget_stops_the_call_before_the_request(fake: FakeProvider,
                                                        fresh_dspy: None) -> None:
    """A block budget the call's worst case would cross refuses it outside any scope (the
    fast path), sync and async: lm15 sends nothing."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BudgetStatus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    llmlab.init(api_key="llm_test", base_url=f"http://127.0.0.1:{server.server_port}",
                project="qa-bot", ledger=False, auto_instrument=["dspy"],
                budget_refresh_interval=60)
    try:
        guard = get_tracker().budget_guard
        deadline = time.monotonic() + 5
        while not guard.budgets and time.monotonic() < deadline:
            time.sleep(0.01)
        assert guard.budgets, "the budget status was not fetched"
        configure(fake, "openai")
        for run_async in (False, True):
            with pytest.raises(Exception) as info, dspy.context(lm=native(fake, "openai")):
                predict = dspy.Predict("question -> answer")
                if run_async:
                    asyncio.run(predict.acall(question="2+2?"))
                else:
                    predict(question="2+2?")
            assert _caused_by_budget(info.value)
    finally:
        llmlab.shutdown()
        server.shutdown()
        server.server_close()
    assert fake.requests == []


def test_responses_model_type_is_a_responses_event(fake: FakeProvider,
                                                   events: list[CostEvent]) -> None:
    """``model_type="responses"`` on the default engine: lm15 posts /v1/responses, recorded
    once as a Responses call at the same rates."""
    fake.configure("openai", usage=USAGE, text=ANSWER)
    model = dspy.LM("openai/gpt-4o", api_base=fake.openai_base_url, api_key="k", cache=False,
                    model_type="responses")
    with dspy.context(lm=model), llmlab.track(job="resp"):
        assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
    assert_lm15_requests(fake, 1)
    assert fake.requests[0].path == "/v1/responses"
    [event] = events
    assert (event.operation, event.provider, event.job_id) == ("responses", "openai", "resp")
    assert event.cost is not None and event.cost.total == GPT_4O_COST


def _caused_by_budget(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, llmlab.BudgetExceededError):
            return True
        error = error.__cause__ or error.__context__
    return False


@pytest.fixture
def fresh_dspy() -> Iterator[None]:
    """The dspy integration unpatched and nothing warned, before and after."""
    llmlab.uninstrument()
    saved = set(_versions._WARNED)
    _versions._WARNED.clear()
    yield None
    llmlab.uninstrument()
    _versions._WARNED.clear()
    _versions._WARNED.update(saved)


class TestDegrades:
    def test_moved_internals_are_one_warning_and_the_app_works(
            self, fake: FakeProvider, fresh_dspy: None, caplog: pytest.LogCaptureFixture,
            monkeypatch: pytest.MonkeyPatch) -> None:
        """A DSPy release without the engine methods llmlab patches: not instrumented, one
        WARNING saying so, and the program runs as if llmlab were absent."""
        monkeypatch.delattr(AsyncLM15Engine, "stream")
        recorded: list[CostEvent] = []
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            llmlab.init(ledger=False, on_event=recorded.append, auto_instrument=True)
            try:
                fake.configure("openai", usage=USAGE, text=ANSWER)
                with dspy.context(lm=native(fake, "openai")):
                    assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
            finally:
                llmlab.shutdown()
        assert "dspy" not in installed() and recorded == []
        assert vars(LM15Engine)["complete"].__name__ == "complete"
        assert not hasattr(vars(LM15Engine)["complete"], "__wrapped__")
        [record] = [r for r in caplog.records if r.getMessage().startswith("llmlab: dspy")]
        assert record.levelno == logging.WARNING
        assert "AsyncLM15Engine.stream" in record.getMessage()

    def test_release_outside_the_tested_range_is_warned_once(
            self, fresh_dspy: None, caplog: pytest.LogCaptureFixture,
            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(DSPyIntegration, "max_version", (3, 4))
        with caplog.at_level(logging.DEBUG, logger="llmlab"):
            for _ in range(3):
                assert "dspy" not in llmlab.instrument()
        assert "dspy" not in installed()
        [record] = [r for r in caplog.records if r.getMessage().startswith("llmlab: dspy")]
        assert record.levelno == logging.WARNING
        assert "llmlab supports dspy>=3.4,<3.4" in record.getMessage()
