"""Time-of-day prices: the off-peak windows of a model (DeepSeek's discount hours).

LiteLLM's table lists them per entry as ``off_peak_pricing``::

    {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, ...,
     "weekday_timezone": "Asia/Shanghai",            # optional, default UTC
     "windows": [{"hours_utc": ["00:00-01:00", "10:00-00:00"], "weekdays": [1, 2, 3, 4, 5]},
                 {"hours_utc": "00:00-00:00", "weekdays": [6, 7]}]}

A call is off-peak when its instant falls in one window: the hours are always UTC, half-open
(``10:00-00:00`` is 10:00 up to midnight, ``00:00-00:00`` the whole day); the weekdays are ISO
(1 Monday … 7 Sunday) of the instant's date in ``weekday_timezone``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llmlab.errors import PricingError

__all__ = ["OffPeak"]

_DAY = 24 * 60


def _minutes(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(text)
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > _DAY:
        raise ValueError(text)
    return value


def _span(text: str) -> tuple[int, int]:
    """``"10:00-00:00"`` as minutes of the UTC day, [start, end) with midnight as an end = 24:00."""
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError(text)
    start, end = _minutes(start_text), _minutes(end_text)
    return start, (end or _DAY)


@dataclass(frozen=True, slots=True)
class OffPeak:
    """Off-peak rates (USD per token, by component) and the windows they apply in."""

    rates: Mapping[str, Decimal]
    #: (ISO weekdays, UTC minute spans) per window.
    windows: tuple[tuple[frozenset[int], tuple[tuple[int, int], ...]], ...]
    weekday_timezone: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], rates: Mapping[str, Decimal]) -> OffPeak:
        """Windows in the table's (and the catalogue's) form; raises `PricingError` when bad."""
        zone = data.get("weekday_timezone")
        try:
            if zone is not None:
                ZoneInfo(str(zone))
            windows = []
            for window in data["windows"]:
                hours = window["hours_utc"]
                spans = tuple(_span(h) for h in ([hours] if isinstance(hours, str) else hours))
                days = frozenset(int(d) for d in window["weekdays"])
                if not days <= frozenset(range(1, 8)):
                    raise ValueError(f"weekdays {sorted(days)} are not ISO weekdays 1-7")
                windows.append((days, spans))
        except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as exc:
            raise PricingError(f"malformed off-peak windows {data!r}: {exc!r}") from exc
        if not windows or not rates:
            raise PricingError(f"off-peak pricing without windows or rates: {data!r}")
        return cls(rates=dict(rates), windows=tuple(windows),
                   weekday_timezone=str(zone) if zone is not None else None)

    def to_dict(self) -> dict[str, Any]:
        """The catalogue JSON form: the table's fields, rates by component."""
        out: dict[str, Any] = {
            "rates": {c: format(v, "f") for c, v in self.rates.items()},
            "windows": [{"hours_utc": [f"{s // 60:02d}:{s % 60:02d}-{e // 60 % 24:02d}:{e % 60:02d}"
                                       for s, e in spans],
                         "weekdays": sorted(days)} for days, spans in self.windows],
        }
        if self.weekday_timezone:
            out["weekday_timezone"] = self.weekday_timezone
        return out

    def covers(self, when: datetime) -> bool:
        """Whether the instant ``when`` (aware; naive means UTC) is in an off-peak window."""
        zone = when.tzinfo
        utc = when if zone is UTC else (
            when.replace(tzinfo=UTC) if zone is None else when.astimezone(UTC))
        minute = utc.hour * 60 + utc.minute
        if self.weekday_timezone:
            weekday = utc.astimezone(ZoneInfo(self.weekday_timezone)).isoweekday()
        else:
            weekday = utc.isoweekday()
        for days, spans in self.windows:
            if weekday in days:
                for start, end in spans:
                    if start <= minute < end if start < end else (minute >= start or minute < end):
                        return True
        return False
