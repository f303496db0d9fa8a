"""What every wire schema shares: the field types (emails, names, ids, money, times), the
request and response bases, the success and error envelopes, and the health answer.

Each resource's schemas are in their own module (``*_schemas``); `llmlab_server.schemas`
re-exports the older ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from llmlab_server.models import MAX_ID

__all__ = ["Email", "Envelope", "ErrorEnvelope", "ErrorInfo", "Filter", "Health", "Id",
           "MoneyStr", "Name", "Password", "Role", "Scope", "Slug", "TimeParam"]

T = TypeVar("T")

#: What no email part and no name may be made of: whitespace by the union of the three regex
#: dialects involved (JSON Schema's ECMA-262 ``\s``, pydantic's Rust ``\s``, Python's
#: ``str.strip``), so the document accepts exactly what the server does.
_SPACE = r"\s\x1c-\x1f\x85\ufeff"
Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=3,
                                         max_length=254,
                                         pattern=rf"^[^@{_SPACE}]+@[^@{_SPACE}]+$")]
#: The policy's length (`llmlab_server.security.password_problem` checks the rest).
Password = Annotated[str, StringConstraints(min_length=10, max_length=72)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                        pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                        pattern=rf"[^{_SPACE}]")]
Role = Literal["owner", "admin", "member", "viewer"]
Scope = Literal["ingest", "read", "admin"]
#: Money as a decimal string in USD ("0.00475").
MoneyStr = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["0.00475"])]
#: An ISO 8601 date or datetime; naive values are read in the query's ``tz``.
TimeParam = Annotated[str, Field(min_length=1, max_length=64,
                                 examples=["2026-11-01", "2026-11-01T00:00:00Z"])]
Filter = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul(self) -> Any:
        # PostgreSQL text cannot hold NUL: a query or body with one answered 500 there.
        for name, value in self:
            if _has_nul(value):
                raise ValueError(f"{name} must not contain NUL (\\u0000) characters")
        return self


def _has_nul(value: Any) -> bool:
    # Nested models check themselves: their own `_In` validator, or (an ingest batch's
    # `CostEvent`s) their string patterns, at C speed; walking them here cost ~18 us an event.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, BaseModel):
        return False
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in value)
    return False


#: A database id named by a caller: a bigger number would overflow the driver (a 500).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Envelope(BaseModel, Generic[T]):
    """Every successful response: ``data`` holds the result."""

    success: Literal[True]
    data: T
    error: None
    timestamp: datetime


class ErrorInfo(BaseModel):
    """What went wrong."""

    type: Literal["invalid_request_error", "authentication_error", "permission_error",
                  "rate_limit_error", "api_error"]
    code: str
    message: str
    param: str | None


class ErrorEnvelope(BaseModel):
    """Every failed response."""

    success: Literal[False]
    data: None
    error: ErrorInfo
    timestamp: datetime


class _Range(_In):
    project: Id | None = Field(None, description="Project id; default: every visible project")
    start: TimeParam | None = Field(None, description="Inclusive; default: 30 days before end")
    end: TimeParam | None = Field(None, description="Exclusive; default: the next full hour")
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        "UTC", description="IANA time zone for naive times and day/hour buckets")


class Health(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok"]
    database: Literal["ok"]
