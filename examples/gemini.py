"""Track the cost of Gemini calls (google-genai), thinking tokens and function calling, offline.

    python examples/gemini.py
"""

from __future__ import annotations

from google import genai
from google.genai import types

import llmlab
from llmlab.testing import FakeFunctionCall, FakeProvider, FakeUsage


def get_weather(city: str) -> str:
    """A tool the model may call."""
    return f"Sunny in {city}"


def main() -> None:
    """A thinking call, a streamed call, and a function-calling round trip (two billed calls)."""
    llmlab.init(project="examples", ledger=False,
                on_event=lambda e: print(f"  {e.model:<18} in={e.usage.input_tokens:>5} "
                                         f"out={e.usage.output_tokens:>5} "
                                         f"(thinking {e.usage.reasoning_tokens:>4}) "
                                         f"stream={e.stream!s:<5} ${e.cost.total if e.cost else 0}"))
    with FakeProvider(usage=FakeUsage(input_tokens=2000, output_tokens=300,
                                      reasoning_tokens=900)) as fake:
        client = genai.Client(api_key="demo",
                              http_options=types.HttpOptions(base_url=fake.google_base_url))
        client.models.generate_content(model="gemini-2.5-flash", contents="Plan my week")
        for _chunk in client.models.generate_content_stream(model="gemini-2.5-pro",
                                                            contents="Write a haiku"):
            pass
        fake.configure("google", function_call=FakeFunctionCall(args={"city": "Paris"}))
        with llmlab.track(job="weather-agent") as scope:
            client.models.generate_content(
                model="gemini-2.5-flash", contents="Weather in Paris?",
                config=types.GenerateContentConfig(tools=[get_weather]))
        print(f"weather-agent: {scope.calls} billed calls, ${scope.cost.normalize()}")
    llmlab.shutdown()


if __name__ == "__main__":
    main()
