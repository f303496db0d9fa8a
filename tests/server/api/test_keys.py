"""/api/keys: create (shown once), list (prefix only), revoke, scopes, last_used_at."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from llmlab_server import db
from llmlab_server.models import ApiKey

from ..helpers import Api, make_event


class TestKeys:
    """API key lifecycle."""

    def test_key_is_shown_once_and_stored_as_hmac(self, api: Api, app: Flask) -> None:
        """The secret is in the create response only; the database holds an HMAC, not the key."""
        t = api.tenant()
        created = api.data("POST", "/api/keys", t.token, {
            "project_id": t.project_id, "name": "ci", "scopes": ["read"]}, status=201)
        assert created["key"].startswith("llm_") and created["prefix"] == created["key"][:12]
        listed = api.data("GET", "/api/keys", t.token)
        assert all("key" not in k for k in listed)
        assert {k["prefix"] for k in listed} >= {created["prefix"]}
        with app.app_context():
            hashes = list(db.session().scalars(select(ApiKey.key_hash)))
        assert created["key"] not in hashes and all(len(h) == 64 for h in hashes)

    def test_revoked_key_stops_working(self, api: Api) -> None:
        """After revocation a key is a 401 at once; revoking twice is harmless."""
        t = api.tenant()
        key_id = api.data("GET", "/api/keys", t.token)[0]["id"]
        revoked = api.data("DELETE", f"/api/keys/{key_id}", t.token)
        assert revoked["revoked_at"] is not None
        response = api.track(t.key, [make_event()])
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "invalid_api_key"
        assert api.call("DELETE", f"/api/keys/{key_id}", t.token).status_code == 200

    def test_last_used_at_is_recorded(self, api: Api) -> None:
        """Using a key sets its last_used_at."""
        t = api.tenant()
        assert api.data("GET", "/api/keys", t.token)[0]["last_used_at"] is None
        api.track(t.key, [make_event()])
        assert api.data("GET", "/api/keys", t.token)[0]["last_used_at"] is not None

    def test_read_key_reads_but_cannot_manage_keys(self, api: Api) -> None:
        """A read-scoped key reads summaries but creating keys needs the admin scope (403)."""
        t = api.tenant()
        reader = api.key(t.token, t.project_id, scopes=("read",))
        assert api.call("GET", "/api/costs/summary", reader).status_code == 200
        response = api.call("POST", "/api/keys", reader, {"project_id": t.project_id})
        assert response.status_code == 403

    def test_admin_key_manages_its_projects_keys(self, api: Api) -> None:
        """An admin-scoped key lists and creates keys of its own project."""
        t = api.tenant()
        admin = api.key(t.token, t.project_id, scopes=("admin",))
        created = api.data("POST", "/api/keys", admin, {"project_id": t.project_id},
                           status=201)
        assert created["scopes"] == ["ingest"]
        assert len(api.data("GET", "/api/keys", admin)) == 3

    def test_ingest_key_cannot_read(self, api: Api) -> None:
        """An ingest-only key gets 403 on reads."""
        t = api.tenant()
        writer = api.key(t.token, t.project_id, scopes=("ingest",))
        assert api.call("GET", "/api/costs/summary", writer).status_code == 403
        assert api.call("GET", "/api/events", writer).status_code == 403

    def test_unknown_key_id_is_404(self, api: Api) -> None:
        """Revoking a key id that does not exist is a 404."""
        t = api.tenant()
        assert api.call("DELETE", "/api/keys/999999", t.token).status_code == 404

    def test_members_see_no_keys(self, api: Api) -> None:
        """Listing keys shows only projects the caller administers."""
        t = api.tenant()
        member = api.signup()
        api.add_member(t.token, t.project_id, member, "member")
        assert api.data("GET", "/api/keys", member["access_token"]) == []
        response = api.call("GET", f"/api/keys?project={t.project_id}", member["access_token"])
        assert response.status_code == 403
