"""llmlab: exact, attributed cost tracking for LLM calls.

>>> import llmlab
>>> llmlab.cost("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 100}).total
Decimal('0.0035000')

Two lines to track a whole app::

    llmlab.init(project="support-bot")   # patches the installed openai/anthropic/google SDKs
    @llmlab.track_cost(job="triage")     # attributes and totals the calls a function makes
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmlab._scope import Scope, track, track_cost
    from llmlab.api import flush, init, instrument, record, shutdown, stats, uninstrument, wrap
    from llmlab.client import Client
    from llmlab.errors import (
        APIError,
        BudgetExceededError,
        ConfigurationError,
        LLMLabError,
        ScopeBudgetExceededError,
    )
    from llmlab.pricing import CostBreakdown, cost
    from llmlab.schema import CostEvent
    from llmlab.usage import Usage

# Names are imported on first use (PEP 562) so that `import llmlab` stays cheap: pydantic,
# httpx and wrapt load when the first one is touched, never a provider SDK.
_EXPORTS = {
    "Scope": "llmlab._scope", "track": "llmlab._scope", "track_cost": "llmlab._scope",
    "flush": "llmlab.api", "init": "llmlab.api", "instrument": "llmlab.api",
    "record": "llmlab.api", "shutdown": "llmlab.api", "stats": "llmlab.api",
    "uninstrument": "llmlab.api", "wrap": "llmlab.api",
    "APIError": "llmlab.errors", "BudgetExceededError": "llmlab.errors",
    "ConfigurationError": "llmlab.errors", "LLMLabError": "llmlab.errors",
    "ScopeBudgetExceededError": "llmlab.errors",
    "CostBreakdown": "llmlab.pricing", "cost": "llmlab.pricing",
    "CostEvent": "llmlab.schema", "Usage": "llmlab.usage", "Client": "llmlab.client",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmlab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "APIError",
    "BudgetExceededError",
    "Client",
    "ConfigurationError",
    "CostBreakdown",
    "CostEvent",
    "LLMLabError",
    "Scope",
    "ScopeBudgetExceededError",
    "Usage",
    "__version__",
    "cost",
    "flush",
    "init",
    "instrument",
    "record",
    "shutdown",
    "stats",
    "track",
    "track_cost",
    "uninstrument",
    "wrap",
]
