"""What the stacks tests share: the fake provider's usage, its exact prices, the once check."""

from __future__ import annotations

from decimal import Decimal

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

# gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M.
USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000)
GPT_4O_COST = Decimal("0.00475")  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5
# text-embedding-3-small: $0.02/M input tokens.
EMBED_USAGE = FakeUsage(input_tokens=1000, output_tokens=0)
EMBED_COST = Decimal("0.00002")


def assert_each_call_once(fake: FakeProvider, events: list[CostEvent]) -> None:
    """As many events as the provider answered requests: no call missed or counted twice."""
    assert llmlab.flush(timeout=10)
    assert len(events) == len(fake.requests), (
        [e.operation for e in events], [r.endpoint for r in fake.requests])


#: What one request to each fake endpoint costs when the fake answers with `USAGE`
#: (embeddings report its 1200 input tokens).
COST_PER_REQUEST = {"openai.chat": GPT_4O_COST, "openai.responses": GPT_4O_COST,
                    "openai.embeddings": Decimal("0.000024")}


def expected_cost(fake: FakeProvider) -> Decimal:
    """The exact cost of every request the fake answered with `USAGE`."""
    return sum((COST_PER_REQUEST[str(r.endpoint)] for r in fake.requests), Decimal(0))
