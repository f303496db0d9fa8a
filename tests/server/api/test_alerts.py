"""Budget alerts: each threshold fires once per period, forecasts are their own kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from llmlab_server import db
from llmlab_server.models import Budget
from llmlab_server.services import alerts, budgets

from ..helpers import Api, Tenant, make_event


def now_iso() -> str:
    """The current instant."""
    return datetime.now(UTC).isoformat()


def make_budget(api: Api, t: Tenant, **fields: Any) -> Any:
    """A budget of $0.01 (three gpt-4o test calls pass 100 %)."""
    return api.data("POST", "/api/budgets", t.token, {
        "project_id": t.project_id, "amount": "0.01", **fields}, status=201)


def listed(api: Api, token: str, query: str = "") -> list[dict[str, Any]]:
    """``GET /api/alerts``."""
    return api.data("GET", f"/api/alerts{query}", token)


class TestThresholds:
    """Crossing thresholds records alerts after ingest, once each per period."""

    def test_each_threshold_fires_once(self, api: Api) -> None:
        """50 % then 80/100 % fire as spend grows; more spend and reads add nothing."""
        t = api.tenant()
        make_budget(api, t, thresholds=[50, 80, 100])
        api.track(t.key, [make_event(timestamp=now_iso()) for _ in range(2)])  # $0.007 = 70 %
        # Threshold alerts only here: whether the forecast fires too depends on the date.
        assert [a["threshold"] for a in listed(api, t.token, "?kind=threshold")] == [50]
        api.track(t.key, [make_event(timestamp=now_iso()) for _ in range(2)])  # 140 %
        first = listed(api, t.token)
        assert sorted(a["threshold"] for a in first if a["kind"] == "threshold") == [50, 80, 100]
        api.track(t.key, [make_event(timestamp=now_iso())])
        api.data("GET", "/api/budgets/status", t.token)
        assert len(listed(api, t.token)) == len(first)

    def test_alert_content(self, api: Api) -> None:
        """An alert names its budget, threshold, spend, amount and period."""
        t = api.tenant()
        b = make_budget(api, t, thresholds=[100], period="daily", timezone="America/New_York")
        api.track(t.key, [make_event(timestamp=now_iso()) for _ in range(3)])
        (alert,) = listed(api, t.token, "?kind=threshold")
        assert alert["budget_id"] == b["id"] and alert["budget_name"] == b["name"]
        assert (alert["spent"], alert["amount"], alert["threshold"]) == ("0.0105", "0.01", 100)
        assert "passed 100%" in alert["message"]
        assert datetime.fromisoformat(alert["period_start"]).utcoffset() in (
            timedelta(hours=-5), timedelta(hours=-4))

    def test_duplicates_do_not_count_and_do_not_alert(self, api: Api) -> None:
        """A batch sent twice is counted once, so it cannot fire a second threshold."""
        t = api.tenant()
        make_budget(api, t, thresholds=[50, 100])
        events = [make_event(timestamp=now_iso()) for _ in range(2)]
        api.track(t.key, events)
        api.track(t.key, events)
        assert [a["threshold"] for a in listed(api, t.token, "?kind=threshold")] == [50]

    def test_once_per_period(self, app: Flask, api: Api) -> None:
        """The same threshold fires again in the next period, once."""
        t = api.tenant()
        make_budget(api, t, thresholds=[50], period="daily")
        api.track(t.key, [make_event(timestamp=now_iso()) for _ in range(2)])
        with app.app_context():
            session = db.session()
            later = datetime.now(UTC) + timedelta(days=1)
            api.track(t.key, [make_event(timestamp=later.isoformat()) for _ in range(2)])
            for _ in range(2):
                alerts.evaluate_projects(session, [t.project_id], now=later)
        # Threshold alerts only: after 10 % of the day the forecast alert may fire too.
        rows = listed(api, t.token, "?kind=threshold")
        assert [a["threshold"] for a in rows] == [50, 50]
        assert len({a["period_start"] for a in rows}) == 2

    def test_filters_and_tenancy(self, api: Api) -> None:
        """Alerts filter by budget and kind; other tenants see none of them (404 by project)."""
        t, intruder = api.tenant(), api.tenant()
        a = make_budget(api, t, name="a", thresholds=[10])
        make_budget(api, t, name="b", thresholds=[10])
        api.track(t.key, [make_event(timestamp=now_iso())])
        # 35 % spent: whether forecasts fire too depends on the day of the month.
        thresholds = listed(api, t.token, "?kind=threshold")
        assert len(thresholds) == 2 and {x["kind"] for x in thresholds} == {"threshold"}
        assert all(x["kind"] == "forecast" for x in listed(api, t.token, "?kind=forecast"))
        assert [x["budget_id"] for x in listed(api, t.token, f"?budget={a['id']}&kind=threshold")
                ] == [a["id"]]
        assert listed(api, intruder.token) == []
        assert api.call("GET", f"/api/alerts?project={t.project_id}",
                        intruder.token).status_code == 404
        assert api.call("GET", f"/api/alerts?project={t.project_id}",
                        intruder.key).status_code == 404


class TestForecast:
    """"Projected to exceed" is its own alert, once the period is a tenth gone."""

    def test_forecast_alert_fires_once(self, app: Flask, api: Api) -> None:
        """$0.007 spent by day 3 of a 30-day period projects $0.07 > $0.05: one forecast alert."""
        t = api.tenant()
        make_budget(api, t, amount="0.05", thresholds=[100], period="monthly")
        with app.app_context():
            session = db.session()
            budget = session.query(Budget).one()
            now = datetime.now(UTC)
            period = budgets.period_bounds("monthly", budgets.zone("UTC"), now)
            assert period.start is not None and period.end is not None
            at = period.start + (period.end - period.start) / 10 + timedelta(hours=1)
            api.track(t.key, [make_event(timestamp=period.start.isoformat())
                              for _ in range(2)])
            ev = budgets.evaluate(session, budget, at)
            assert ev.forecast is not None and ev.forecast > budget.amount_nanos
            assert len(alerts.evaluate(session, [ev])) == 1
            assert alerts.evaluate(session, [budgets.evaluate(session, budget, at)]) == []
            early = period.start + (period.end - period.start) / 20
            budget2_alerts = alerts._crossings(budgets.evaluate(session, budget, early))
            assert all(r["kind"] != "forecast" for r in budget2_alerts)
        (alert,) = listed(api, t.token, "?kind=forecast")
        assert "projected to exceed" in alert["message"] and alert["forecast"]
