"""Webhook signatures: each delivery is a JSON POST signed with its webhook's secret::

    X-LLMLab-Timestamp: 1795000000
    X-LLMLab-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-LLMLab-Delivery:  <uuid, the same on every retry: dedup on it>
    X-LLMLab-Attempt:   <1, 2, ...: which try this is>

The secret is never stored: it is ``HMAC(SECRET_KEY, salt)`` with a random per-webhook salt,
shown once at creation (a database dump alone cannot forge deliveries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

__all__ = ["ATTEMPT_HEADER", "DELIVERY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign",
           "verify", "webhook_secret"]

SIGNATURE_HEADER = "X-LLMLab-Signature"
TIMESTAMP_HEADER = "X-LLMLab-Timestamp"
DELIVERY_HEADER = "X-LLMLab-Delivery"
ATTEMPT_HEADER = "X-LLMLab-Attempt"


def webhook_secret(server_secret: str, salt: str) -> str:
    """The signing secret of the webhook with ``salt`` (``whsec_…``)."""
    digest = hmac.new(server_secret.encode(), f"llmlab-webhook:{salt}".encode(),
                      hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-LLMLab-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           tolerance: float = 300.0, now: float | None = None) -> bool:
    """True when ``signature`` is ``body``'s and ``timestamp`` is within ``tolerance`` seconds.

    What a receiver does (the timestamp check stops replays of an old delivery)::

        ok = verify(secret, request.headers["X-LLMLab-Timestamp"], request.get_data(),
                    request.headers["X-LLMLab-Signature"])
    """
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)
