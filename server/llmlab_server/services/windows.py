"""Time windows of the read routes: ``start``/``end``/``tz`` parsed, checked and capped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llmlab_server.errors import BadRequest

__all__ = ["Window", "parse_window"]

_DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Window:
    """A validated half-open time range [start, end) in UTC, and the zone to bucket in."""

    start: datetime
    end: datetime
    tz: ZoneInfo
    tz_name: str

    @property
    def hour_aligned(self) -> bool:
        """True when both ends are whole UTC hours (so hourly rollups cover it exactly)."""
        return all(t.minute == 0 and t.second == 0 and t.microsecond == 0
                   for t in (self.start, self.end))

    def whole_hour_offsets(self) -> bool:
        """True when the zone's UTC offset is a whole number of hours across the window."""
        step, t = timedelta(hours=6), self.start
        while t <= self.end:
            offset = t.astimezone(self.tz).utcoffset() or timedelta(0)
            if offset.total_seconds() % 3600:
                return False
            t += step
        offset = self.end.astimezone(self.tz).utcoffset() or timedelta(0)
        return not offset.total_seconds() % 3600


_EARLIEST_YEAR, _LATEST_YEAR = 1900, 9000


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(f"Unknown time zone {name!r}; use an IANA name such as "
                         "'America/New_York'.", code="invalid_timezone", param="tz") from None


def _parse_time(value: str, tz: ZoneInfo, param: str) -> datetime:
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time(0))
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{param}: {value!r} is not an ISO 8601 date or datetime.",
                         code="invalid_time", param=param) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    # Far from datetime's limits, so that a window's arithmetic (a year, a zone) cannot fail.
    if utc is None or not _EARLIEST_YEAR <= utc.year <= _LATEST_YEAR:
        raise BadRequest(f"{param}: {value!r} is out of range (years {_EARLIEST_YEAR}-"
                         f"{_LATEST_YEAR}).", code="invalid_time", param=param) from None
    return utc


def parse_window(start: str | None, end: str | None, tz: str, max_days: int,
                 now: datetime | None = None) -> Window:
    """The range a query covers; 400 when it is inverted or longer than ``max_days``."""
    zone = _zone(tz)
    if end is not None:
        stop = _parse_time(end, zone, "end")
    else:
        now = now or datetime.now(UTC)
        stop = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    begin = _parse_time(start, zone, "start") if start is not None else (
        stop - timedelta(days=_DEFAULT_DAYS))
    if begin >= stop:
        raise BadRequest("start must be before end.", code="invalid_range", param="start")
    if stop - begin > timedelta(days=max_days):
        raise BadRequest(f"The time range is longer than {max_days} days; narrow start/end.",
                         code="range_too_large", param="start")
    return Window(begin, stop, zone, tz)
