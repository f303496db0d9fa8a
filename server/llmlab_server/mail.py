"""Outgoing mail behind one small interface: SMTP in production, the log elsewhere.

``LLMLAB_SMTP_URL`` picks `SmtpMailer` (``smtp://host:25``, ``smtp+starttls://user:pass@host:587``
or ``smtps://user:pass@host:465``); without it `LogMailer` writes each mail to the
``llmlab_server.mail`` log and keeps the latest in ``outbox`` (development and tests read the
links from there). SMTP is spoken on a background thread, so an answer takes as long whether a
mail was sent or not (a password reset must not tell whether the account exists).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from flask import Flask

__all__ = ["LogMailer", "Mail", "Mailer", "SmtpMailer", "mailer"]

logger = logging.getLogger("llmlab_server.mail")
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Mail:
    """One message."""

    to: str
    subject: str
    body: str


class Mailer(Protocol):
    """Something that delivers a `Mail` (and never raises into the request)."""

    def send(self, mail: Mail) -> None:
        """Deliver ``mail``, or log why it could not be."""


class LogMailer:
    """Logs every mail and keeps the last 100 in ``outbox``."""

    def __init__(self) -> None:
        self.outbox: deque[Mail] = deque(maxlen=100)

    def send(self, mail: Mail) -> None:
        """Log ``mail`` and keep it."""
        logger.info("mail to %s: %s\n%s", mail.to, mail.subject, mail.body)
        self.outbox.append(mail)


class SmtpMailer:
    """Sends through an SMTP server, one connection per mail, on a daemon thread."""

    def __init__(self, url: str, sender: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    def send(self, mail: Mail) -> None:
        """Queue ``mail`` for delivery and return at once."""
        threading.Thread(target=self._deliver, args=(mail,), daemon=True,
                         name="llmlab-mail").start()

    def _deliver(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
        message.set_content(mail.body)
        context = ssl.create_default_context()
        try:
            if self.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port,
                                                        timeout=self.timeout, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.scheme == "smtp+starttls":
                    client.starttls(context=context)
                if self.user is not None:
                    client.login(self.user, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            logger.error("mail to %s not sent: %r", mail.to, exc)


def mailer(app: Flask) -> Mailer:
    """The app's mailer, made on first use from ``SMTP_URL`` and ``MAIL_FROM``."""
    found: Mailer | None = app.extensions.get("llmlab_mailer")
    if found is None:
        with _LOCK:
            found = app.extensions.get("llmlab_mailer")
            if found is None:
                url = str(app.config.get("SMTP_URL") or "")
                found = (SmtpMailer(url, str(app.config["MAIL_FROM"])) if url
                         else LogMailer())
                app.extensions["llmlab_mailer"] = found
    return found
