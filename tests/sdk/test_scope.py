"""Attribution scopes: track() and @track_cost, nesting, concurrency and max_cost."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import openai
import pytest

import llmlab
from llmlab.errors import BudgetExceededError, ScopeBudgetExceededError
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100}  # gpt-4o: $0.0025 + $0.001
CALL_COST = Decimal("0.0035")


def rec() -> None:
    llmlab.record("openai", "gpt-4o", USAGE)


class TestTrack:
    def test_attribution_and_totals(self, events: list[CostEvent]) -> None:
        """Calls inside track() carry its job, user and tags, and add up in the scope."""
        with llmlab.track(project="p", job="ticket-1", user="cust-1",
                          tags={"feature": "triage"}) as scope:
            rec()
            rec()
        assert scope.calls == 2 and scope.cost == 2 * CALL_COST
        assert [(e.project, e.job_id, e.user_id, e.tags) for e in events] == [
            ("p", "ticket-1", "cust-1", {"feature": "triage"})] * 2
        assert scope.events == events

    def test_nested_scopes_inner_wins_tags_merge(self, events: list[CostEvent]) -> None:
        """Inner values override outer ones, tags merge, and outer totals include inner calls."""
        with llmlab.track(job="outer", user="u1", tags={"a": "1", "b": "1"}) as outer:
            rec()
            with llmlab.track(job="inner", tags={"b": "2"}) as inner:
                rec()
        assert (events[1].job_id, events[1].user_id, events[1].tags) == (
            "inner", "u1", {"a": "1", "b": "2"})
        assert (outer.calls, inner.calls) == (2, 1)
        assert outer.cost == 2 * CALL_COST

    def test_init_project_is_the_default(self) -> None:
        """The project given to init() applies when no scope names one."""
        recorded: list[CostEvent] = []
        llmlab.init(project="default-proj", ledger=False, auto_instrument=False,
                    on_event=recorded.append)
        try:
            rec()
            with llmlab.track(project="override"):
                rec()
        finally:
            llmlab.shutdown()
        assert [e.project for e in recorded] == ["default-proj", "override"]

    def test_threads_attribute_independently(self, events: list[CostEvent]) -> None:
        """Each thread sees its own scope."""
        barrier = threading.Barrier(4)

        def work(i: int) -> None:
            with llmlab.track(job=f"job-{i}"):
                barrier.wait()
                rec()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(e.job_id or "" for e in events) == [f"job-{i}" for i in range(4)]

    def test_asyncio_tasks_attribute_independently(self, events: list[CostEvent]) -> None:
        """Concurrent asyncio tasks each keep their own scope across awaits."""

        async def work(i: int) -> None:
            async with llmlab.track(user=f"user-{i}"):
                await asyncio.sleep(0.01 * (3 - i))
                rec()

        async def main() -> None:
            await asyncio.gather(*(work(i) for i in range(3)))

        asyncio.run(main())
        assert sorted(e.user_id or "" for e in events) == ["user-0", "user-1", "user-2"]

    def test_bad_tags_fail_at_the_callers_line(self) -> None:
        """Tags the server would reject are refused when the scope is made, not silently later."""
        with pytest.raises(ValueError, match="tag key"):
            llmlab.track(tags={"has space": "x"})
        with pytest.raises(ValueError, match="at most 32"):
            llmlab.track(tags={f"k{i}": "v" for i in range(33)})

    def test_job_summary_on_exit(self, caplog: pytest.LogCaptureFixture,
                                 events: list[CostEvent]) -> None:
        """A scope logs one job summary line when it ends, and on_scope callbacks get it."""
        with caplog.at_level("INFO", logger="llmlab"), llmlab.track(job="document analysis"):
            for _ in range(4):
                rec()
        assert "document analysis = 4 calls, $0.014" in caplog.text


class TestTrackCost:
    def test_bare_decorator(self, events: list[CostEvent]) -> None:
        """@track_cost without arguments names the function in each event."""

        @llmlab.track_cost
        def answer() -> int:
            rec()
            return 42

        assert answer() == 42
        assert events[0].function == f"{__name__}.TestTrackCost.test_bare_decorator.<locals>.answer"

    def test_options_and_dynamic_job(self, events: list[CostEvent]) -> None:
        """Options apply; job may be computed from the call's arguments."""

        @llmlab.track_cost(project="docs", job=lambda doc_id: f"doc-{doc_id}", tags={"f": "x"})
        def analyse(doc_id: int) -> None:
            rec()

        analyse(7)
        assert (events[0].project, events[0].job_id, events[0].tags) == ("docs", "doc-7",
                                                                         {"f": "x"})

    def test_async_function(self, events: list[CostEvent]) -> None:
        """Async functions are supported."""

        @llmlab.track_cost(job="async-job")
        async def work() -> str:
            await asyncio.sleep(0)
            rec()
            return "done"

        assert asyncio.run(work()) == "done"
        assert events[0].job_id == "async-job"

    def test_generator_attributes_only_its_own_calls(self, events: list[CostEvent]) -> None:
        """A generator's calls are attributed to it; the consumer's calls between items are not."""

        @llmlab.track_cost(job="gen")
        def produce() -> Iterator[int]:
            for i in range(2):
                rec()
                yield i

        for _ in produce():
            rec()  # the consumer's own call
        assert [e.job_id for e in events] == ["gen", None, "gen", None]

    def test_async_generator(self, events: list[CostEvent]) -> None:
        """Async generators are supported, with the same attribution rule."""

        @llmlab.track_cost(job="agen")
        async def produce() -> AsyncIterator[int]:
            for i in range(2):
                rec()
                yield i

        async def main() -> list[int]:
            items = []
            async for item in produce():
                rec()
                items.append(item)
            return items

        assert asyncio.run(main()) == [0, 1]
        assert [e.job_id for e in events] == ["agen", None, "agen", None]

    def test_exceptions_pass_through(self, events: list[CostEvent]) -> None:
        """The decorated function's exception reaches the caller unchanged."""

        @llmlab.track_cost
        def boom() -> None:
            raise KeyError("x")

        with pytest.raises(KeyError):
            boom()


class TestMaxCost:
    def test_call_that_would_pass_max_cost_is_refused_before_the_provider(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """Once the worst case of the next call would pass max_cost, it raises and never calls."""
        fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
        c = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
        with pytest.raises(BudgetExceededError) as info, llmlab.track(
                job="capped", max_cost="0.01") as scope:
            for _ in range(10):
                c.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100)
        # Each call's worst case is ~$0.001 (100 output tokens; the prompt is tiny) while the
        # fake bills $0.0035: calls 1-3 fit ($0.007 + $0.001 < $0.01), call 4 is refused.
        assert isinstance(info.value, ScopeBudgetExceededError)
        assert info.value.limit == Decimal("0.01") and info.value.spent == scope.cost
        assert scope.cost + info.value.estimate > Decimal("0.01")
        assert len(fake.requests) == scope.calls == 3
        assert len(events) == 3

    def test_max_cost_works_before_init(self, fake: FakeProvider) -> None:
        """Even without init(), an instrumented call over a scope's max_cost is refused."""
        llmlab.instrument("openai")
        try:
            c = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
            with pytest.raises(BudgetExceededError), llmlab.track(max_cost=0):
                c.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=10)
        finally:
            llmlab.uninstrument()
        assert fake.requests == []
