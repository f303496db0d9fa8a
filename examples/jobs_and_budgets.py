"""Attribute costs to jobs with @track_cost, and stop a runaway job with max_cost, offline.

    python examples/jobs_and_budgets.py
"""

from __future__ import annotations

import openai

import llmlab
from llmlab.testing import FakeProvider, FakeUsage


def main() -> None:
    """Analyse two documents as jobs, then let a capped job hit its limit."""
    llmlab.init(project="doc-pipeline", ledger=False,
                on_scope=lambda s: print(f"  job summary: {s.summary()}"))
    with FakeProvider(usage=FakeUsage(input_tokens=3000, output_tokens=500)) as fake:
        client = openai.OpenAI(api_key="sk-demo", base_url=fake.openai_base_url)

        @llmlab.track_cost(job=lambda doc: f"analyse-{doc}", tags={"feature": "analysis"})
        def analyse(doc: str) -> None:
            for step in ("extract", "classify", "summarise", "review"):
                client.chat.completions.create(
                    model="gpt-4o-mini", max_tokens=500,
                    messages=[{"role": "user", "content": f"{step} {doc}"}])

        analyse("contract.pdf")
        analyse("invoice.pdf")

        @llmlab.track_cost(job="runaway-agent", max_cost="0.05")
        def agent() -> None:
            while True:  # a loop that would never stop on its own
                client.chat.completions.create(
                    model="gpt-4o", max_tokens=1000,
                    messages=[{"role": "user", "content": "think again"}])

        try:
            agent()
        except llmlab.BudgetExceededError as exc:
            print(f"stopped before the next call: spent ${exc.spent.normalize()} of "
                  f"${exc.limit} (the next call could cost up to ${exc.estimate.normalize()})")
    llmlab.shutdown()


if __name__ == "__main__":
    main()
