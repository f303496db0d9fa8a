"""Wire schemas of the pricing catalogue (``GET /api/pricing``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from llmlab_server.common_schemas import Filter, MoneyStr, _In

__all__ = ["ModelPricing", "PricingList", "PricingQuery"]


class PricingQuery(_In):
    """Search the pricing catalogue."""

    q: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        None, description="Substring of the model name")
    provider: Filter | None = None
    mode: Filter | None = None
    limit: Annotated[int, Field(ge=1, le=5000)] = 500


class ModelPricing(BaseModel):
    """Current list prices of one model, USD per million tokens."""

    key: str
    provider: str
    name: str
    mode: str
    max_input_tokens: int | None
    max_output_tokens: int | None
    per_million: dict[str, MoneyStr]


class PricingList(BaseModel):
    """Models of the pricing catalogue."""

    pricing_version: str
    count: int
    models: list[ModelPricing]
