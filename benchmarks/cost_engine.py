"""How many call costs per second the engine computes, against litellm.cost_per_token.

    python benchmarks/cost_engine.py [--seconds 2] [--litellm-python PATH]

Both engines price the same realistic mix of usages (OpenAI with cache and reasoning,
Anthropic with cache writes, Gemini with thinking and a long-context prompt, embeddings).
A third line prices the mix plus a DeepSeek V4 call (off-peak windows) at event timestamps,
as the SDK and the server do (``at=`` an aware datetime).
litellm is measured only if importable here or in the interpreter given by
``--litellm-python`` (litellm pins its own openai version, so it usually lives in its own
virtualenv). Prints one line per engine and the ratio; figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk"))

from llmlab.pricing import Catalogue
from llmlab.usage import Usage

#: (model, provider, normalised usage) — the same calls for both engines.
MIX: list[tuple[str, str, dict[str, int]]] = [
    ("gpt-4o", "openai", {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1000,
                          "reasoning_tokens": 0}),
    ("o3", "openai", {"input_tokens": 5000, "output_tokens": 2000, "cache_read_tokens": 0,
                      "reasoning_tokens": 1500}),
    ("claude-sonnet-4-5", "anthropic", {"input_tokens": 13200, "output_tokens": 400,
                                        "cache_read_tokens": 10000, "cache_write_tokens": 3000}),
    ("gemini/gemini-2.5-pro", "google", {"input_tokens": 250000, "output_tokens": 3000,
                                         "reasoning_tokens": 2000, "cache_read_tokens": 0}),
    ("gemini/gemini-2.5-flash", "google", {"input_tokens": 800, "output_tokens": 900,
                                           "reasoning_tokens": 600, "cache_read_tokens": 0}),
    ("text-embedding-3-small", "openai", {"input_tokens": 8000, "output_tokens": 0,
                                          "cache_read_tokens": 0}),
]

LITELLM_SNIPPET = r"""
import json, sys, time
import litellm
mix = json.loads(sys.argv[1]); seconds = float(sys.argv[2])
def once(model, u):
    return litellm.cost_per_token(
        model=model, prompt_tokens=u["input_tokens"], completion_tokens=u["output_tokens"],
        cache_read_input_tokens=u.get("cache_read_tokens", 0),
        cache_creation_input_tokens=u.get("cache_write_tokens", 0))
for model, _, u in mix:
    once(model, u)
n = 0; start = time.perf_counter()
while time.perf_counter() - start < seconds:
    for model, _, u in mix:
        once(model, u)
    n += len(mix)
print(n / (time.perf_counter() - start))
"""


def bench_llmlab(seconds: float) -> float:
    """Costs per second of `Catalogue.cost` on the mix (a warm catalogue, as in an app)."""
    catalogue = Catalogue.bundled()
    calls = [(model, provider, Usage(**usage)) for model, provider, usage in MIX]
    for model, provider, usage in calls:
        catalogue.cost(model, usage, provider)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for model, provider, usage in calls:
            catalogue.cost(model, usage, provider)
        n += len(calls)
    return n / (time.perf_counter() - start)


def bench_llmlab_at_timestamps(seconds: float) -> float:
    """Costs per second with ``at=`` each event's timestamp (peak and off-peak hours)."""
    catalogue = Catalogue.bundled()
    deepseek = ("deepseek-v4-flash", "deepseek", {"input_tokens": 3000, "output_tokens": 500,
                                                  "cache_read_tokens": 2000})
    monday = datetime(2026, 12, 7, tzinfo=UTC)
    calls = [(model, provider, Usage(**usage), monday + timedelta(hours=3 * i))
             for i, (model, provider, usage) in enumerate([*MIX, deepseek])]
    for model, provider, usage, when in calls:
        catalogue.cost(model, usage, provider, at=when)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for model, provider, usage, when in calls:
            catalogue.cost(model, usage, provider, at=when)
        n += len(calls)
    return n / (time.perf_counter() - start)


def bench_llmlab_from_native(seconds: float) -> float:
    """Costs per second when usage arrives as a provider's native dict (adapter included)."""
    catalogue = Catalogue.bundled()
    native = {"prompt_tokens": 1200, "completion_tokens": 300,
              "prompt_tokens_details": {"cached_tokens": 1000},
              "completion_tokens_details": {"reasoning_tokens": 120}}
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            catalogue.cost("gpt-4o", native, "openai")
        n += 100
    return n / (time.perf_counter() - start)


def bench_litellm(seconds: float, python: str | None) -> float | None:
    """Costs per second of litellm.cost_per_token, or None when litellm is unavailable."""
    interpreter = python or sys.executable
    result = subprocess.run([interpreter, "-c", LITELLM_SNIPPET, json.dumps(MIX), str(seconds)],
                            capture_output=True, text=True,
                            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin"})
    if result.returncode != 0:
        print(f"litellm not measured: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return float(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--litellm-python", help="a Python interpreter with litellm installed")
    args = parser.parse_args()
    ours = bench_llmlab(args.seconds)
    at = bench_llmlab_at_timestamps(args.seconds)
    native = bench_llmlab_from_native(args.seconds)
    print(f"llmlab  Catalogue.cost (normalised usage): {ours:12,.0f} costs/s")
    print(f"llmlab  Catalogue.cost (at= event times):  {at:12,.0f} costs/s")
    print(f"llmlab  Catalogue.cost (native OpenAI dict): {native:10,.0f} costs/s")
    theirs = bench_litellm(args.seconds, args.litellm_python)
    if theirs is not None:
        print(f"litellm cost_per_token:                    {theirs:12,.0f} costs/s")
        print(f"ratio llmlab / litellm:                    {ours / theirs:12,.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
