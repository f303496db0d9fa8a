"""Time windows and bucketing of the summaries service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmlab_server.errors import BadRequest
from llmlab_server.services.summaries import parse_window, usd

NOW = datetime(2026, 11, 22, 16, 20, tzinfo=UTC)


class TestParseWindow:
    """parse_window."""

    def test_default_is_the_last_30_days_to_the_next_hour(self) -> None:
        """Without start/end the window is 30 days ending at the next whole hour."""
        w = parse_window(None, None, "UTC", 366, now=NOW)
        assert w.end == datetime(2026, 11, 22, 17, tzinfo=UTC)
        assert (w.end - w.start).days == 30 and w.hour_aligned

    def test_dates_are_local_midnights(self) -> None:
        """A date means local midnight in tz, converted to UTC."""
        w = parse_window("2026-11-01", "2026-11-02", "Asia/Kolkata", 366)
        assert w.start == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
        assert not w.hour_aligned and not w.whole_hour_offsets()

    def test_explicit_offsets_win_over_tz(self) -> None:
        """A datetime with an offset is taken as is, whatever tz says."""
        w = parse_window("2026-11-01T00:00:00Z", "2026-11-01T05:00:00+00:00",
                         "America/New_York", 366)
        assert w.start == datetime(2026, 11, 1, tzinfo=UTC) and w.whole_hour_offsets()

    @pytest.mark.parametrize(("start", "end", "tz", "code"), [
        ("2026-01-01", "2027-01-03", "UTC", "range_too_large"),
        ("2026-01-02", "2026-01-01", "UTC", "invalid_range"),
        ("2026-13-01", "2026-01-01", "UTC", "invalid_time"),
        ("2026-01-01", "2026-01-02", "Nowhere/City", "invalid_timezone")])
    def test_bad_windows(self, start: str, end: str, tz: str, code: str) -> None:
        """Oversized, inverted, malformed and unknown-zone windows are 400s with a code."""
        with pytest.raises(BadRequest) as info:
            parse_window(start, end, tz, 366)
        assert info.value.code == code


class TestUsd:
    """usd()."""

    def test_formats_nanos_as_plain_decimal(self) -> None:
        """Nano-USD become plain decimal strings without exponent or trailing zeros."""
        assert [usd(n) for n in (0, 1, 4_750_000, 12_000_000_000)] == [
            "0", "0.000000001", "0.00475", "12"]
