"""/api/costs: summaries in several time zones, time series, CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from ..helpers import Api, Tenant, make_event

NY_DST_EVENTS = [  # DST ends in New York on 2026-11-01 at 02:00 EDT (06:00 UTC)
    ("2026-10-31T03:30:00Z", "2026-10-30", "2026-10-30T23:00:00-04:00"),
    ("2026-11-01T04:30:00Z", "2026-11-01", "2026-11-01T00:00:00-04:00"),
    ("2026-11-01T05:30:00Z", "2026-11-01", "2026-11-01T01:00:00-04:00"),
    ("2026-11-01T06:30:00Z", "2026-11-01", "2026-11-01T01:00:00-05:00"),
    ("2026-11-02T04:30:00Z", "2026-11-01", "2026-11-01T23:00:00-05:00"),
    ("2026-11-02T05:30:00Z", "2026-11-02", "2026-11-02T00:00:00-05:00"),
]


def _summary(api: Api, t: Tenant, **params: object) -> dict:
    return api.data("GET", "/api/costs/summary", t.key, query_string=params)


def _by_key(summary: dict) -> dict[str, int]:
    return {row["key"]: row["calls"] for row in summary["groups"]}


class TestSummary:
    """Totals and groupings."""

    def test_totals_without_grouping(self, api: Api) -> None:
        """Totals add cost (as a decimal string), calls, tokens, latency and the error rate."""
        t = api.tenant()
        api.track(t.key, [make_event(latency_ms=100.0), make_event(latency_ms=300.0),
                          make_event(status="error", latency_ms=None)])
        s = _summary(api, t, start="2026-11-01", end="2026-11-03")
        totals = s["totals"]
        assert s["source"] == "rollups" and s["groups"] == []
        assert totals["cost"] == "0.0105" and totals["calls"] == 3 and totals["errors"] == 1
        assert totals["error_rate"] == pytest.approx(1 / 3, abs=1e-6)
        assert totals["avg_latency_ms"] == 200.0
        assert totals["tokens"]["input_tokens"] == 3000
        assert totals["tokens"]["total_tokens"] == 3300

    @pytest.mark.parametrize(("group", "source"), [
        ("model", "rollups"), ("provider", "rollups"), ("project", "rollups"),
        ("job", "rollups"), ("user", "rollups"), ("tag:feature", "rollups")])
    def test_group_by_dimensions(self, api: Api, group: str, source: str) -> None:
        """Each group_by gives one row per value, from the rollups."""
        t = api.tenant()
        api.track(t.key, [
            make_event(model="gpt-4o", job_id="a", user_id="u1", tags={"feature": "x"}),
            make_event(model="gpt-4o", job_id="a", user_id="u2", tags={"feature": "y"}),
            make_event(model="claude-sonnet-4-5", provider="anthropic", job_id="b",
                       user_id="u1", tags={"feature": "x"})])
        s = _summary(api, t, start="2026-11-01", end="2026-11-03", group_by=group)
        assert s["source"] == source
        expected = {
            "model": {"gpt-4o": 2, "claude-sonnet-4-5": 1},
            "provider": {"openai": 2, "anthropic": 1},
            "project": {t.project["slug"]: 3},
            "job": {"a": 2, "b": 1}, "user": {"u1": 2, "u2": 1},
            "tag:feature": {"x": 2, "y": 1}}[group]
        assert _by_key(s) == expected
        assert sum(row["calls"] for row in s["groups"]) == s["totals"]["calls"] == 3

    def test_sum_of_groups_equals_total_cost(self, api: Api) -> None:
        """Group costs add up exactly to the total (integer nano-USD underneath)."""
        t = api.tenant()
        api.track(t.key, [make_event(usage={"input_tokens": 7, "output_tokens": 3}),
                          make_event(model="gpt-4o-mini", usage={"input_tokens": 11}),
                          make_event(model="gpt-4o-mini", usage={"input_tokens": 13})])
        from decimal import Decimal

        s = _summary(api, t, start="2026-11-01", end="2026-11-03", group_by="model")
        assert sum(Decimal(r["cost"]) for r in s["groups"]) == Decimal(s["totals"]["cost"])

    def test_utc_by_day_and_hour(self, api: Api) -> None:
        """In UTC, day and hour buckets come from rollups and match the event timestamps."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp="2026-11-01T23:59:59Z"),
                          make_event(timestamp="2026-11-02T00:00:00Z"),
                          make_event(timestamp="2026-11-02T00:30:00Z")])
        days = _summary(api, t, start="2026-11-01", end="2026-11-03", group_by="day")
        assert days["source"] == "rollups"
        assert _by_key(days) == {"2026-11-01": 1, "2026-11-02": 2}
        hours = _summary(api, t, start="2026-11-01", end="2026-11-03", group_by="hour")
        assert _by_key(hours) == {"2026-11-01T23:00:00+00:00": 1,
                                  "2026-11-02T00:00:00+00:00": 2}

    def test_new_york_across_dst(self, api: Api) -> None:
        """Local days and hours in New York are right on both sides of the DST change."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp=ts) for ts, _, _ in NY_DST_EVENTS])
        params = {"start": "2026-10-30", "end": "2026-11-03", "tz": "America/New_York"}
        days = _summary(api, t, group_by="day", **params)
        assert days["source"] == "rollups"
        assert _by_key(days) == {"2026-10-30": 1, "2026-11-01": 4, "2026-11-02": 1}
        hours = _summary(api, t, group_by="hour", **params)
        assert _by_key(hours) == {hour: 1 for _, _, hour in NY_DST_EVENTS}

    @pytest.mark.parametrize(("tz", "before", "after", "day_start"), [
        ("Asia/Kolkata", "2026-11-01T18:29:00Z", "2026-11-01T18:31:00Z", "18:30"),
        ("Asia/Kathmandu", "2026-11-01T18:14:00Z", "2026-11-01T18:16:00Z", "18:15"),
    ])
    def test_non_whole_hour_zones_fall_back_to_events(self, api: Api, tz: str, before: str,
                                                      after: str, day_start: str) -> None:
        """In +05:30 / +05:45 zones two events of one UTC hour land on their own local days."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp=before), make_event(timestamp=after)])
        days = _summary(api, t, start="2026-11-01", end="2026-11-03", tz=tz, group_by="day")
        assert days["source"] == "events"
        assert _by_key(days) == {"2026-11-01": 1, "2026-11-02": 1}
        assert days["start"].endswith(f"{day_start}:00Z") or day_start in days["start"]
        hours = _summary(api, t, start="2026-11-01", end="2026-11-03", tz=tz, group_by="hour")
        assert len(hours["groups"]) == 2 and hours["totals"]["calls"] == 2

    @pytest.mark.parametrize("group", ["model", "job", "user", "tag:feature"])
    def test_kolkata_range_reads_its_half_hours_from_events(self, api: Api, group: str
                                                            ) -> None:
        """A Kolkata-midnight range starts and ends on UTC half hours: the whole hours come
        from rollups, the half hours at both ends from events, exactly."""
        t = api.tenant()
        fields = {"job_id": "j", "user_id": "u", "tags": {"feature": "f"}}
        api.track(t.key, [make_event(timestamp=ts, **fields) for ts in (
            "2026-11-01T18:29:00Z", "2026-11-01T18:31:00Z", "2026-11-02T12:00:00Z",
            "2026-11-02T18:29:59Z", "2026-11-02T18:30:00Z")])
        s = _summary(api, t, start="2026-11-02", end="2026-11-03", tz="Asia/Kolkata",
                     group_by=group)
        assert s["source"] == "rollups" and s["totals"]["calls"] == 3
        assert [g["calls"] for g in s["groups"]] == [3]

    def test_range_cap_and_bad_parameters_are_400(self, api: Api) -> None:
        """Ranges over 366 days, inverted ranges, bad times, zones and groups are clear 400s."""
        t = api.tenant()
        cases = [({"start": "2025-01-01", "end": "2026-06-01"}, "range_too_large"),
                 ({"start": "2026-11-02", "end": "2026-11-01"}, "invalid_range"),
                 ({"start": "yesterday"}, "invalid_time"),
                 ({"tz": "Mars/Olympus"}, "invalid_timezone"),
                 ({"group_by": "colour"}, "invalid_request")]
        for params, code in cases:
            response = api.call("GET", "/api/costs/summary", t.key, query_string=params)
            assert response.status_code == 400, params
            assert response.get_json()["error"]["code"] == code, params

    def test_user_sees_all_their_projects(self, api: Api) -> None:
        """Without ?project a user's summary covers every project they belong to."""
        t = api.tenant()
        other = api.project(t.token, "Second")
        other_key = api.key(t.token, other["id"])
        api.track(t.key, [make_event()])
        api.track(other_key, [make_event()])
        stranger = api.tenant()
        api.track(stranger.key, [make_event()])
        s = api.data("GET", "/api/costs/summary", t.token, query_string={
            "start": "2026-11-01", "end": "2026-11-03", "group_by": "project"})
        assert s["totals"]["calls"] == 2 and len(s["groups"]) == 2


    def test_limit_is_documented(self, api: Api) -> None:
        """The OpenAPI document lists ``limit`` and the ``other`` and ``group_count`` fields."""
        doc = api.client.get("/api/openapi.json").get_json()
        params = {p["name"] for p in doc["paths"]["/api/costs/summary"]["get"]["parameters"]}
        assert {"limit", "group_by"} <= params
        summary = doc["components"]["schemas"]["Summary"]["properties"]
        assert {"other", "group_count"} <= set(summary)


class TestTimeseries:
    """Zero-filled series."""

    def test_daily_series_is_zero_filled(self, api: Api) -> None:
        """Every local day of the range has a point, empty days with zero cost."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp="2026-11-02T10:00:00Z")])
        ts = api.data("GET", "/api/costs/timeseries", t.key, query_string={
            "start": "2026-11-01", "end": "2026-11-04", "interval": "day"})
        assert [p["calls"] for p in ts["points"]] == [0, 1, 0]
        assert ts["points"][1]["cost"] == "0.0035"

    def test_partial_hour_range_uses_rollups_and_edges(self, api: Api) -> None:
        """An hourly series over a range not on whole hours counts each event once, in its
        hour: rollups for the whole hours, events for the partial ones."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp=ts) for ts in (
            "2026-11-02T10:05:00Z", "2026-11-02T10:20:00Z", "2026-11-02T11:30:00Z",
            "2026-11-02T12:39:00Z", "2026-11-02T12:41:00Z")])
        ts = api.data("GET", "/api/costs/timeseries", t.key, query_string={
            "start": "2026-11-02T10:10:00Z", "end": "2026-11-02T12:40:00Z",
            "interval": "hour"})
        assert ts["source"] == "rollups"
        assert [p["calls"] for p in ts["points"]] == [1, 1, 1]

    def test_hourly_series_in_kolkata(self, api: Api) -> None:
        """Hourly points in Kolkata start at local whole hours (UTC half hours)."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp="2026-11-01T18:31:00Z")])
        ts = api.data("GET", "/api/costs/timeseries", t.key, query_string={
            "start": "2026-11-02T00:00", "end": "2026-11-02T03:00", "tz": "Asia/Kolkata",
            "interval": "hour"})
        assert [p["start"] for p in ts["points"]] == [
            "2026-11-02T00:00:00+05:30", "2026-11-02T01:00:00+05:30", "2026-11-02T02:00:00+05:30"]
        assert [p["calls"] for p in ts["points"]] == [1, 0, 0]


def _spreadsheet_cells(line: str, separator: str) -> list[str]:
    """``line`` split at ``separator`` outside quotes, as a spreadsheet reads a CSV line."""
    cells, current, quoted = [], "", False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            cells.append(current)
            current = ""
        else:
            current += char
    return [*cells, current]


class TestExport:
    """CSV export."""

    def test_csv_has_header_and_rows(self, api: Api) -> None:
        """The export is text/csv with a header and one row per event, oldest first."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp="2026-11-02T11:00:00Z", job_id="late"),
                          make_event(timestamp="2026-11-02T10:00:00Z", job_id="early")])
        response = api.call("GET", "/api/costs/export", t.key, query_string={
            "start": "2026-11-01", "end": "2026-11-03"})
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert [r["job_id"] for r in rows] == ["early", "late"]
        assert rows[0]["cost_usd"] == "0.0035" and rows[0]["project"] == t.project["slug"]

    def test_csv_neutralises_formulas(self, api: Api) -> None:
        """A value that a spreadsheet would run as a formula is prefixed with a quote."""
        t = api.tenant()
        api.track(t.key, [make_event(job_id="=HYPERLINK(\"http://evil\")")])
        text = api.call("GET", "/api/costs/export?start=2026-11-01&end=2026-11-03",
                        t.key).get_data(as_text=True)
        row = next(iter(csv.DictReader(io.StringIO(text))))
        assert row["job_id"].startswith("'=")

    @pytest.mark.parametrize("value", ["x;=1+1", "a,@SUM(A1)", "ok; -2+3", "x;\tcmd", "+1"])
    def test_csv_neutralises_formulas_after_a_separator(self, api: Api, value: str) -> None:
        """A formula after a ';' or ',' (a cell of its own in a ';'-list locale) is neutralised
        too: the cell is quoted and starts with a quote character."""
        t = api.tenant()
        api.track(t.key, [make_event(job_id=value)])
        text = api.call("GET", "/api/costs/export?start=2026-11-01&end=2026-11-03",
                        t.key).get_data(as_text=True)
        row = next(iter(csv.DictReader(io.StringIO(text))))
        assert row["job_id"] == "'" + value
        for line in text.splitlines()[1:]:
            for cell in _spreadsheet_cells(line, ";"):
                assert not cell.lstrip(' "').startswith(("=", "+", "-", "@", "\t", "\r"))

    def test_large_export_streams_every_row(self, api: Api) -> None:
        """An export larger than one chunk contains every event once."""
        t = api.tenant()
        api.track(t.key, [make_event(timestamp=f"2026-11-02T10:{i % 60:02d}:{i // 60:02d}Z")
                          for i in range(900)])
        text = api.call("GET", "/api/costs/export?start=2026-11-01&end=2026-11-03",
                        t.key).get_data(as_text=True)
        assert len(list(csv.DictReader(io.StringIO(text)))) == 900
