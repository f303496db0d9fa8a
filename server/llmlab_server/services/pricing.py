"""The pricing catalogue as served by ``GET /api/models/pricing``."""

from __future__ import annotations

from llmlab.pricing import Catalogue
from llmlab_server.schemas import ModelPricing, PricingList, PricingQuery

__all__ = ["list_pricing"]


def list_pricing(query: PricingQuery) -> PricingList:
    """Current standard-tier prices of the catalogue's models matching the query."""
    catalogue = Catalogue.default()
    needle = (query.q or "").strip().lower()
    matches = []
    for key, model in sorted(catalogue.models.items()):
        if query.provider and model.provider != query.provider.lower():
            continue
        if query.mode and model.mode != query.mode.lower():
            continue
        if needle and needle not in key.lower():
            continue
        card = model.period_at(None).card("standard", 0)
        matches.append(ModelPricing(
            key=key, provider=model.provider, name=model.name, mode=model.mode,
            max_input_tokens=model.max_input_tokens, max_output_tokens=model.max_output_tokens,
            per_million=card.per_million()))
    return PricingList(pricing_version=catalogue.pricing_version, count=len(matches),
                       models=matches[:query.limit])
