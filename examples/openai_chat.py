"""Track the cost of OpenAI calls: plain, streamed and Responses API, offline.

    python examples/openai_chat.py

The real openai client talks to llmlab's FakeProvider (a local server speaking OpenAI's wire
format), so this runs without an API key or network. In your app, drop the FakeProvider and
keep the two llmlab lines.
"""

from __future__ import annotations

import openai

import llmlab
from llmlab.testing import FakeProvider, FakeUsage


def main() -> None:
    """Make three OpenAI calls and print what each cost."""
    llmlab.init(project="examples", ledger=False,
                on_event=lambda e: print(f"  {e.operation:<18} {e.model:<12} "
                                         f"{e.usage.input_tokens:>6} in {e.usage.output_tokens:>5} out"
                                         f"  ${e.cost.total if e.cost else 0}"))
    with FakeProvider(usage=FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000,
                                      reasoning_tokens=120)) as fake:
        client = openai.OpenAI(api_key="sk-demo", base_url=fake.openai_base_url)
        messages = [{"role": "user", "content": "Summarise ticket 4411"}]
        with llmlab.track(job="ticket-4411", user="cust-42", tags={"feature": "triage"}) as scope:
            client.chat.completions.create(model="gpt-4o", messages=messages)
            for _chunk in client.chat.completions.create(model="gpt-4o", messages=messages,
                                                         stream=True):
                pass
            client.responses.create(model="gpt-6-sol", input="Draft a reply")
        print(f"ticket-4411: {scope.calls} calls, ${scope.cost.normalize()}")
    llmlab.shutdown()


if __name__ == "__main__":
    main()
