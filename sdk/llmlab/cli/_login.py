"""Logging the CLI in as a user by email and password: what ``llmlab init``, ``llmlab login``
and the account flows (``llmlab invitations``, ``llmlab email resend``) share."""

from __future__ import annotations

from typing import Any

import click

from llmlab.client import Client
from llmlab.errors import AuthenticationError

__all__ = ["log_in"]


def log_in(anonymous: Client, url: str, email: str, password: str) -> Any:
    """A session of the user (``access_token``, ``refresh_token``, ``user``).

    A refused login is a `click.ClickException` naming the email and the way back in
    (``llmlab password reset``), not the generic "rejected the API key": there is none here.
    """
    try:
        return anonymous.login(email, password)
    except AuthenticationError as exc:
        reason = str(exc).rstrip(". ")  # the server's sentence has its own full stop
        raise click.ClickException(
            f"The llmlab server at {url} refused the login of {email}: {reason}. Check "
            "--email and the password (forgotten: `llmlab password reset`).") from None
