"""Budget periods in time zones (DST included), forecasts and the choice of source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from llmlab_server.models import Budget
from llmlab_server.services.budgets import Period, forecast_nanos, period_bounds, uses_rollups

from ..helpers import utc

NY = ZoneInfo("America/New_York")


class TestPeriodBounds:
    """Periods start at local midnight and reset at the next one, in the budget's zone."""

    def test_daily_in_utc(self) -> None:
        """A UTC day runs from 00:00Z to the next 00:00Z."""
        p = period_bounds("daily", ZoneInfo("UTC"), utc(2026, 11, 22, 10, 0))
        assert (p.start, p.end) == (utc(2026, 11, 22), utc(2026, 11, 23))

    def test_daily_in_new_york_on_fall_back_day_is_25_hours(self) -> None:
        """On 2026-11-01 New York's day lasts 25 hours: 04:00Z to 05:00Z the next day."""
        p = period_bounds("daily", NY, utc(2026, 11, 1, 12, 0))
        assert p.start == utc(2026, 11, 1, 4) and p.end == utc(2026, 11, 2, 5)
        assert p.end - p.start == timedelta(hours=25)

    def test_daily_in_new_york_on_spring_forward_day_is_23_hours(self) -> None:
        """On 2026-03-08 New York's day lasts 23 hours."""
        p = period_bounds("daily", NY, utc(2026, 3, 8, 12, 0))
        assert p.start == utc(2026, 3, 8, 5) and p.end == utc(2026, 3, 9, 4)

    def test_monthly_across_dst_in_new_york(self) -> None:
        """November in New York starts at 04:00Z (EDT) and resets at 05:00Z on Dec 1 (EST)."""
        p = period_bounds("monthly", NY, utc(2026, 11, 22, 10))
        assert p.start == utc(2026, 11, 1, 4) and p.end == utc(2026, 12, 1, 5)
        assert p.end.astimezone(NY).isoformat() == "2026-12-01T00:00:00-05:00"

    def test_monthly_rolls_over_the_year(self) -> None:
        """December's budget resets on January 1st."""
        p = period_bounds("monthly", ZoneInfo("UTC"), utc(2026, 12, 31, 23, 59))
        assert p.end == utc(2027, 1, 1)

    def test_weekly_starts_on_monday(self) -> None:
        """A week runs Monday to Monday in the zone (2026-11-22 is a Sunday)."""
        p = period_bounds("weekly", ZoneInfo("Europe/Berlin"), utc(2026, 11, 22, 12))
        assert p.start == utc(2026, 11, 15, 23) and p.end == utc(2026, 11, 22, 23)

    def test_kolkata_day_starts_on_a_half_hour(self) -> None:
        """Asia/Kolkata's midnight is 18:30Z the day before."""
        p = period_bounds("daily", ZoneInfo("Asia/Kolkata"), utc(2026, 11, 22, 20, 0))
        assert p.start == utc(2026, 11, 22, 18, 30) and p.end == utc(2026, 11, 23, 18, 30)

    def test_local_date_decides_the_day(self) -> None:
        """At 02:00Z on Nov 22 it is still Nov 21 in New York."""
        p = period_bounds("daily", NY, utc(2026, 11, 22, 2, 0))
        assert p.start.astimezone(NY).date().isoformat() == "2026-11-21"

    def test_total_has_no_bounds(self) -> None:
        """A total budget never resets."""
        assert period_bounds("total", NY, utc(2026, 11, 22)) == Period(None, None)

    def test_midnight_inside_a_dst_gap(self) -> None:
        """Santiago skips 00:00 on 2026-09-06; the day starts at the first instant that exists."""
        tz = ZoneInfo("America/Santiago")
        p = period_bounds("daily", tz, utc(2026, 9, 6, 15))
        assert p.start.astimezone(tz).date().isoformat() == "2026-09-06"
        assert p.end - p.start == timedelta(hours=23)


class TestForecast:
    """The forecast extends the period's run rate so far to its end."""

    def test_linear_extrapolation(self) -> None:
        """$10 after a quarter of the period projects $40."""
        p = Period(utc(2026, 11, 1), utc(2026, 11, 5))
        assert forecast_nanos(10_000_000_000, p, utc(2026, 11, 2)) == 40_000_000_000

    def test_after_the_end_is_the_spend(self) -> None:
        """Once the period is over the forecast is what was spent."""
        p = Period(utc(2026, 11, 1), utc(2026, 11, 2))
        assert forecast_nanos(7, p, utc(2026, 11, 3)) == 7

    def test_total_has_no_forecast(self) -> None:
        """A total budget has no end to project to."""
        assert forecast_nanos(7, Period(None, None), utc(2026, 11, 3)) is None


class TestSource:
    """Rollups are used only where they are exact."""

    @pytest.mark.parametrize(("fields", "start", "expected"), [
        ({}, utc(2026, 11, 1, 4), True),
        ({"scope_model": "gpt-4o"}, utc(2026, 11, 1, 4), True),
        ({"scope_job": "nightly"}, utc(2026, 11, 1, 4), False),
        ({"scope_tag": "team=a"}, utc(2026, 11, 1, 4), False),
        ({}, datetime(2026, 11, 1, 18, 30, tzinfo=UTC), False),
    ])
    def test_rollups_only_for_project_or_model_scope_on_whole_hours(
            self, fields: dict[str, str], start: datetime, expected: bool) -> None:
        """Job/user/tag scopes and half-hour boundaries need the raw events."""
        budget = Budget(**fields)
        assert uses_rollups(budget, Period(start, start + timedelta(days=1))) is expected
