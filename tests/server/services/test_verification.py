"""services/verification.py and mail.py: email verification, password reset, the mailers."""

from __future__ import annotations

import logging
import socket

import pytest
from flask import Flask

from llmlab_server.mail import LogMailer, Mail, SmtpMailer, mailer

from ..helpers import Api, from_address


def _outbox(api: Api, email: str) -> list[Mail]:
    """Mails the log mailer kept for ``email``."""
    box = api.client.application.extensions["llmlab_mailer"].outbox
    return [m for m in box if m.to == email]


class TestVerification:
    """Signup mails a token; redeeming it verifies the address."""

    def test_signup_mails_a_token_that_verifies(self, api: Api) -> None:
        """A new user is unverified until they send back the mailed token."""
        session = api.signup("ver@example.com", verified=False)
        assert session["user"]["email_verified"] is False
        token = api.mailed_token("ver@example.com", "Verify")
        user = api.data("POST", "/api/auth/verify-email", json_body={"token": token})
        assert user["email_verified"] is True
        me = api.data("GET", "/api/auth/me", session["access_token"])
        assert me["user"]["email_verified"] is True

    def test_bad_tokens_are_refused_and_counted(self, api: Api) -> None:
        """A forged, wrong-purpose or garbage token is a 400 and costs the address."""
        api.signup("reset-me@example.com")
        api.data("POST", "/api/auth/password-reset", json_body={"email": "reset-me@example.com"},
                 status=202)
        wrong_purpose = api.mailed_token("reset-me@example.com", "Reset")
        for token in ("garbage", wrong_purpose):
            response = api.call("POST", "/api/auth/verify-email", json_body={"token": token})
            assert response.status_code == 400
            assert response.get_json()["error"]["code"] == "invalid_verification_token"
        for n in range(30):
            api.call("POST", "/api/auth/verify-email", json_body={"token": f"x{n}"},
                     **from_address("10.7.0.1"))
        assert api.call("POST", "/api/auth/verify-email", json_body={"token": "y"},
                        **from_address("10.7.0.1")).status_code == 429

    def test_invitations_need_a_verified_address(self, api: Api) -> None:
        """Someone who signed up with an address they cannot read sees and answers no
        invitation (403 email_unverified) until they verify it."""
        owner = api.tenant()
        squatter = api.signup("ceo@example.com", verified=False)
        api.data("POST", f"/api/projects/{owner.project_id}/members", owner.token,
                 {"email": "ceo@example.com", "role": "owner"}, status=202)
        for method, path in (("GET", "/api/invitations"), ("POST", "/api/invitations/1/accept"),
                             ("POST", "/api/invitations/1/decline")):
            response = api.call(method, path, squatter["access_token"])
            assert response.status_code == 403, path
            assert response.get_json()["error"]["code"] == "email_unverified"
        api.data("POST", "/api/auth/verify-email",
                 json_body={"token": api.mailed_token("ceo@example.com", "Verify")})
        assert len(api.data("GET", "/api/invitations", squatter["access_token"])) == 1

    def test_invitation_mail_goes_out_for_any_email(self, api: Api) -> None:
        """Registered or not, the invited address gets the same mail."""
        owner, known = api.tenant(), api.signup()
        for email in (known["user"]["email"], "stranger@example.com"):
            api.data("POST", f"/api/projects/{owner.project_id}/members", owner.token,
                     {"email": email}, status=202)
            [mail] = [m for m in _outbox(api, email) if m.subject.startswith("You are invited")]
            assert owner.project["name"] in mail.subject


class TestPasswordReset:
    """Reset by mailed token: verified accounts only, once, ending every session."""

    def test_reset_sets_the_password_and_ends_sessions(self, api: Api) -> None:
        """The token sets a new password; old sessions and the old password stop working;
        the token works once."""
        old = api.signup("forgot@example.com", password="the old password")
        api.data("POST", "/api/auth/password-reset", json_body={"email": "forgot@example.com"},
                 status=202)
        token = api.mailed_token("forgot@example.com", "Reset")
        api.data("POST", "/api/auth/password-reset/confirm",
                 json_body={"token": token, "password": "a brand new password"})
        assert api.call("GET", "/api/auth/me", old["access_token"]).status_code == 401
        assert api.call("POST", "/api/auth/refresh", json_body={
            "refresh_token": old["refresh_token"]}).status_code == 401
        assert api.call("POST", "/api/auth/login", json_body={
            "email": "forgot@example.com", "password": "the old password"}).status_code == 401
        api.data("POST", "/api/auth/login", json_body={
            "email": "forgot@example.com", "password": "a brand new password"})
        again = api.call("POST", "/api/auth/password-reset/confirm",
                         json_body={"token": token, "password": "yet another password"})
        assert again.status_code == 400
        assert again.get_json()["error"]["code"] == "invalid_reset_token"

    def test_same_answer_and_no_mail_for_unknown_or_unverified(self, api: Api) -> None:
        """Unknown and unverified emails get the same 202 and no mail is sent."""
        api.signup("unverified@example.com", verified=False)
        api.signup("verified@example.com")
        answers = [api.call("POST", "/api/auth/password-reset", json_body={"email": email})
                   for email in ("nobody@example.com", "unverified@example.com",
                                 "verified@example.com")]
        assert {r.status_code for r in answers} == {202}
        assert len({str(sorted(r.get_json().keys())) for r in answers}) == 1
        assert all(r.get_json()["data"] is None for r in answers)
        resets = [m.to for m in api.client.application.extensions["llmlab_mailer"].outbox
                  if m.subject.startswith("Reset")]
        assert resets == ["verified@example.com"]

    def test_weak_new_password_is_refused_and_the_token_still_works(self, api: Api) -> None:
        """The password policy applies to resets; a refused attempt leaves the token valid."""
        api.signup("weak@example.com")
        api.data("POST", "/api/auth/password-reset", json_body={"email": "weak@example.com"},
                 status=202)
        token = api.mailed_token("weak@example.com", "Reset")
        weak = api.call("POST", "/api/auth/password-reset/confirm",
                        json_body={"token": token, "password": "password12"})
        assert weak.status_code == 400 and weak.get_json()["error"]["code"] == "weak_password"
        api.data("POST", "/api/auth/password-reset/confirm",
                 json_body={"token": token, "password": "a sound new password"})

    def test_reset_mails_to_one_address_are_throttled(self, api: Api) -> None:
        """Ten reset requests for one email (from anywhere) are sent; the eleventh is a 429."""
        codes = [api.call("POST", "/api/auth/password-reset", json_body={
            "email": "flooded@example.com"}, **from_address(f"10.8.0.{n}")).status_code
            for n in range(11)]
        assert codes == [202] * 10 + [429]


class TestMailers:
    """The log mailer for development and tests, SMTP when configured."""

    def test_the_log_mailer_is_the_default(self, app: Flask, caplog: pytest.LogCaptureFixture
                                           ) -> None:
        """Without SMTP_URL mail goes to the llmlab_server.mail log and the outbox."""
        chosen = mailer(app)
        assert isinstance(chosen, LogMailer)
        with caplog.at_level(logging.INFO, logger="llmlab_server.mail"):
            chosen.send(Mail("a@example.com", "Hello", "body"))
        assert "a@example.com" in caplog.text and chosen.outbox[-1].subject == "Hello"

    @pytest.mark.parametrize("app_config", [{"SMTP_URL": "smtp+starttls://me:p%40ss@mail:2525"}])
    def test_smtp_url_selects_smtp(self, app: Flask) -> None:
        """SMTP_URL gives an SmtpMailer with its host, port and decoded credentials."""
        chosen = mailer(app)
        assert isinstance(chosen, SmtpMailer)
        assert (chosen.host, chosen.port, chosen.user, chosen.password) == (
            "mail", 2525, "me", "p@ss")

    def test_an_unreachable_smtp_server_is_logged_not_raised(
            self, caplog: pytest.LogCaptureFixture) -> None:
        """A delivery failure is logged; the request that sent the mail is unaffected."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        smtp = SmtpMailer(f"smtp://127.0.0.1:{port}", "llmlab <x@example.com>", timeout=2)
        with caplog.at_level(logging.ERROR, logger="llmlab_server.mail"):
            smtp._deliver(Mail("a@example.com", "Hi", "body"))
        assert "not sent" in caplog.text
