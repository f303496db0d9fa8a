"""Model names: provider ids, the prefixes that name them, and snapshot ids of one model."""

from __future__ import annotations

import re

__all__ = ["FALLBACK", "PREFIXES", "PROVIDER_IDS", "candidates"]

#: Provider ids, in the order a bare model name is looked up.
PROVIDER_IDS = ("openai", "anthropic", "google", "mistral", "cohere", "deepseek", "xai",
                "vertex", "azure", "bedrock", "groq", "together", "fireworks", "openrouter")

#: Prefixes users and SDKs put before a model name, and the provider each one means.
PREFIXES = {
    "openai": "openai", "anthropic": "anthropic", "gemini": "google", "google": "google",
    "vertex_ai": "vertex", "vertex": "vertex", "azure": "azure", "bedrock": "bedrock",
    "mistral": "mistral", "codestral": "mistral", "cohere": "cohere", "deepseek": "deepseek",
    "xai": "xai", "groq": "groq", "together_ai": "together", "together": "together",
    "fireworks_ai": "fireworks", "fireworks": "fireworks", "openrouter": "openrouter",
}
#: Where a provider's model may be priced when it has no entry of its own: Azure OpenAI and
#: OpenRouter bill OpenAI's list price; Vertex and Bedrock resell Gemini and Claude.
FALLBACK = {
    "azure": ("openai",), "vertex": ("google", "anthropic"), "bedrock": ("anthropic",),
    "openrouter": ("openai", "anthropic", "google"),
}
# Suffixes that name a snapshot of a model rather than another model; stripped one at a time.
_SNAPSHOT_SUFFIXES = (
    re.compile(r"-v\d+(?::\d+)?$"),            # bedrock: -v1:0
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),        # openai: -2024-08-06
    re.compile(r"-\d{8}$"),                    # anthropic: -20250929
    re.compile(r"@(?:\d{8}|default|latest)$"),  # vertex: @20250929
    re.compile(r"-latest$"),
    re.compile(r"-\d{3,4}$"),                  # google -001, mistral -2407
)
_BEDROCK_GEO = re.compile(r"^(?:us|eu|apac|au|jp|ca|global|us-gov)\.")


def candidates(name: str) -> list[str]:
    """``name`` and the names it may be a snapshot or regional id of, most specific first."""
    out = [name]
    if name.startswith("ft:"):  # ft:gpt-4o-mini-2024-07-18:org::id → ft:gpt-4o-mini-2024-07-18
        base = name.split(":")[1]
        out += [f"ft:{base}", base]
    stripped = _BEDROCK_GEO.sub("", name)
    if stripped != name:
        out.append(stripped)
    if stripped.startswith("anthropic."):
        out.append(stripped.removeprefix("anthropic."))
    for candidate in list(out):
        current = candidate
        changed = True
        while changed:
            changed = False
            for pattern in _SNAPSHOT_SUFFIXES:
                shorter = pattern.sub("", current)
                if shorter != current and shorter:
                    out.append(shorter)
                    current = shorter
                    changed = True
                    break
    return list(dict.fromkeys(out))
