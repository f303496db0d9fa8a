"""The moment a call is priced at: ``at=`` as a date, a datetime or ISO text."""

from __future__ import annotations

from datetime import UTC, date, datetime

from llmlab.errors import ConfigurationError

__all__ = ["to_date", "to_instant"]


def to_instant(when: date | datetime | str | None) -> date | datetime | None:
    """``when`` as an aware UTC datetime, or a plain date when only a date was given.

    A naive datetime (or ISO text without an offset) is read as UTC, as event timestamps are.
    """
    if when is None or type(when) is date:
        return when
    if isinstance(when, datetime):
        zone = when.tzinfo
        if zone is UTC:  # what the SDK and the server pass: no conversion
            return when
        return when.replace(tzinfo=UTC) if zone is None else when.astimezone(UTC)
    text = str(when).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return to_instant(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        raise ConfigurationError(
            f"{when!r} is not an ISO date or time (YYYY-MM-DD[THH:MM[:SS][Z]])") from exc


def to_date(when: date | datetime | str | None) -> date | None:
    """The UTC calendar date of ``when`` (None stays None)."""
    instant = to_instant(when)
    return instant.date() if isinstance(instant, datetime) else instant
