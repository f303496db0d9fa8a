"""/api/projects and members: CRUD, roles, tenancy."""

from __future__ import annotations

import pytest

from ..helpers import Api, make_event


class TestProjects:
    """Project CRUD."""

    def test_create_list_get_update_delete(self, api: Api) -> None:
        """The owner creates, sees, renames and deletes a project."""
        token = api.user()
        project = api.project(token, "Support Bot", slug="support-bot")
        assert project["role"] == "owner" and project["slug"] == "support-bot"
        assert [p["id"] for p in api.data("GET", "/api/projects", token)] == [project["id"]]
        renamed = api.data("PATCH", f"/api/projects/{project['id']}", token, {"name": "New"})
        assert renamed["name"] == "New"
        api.data("DELETE", f"/api/projects/{project['id']}", token)
        assert api.call("GET", f"/api/projects/{project['id']}", token).status_code == 404

    def test_slug_is_generated_and_unique(self, api: Api) -> None:
        """Without a slug one is made from the name; a taken slug is a 409."""
        token = api.user()
        made = api.project(token, "My Fancy App!")
        assert made["slug"].startswith("my-fancy-app-")
        api.project(token, "A", slug="taken")
        response = api.call("POST", "/api/projects", token, {"name": "B", "slug": "taken"})
        assert response.status_code == 409

    def test_delete_removes_events_and_keys(self, api: Api) -> None:
        """Deleting a project deletes its events and its keys stop working."""
        t = api.tenant()
        api.track(t.key, [make_event()])
        api.data("DELETE", f"/api/projects/{t.project_id}", t.token)
        assert api.call("GET", "/api/auth/me", t.key).status_code == 401

    def test_api_key_cannot_create_projects(self, api: Api) -> None:
        """Creating projects needs a user login: an API key gets 403 user_required."""
        t = api.tenant()
        response = api.call("POST", "/api/projects", t.key, {"name": "x"})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "user_required"


class TestRoles:
    """What each role may do."""

    @pytest.fixture
    def team(self, api: Api) -> dict[str, object]:
        """A project with an owner and one user of each other role."""
        owner = api.signup()
        project = api.project(owner["access_token"])
        tokens = {"owner": owner["access_token"]}
        for role in ("admin", "member", "viewer"):
            session = api.signup()
            api.add_member(owner["access_token"], project["id"], session, role)
            tokens[role] = session["access_token"]
        return {"project": project, "tokens": tokens}

    def test_everyone_reads_only_admins_manage(self, api: Api, team: dict) -> None:
        """All roles read; rename and key creation need admin; deletion needs owner."""
        pid = team["project"]["id"]
        tokens = team["tokens"]
        for role, token in tokens.items():
            assert api.call("GET", f"/api/projects/{pid}", token).status_code == 200, role
            assert api.call("GET", "/api/costs/summary", token,
                            query_string={"project": pid}).status_code == 200, role
        expect = {"owner": 200, "admin": 200, "member": 403, "viewer": 403}
        for role, token in tokens.items():
            response = api.call("PATCH", f"/api/projects/{pid}", token, {"name": role})
            assert response.status_code == expect[role], role
            response = api.call("POST", "/api/keys", token, {"project_id": pid})
            assert response.status_code == {200: 201, 403: 403}[expect[role]], role
        for role in ("admin", "member", "viewer"):
            assert api.call("DELETE", f"/api/projects/{pid}", tokens[role]).status_code == 403

    def test_viewer_cannot_ingest_member_can(self, api: Api, team: dict) -> None:
        """A member may ingest with ?project=; a viewer gets 403."""
        pid = team["project"]["id"]
        ok = api.track(team["tokens"]["member"], [make_event()], query_string={"project": pid})
        assert ok.status_code == 207
        no = api.track(team["tokens"]["viewer"], [make_event()], query_string={"project": pid})
        assert no.status_code == 403

    def test_admin_cannot_grant_owner_or_demote_owner(self, api: Api, team: dict) -> None:
        """Only owners grant or change the owner role."""
        pid = team["project"]["id"]
        admin = team["tokens"]["admin"]
        members = api.data("GET", f"/api/projects/{pid}/members", admin)
        owner_id = next(m["user_id"] for m in members if m["role"] == "owner")
        viewer_id = next(m["user_id"] for m in members if m["role"] == "viewer")
        assert api.call("PATCH", f"/api/projects/{pid}/members/{viewer_id}", admin,
                        {"role": "owner"}).status_code == 403
        assert api.call("PATCH", f"/api/projects/{pid}/members/{owner_id}", admin,
                        {"role": "viewer"}).status_code == 403
        promoted = api.data("PATCH", f"/api/projects/{pid}/members/{viewer_id}", admin,
                            {"role": "member"})
        assert promoted["role"] == "member"

    def test_last_owner_cannot_leave_or_be_demoted(self, api: Api, team: dict) -> None:
        """A project keeps at least one owner: removing or demoting the last one is a 409."""
        pid = team["project"]["id"]
        owner = team["tokens"]["owner"]
        me = api.data("GET", "/api/auth/me", owner)["user"]["id"]
        assert api.call("DELETE", f"/api/projects/{pid}/members/{me}", owner).status_code == 409
        response = api.call("PATCH", f"/api/projects/{pid}/members/{me}", owner,
                            {"role": "admin"})
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "last_owner"

    def test_member_may_leave(self, api: Api, team: dict) -> None:
        """A member removes themselves and then cannot see the project (404)."""
        pid = team["project"]["id"]
        token = team["tokens"]["member"]
        me = api.data("GET", "/api/auth/me", token)["user"]["id"]
        api.data("DELETE", f"/api/projects/{pid}/members/{me}", token)
        assert api.call("GET", f"/api/projects/{pid}", token).status_code == 404

    def test_adding_an_existing_member_is_409(self, api: Api, team: dict) -> None:
        """Inviting someone who is a member already (the caller can list them) is a 409."""
        pid = team["project"]["id"]
        owner = team["tokens"]["owner"]
        members = api.data("GET", f"/api/projects/{pid}/members", owner)
        response = api.call("POST", f"/api/projects/{pid}/members", owner,
                            {"email": members[1]["email"]})
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "already_member"


class TestCrossTenant:
    """Naming another tenant's project, member, key or event is always a 404."""

    def test_every_route_answers_404_for_another_tenants_project(self, api: Api) -> None:
        """Each project-scoped route, called by an outsider (user or key), is a 404."""
        a, b = api.tenant(), api.tenant()
        api.track(a.key, [make_event()])
        pid = a.project_id
        a_user = api.data("GET", "/api/auth/me", a.token)["user"]["id"]
        a_key_id = api.data("GET", "/api/keys", a.token)[0]["id"]
        calls = [
            ("GET", f"/api/projects/{pid}", None), ("PATCH", f"/api/projects/{pid}", {"name": "x"}),
            ("DELETE", f"/api/projects/{pid}", None),
            ("GET", f"/api/projects/{pid}/members", None),
            ("POST", f"/api/projects/{pid}/members", {"email": "x@example.com"}),
            ("PATCH", f"/api/projects/{pid}/members/{a_user}", {"role": "viewer"}),
            ("DELETE", f"/api/projects/{pid}/members/{a_user}", None),
            ("GET", f"/api/keys?project={pid}", None),
            ("POST", "/api/keys", {"project_id": pid}),
            ("DELETE", f"/api/keys/{a_key_id}", None),
            ("GET", f"/api/events?project={pid}", None),
            ("GET", f"/api/costs/summary?project={pid}", None),
            ("GET", f"/api/costs/timeseries?project={pid}", None),
            ("GET", f"/api/costs/export?project={pid}", None),
        ]
        for method, path, body in calls:
            response = api.call(method, path, b.token, body)
            assert response.status_code == 404, (method, path, response.get_json())
            assert response.get_json()["error"]["code"] == "not_found"
        admin_key = api.key(b.token, b.project_id, scopes=("admin",))
        for method, path, body in calls:
            if "/members" in path or (path.startswith(f"/api/projects/{pid}") and method != "GET"):
                continue  # user-only routes: a key gets 403 user_required before any lookup
            response = api.call(method, path, admin_key, body)
            assert response.status_code == 404, (method, path, response.get_json())
        assert api.call("GET", f"/api/projects/{pid}", a.token).status_code == 200
        ingest = api.track(b.key, [make_event()], query_string={"project": pid})
        assert ingest.status_code == 404


class TestTimezone:
    """A project's IANA time zone: set on create and PATCH, validated, returned everywhere."""

    def test_default_set_on_create_and_patch(self, api: Api) -> None:
        """UTC unless given; create and PATCH set it; every project read returns it."""
        token = api.user()
        assert api.project(token)["timezone"] == "UTC"
        made = api.data("POST", "/api/projects", token,
                        {"name": "Paris", "timezone": "Europe/Paris"}, status=201)
        assert made["timezone"] == "Europe/Paris"
        pid = made["id"]
        moved = api.data("PATCH", f"/api/projects/{pid}", token, {"timezone": "Asia/Tokyo"})
        assert moved["timezone"] == "Asia/Tokyo" and moved["name"] == "Paris"
        renamed = api.data("PATCH", f"/api/projects/{pid}", token, {"name": "Tokyo"})
        assert renamed["timezone"] == "Asia/Tokyo"  # a rename keeps the zone
        assert api.data("GET", f"/api/projects/{pid}", token)["timezone"] == "Asia/Tokyo"
        listed = {p["id"]: p["timezone"] for p in api.data("GET", "/api/projects", token)}
        assert listed[pid] == "Asia/Tokyo"
        me = api.data("GET", "/api/auth/me", token)
        assert {p["id"]: p["timezone"] for p in me["projects"]}[pid] == "Asia/Tokyo"

    @pytest.mark.parametrize("zone", ["Mars/Olympus", "utc+2", "../../etc/passwd", "/etc/UTC",
                                      "Europe/", "localtime", " UTC", "x" * 65, "", 7, None])
    def test_bad_zone_is_400_naming_the_field(self, api: Api, zone: object) -> None:
        """An unknown, malformed or mistyped zone is a 400 envelope with param timezone, on
        create and on PATCH, and changes nothing."""
        token = api.user()
        project = api.project(token)
        for method, path in (("POST", "/api/projects"),
                             ("PATCH", f"/api/projects/{project['id']}")):
            if zone is None and method == "PATCH":
                continue  # null on PATCH means "leave it"
            response = api.call(method, path, token, {"name": "x", "timezone": zone})
            assert response.status_code == 400, (method, zone, response.get_json())
            error = response.get_json()["error"]
            assert error["type"] == "invalid_request_error" and error["param"] == "timezone"
        assert api.data("GET", f"/api/projects/{project['id']}", token)["timezone"] == "UTC"
        assert [p["name"] for p in api.data("GET", "/api/projects", token)] == [project["name"]]

    def test_only_admins_change_the_zone(self, api: Api) -> None:
        """Owner and admin may change the zone; member and viewer get 403; all read it."""
        owner = api.signup()
        project = api.project(owner["access_token"])
        pid = project["id"]
        tokens = {"owner": owner["access_token"]}
        for role in ("admin", "member", "viewer"):
            session = api.signup()
            api.add_member(owner["access_token"], pid, session, role)
            tokens[role] = session["access_token"]
        zones = {"owner": "Europe/Paris", "admin": "America/New_York",
                 "member": "Asia/Tokyo", "viewer": "Asia/Tokyo"}
        for role in ("owner", "admin", "member", "viewer"):
            response = api.call("PATCH", f"/api/projects/{pid}", tokens[role],
                                {"timezone": zones[role]})
            assert response.status_code == (200 if role in ("owner", "admin") else 403), role
        for token in tokens.values():
            assert api.data("GET", f"/api/projects/{pid}", token)["timezone"] == "America/New_York"
        key = api.key(owner["access_token"], pid, scopes=("admin",))
        response = api.call("PATCH", f"/api/projects/{pid}", key, {"timezone": "UTC"})
        assert response.status_code == 403  # a user-only route, even for an admin key
        assert api.data("GET", f"/api/projects/{pid}", key)["timezone"] == "America/New_York"

    def test_another_tenant_cannot_read_or_change_the_zone(self, api: Api) -> None:
        """An outsider's PATCH of the zone is a 404 and changes nothing."""
        a, b = api.tenant(), api.tenant()
        response = api.call("PATCH", f"/api/projects/{a.project_id}", b.token,
                            {"timezone": "Asia/Tokyo"})
        assert response.status_code == 404
        assert api.call("GET", f"/api/projects/{a.project_id}", b.token).status_code == 404
        assert api.data("GET", f"/api/projects/{a.project_id}", a.token)["timezone"] == "UTC"

    def test_the_zone_is_in_the_openapi_document(self, api: Api) -> None:
        """ProjectOut, ProjectCreate and ProjectUpdate document ``timezone``."""
        schemas = api.client.get("/api/openapi.json").get_json()["components"]["schemas"]
        for name in ("ProjectOut", "ProjectCreate", "ProjectUpdate"):
            assert "timezone" in schemas[name]["properties"], name
