"""Every exception llmlab raises on purpose.

Hierarchy::

    LLMLabError                      base of everything below
    ├── ConfigurationError           bad options to init(), a bad pricing.toml, a bad override
    ├── PricingError                 the pricing catalogue itself is unreadable or malformed
    ├── UsageError (ValueError)      negative, absurd or inconsistent token counts
    ├── BudgetExceededError          a call would break a hard budget; raised *before* the call
    │   └── ScopeBudgetExceededError a `track(max_cost=...)` scope would be passed
    └── APIError                     the llmlab server answered with an error
        ├── AuthenticationError      401: missing, bad or expired credentials
        ├── PermissionDeniedError    403: the credentials may not do this
        ├── NotFoundError            404: unknown resource, or another tenant's
        └── RateLimitError           429: slow down; `retry_after` says for how long

Only `BudgetExceededError` (and its subclass) ever escapes from an instrumented provider call;
every other failure inside llmlab is logged on the ``llmlab`` logger and swallowed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BudgetExceededError",
    "ConfigurationError",
    "LLMLabError",
    "NotFoundError",
    "PermissionDeniedError",
    "PricingError",
    "RateLimitError",
    "ScopeBudgetExceededError",
    "UsageError",
]


class LLMLabError(Exception):
    """Base class of every exception llmlab raises on purpose."""


class ConfigurationError(LLMLabError):
    """An option, environment variable or pricing override is invalid."""


class PricingError(LLMLabError):
    """The pricing catalogue, or a table being imported, cannot be read."""


class UsageError(LLMLabError, ValueError):
    """Token counts are negative, absurdly large, or inconsistent with each other."""


class BudgetExceededError(LLMLabError):
    """A provider call would break a hard (`block`) budget, so it was not made.

    Raised before the provider is contacted; nothing was spent on the refused call.
    """

    def __init__(
        self,
        message: str,
        *,
        budget_id: str | None = None,
        scope: dict[str, Any] | None = None,
        limit: Decimal = Decimal(0),
        spent: Decimal = Decimal(0),
        estimate: Decimal = Decimal(0),
        resets_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.budget_id = budget_id
        self.scope = dict(scope or {})
        self.limit = limit
        self.spent = spent
        self.estimate = estimate
        self.resets_at = resets_at


class ScopeBudgetExceededError(BudgetExceededError):
    """The `max_cost` of a `track()` scope or `@track_cost` function would be passed."""


class APIError(LLMLabError):
    """The llmlab server answered with an error envelope (or not at all)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.param = param


class AuthenticationError(APIError):
    """401: the API key or token is missing, wrong, revoked or expired."""


class PermissionDeniedError(APIError):
    """403: the credentials are valid but lack the scope or role for this request."""


class NotFoundError(APIError):
    """404: the resource does not exist or belongs to another tenant."""


class RateLimitError(APIError):
    """429: too many requests; wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
