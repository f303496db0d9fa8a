"""A tour of llmlab's cost engine on real-shaped usage, offline and without API keys.

    python examples/cost_engine_tour.py

Each line prices one call the way a provider would bill it, from the usage object the
provider's SDK returns.
"""

from __future__ import annotations

import llmlab

CALLS = [
    ("OpenAI chat, 1,000 of 1,200 prompt tokens cached, 120 reasoning tokens",
     "gpt-4o-2024-08-06", None,
     {"prompt_tokens": 1200, "completion_tokens": 300,
      "prompt_tokens_details": {"cached_tokens": 1000},
      "completion_tokens_details": {"reasoning_tokens": 120}}, {}),
    ("OpenAI Responses on gpt-6-sol, batch tier",
     "gpt-6-sol", None,
     {"input_tokens": 40_000, "output_tokens": 2_000,
      "input_tokens_details": {"cached_tokens": 30_000, "cache_write_tokens": 0},
      "output_tokens_details": {"reasoning_tokens": 1_500}}, {"service_tier": "batch"}),
    ("Anthropic, a 1-hour cache write then reads",
     "claude-sonnet-4-5", None,
     {"input_tokens": 200, "output_tokens": 400, "cache_read_input_tokens": 0,
      "cache_creation_input_tokens": 12_000,
      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 12_000}},
     {}),
    ("Anthropic Opus 5.5 served in the US (1.1x)",
     "claude-opus-5-5", None,
     {"input_tokens": 3_000, "output_tokens": 1_000, "cache_read_input_tokens": 50_000}, {"region": "us"}),
    ("Gemini 2.5 Pro over its 200k long-context tier, with thinking",
     "gemini-2.5-pro", "google",
     {"prompt_token_count": 250_000, "candidates_token_count": 800, "thoughts_token_count": 2_400},
     {}),
    ("OpenAI embeddings",
     "text-embedding-3-small", None, {"prompt_tokens": 8_000, "total_tokens": 8_000}, {}),
    ("DeepSeek through the OpenAI SDK",
     "deepseek-chat", "deepseek",
     {"prompt_tokens": 5_000, "completion_tokens": 700,
      "prompt_tokens_details": {"cached_tokens": 4_000}}, {}),
    ("A model the catalogue does not know",
     "in-house-llm-v2", None, {"input_tokens": 10, "output_tokens": 10}, {}),
]


def main() -> None:
    """Print the price of each sample call and the total."""
    total = 0
    print(f"{'call':<72} {'model priced as':<40} {'cost (USD)':>14}")
    for title, model, provider, usage, options in CALLS:
        breakdown = llmlab.cost(model, usage, provider=provider, **options)
        priced_as = breakdown.priced_as or "unpriced (not $0: no price known)"
        print(f"{title:<72} {priced_as:<40} {breakdown.total:>14.8f}")
        total += breakdown.total
    print(f"{'total':<113} {total:>14.8f}")


if __name__ == "__main__":
    main()
