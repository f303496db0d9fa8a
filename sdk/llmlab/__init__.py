"""llmlab: exact, attributed cost tracking for LLM calls.

>>> import llmlab
>>> llmlab.cost("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 100}).total
Decimal('0.003500')
"""

from __future__ import annotations

from llmlab.errors import (
    APIError,
    BudgetExceededError,
    ConfigurationError,
    LLMLabError,
    ScopeBudgetExceededError,
)
from llmlab.pricing import CostBreakdown, cost
from llmlab.usage import Usage

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "BudgetExceededError",
    "ConfigurationError",
    "CostBreakdown",
    "LLMLabError",
    "ScopeBudgetExceededError",
    "Usage",
    "__version__",
    "cost",
]
