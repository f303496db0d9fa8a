"""Track the cost of Anthropic calls with prompt caching, offline.

    python examples/anthropic_messages.py

The real anthropic client talks to llmlab's FakeProvider. The first call writes a 1-hour
prompt cache, the next ones read it: watch the cost drop.
"""

from __future__ import annotations

import anthropic

import llmlab
from llmlab.testing import FakeProvider, FakeUsage

SYSTEM = "You are a support agent. " * 400  # a long, reused system prompt


def main() -> None:
    """One cache-writing call, two cache-reading calls and a streamed one."""
    llmlab.init(project="examples", ledger=False,
                on_event=lambda e: print(f"  {e.operation:<16} in={e.usage.input_tokens:>6} "
                                         f"cache_read={e.usage.cache_read_tokens:>6} "
                                         f"cache_write={e.usage.cache_write_1h_tokens:>6} "
                                         f"${e.cost.total if e.cost else 0}"))
    with FakeProvider() as fake:
        client = anthropic.Anthropic(api_key="sk-demo", base_url=fake.anthropic_base_url)
        ask = {"model": "claude-opus-5-5", "max_tokens": 300, "system": SYSTEM,
               "messages": [{"role": "user", "content": "Where is my order?"}]}
        fake.configure("anthropic", usage=FakeUsage(input_tokens=40, output_tokens=250,
                                                    cache_creation_1h_tokens=2400))
        client.messages.create(**ask)
        fake.configure("anthropic", usage=FakeUsage(input_tokens=40, output_tokens=250,
                                                    cached_tokens=2400))
        client.messages.create(**ask)
        with client.messages.stream(**ask) as stream:
            print("  streamed:", stream.get_final_text()[:40])
    llmlab.shutdown()


if __name__ == "__main__":
    main()
