"""Webhooks: CRUD, address screening, signing and delivery with retries off the request thread.

Every delivery is a JSON POST signed with the webhook's secret::

    X-LLMLab-Timestamp: 1795000000
    X-LLMLab-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-LLMLab-Delivery:  <uuid, the same on every retry>

The secret is never stored: it is ``HMAC(SECRET_KEY, salt)`` with a random per-webhook salt,
shown once at creation (a database dump alone cannot forge deliveries).

Server-side request forgery: a URL whose host resolves to a loopback, private, link-local,
multicast, reserved or unspecified address is refused when the webhook is created *and* at
every delivery (the name may have been re-pointed since: DNS rebinding), and the request is
sent to the very address that was checked, so a second resolution cannot swap it.
``WEBHOOK_ALLOW_PRIVATE`` (True, or a comma-separated list of CIDRs) lifts the screen.

Deliveries run on a small thread pool per app and retry with the delays in
``WEBHOOK_RETRY_DELAYS`` on a network error or a non-2xx answer; a 3xx is a failure (redirects
are not followed: they could point inside). Pending retries do not survive a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from flask import Flask, current_app
from sqlalchemy import select, update

from llmlab._env import parse_bool
from llmlab_server import db
from llmlab_server.errors import BadRequest, NotFound
from llmlab_server.models import Webhook, utcnow
from llmlab_server.schemas import WebhookCreate, WebhookCreated, WebhookOut, WebhookUpdate
from llmlab_server.security import Principal
from llmlab_server.services.access import project_for, project_ids_for

__all__ = ["UnsafeURL", "check_url", "create", "delete", "deliver", "get", "list_webhooks",
           "sign", "update_webhook", "verify", "wait_idle", "webhook_secret"]

logger = logging.getLogger("llmlab_server")

SIGNATURE_HEADER = "X-LLMLab-Signature"
TIMESTAMP_HEADER = "X-LLMLab-Timestamp"
DELIVERY_HEADER = "X-LLMLab-Delivery"
MAX_PER_PROJECT = 20
_EXTENSION = "llmlab_webhooks"
_LOCK = threading.Lock()


# -- signing -----------------------------------------------------------------------------------

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


# -- address screening -------------------------------------------------------------------------

class UnsafeURL(ValueError):
    """The URL is malformed, does not resolve, or resolves to an internal address."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed_networks(setting: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | bool:
    if setting is True or setting is False or setting is None:
        return bool(setting)
    if isinstance(setting, str):
        if not setting.strip():
            return False
        switch = parse_bool(setting)  # the spellings every on/off setting takes
        if switch is not None:
            return switch
        setting = [s for s in setting.split(",") if s.strip()]
    return [ipaddress.ip_network(str(s).strip(), strict=False) for s in setting]


def _internal(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: screen it too. (6to4,
        # 2002::/16, counts as global to Python 3.11 whatever IPv4 address it embeds.)
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and _internal(embedded):
            return True
        if ip.ipv4_mapped is not None:
            return False  # the mapped address is all there is to it
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


@dataclass(frozen=True, slots=True)
class Target:
    """A screened URL: where to connect (``address``) and what to say (host, path)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def check_url(url: str, allow_private: Any = False) -> Target:
    """Screen ``url``; raise `UnsafeURL` unless every address it resolves to is allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UnsafeURL("the URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("the URL's port is invalid") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeURL(f"the host {parts.hostname!r} does not resolve") from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise UnsafeURL(f"the host {parts.hostname!r} does not resolve")
    allowed = _allowed_networks(allow_private)
    for ip in addresses:
        if not _internal(ip) or allowed is True:
            continue
        if isinstance(allowed, list) and any(ip in net for net in allowed):
            continue
        raise UnsafeURL(f"the host {parts.hostname!r} resolves to the internal address {ip}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, str(addresses[0]))


def _refuse(exc: UnsafeURL) -> BadRequest:
    return BadRequest(f"This webhook URL is refused: {exc}.", code="webhook_url_refused",
                      param="url")


# -- CRUD --------------------------------------------------------------------------------------

def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, project_id=hook.project_id, name=hook.name, url=hook.url,
                      active=hook.active, secret_prefix=hook.secret_prefix,
                      created_at=hook.created_at, last_delivery_at=hook.last_delivery_at,
                      last_status=hook.last_status, last_error=hook.last_error)


def _load(principal: Principal, webhook_id: int, *, write: bool) -> Webhook:
    hook = db.session().get(Webhook, webhook_id)
    if hook is None:
        raise NotFound("No such webhook.", param="webhook_id")
    try:
        project_for(principal, hook.project_id, role="admin" if write else "viewer",
                    scope="admin" if write else "read")
    except NotFound:
        raise NotFound("No such webhook.", param="webhook_id") from None
    return hook


def create(principal: Principal, body: WebhookCreate) -> WebhookCreated:
    """Create a webhook (admin or owner); the secret is in this answer only."""
    project = project_for(principal, body.project_id, role="admin", scope="admin")
    try:
        check_url(body.url, current_app.config.get("WEBHOOK_ALLOW_PRIVATE", False))
    except UnsafeURL as exc:
        raise _refuse(exc) from None
    session = db.session()
    count = len(session.scalars(select(Webhook.id).where(Webhook.project_id == project.id)).all())
    if count >= MAX_PER_PROJECT:
        raise BadRequest(f"A project has at most {MAX_PER_PROJECT} webhooks.",
                         code="too_many_webhooks")
    salt = secrets.token_urlsafe(24)
    secret = webhook_secret(current_app.config["SECRET_KEY"], salt)
    hook = Webhook(project_id=project.id, name=body.name, url=body.url, secret_salt=salt,
                   secret_prefix=secret[:12], active=True,
                   created_by=principal.user.id if principal.user else None)
    session.add(hook)
    session.commit()
    return WebhookCreated(**_out(hook).model_dump(), secret=secret)


def list_webhooks(principal: Principal, project_id: int | None) -> list[WebhookOut]:
    """Webhooks of the visible projects (or of one)."""
    ids = project_ids_for(principal, project_id)
    hooks = db.session().scalars(select(Webhook).where(Webhook.project_id.in_(ids))
                                 .order_by(Webhook.id))
    return [_out(h) for h in hooks]


def get(principal: Principal, webhook_id: int) -> WebhookOut:
    """One webhook (without its secret)."""
    return _out(_load(principal, webhook_id, write=False))


def update_webhook(principal: Principal, webhook_id: int, body: WebhookUpdate) -> WebhookOut:
    """Change a webhook's URL, name or active flag (admin or owner)."""
    hook = _load(principal, webhook_id, write=True)
    if body.url is not None:
        try:
            check_url(body.url, current_app.config.get("WEBHOOK_ALLOW_PRIVATE", False))
        except UnsafeURL as exc:
            raise _refuse(exc) from None
        hook.url = body.url
    if body.name is not None:
        hook.name = body.name
    if body.active is not None:
        hook.active = body.active
    db.session().commit()
    return _out(hook)


def delete(principal: Principal, webhook_id: int) -> None:
    """Delete a webhook (admin or owner)."""
    hook = _load(principal, webhook_id, write=True)
    session = db.session()
    session.delete(hook)
    session.commit()


def send_test(principal: Principal, webhook_id: int) -> None:
    """Queue a signed ``ping`` delivery to a webhook (admin or owner)."""
    hook = _load(principal, webhook_id, write=True)
    deliver(current_app._get_current_object(), [hook.id],  # type: ignore[attr-defined]
            {"type": "ping", "webhook_id": hook.id, "project_id": hook.project_id})


# -- delivery ----------------------------------------------------------------------------------

class _Dispatcher:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llmlab-webhook")
        self.futures: set[Future[None]] = set()
        self.lock = threading.Lock()

    def submit(self, fn: Any, *args: Any) -> None:
        future = self.pool.submit(fn, *args)
        with self.lock:
            self.futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self.lock:
            self.futures.discard(future)


def _dispatcher(app: Flask) -> _Dispatcher:
    with _LOCK:
        found: _Dispatcher | None = app.extensions.get(_EXTENSION)
        if found is None:
            found = app.extensions[_EXTENSION] = _Dispatcher()
        return found


def wait_idle(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until every queued delivery of ``app`` has finished (tests, shutdown)."""
    dispatcher = _dispatcher(app)
    with dispatcher.lock:
        pending = list(dispatcher.futures)
    if not pending:
        return True
    _done, not_done = wait_futures(pending, timeout=timeout)
    return not not_done


def deliver(app: Flask, webhook_ids: Iterable[int], payload: dict[str, Any]) -> None:
    """Queue ``payload`` for each webhook; returns at once (delivery is on the pool)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    delivery = str(uuid.uuid4())
    for webhook_id in webhook_ids:
        _dispatcher(app).submit(_deliver, app, webhook_id, body, delivery)


def _post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    # Connect to the screened address itself; Host/SNI/certificate use the URL's name.
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    if ":" in target.host:
        host_header = f"[{target.host}]" if target.port in (80, 443) else (
            f"[{target.host}]:{target.port}")
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(target.address, target.port,
                                           server_hostname=target.host,
                                           assert_hostname=target.host, cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port)
    try:
        response = pool.urlopen("POST", target.path, body=body,
                                headers={**headers, "Host": host_header}, redirect=False,
                                retries=False, timeout=urllib3.Timeout(total=timeout),
                                assert_same_host=False)
        return int(response.status)
    finally:
        pool.close()


def _record(app: Flask, webhook_id: int, outcome: str, error: str | None) -> None:
    factory = app.extensions["llmlab_db"][1]
    with factory() as session:
        session.execute(update(Webhook).where(Webhook.id == webhook_id).values(
            last_delivery_at=utcnow(), last_status=outcome,
            last_error=None if error is None else error[:500]))
        session.commit()


def _deliver(app: Flask, webhook_id: int, body: bytes, delivery: str) -> None:
    try:
        factory = app.extensions["llmlab_db"][1]
        with factory() as session:
            hook = session.get(Webhook, webhook_id)
            if hook is None or not hook.active:
                return
            url, salt = hook.url, hook.secret_salt
        secret = webhook_secret(app.config["SECRET_KEY"], salt)
        delays: Sequence[float] = app.config.get("WEBHOOK_RETRY_DELAYS", (1, 4, 16, 60, 300))
        timeout = float(app.config.get("WEBHOOK_TIMEOUT", 5.0))
        error = "not attempted"
        for attempt, delay in enumerate([0.0, *delays]):
            if delay:
                time.sleep(delay)
            try:
                target = check_url(url, app.config.get("WEBHOOK_ALLOW_PRIVATE", False))
            except UnsafeURL as exc:  # re-pointed since it was created: do not retry
                logger.warning("webhook %s refused at send time: %s", webhook_id, exc)
                _record(app, webhook_id, "refused", str(exc))
                return
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": "llmlab-webhooks",
                       TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body),
                       DELIVERY_HEADER: delivery, "X-LLMLab-Attempt": str(attempt + 1)}
            try:
                code = _post(target, body, headers, timeout)
            except Exception as exc:  # network errors of any kind: retry
                error = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= code < 300:
                _record(app, webhook_id, "delivered", None)
                return
            error = f"HTTP {code}"
        logger.warning("webhook %s failed after %d attempts: %s", webhook_id,
                       len(delays) + 1, error)
        _record(app, webhook_id, "failed", error)
    except Exception:  # a delivery thread must never die silently
        logger.exception("webhook %s delivery crashed", webhook_id)


def project_webhooks(session: Any, project_id: int) -> list[int]:
    """Ids of the project's active webhooks."""
    return list(session.scalars(select(Webhook.id).where(
        Webhook.project_id == project_id, Webhook.active.is_(True))))
