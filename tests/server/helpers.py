"""Helpers of the server suite: an API client wrapper, tenants and events."""

from __future__ import annotations

import gzip
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from llmlab_server.models import Project
from webhook_receiver import Receiver as Receiver  # one receiver for the server and e2e tests

__all__ = ["Api", "Tenant", "from_address", "make_event", "make_project", "utc"]


def make_event(**fields: Any) -> dict[str, Any]:
    """A valid wire event (gpt-4o, 1000 in / 100 out) with ``fields`` overriding."""
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()), "timestamp": "2026-11-02T10:15:00Z", "provider": "openai",
        "model": "gpt-4o", "usage": {"input_tokens": 1000, "output_tokens": 100},
        "latency_ms": 100.0, "status": "ok"}
    event.update(fields)
    return event


def make_project(session: Session, slug: str) -> Project:
    """A new project named and slugged ``slug``, committed in ``session``."""
    project = Project(name=slug, slug=slug)
    session.add(project)
    session.commit()
    return project


def from_address(address: str) -> dict[str, Any]:
    """Request options that make the test client call from the client address ``address``."""
    return {"environ_base": {"REMOTE_ADDR": address}}


class Api:
    """A test client speaking the API: bearer auth, JSON, envelope unwrapping."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def call(self, method: str, path: str, token: str | None = None, json_body: Any = None,
             **kwargs: Any) -> TestResponse:
        """One request; ``token`` becomes a bearer header."""
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, json=json_body, **kwargs)

    def data(self, method: str, path: str, token: str | None = None, json_body: Any = None,
             status: int = 200, **kwargs: Any) -> Any:
        """``data`` of a successful response, asserting its status."""
        response = self.call(method, path, token, json_body, **kwargs)
        assert response.status_code == status, (response.status_code, response.get_json())
        body = response.get_json()
        assert body["success"] is True and body["error"] is None
        return body["data"]

    def signup(self, email: str | None = None, password: str = "correct horse battery",
               verified: bool = True) -> dict[str, Any]:
        """A new user's session (user, access_token, refresh_token); unless ``verified`` is
        False the email is verified with the token signup mailed."""
        email = email or f"u{secrets.token_hex(4)}@example.com"
        session: dict[str, Any] = self.data("POST", "/api/auth/signup", json_body={
            "email": email, "password": password}, status=201)
        if verified:
            self.data("POST", "/api/auth/verify-email",
                      json_body={"token": self.mailed_token(email, "Verify")})
        return session

    def mailed_token(self, email: str, subject: str) -> str:
        """The token of the latest mail to ``email`` whose subject starts with ``subject``
        (from the log mailer's outbox)."""
        outbox = self.client.application.extensions["llmlab_mailer"].outbox
        mail = next(m for m in reversed(outbox)
                    if m.to == email.lower() and m.subject.startswith(subject))
        return str(next(line.removeprefix("token: ") for line in mail.body.splitlines()
                        if line.startswith("token: ")))

    def user(self) -> str:
        """A new user's access token."""
        return str(self.signup()["access_token"])

    def project(self, token: str, name: str = "Support bot", slug: str | None = None
                ) -> dict[str, Any]:
        """A new project owned by ``token``'s user."""
        body: dict[str, Any] = {"name": name}
        if slug:
            body["slug"] = slug
        return self.data("POST", "/api/projects", token, body, status=201)

    def add_member(self, token: str, project_id: int, member: dict[str, Any],
                   role: str = "member") -> dict[str, Any]:
        """Invite ``member`` (a `signup` session) to the project as ``role`` with ``token``,
        and accept as them: members join only by accepting. Returns the joined project."""
        email = member["user"]["email"]
        self.data("POST", f"/api/projects/{project_id}/members", token,
                  {"email": email, "role": role}, status=202)
        invitation = next(i for i in self.data("GET", "/api/invitations", member["access_token"])
                          if i["project"]["id"] == project_id)
        return dict(self.data("POST", f"/api/invitations/{invitation['id']}/accept",
                              member["access_token"]))

    def key(self, token: str, project_id: int, scopes: tuple[str, ...] = ("ingest", "read")
            ) -> str:
        """A new API key's secret."""
        return str(self.data("POST", "/api/keys", token, {
            "project_id": project_id, "name": "test", "scopes": list(scopes)}, status=201)["key"])

    def track(self, key: str, events: list[dict[str, Any]] | dict[str, Any],
              gzip_body: bool = False, **kwargs: Any) -> TestResponse:
        """POST events (a list becomes a batch) to /api/events/track."""
        body = {"events": events} if isinstance(events, list) else events
        raw = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if gzip_body:
            raw = gzip.compress(raw)
            headers["Content-Encoding"] = "gzip"
        headers.update(kwargs.pop("headers", {}))
        return self.client.post("/api/events/track", data=raw, headers=headers, **kwargs)

    def tenant(self) -> Tenant:
        """A user with a project and an ingest+read key."""
        token = self.user()
        project = self.project(token)
        return Tenant(token, project, self.key(token, project["id"]))


class Tenant:
    """One user's world: token, project and an API key."""

    def __init__(self, token: str, project: dict[str, Any], key: str) -> None:
        self.token = token
        self.project = project
        self.key = key

    @property
    def project_id(self) -> int:
        """The project's id."""
        return int(self.project["id"])


def utc(*args: int) -> datetime:
    """``datetime(*args, tzinfo=UTC)``."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
