"""Instructor (openai 2.x or 3.x; tested here beside LlamaIndex): structured extraction,
retries and partial streams, each request priced once."""

from __future__ import annotations

import instructor
import openai
import pytest
from instructor.v2.core.errors import InstructorRetryException
from pydantic import BaseModel
from stack_helpers import GPT_4O_COST, assert_each_call_once

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider

PERSON = '{"name": "Ada", "age": 36}'


class Person(BaseModel):
    name: str
    age: int


def client(fake: FakeProvider) -> instructor.Instructor:
    raw = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    return instructor.from_openai(raw, mode=instructor.Mode.JSON)


class TestInstructor:
    def test_create_and_partial_stream(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """create(response_model=...) and create_partial (a stream): two exact events."""
        fake.configure("openai", text=PERSON)
        patched = client(fake)
        messages = [{"role": "user", "content": "Ada, 36"}]
        with llmlab.track(job="extract", tags={"stack": "instructor"}) as scope:
            person = patched.chat.completions.create(model="gpt-4o", response_model=Person,
                                                     messages=messages)
            assert (person.name, person.age) == ("Ada", 36)
            partials = list(patched.chat.completions.create_partial(
                model="gpt-4o", response_model=Person, messages=messages))
            assert partials[-1].name == "Ada"
        assert_each_call_once(fake, events)
        assert [e.stream for e in events] == [False, True]
        for event in events:
            assert (event.model, event.job_id, event.tags) == (
                "gpt-4o", "extract", {"stack": "instructor"})
            assert event.cost is not None and event.cost.total == GPT_4O_COST
        assert (scope.calls, scope.cost) == (2, 2 * GPT_4O_COST)

    def test_validation_retries_are_each_priced(self, fake: FakeProvider,
                                                  events: list[CostEvent]) -> None:
        """A reply failing validation makes Instructor ask again: every attempt is billed."""
        fake.configure("openai", text='{"name": "Ada", "age": "unknown"}')
        patched = client(fake)
        with llmlab.track(job="retry") as scope, pytest.raises(InstructorRetryException):
            patched.chat.completions.create(model="gpt-4o", response_model=Person,
                                            max_retries=2,
                                            messages=[{"role": "user", "content": "Ada"}])
        assert_each_call_once(fake, events)
        assert len(events) == 3  # max_retries=2: three attempts
        assert [e.status for e in events] == ["ok"] * 3
        assert scope.cost == 3 * GPT_4O_COST
