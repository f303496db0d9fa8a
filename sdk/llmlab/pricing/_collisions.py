"""Name collisions in a LiteLLM table: several keys that price one ``provider/name``.

LiteLLM often lists a model twice (``deepseek-chat`` and ``deepseek/deepseek-chat``). When
the copies price alike either may stand. When they differ, guessing picks the wrong bill
(``codestral/codestral-latest`` is the free codestral.mistral.ai endpoint and once won over
the paid ``mistral/codestral-latest``), so every such collision is settled here, by name,
with a reason. The bundled build (``strict``) fails on any other; a user's import keeps the
prefixed key, as before, and logs the collision.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from llmlab.errors import PricingError

__all__ = ["KNOWN_COLLISIONS", "pick"]

logger = logging.getLogger("llmlab")

#: ``provider/name`` → (the LiteLLM key that prices it, why).
KNOWN_COLLISIONS: dict[str, tuple[str, str]] = {
    "mistral/codestral-latest": (
        "mistral/codestral-latest",
        "the codestral/ key is the free codestral.mistral.ai endpoint; the API bills "
        "$0.30/$0.90 per 1M (Mistral's Codestral 25.08 model card)"),
    "bedrock/moonshotai.kimi-k2.5": (
        "moonshotai.kimi-k2.5",
        "same standard and flex rates; the Converse entry also lists the batch and priority "
        "rates of the Bedrock price list, which the bedrock/ copy lacks"),
    "deepseek/deepseek-chat": (
        "deepseek/deepseek-chat",
        "same rates; the prefixed copy states DeepSeek's zero cache-write fee (a cache miss "
        "bills as input), as every other DeepSeek entry does"),
    "vertex/gemini-3.1-flash-lite": (
        "vertex_ai/gemini-3.1-flash-lite",
        "same rates; the vertex_ai/ copy adds Vertex's documented 1.1x regional-endpoint uplift"),
    "vertex/gemini-3.5-flash-lite": (
        "vertex_ai/gemini-3.5-flash-lite",
        "same rates; the vertex_ai/ copy adds Vertex's documented 1.1x regional-endpoint uplift"),
    # Gemini image models (kept since tool and image-token pricing, #15): the copies bill the
    # same tokens; the bare keys also list Gemini 3's per-query grounding price.
    "vertex/gemini-3-pro-image": (
        "gemini-3-pro-image",
        "same token rates; the bare key also lists grounding at $14 / 1k search queries"),
    "vertex/gemini-3-pro-image-preview": (
        "gemini-3-pro-image-preview",
        "same token rates; the bare key also lists grounding at $14 / 1k search queries"),
    "vertex/gemini-3.1-flash-image-preview": (
        "gemini-3.1-flash-image-preview",
        "same token rates; the bare key also lists grounding at $14 / 1k search queries"),
    "vertex/gemini-3.1-flash-image": (
        "vertex_ai/gemini-3.1-flash-image",
        "same token rates; the vertex_ai/ copy adds Vertex's documented 1.1x regional-endpoint "
        "uplift (grounding then bills at the provider's default price)"),
    "google/gemini-exp-1206": (
        "gemini/gemini-exp-1206",
        "an experimental Gemini API model, free of charge (ai.google.dev/pricing); the bare "
        "key copies Gemini 2.5 Flash's prices from another model's page"),
}


def _prices(model: dict[str, Any]) -> str:
    return json.dumps(model["prices"], sort_keys=True)


def pick(ref: str, candidates: Sequence[tuple[str, dict[str, Any]]], prefixes: Iterable[str],
         *, strict: bool) -> dict[str, Any]:
    """The model of ``ref`` among the (LiteLLM key, converted model) ``candidates``.

    Copies that price alike are no collision: the first prefixed key's copy stands (its
    metadata, as before collisions were checked).
    """
    heads = frozenset(prefixes)
    prefixed = [c for c in candidates if "/" in c[0] and c[0].split("/", 1)[0] in heads]
    default = (prefixed or list(candidates))[0]
    if len(candidates) == 1 or len({_prices(m) for _, m in candidates}) == 1:
        return default[1]
    keys = [key for key, _ in candidates]
    known = KNOWN_COLLISIONS.get(ref)
    if known is not None:
        for key, model in candidates:
            if key == known[0]:
                return model
    if strict:
        raise PricingError(
            f"{ref} is priced differently by {', '.join(keys)}: settle it in "
            "llmlab/pricing/_collisions.py KNOWN_COLLISIONS with a reason")
    logger.warning("llmlab: %s is priced differently by %s; using %s", ref, ", ".join(keys),
                   default[0])
    return default[1]
