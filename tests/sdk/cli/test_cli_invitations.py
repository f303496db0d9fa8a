"""``llmlab invitations``, ``llmlab email`` and ``llmlab password`` against a real server,
with the tokens taken from the server's own (log) mailer."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from llmlab.client import Client
from llmlab.errors import APIError
from llmlab_server import create_app
from llmlab_server.config import TestConfig

from .helpers import no_traceback, run

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    """A real server and its app (whose mailer keeps an outbox)."""
    config = TestConfig()
    config.DATABASE_URL = f"sqlite:///{tmp_path_factory.mktemp('cli-inv') / 'inv.db'}"
    config.AUTO_MIGRATE = True
    app = create_app(config)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    httpd.server_close()
    app.extensions["llmlab_db"][0].dispose()


def _token(app: Flask, email: str, subject: str) -> str:
    """The token of the latest mail to ``email`` whose subject starts with ``subject``."""
    outbox = app.extensions["llmlab_mailer"].outbox
    mail = next(m for m in reversed(outbox) if m.to == email and m.subject.startswith(subject))
    return str(next(line.removeprefix("token: ") for line in mail.body.splitlines()
                    if line.startswith("token: ")))


def _signup(url: str) -> tuple[str, str]:
    """A new, unverified account: (email, access token)."""
    email = f"c{secrets.token_hex(4)}@example.com"
    with Client(None, url) as anonymous:
        return email, str(anonymous.signup(email, PASSWORD)["access_token"])


def _verified(url: str, app: Flask) -> tuple[str, str]:
    email, token = _signup(url)
    with Client(None, url) as anonymous:
        anonymous.request("POST", "/api/auth/verify-email",
                          json={"token": _token(app, email, "Verify")})
    return email, token


class TestEmail:
    """``llmlab email verify`` and ``resend``."""

    def test_resend_then_verify(self, server: tuple[str, Flask], llmlab_home: Path) -> None:
        """resend logs in and mails a new token; verify with it marks the address verified."""
        url, app = server
        email, token = _signup(url)
        before = len(app.extensions["llmlab_mailer"].outbox)
        result = run("--url", url, "email", "resend", "--email", email, "--password", PASSWORD)
        assert result.exit_code == 0, result.output
        assert "verification mail" in result.output
        assert len(app.extensions["llmlab_mailer"].outbox) == before + 1
        result = run("--url", url, "email", "verify", _token(app, email, "Verify"), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["data"]["email_verified"] is True
        with Client(token, url) as user:
            assert user.me()["user"]["email_verified"] is True

    def test_a_wrong_token_is_a_clear_error(self, server: tuple[str, Flask],
                                            llmlab_home: Path) -> None:
        """An invalid token exits 1 with the server's message, no traceback."""
        result = run("--url", server[0], "email", "verify", "not-a-token")
        no_traceback(result)
        assert "invalid" in result.output


class TestInvitations:
    """``llmlab invitations list | accept | decline``."""

    def test_list_accept_and_decline(self, server: tuple[str, Flask], llmlab_home: Path) -> None:
        """The invitee lists two invitations, accepts one (and sees that project) and declines
        the other (and does not)."""
        url, app = server
        owner_email, owner = _verified(url, app)
        invitee, invitee_token = _verified(url, app)
        with Client(owner, url) as client:
            joined = client.create_project("Joined", f"j-{secrets.token_hex(3)}")
            refused = client.create_project("Refused", f"r-{secrets.token_hex(3)}")
            for project in (joined, refused):
                client.request("POST", f"/api/projects/{project['id']}/members",
                               json={"email": invitee, "role": "viewer"})
        login = ("--email", invitee, "--password", PASSWORD)
        listed = run("--url", url, "invitations", "list", *login, "--json")
        assert listed.exit_code == 0, listed.output
        pending = {i["project"]["slug"]: i["id"] for i in json.loads(listed.stdout)}
        assert set(pending) == {joined["slug"], refused["slug"]}
        table = run("--url", url, "invitations", "list", *login)
        assert joined["slug"] in table.output and owner_email in table.output
        accepted = run("--url", url, "invitations", "accept", str(pending[joined["slug"]]),
                       *login)
        assert accepted.exit_code == 0, accepted.output
        assert f"You joined Joined ({joined['slug']}) as viewer" in accepted.output
        declined = run("--url", url, "invitations", "decline", str(pending[refused["slug"]]),
                       *login)
        assert declined.exit_code == 0, declined.output
        with Client(invitee_token, url) as user:
            assert {p["slug"] for p in user.projects()} == {joined["slug"]}
        empty = run("--url", url, "invitations", "list", *login)
        assert "No pending invitations" in empty.output

    def test_the_password_is_prompted_and_a_wrong_one_refused(
            self, server: tuple[str, Flask], llmlab_home: Path) -> None:
        """Without --password it is asked for; a wrong one exits 1 with no traceback."""
        email, _ = _verified(server[0], server[1])
        ok = run("--url", server[0], "invitations", "list", "--email", email,
                 input=f"{PASSWORD}\n")
        assert ok.exit_code == 0, ok.output
        assert PASSWORD not in ok.output  # a hidden prompt
        bad = run("--url", server[0], "invitations", "list", "--email", email,
                  input="wrong password here\n")
        no_traceback(bad)
        assert bad.exit_code == 1
        said = " ".join(bad.output.split())
        assert f"refused the login of {email}: Wrong email or password" in said
        assert "API key" not in said
        assert "wrong password here" not in bad.output

    def test_an_unknown_invitation_is_a_clear_error(self, server: tuple[str, Flask],
                                                    llmlab_home: Path) -> None:
        """Accepting or declining an id that is not the user's invitation: the server's 404
        message, exit 1, no traceback, no password."""
        email, _ = _verified(server[0], server[1])
        for verb in ("accept", "decline"):
            result = run("--url", server[0], "invitations", verb, "987654", "--email", email,
                         "--password", PASSWORD)
            no_traceback(result)
            assert result.exit_code == 1
            assert "not found" in result.output.lower() or "no such" in result.output.lower()
            assert PASSWORD not in result.output


class TestPasswordReset:
    """``llmlab password reset`` and ``confirm``."""

    def test_reset_then_confirm_changes_the_password(self, server: tuple[str, Flask],
                                                     llmlab_home: Path) -> None:
        """reset mails a token; confirm sets the new password: the old one stops working."""
        url, app = server
        email, _ = _verified(url, app)
        result = run("--url", url, "password", "reset", email)
        assert result.exit_code == 0, result.output
        assert "reset mail" in result.output
        new = "a brand new passphrase"
        result = run("--url", url, "password", "confirm", _token(app, email, "Reset"),
                     input=f"{new}\n{new}\n")
        assert result.exit_code == 0, result.output
        with Client(None, url) as anonymous:
            assert anonymous.login(email, new)["access_token"]
            with pytest.raises(APIError):
                anonymous.login(email, PASSWORD)

    def test_a_weak_new_password_is_refused_and_the_token_kept(
            self, server: tuple[str, Flask], llmlab_home: Path) -> None:
        """The server's password policy answers 400 weak_password: its reason is shown, the
        password is not, and the same token then works with a strong password."""
        url, app = server
        email, _ = _verified(url, app)
        assert run("--url", url, "password", "reset", email).exit_code == 0
        token = _token(app, email, "Reset")
        for weak_password in ("password", "1234567890"):  # too short; a common password
            weak = run("--url", url, "password", "confirm", token,
                       input=f"{weak_password}\n{weak_password}\n")
            no_traceback(weak)
            assert weak.exit_code == 1 and "password:" in weak.output
            assert weak_password not in weak.output.replace("password:", "")
        new = "another fine passphrase"
        result = run("--url", url, "password", "confirm", token, input=f"{new}\n{new}\n")
        assert result.exit_code == 0, result.output

    def test_unknown_address_gets_the_same_answer(self, server: tuple[str, Flask],
                                                  llmlab_home: Path) -> None:
        """reset says the same for an address with no account (no enumeration)."""
        result = run("--url", server[0], "password", "reset", "nobody@example.com", "--json")
        assert result.exit_code == 0, result.output
        assert "If nobody@example.com is a verified account" in json.loads(
            result.stdout)["message"]
