"""``llmlab invitations``, ``llmlab email`` and ``llmlab password``: the account flows that
belong to a person, not to a key.

Invitations and a new verification mail need the *user* (an API key never joins projects), so
those commands log in with ``--email`` (default: the config's, written by ``llmlab init``) and
``--password`` (prompted). Verifying an email and resetting a password use the token the
server mailed, and need no login at all.
"""

from __future__ import annotations

from typing import Any

import click

from llmlab.cli._login import log_in
from llmlab.cli._options import BASE_URL, DEFAULT_URL, json_option, open_client, settings
from llmlab.cli._output import out_console, print_json, table
from llmlab.client import Client

__all__ = ["COMMANDS", "email", "invitations", "password"]

_EMAIL_HELP = "Your account's email [default: the config's, from `llmlab init`]."
_PASSWORD_HELP = ("Your password [default: prompted, unechoed]; given here it stays in the "
                  "shell's history and shows in `ps`.")


def _url() -> str:
    """The server's URL: --url, $LLMLAB_BASE_URL, the config, else the local default."""
    url = (settings().base_url or DEFAULT_URL).rstrip("/")
    click.get_current_context().meta[BASE_URL] = url
    return url


def _user(email: str | None, password: str | None) -> Client:
    """A client logged in as the user (asks for what is missing)."""
    url = _url()
    email = email or settings().email or click.prompt("Email")
    password = password or click.prompt("Password", hide_input=True)
    with open_client(None, url) as anonymous:
        session = log_in(anonymous, url, email, password)
    return open_client(session["access_token"], url)


def _say(text: str, as_json: bool, data: Any = None) -> None:
    if as_json:
        print_json({"ok": True, "message": text, **({"data": data} if data else {})})
    else:
        out_console().print(text, markup=False, soft_wrap=True)


def _login_options(f: Any) -> Any:
    f = click.option("--password", default=None, help=_PASSWORD_HELP)(f)
    return click.option("--email", default=None, help=_EMAIL_HELP)(f)


# -- invitations -------------------------------------------------------------------------------

@click.group("invitations")
def invitations() -> None:
    """Projects you are invited to: list them, accept or decline.

    Nothing of a project reaches you until you accept its invitation.
    """


@invitations.command("list")
@_login_options
@json_option
def list_invitations(email: str | None, password: str | None, as_json: bool) -> None:
    """Your pending invitations."""
    with _user(email, password) as user:
        pending = list(user.request("GET", "/api/invitations") or [])
    if as_json:
        print_json(pending)
        return
    if not pending:
        out_console().print("No pending invitations.")
        return
    out_console().print(table("Invitations", ["id", "project", "role", "invited by", "sent"], [
        (i["id"], f"{i['project']['name']} ({i['project']['slug']})", i["role"],
         i.get("invited_by") or "", str(i["created_at"])[:19]) for i in pending]))


def _answer(invitation_id: int, verb: str, email: str | None, password: str | None) -> Any:
    with _user(email, password) as user:
        return user.request("POST", f"/api/invitations/{invitation_id}/{verb}")


@invitations.command("accept")
@click.argument("invitation_id", type=click.IntRange(min=1), metavar="ID")
@_login_options
@json_option
def accept(invitation_id: int, email: str | None, password: str | None, as_json: bool) -> None:
    """Join the project of invitation ID (see `llmlab invitations list`)."""
    project = _answer(invitation_id, "accept", email, password)
    _say(f"You joined {project['name']} ({project['slug']}) as {project.get('role', 'member')}.",
         as_json, project)


@invitations.command("decline")
@click.argument("invitation_id", type=click.IntRange(min=1), metavar="ID")
@_login_options
@json_option
def decline(invitation_id: int, email: str | None, password: str | None, as_json: bool) -> None:
    """Refuse invitation ID; the project's admins may invite you again."""
    _answer(invitation_id, "decline", email, password)
    _say(f"Declined invitation {invitation_id}.", as_json)


# -- email verification ------------------------------------------------------------------------

@click.group("email")
def email() -> None:
    """Verify your email address (invitations and password resets need it)."""


@email.command("verify")
@click.argument("token")
@json_option
def verify(token: str, as_json: bool) -> None:
    """Verify your address with the TOKEN the verification mail carried."""
    with open_client(None, _url()) as anonymous:
        user = anonymous.request("POST", "/api/auth/verify-email", json={"token": token})
    _say(f"Verified {user['email']}.", as_json, user)


@email.command("resend")
@_login_options
@json_option
def resend(email: str | None, password: str | None, as_json: bool) -> None:
    """Mail yourself a new verification token."""
    with _user(email, password) as user:
        user.request("POST", "/api/auth/verify-email/resend")
    _say("A new verification mail is on its way; run `llmlab email verify TOKEN` with its "
         "token.", as_json)


# -- password reset ----------------------------------------------------------------------------

@click.group("password")
def password() -> None:
    """Reset a forgotten password through a mailed token."""


@password.command("reset")
@click.argument("address", metavar="EMAIL", required=False)
@json_option
def reset(address: str | None, as_json: bool) -> None:
    """Mail a reset token to EMAIL [default: the config's] if it is a verified account.

    The answer is the same for any address, so it cannot tell who has an account.
    """
    address = address or settings().email or click.prompt("Email")
    with open_client(None, _url()) as anonymous:
        anonymous.request("POST", "/api/auth/password-reset", json={"email": address})
    _say(f"If {address} is a verified account, a reset mail is on its way; run `llmlab "
         "password confirm TOKEN` with its token.", as_json)


@password.command("confirm")
@click.argument("token")
@click.option("--new-password", "new_password", default=None,
              help="The new password [default: prompted twice, unechoed]; given here it "
              "stays in the shell's history and shows in `ps`.")
@json_option
def confirm(token: str, new_password: str | None, as_json: bool) -> None:
    """Set a new password with the TOKEN the reset mail carried; every session ends."""
    new_password = new_password or click.prompt("New password", hide_input=True,
                                                confirmation_prompt=True)
    with open_client(None, _url()) as anonymous:
        anonymous.request("POST", "/api/auth/password-reset/confirm",
                          json={"token": token, "password": new_password})
    _say("Password changed; every session of the account has ended. Log in again with "
         "`llmlab login`.", as_json)


COMMANDS = (invitations, email, password)
