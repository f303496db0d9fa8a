"""Dismiss, snooze and restore recommendations per project, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..helpers import Api, Tenant, make_event
from .test_recommendations import ago, ingest


def failing(api: Api, t: Tenant, *models: str) -> None:
    """Billed failed calls of each of ``models``: one ``failed_calls`` recommendation each."""
    ingest(api, t, [make_event(model=m, status="error", error_type="APIError",
                               timestamp=ago(2 + i)) for m in models for i in range(20)])


def listed(api: Api, t: Tenant, token: str | None = None, **params: Any) -> dict[str, Any]:
    """The project's recommendation list."""
    query = "&".join(f"{k}={v}" for k, v in {"project": t.project_id, **params}.items())
    return dict(api.data("GET", f"/api/recommendations?{query}", token or t.token))


def ids(data: dict[str, Any]) -> set[str]:
    """The ids of a list's recommendations."""
    return {r["id"] for r in data["recommendations"]}


def failed_rec(data: dict[str, Any], model: str = "gpt-4o") -> dict[str, Any]:
    """The ``failed_calls`` recommendation of ``model`` in a list."""
    return next(r for r in data["recommendations"]
                if r["kind"] == "failed_calls" and r["evidence"]["model"] == model)


def post(api: Api, token: str, rec_id: str, action: str, body: dict[str, Any]) -> Any:
    """POST ``/api/recommendations/<id>/<action>``."""
    return api.call("POST", f"/api/recommendations/{rec_id}/{action}", token, body)


def in_days(days: float) -> str:
    """An ISO instant ``days`` from now."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


class TestStates:
    """The list hides dismissed and snoozed recommendations, for the whole team."""

    def test_ids_are_stable_across_windows(self, api: Api) -> None:
        """The same advice has the same id whatever the window (its numbers change)."""
        t = api.tenant()
        failing(api, t, "gpt-4o", "gpt-4.1")
        month, week = listed(api, t), listed(api, t, days=7)
        assert len(month["recommendations"]) >= 2 and month["hidden"] == 0
        assert len(ids(month)) == len(month["recommendations"])  # distinct
        # A week's spend is more per month: more advice clears the cent, the same keeps its id.
        assert {r["id"] for r in month["recommendations"]} <= {
            r["id"] for r in week["recommendations"]}
        assert all(r["state"] == "active" for r in month["recommendations"])

    def test_dismiss_hides_for_the_team_and_restore_shows(self, api: Api) -> None:
        """A member's dismissal hides it from every member; include_dismissed shows it."""
        t = api.tenant()
        member = api.signup()
        api.add_member(t.token, t.project_id, member, role="member")
        failing(api, t, "gpt-4o", "gpt-4.1")
        before = listed(api, t)
        target = failed_rec(before)
        others = ids(before) - {target["id"]}
        assert failed_rec(before, "gpt-4.1")["id"] in others
        response = post(api, member["access_token"], target["id"], "dismiss",
                        {"project_id": t.project_id})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["data"]["state"] == "dismissed"
        for token in (t.token, member["access_token"]):
            data = listed(api, t, token)
            assert ids(data) == others and data["hidden"] == 1
        every = listed(api, t, include_dismissed="true")["recommendations"]
        assert {(r["id"], r["state"]) for r in every} == {(target["id"], "dismissed")} | {
            (i, "active") for i in others}
        assert post(api, t.token, target["id"], "restore",
                    {"project_id": t.project_id}).get_json()["data"]["state"] == "active"
        assert ids(listed(api, t)) == ids(before)

    def test_snooze_hides_until_then(self, api: Api) -> None:
        """A snooze hides until ``until``; a second decision replaces the first."""
        t = api.tenant()
        failing(api, t, "gpt-4o")
        rec = failed_rec(listed(api, t))
        data = post(api, t.token, rec["id"], "snooze",
                    {"project_id": t.project_id, "until": in_days(7)}).get_json()["data"]
        assert data["state"] == "snoozed" and data["until"]
        assert rec["id"] not in ids(listed(api, t))
        shown = failed_rec(listed(api, t, include_dismissed="true"))
        assert shown["state"] == "snoozed" and shown["snoozed_until"].startswith(
            in_days(7)[:10])
        post(api, t.token, rec["id"], "dismiss", {"project_id": t.project_id})
        shown = failed_rec(listed(api, t, include_dismissed="true"))
        assert shown["state"] == "dismissed" and shown["snoozed_until"] is None

    def test_an_ended_snooze_shows_again(self, api: Api, app: Any) -> None:
        """A snooze whose time has passed no longer hides the recommendation."""
        from sqlalchemy import update

        from llmlab_server import db
        from llmlab_server.models import RecommendationState

        t = api.tenant()
        failing(api, t, "gpt-4o")
        rec = failed_rec(listed(api, t))
        post(api, t.token, rec["id"], "snooze", {"project_id": t.project_id,
                                                 "until": in_days(1)})
        assert listed(api, t)["hidden"] == 1
        with app.app_context():  # time passes: the snooze ended an hour ago
            session = db.session()
            session.execute(update(RecommendationState).values(
                snoozed_until=datetime.now(UTC) - timedelta(hours=1)))
            session.commit()
        data = listed(api, t)
        assert data["hidden"] == 0 and failed_rec(data)["state"] == "active"


class TestAccess:
    """Writes need the member role or an admin-scope key; other tenants get 404."""

    def test_roles_and_scopes(self, api: Api) -> None:
        """A viewer and a read key get 403; an admin-scope key may dismiss."""
        t = api.tenant()
        viewer = api.signup()
        api.add_member(t.token, t.project_id, viewer, role="viewer")
        failing(api, t, "gpt-4o")
        rec_id = failed_rec(listed(api, t))["id"]
        body = {"project_id": t.project_id}
        denied = post(api, viewer["access_token"], rec_id, "dismiss", body)
        assert denied.status_code == 403 and denied.get_json()["error"]["code"] == (
            "insufficient_role")
        assert post(api, t.key, rec_id, "dismiss", body).status_code == 403
        assert listed(api, t, viewer["access_token"])["hidden"] == 0
        admin_key = api.key(t.token, t.project_id, scopes=("admin",))
        assert post(api, admin_key, rec_id, "dismiss", body).status_code == 200
        assert listed(api, t, viewer["access_token"])["hidden"] == 1

    def test_other_tenant_cannot_see_or_change_states(self, api: Api) -> None:
        """Another tenant's project is 404 for every write, and their states never leak."""
        mine, theirs = api.tenant(), api.tenant()
        failing(api, mine, "gpt-4o")
        failing(api, theirs, "gpt-4o")
        mine_rec, their_rec = failed_rec(listed(api, mine)), failed_rec(listed(api, theirs))
        assert mine_rec["id"] != their_rec["id"]  # the project is part of the id
        their_key = api.key(theirs.token, theirs.project_id, scopes=("admin",))
        for action, extra in (("dismiss", {}), ("snooze", {"until": in_days(7)}),
                              ("restore", {})):
            for token in (mine.token, their_key):
                target = their_rec if token == mine.token else mine_rec
                project = theirs.project_id if token == mine.token else mine.project_id
                response = post(api, token, target["id"], action,
                                {"project_id": project, **extra})
                assert response.status_code == 404, (action, response.get_json())
                assert response.get_json()["error"]["code"] == "not_found"
        post(api, theirs.token, their_rec["id"], "dismiss", {"project_id": theirs.project_id})
        assert listed(api, mine)["hidden"] == 0 and mine_rec["id"] in ids(listed(api, mine))
        assert listed(api, theirs)["hidden"] == 1

    def test_bad_input_is_an_error_envelope(self, api: Api) -> None:
        """Malformed ids, bodies and times answer 4xx in the envelope, never 500."""
        t = api.tenant()
        rec_id = "0123456789abcdef"
        cases: list[tuple[str, str, Any, int]] = [
            ("not-an-id", "dismiss", {"project_id": t.project_id}, 404),
            ("0123456789ABCDEF", "dismiss", {"project_id": t.project_id}, 404),
            (rec_id, "dismiss", {}, 400),
            (rec_id, "dismiss", {"project_id": 0}, 400),
            (rec_id, "dismiss", {"project_id": 2**64}, 400),
            (rec_id, "dismiss", {"project_id": t.project_id, "x": 1}, 400),
            (rec_id, "dismiss", [1], 400),
            (rec_id, "snooze", {"project_id": t.project_id}, 400),
            (rec_id, "snooze", {"project_id": t.project_id, "until": "tomorrow"}, 400),
            (rec_id, "snooze", {"project_id": t.project_id, "until": "2030-01-01T00:00:00"},
             400),  # no time zone
            (rec_id, "snooze", {"project_id": t.project_id, "until": in_days(-1)}, 400),
            (rec_id, "snooze", {"project_id": t.project_id, "until": in_days(400)}, 400),
            (rec_id, "snooze", {"project_id": t.project_id,
                                "until": "0001-01-01T00:00:00+05:00"}, 400),
            (rec_id, "snooze", {"project_id": t.project_id,
                                "until": "9999-12-31T23:59:59-05:00"}, 400),
        ]
        for path_id, action, body, status in cases:
            response = post(api, t.token, path_id, action, body)
            assert response.status_code == status, (path_id, action, body, response.get_json())
            payload = response.get_json()
            assert payload["success"] is False and payload["error"]["message"]
        bad_query = api.call("GET", f"/api/recommendations?project={t.project_id}"
                                    "&include_dismissed=maybe", t.token)
        assert bad_query.status_code == 400
        no_json = api.client.post(f"/api/recommendations/{rec_id}/dismiss", data="x",
                                  headers={"Authorization": f"Bearer {t.token}"})
        assert no_json.status_code == 415
