"""The moment a call is priced at, from the forms ``at=`` accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from llmlab.errors import ConfigurationError
from llmlab.pricing._when import to_date, to_instant


class TestToInstant:
    def test_text_with_a_time_keeps_the_time_in_utc(self) -> None:
        """ISO text with a time and an offset becomes the same instant in UTC."""
        assert to_instant("2026-12-07T18:30:00+08:00") == datetime(2026, 12, 7, 10, 30,
                                                                   tzinfo=UTC)
        assert to_instant("2026-12-07T10:30:00Z") == datetime(2026, 12, 7, 10, 30, tzinfo=UTC)

    def test_dates_stay_dates_and_naive_times_are_utc(self) -> None:
        """A date (or date text) has no time of day; a naive datetime is read as UTC."""
        assert to_instant("2026-12-07") == date(2026, 12, 7)
        assert to_instant(date(2026, 12, 7)) == date(2026, 12, 7)
        assert to_instant(datetime(2026, 12, 7, 1)) == datetime(2026, 12, 7, 1, tzinfo=UTC)

    def test_the_date_of_an_instant_is_its_utc_date(self) -> None:
        """01:00 at UTC+8 on the 8th is the 7th in UTC: price history uses the UTC date."""
        when = datetime(2026, 12, 8, 1, tzinfo=timezone(timedelta(hours=8)))
        assert to_date(when) == date(2026, 12, 7)

    def test_bad_text_is_a_configuration_error(self) -> None:
        """Text that is not an ISO date or time raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            to_instant("yesterday")
