"""What OpenAI-shaped responses bill beyond their token usage.

Responses API output items for built-in tools (`llmlab._tools.openai_response_tools`), and
the charge a provider reports itself (OpenRouter's ``usage.cost``, an extra field the openai
SDK keeps in ``__pydantic_extra__``), recorded as the event's ``provider_cost``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmlab._tools import openai_response_tools
from llmlab.errors import UsageError
from llmlab.usage import Usage

__all__ = ["provider_cost", "with_tools"]


def provider_cost(usage: Any) -> Decimal | None:
    """The charge a provider reports in the usage (OpenRouter's ``usage.cost``, USD), read
    from the fields the openai SDK does not declare; None when there is none."""
    extra = getattr(usage, "__pydantic_extra__", None) if usage is not None else None
    value = extra.get("cost") if extra else None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def with_tools(response: Any, usage: Any) -> Any:
    """A Responses result's usage plus its built-in tool calls (web search, file search,
    containers, image generation), which are output items, not usage fields."""
    if usage is None:
        return None
    tools = openai_response_tools(response)
    if not tools:
        return usage  # the common case: normalised later, on the worker
    try:
        return Usage.from_any(usage, "openai").with_tools(tools)
    except UsageError:
        return usage  # malformed: left to the tracker, which reports it once
