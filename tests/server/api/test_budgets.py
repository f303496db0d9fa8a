"""Budgets API: CRUD, roles, tenancy, and status (spend, forecast, resets_at) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from llmlab_server.services.budgets import period_bounds

from ..helpers import Api, Tenant, make_event


def budget(api: Api, t: Tenant, status: int = 201, **fields: Any) -> Any:
    """Create a budget in ``t``'s project."""
    body = {"project_id": t.project_id, "name": "cap", "amount": "10", **fields}
    return api.data("POST", "/api/budgets", t.token, body, status=status)


def now_iso() -> str:
    """The current instant (events stamped now fall in every current period)."""
    return datetime.now(UTC).isoformat()


def track(api: Api, t: Tenant, events: list[dict[str, Any]]) -> None:
    """Ingest ``events`` with the tenant's key, all accepted."""
    response = api.track(t.key, events)
    assert response.status_code == 207
    assert response.get_json()["data"]["accepted"] == len(events)


def status(api: Api, token: str, **params: Any) -> list[dict[str, Any]]:
    """The budgets of a status read."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.data("GET", f"/api/budgets/status?{query}", token)["budgets"]


class TestCrud:
    """Create, read, update and delete budgets."""

    def test_create_with_defaults(self, api: Api) -> None:
        """A budget defaults to monthly, UTC, thresholds 50/80/100 and action alert."""
        t = api.tenant()
        b = budget(api, t)
        assert b["amount"] == "10" and b["period"] == "monthly" and b["timezone"] == "UTC"
        assert b["thresholds"] == [50, 80, 100] and b["action"] == "alert"
        assert b["scope"] == {"project": t.project["slug"], "job": None, "user": None,
                              "tag": None, "model": None}

    def test_full_round_trip(self, api: Api) -> None:
        """Every field is stored, listed, fetched, updated and deleted."""
        t = api.tenant()
        b = budget(api, t, amount="12.123456789", period="weekly", timezone="Asia/Tokyo",
                   thresholds=[90, 25], action="block",
                   scope={"job": "nightly", "user": "u1", "tag": "team=search", "model": "gpt-4o"})
        assert b["amount"] == "12.123456789" and b["thresholds"] == [25, 90]
        assert b["scope"]["tag"] == "team=search"
        assert api.data("GET", f"/api/budgets/{b['id']}", t.token) == b
        assert [x["id"] for x in api.data("GET", "/api/budgets", t.token)] == [b["id"]]
        changed = api.data("PATCH", f"/api/budgets/{b['id']}", t.token,
                           {"amount": "20", "action": "alert", "scope": {"model": "gpt-4o"}})
        assert changed["amount"] == "20" and changed["action"] == "alert"
        assert changed["scope"]["job"] is None and changed["scope"]["model"] == "gpt-4o"
        api.data("DELETE", f"/api/budgets/{b['id']}", t.token)
        assert api.call("GET", f"/api/budgets/{b['id']}", t.token).status_code == 404

    @pytest.mark.parametrize("fields", [
        {"amount": "0"}, {"amount": "-1"}, {"amount": "abc"}, {"period": "yearly"},
        {"timezone": "Mars/Olympus"}, {"thresholds": []}, {"thresholds": [0]},
        {"action": "refuse"}, {"scope": {"tag": "bad key"}}, {"surprise": 1},
    ])
    def test_invalid_budgets_are_400(self, api: Api, fields: dict[str, Any]) -> None:
        """Bad amounts, periods, zones, thresholds, actions and tags are refused."""
        t = api.tenant()
        response = api.call("POST", "/api/budgets", t.token,
                            {"project_id": t.project_id, "amount": "10", **fields})
        assert response.status_code == 400, response.get_json()


class TestRolesAndTenancy:
    """Admins write, members and viewers read, other tenants see nothing."""

    def test_member_and_viewer_read_but_cannot_write(self, api: Api) -> None:
        """A member or viewer gets 403 on create/update/delete and 200 on reads."""
        t = api.tenant()
        b = budget(api, t)
        for role in ("member", "viewer"):
            other = api.signup()
            api.add_member(t.token, t.project_id, other, role)
            token = other["access_token"]
            assert api.call("POST", "/api/budgets", token,
                            {"project_id": t.project_id, "amount": "1"}).status_code == 403
            assert api.call("PATCH", f"/api/budgets/{b['id']}", token,
                            {"amount": "1"}).status_code == 403
            assert api.call("DELETE", f"/api/budgets/{b['id']}", token).status_code == 403
            assert api.data("GET", f"/api/budgets/{b['id']}", token)["id"] == b["id"]
            assert len(status(api, token, project=t.project_id)) == 1

    def test_admin_can_write(self, api: Api) -> None:
        """An admin creates and deletes budgets."""
        t = api.tenant()
        other = api.signup()
        api.add_member(t.token, t.project_id, other, "admin")
        b = budget(api, Tenant(other["access_token"], t.project, t.key))
        api.data("DELETE", f"/api/budgets/{b['id']}", other["access_token"])

    def test_other_tenants_get_404_everywhere(self, api: Api) -> None:
        """Another tenant's budget is 404 on every route, by id, project id and slug."""
        t, intruder = api.tenant(), api.tenant()
        b = budget(api, t)
        for method, path, body in (
                ("GET", f"/api/budgets/{b['id']}", None),
                ("PATCH", f"/api/budgets/{b['id']}", {"amount": "1"}),
                ("DELETE", f"/api/budgets/{b['id']}", None),
                ("GET", f"/api/budgets?project={t.project_id}", None),
                ("GET", f"/api/budgets/status?project={t.project_id}", None),
                ("GET", f"/api/budgets/status?project={t.project['slug']}", None),
                ("POST", "/api/budgets", {"project_id": t.project_id, "amount": "1"})):
            for token in (intruder.token, intruder.key):
                response = api.call(method, path, token, body)
                assert response.status_code == 404, (method, path, response.get_json())
        assert api.data("GET", "/api/budgets", intruder.token) == []
        assert status(api, intruder.token) == []

    def test_read_key_reads_status_of_its_project_only(self, api: Api) -> None:
        """An API key (what the SDK uses) reads its own project's status, by slug."""
        t = api.tenant()
        budget(api, t)
        rows = status(api, t.key, project=t.project["slug"])
        assert len(rows) == 1 and rows[0]["scope"]["project"] == t.project["slug"]
        assert api.call("POST", "/api/budgets", t.key,
                        {"project_id": t.project_id, "amount": "1"}).status_code == 403

    def test_ingest_only_key_reads_status_for_the_sdk_guard(self, api: Api) -> None:
        """The application's ingest-only key can read its project's budget status (the SDK
        guard needs it) and nothing else of the budgets API."""
        t = api.tenant()
        budget(api, t)
        ingest_key = api.key(t.token, t.project_id, scopes=("ingest",))
        rows = status(api, ingest_key, project=t.project["slug"])
        assert len(rows) == 1
        assert api.call("GET", "/api/budgets", ingest_key).status_code == 403


class TestStatus:
    """Spent, remaining, percent, forecast and the period, exact to the nano-dollar."""

    def test_spend_is_exact_from_rollups(self, api: Api) -> None:
        """Two gpt-4o calls (1000 in / 100 out) cost exactly $0.007 in a UTC monthly budget."""
        t = api.tenant()
        b = budget(api, t, amount="1", action="block")
        track(api, t, [make_event(timestamp=now_iso()) for _ in range(2)])
        (row,) = status(api, t.token, project=t.project_id)
        assert row["id"] == b["id"] and row["source"] == "rollups"
        assert (row["spent"], row["remaining"], row["percent"]) == ("0.007", "0.993", 0.7)
        assert row["action"] == "block" and row["as_of"]

    def test_events_outside_the_period_or_scope_do_not_count(self, api: Api) -> None:
        """Last month's events and other models are excluded from a model-scoped budget."""
        t = api.tenant()
        budget(api, t, amount="1", scope={"model": "gpt-4o"})
        old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        track(api, t, [make_event(timestamp=now_iso()), make_event(timestamp=old),
                       make_event(timestamp=now_iso(), model="gpt-4o-mini")])
        (row,) = status(api, t.token)
        assert row["spent"] == "0.0035"

    def test_job_user_and_tag_scopes_use_events(self, api: Api) -> None:
        """Job, user, tag-key and tag=value scopes each count only their calls."""
        t = api.tenant()
        for name, scope in (("job", {"job": "nightly"}), ("user", {"user": "ann"}),
                            ("tagkey", {"tag": "team"}), ("tagval", {"tag": "team=search"})):
            budget(api, t, name=name, scope=scope)
        track(api, t, [
            make_event(timestamp=now_iso(), job_id="nightly", tags={"team": "search"}),
            make_event(timestamp=now_iso(), user_id="ann", tags={"team": "ads"}),
            make_event(timestamp=now_iso())])
        rows = {r["name"]: r for r in status(api, t.token)}
        assert {r["source"] for r in rows.values()} == {"events"}
        assert rows["job"]["spent"] == rows["user"]["spent"] == "0.0035"
        assert rows["tagkey"]["spent"] == "0.007" and rows["tagval"]["spent"] == "0.0035"

    @pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata",
                                    "Asia/Kathmandu", "Australia/Lord_Howe"])
    def test_period_start_and_resets_at_in_time_zones(self, api: Api, tz: str) -> None:
        """period_start/resets_at are local midnights in the zone, and spend is the same."""
        t = api.tenant()
        budget(api, t, period="daily", timezone=tz)
        track(api, t, [make_event(timestamp=now_iso())])
        (row,) = status(api, t.token)
        now = datetime.now(UTC)
        expected = period_bounds("daily", ZoneInfo(tz), now)
        start = datetime.fromisoformat(row["period_start"])
        resets = datetime.fromisoformat(row["resets_at"])
        assert start == expected.start and resets == expected.end
        assert start.utcoffset() == expected.start.astimezone(ZoneInfo(tz)).utcoffset()
        assert start.astimezone(ZoneInfo(tz)).time().isoformat() == "00:00:00"
        assert row["spent"] == "0.0035"
        whole = all(x.minute == 0 for x in (expected.start, expected.end))
        assert row["source"] == ("rollups" if whole else "events")

    def test_forecast_extends_the_run_rate(self, api: Api) -> None:
        """The forecast is spent x period length / elapsed, at least the spend."""
        t = api.tenant()
        budget(api, t, period="monthly")
        track(api, t, [make_event(timestamp=now_iso())])
        (row,) = status(api, t.token)
        start = datetime.fromisoformat(row["period_start"])
        end = datetime.fromisoformat(row["resets_at"])
        as_of = datetime.fromisoformat(row["as_of"])
        expected = Decimal("0.0035") * Decimal((end - start).total_seconds()) / Decimal(
            (as_of - start).total_seconds())
        assert abs(Decimal(row["forecast"]) - expected) <= expected * Decimal("0.001")
        assert Decimal(row["forecast"]) >= Decimal(row["spent"])

    def test_total_budget_never_resets(self, api: Api) -> None:
        """A total budget counts everything and has no period, reset or forecast."""
        t = api.tenant()
        budget(api, t, period="total")
        track(api, t, [make_event(), make_event(timestamp=now_iso())])
        (row,) = status(api, t.token)
        assert row["spent"] == "0.007"
        assert row["period_start"] is row["resets_at"] is row["forecast"] is None

    def test_the_server_never_refuses_an_event_over_budget(self, api: Api) -> None:
        """Events past a block budget are still accepted and counted."""
        t = api.tenant()
        budget(api, t, amount="0.001", action="block")
        track(api, t, [make_event(timestamp=now_iso()) for _ in range(3)])
        (row,) = status(api, t.token)
        assert row["spent"] == "0.0105" and row["remaining"] == "0" and row["percent"] == 1050.0

    def test_status_matches_the_sdk_guard_contract(self, api: Api) -> None:
        """The SDK's Budget.from_status reads every entry and its scope matches calls."""
        from llmlab._budgets import Budget

        t = api.tenant()
        budget(api, t, action="block", scope={"job": "nightly"})
        (row,) = status(api, t.key, project=t.project["slug"])
        parsed = Budget.from_status(row)
        assert parsed.action == "block" and parsed.amount == Decimal("10")
        assert parsed.resets_at is not None and parsed.resets_at.tzinfo is not None
        assert parsed.covers({"project": t.project["slug"], "job": "nightly"})
        assert not parsed.covers({"project": t.project["slug"], "job": "other"})


class TestStatusIsolation:
    """One budget that cannot be evaluated does not fail the status read of the others."""

    def test_vanished_time_zone_is_reported_fully_spent(self, app: Any, api: Api) -> None:
        """A budget whose zone left tzdata is reported with an error and as fully spent
        (the SDK guard then blocks under it); the other budget is read as usual."""
        from sqlalchemy import text

        t = api.tenant()
        broken = budget(api, t, name="broken", action="block", amount="0.000001",
                        thresholds=[100])
        fine = budget(api, t, name="fine")
        track(api, t, [make_event(timestamp=now_iso())])  # the broken one has an alert too
        with app.extensions["llmlab_db"][0].begin() as conn:
            conn.execute(text("UPDATE budgets SET timezone = 'Mars/Olympus' WHERE id = :i"),
                         {"i": broken["id"]})
        got = {b["id"]: b for b in status(api, t.token, project=t.project_id)}
        assert got[broken["id"]]["error"]["code"] == "budget_unavailable"
        assert got[broken["id"]]["spent"] == "0.000001"
        assert got[broken["id"]]["remaining"] == "0"
        assert got[fine["id"]]["error"] is None
        assert Decimal(got[fine["id"]]["spent"]) > 0
        alerts = api.data("GET", f"/api/alerts?project={t.project_id}", t.token)
        assert [a["budget_id"] for a in alerts] == [broken["id"]]

    def test_database_error_in_one_budget_spares_the_others(
            self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        """A failing SQL statement for one budget (which aborts a PostgreSQL transaction) is
        rolled back to its savepoint: the next budget is still read."""
        from sqlalchemy import text

        from llmlab_server.services import budgets as service

        t = api.tenant()
        broken = budget(api, t, name="broken")
        fine = budget(api, t, name="fine")
        real = service.spend

        def failing(session: Any, b: Any, period: Any) -> tuple[int, str]:
            if b.id == broken["id"]:
                session.execute(text("SELECT no_such_column FROM budgets"))
            return real(session, b, period)

        monkeypatch.setattr(service, "spend", failing)
        got = {b["id"]: b for b in status(api, t.token, project=t.project_id)}
        assert got[broken["id"]]["error"] is not None
        assert got[fine["id"]]["error"] is None and got[fine["id"]]["spent"] == "0"
