"""DSPy through the LiteLLM integration: a real dspy program against the fake provider."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

import pytest

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

# DSPy imports LiteLLM, which downloads its price map at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
dspy = pytest.importorskip("dspy")

# gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M.
USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
GPT_4O_COST = Decimal("0.00475")  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5
# What DSPy's ChatAdapter parses as the answer, so the program makes exactly one call.
ANSWER = "[[ ## answer ## ]]\n4\n\n[[ ## completed ## ]]"


def lm(fake: FakeProvider, **kwargs: object) -> object:
    """A dspy.LM on the fake provider, DSPy's response cache off (a hit bills nothing)."""
    return dspy.LM("openai/gpt-4o", api_base=fake.openai_base_url, api_key="sk-test",
                   cache=False, **kwargs)


class TestDSPy:
    def test_predict_is_priced_once(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A Predict call on dspy.LM's LiteLLM engine makes one request and one exact event."""
        fake.configure("openai", usage=USAGE, text=ANSWER)
        with dspy.context(lm=lm(fake, engine="litellm")), llmlab.track(job="qa") as scope:
            prediction = dspy.Predict("question -> answer")(question="2+2?")
        assert prediction.answer == "4"
        [event] = events
        assert len(fake.requests) == 1
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

    def test_default_engine_bypasses_every_patched_client(self, fake: FakeProvider,
                                                          events: list[CostEvent]) -> None:
        """What docs/integrations.md#dspy says: dspy.LM's default engine ("auto") sends the
        request through DSPy's vendored lm15 (raw-socket HTTP, User-Agent ``lm15/stdlib``),
        neither LiteLLM nor a provider SDK, so llmlab records nothing; ``engine="litellm"``,
        the documented setting, is recorded (the tests above). When DSPy routes it elsewhere,
        this fails and the page must change."""
        fake.configure("openai", usage=USAGE, text=ANSWER)
        with dspy.context(lm=lm(fake)):
            assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
        [request] = fake.requests
        assert request.headers["user-agent"].startswith("lm15/")
        assert events == []
