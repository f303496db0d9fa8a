"""Time-of-day prices: off-peak windows, and calls priced at their own instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from openai.types import CompletionUsage
from openai.types.completion_usage import PromptTokensDetails

import llmlab
from llmlab.errors import PricingError
from llmlab.pricing import Catalogue
from llmlab.pricing._offpeak import OffPeak

D = Decimal
M = 1_000_000
# DeepSeek V4 Flash, USD per 1M tokens (api-docs.deepseek.com/quick_start/pricing, as the
# table lists it): standard input / cache hit / output, and the off-peak ones.
PEAK = {"input": D("0.30"), "cache_read": D("0.006"), "output": D("1.20")}
OFF = {"input": D("0.15"), "cache_read": D("0.003"), "output": D("0.60")}
# 2026-12-07 is a Monday; DeepSeek's weekday off-peak hours are 00-01, 04-06 and 10-24 UTC.
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)


def _usage() -> CompletionUsage:
    return CompletionUsage(prompt_tokens=10_000, completion_tokens=2_000, total_tokens=12_000,
                           prompt_tokens_details=PromptTokensDetails(cached_tokens=4_000))


def _expected(rates: dict[str, Decimal]) -> Decimal:
    return (6_000 * rates["input"] + 4_000 * rates["cache_read"] + 2_000 * rates["output"]) / M


class TestDeepSeekOffPeak:
    @pytest.mark.parametrize(("when", "rates"), [
        (MONDAY + timedelta(hours=8), PEAK),                  # weekday, between windows
        (MONDAY + timedelta(hours=10), OFF),                  # 10:00 opens the evening window
        (MONDAY + timedelta(hours=9, minutes=59), PEAK),      # the minute before it
        (MONDAY + timedelta(hours=4, minutes=30), OFF),
        (MONDAY + timedelta(hours=6), PEAK),                  # windows are half-open
        (MONDAY + timedelta(days=5, hours=8), OFF),           # Saturday: all day
        (MONDAY + timedelta(days=6, hours=8), OFF),           # Sunday: all day
    ])
    def test_call_is_priced_at_its_time_of_day(self, catalogue: Catalogue, when: datetime,
                                               rates: dict[str, Decimal]) -> None:
        """A DeepSeek V4 call bills off-peak rates exactly inside the UTC windows of its day."""
        c = catalogue.cost("deepseek-v4-flash", _usage(), "deepseek", at=when)
        assert c.total == _expected(rates)

    def test_llmlab_cost_uses_the_time_not_only_the_date(self) -> None:
        """`llmlab.cost(at=)` keeps the time of day: two calls on one date price differently."""
        peak = llmlab.cost("deepseek/deepseek-v4-flash", _usage(), at=MONDAY + timedelta(hours=8))
        off = llmlab.cost("deepseek/deepseek-v4-flash", _usage(), at="2026-12-07T12:00:00Z")
        assert (peak.total, off.total) == (_expected(PEAK), _expected(OFF))

    def test_sdk_events_are_priced_at_their_timestamp(self, tmp_path: Path) -> None:
        """Events recorded by the SDK carry the peak or off-peak price of their own instant."""
        llmlab.init(ledger=False, on_event=lambda event: None, auto_instrument=False,
                    home=tmp_path)
        try:
            peak = llmlab.record("deepseek", "deepseek-v4-flash", _usage(),
                                 timestamp=MONDAY + timedelta(hours=8))
            off = llmlab.record("deepseek", "deepseek-v4-flash", _usage(),
                                timestamp=MONDAY + timedelta(hours=22))
        finally:
            llmlab.shutdown()
        assert peak is not None and peak.cost is not None and off is not None
        assert off.cost is not None
        assert (peak.cost.total, off.cost.total) == (_expected(PEAK), _expected(OFF))

    def test_other_offsets_are_converted_to_utc(self, catalogue: Catalogue) -> None:
        """16:00 at UTC+8 is 08:00 UTC: peak, though 16:00 UTC would be off-peak."""
        when = datetime(2026, 12, 7, 16, 0, tzinfo=timezone(timedelta(hours=8)))
        assert catalogue.cost("deepseek-v4-flash", _usage(), "deepseek", at=when).total \
            == _expected(PEAK)

    def test_a_bare_date_bills_the_standard_rates(self, catalogue: Catalogue) -> None:
        """Without a time of day the off-peak discount cannot be known: standard rates apply."""
        assert catalogue.cost("deepseek-v4-flash", _usage(), "deepseek",
                              at=date(2026, 12, 12)).total == _expected(PEAK)

    def test_models_without_windows_ignore_the_time(self, catalogue: Catalogue) -> None:
        """A model with no off-peak pricing costs the same at any hour."""
        usage = _usage()
        totals = {catalogue.cost("gpt-4o", usage, at=MONDAY + timedelta(hours=h)).total
                  for h in (3, 12)}
        assert len(totals) == 1


class TestWindows:
    def test_weekdays_follow_the_calendar_zone(self) -> None:
        """With weekday_timezone, the weekday is the zone's date while the hours stay UTC."""
        weekend = {"hours_utc": "00:00-00:00", "weekdays": [6, 7]}
        rates = {"input": D("0.0000001")}
        shanghai = OffPeak.from_dict({"windows": [weekend],
                                      "weekday_timezone": "Asia/Shanghai"}, rates)
        utc = OffPeak.from_dict({"windows": [weekend]}, rates)
        friday_evening = datetime(2026, 12, 11, 20, 0, tzinfo=UTC)  # Saturday 04:00 in Shanghai
        assert shanghai.covers(friday_evening)
        assert not utc.covers(friday_evening)

    def test_round_trips_through_the_catalogue_form(self) -> None:
        """to_dict and from_dict keep windows, zone and rates."""
        data = {"windows": [{"hours_utc": ["10:00-00:00"], "weekdays": [1, 2]}],
                "weekday_timezone": "Asia/Shanghai"}
        window = OffPeak.from_dict(data, {"input": D("0.00000015")})
        again = window.to_dict()
        assert again == {**data, "rates": {"input": "0.00000015"}}
        assert OffPeak.from_dict(again, {"input": D("0.00000015")}) == window

    @pytest.mark.parametrize("data", [
        {"windows": [{"hours_utc": "25:00-26:00", "weekdays": [1]}]},
        {"windows": [{"hours_utc": "10:00", "weekdays": [1]}]},
        {"windows": [{"hours_utc": "10:00-11:00", "weekdays": [0]}]},
        {"windows": [{"hours_utc": "10:00-11:00", "weekdays": [1]}], "weekday_timezone": "Mars/X"},
        {"windows": []},
    ])
    def test_malformed_windows_are_refused(self, data: dict) -> None:  # type: ignore[type-arg]
        """Bad hours, weekdays, zones or no windows raise PricingError, never guess."""
        with pytest.raises(PricingError):
            OffPeak.from_dict(data, {"input": D("0.0000001")})
