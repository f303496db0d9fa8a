"""Webhook delivery off the request thread: bound to the webhook row, fair between tenants.

**Bound to the row.** A delivery is queued for a `HookRef` — the webhook's id, project and
random secret salt as they were when the alert was queued — and each attempt reloads the row
and sends only if all three still match. An id alone is not enough: SQLite reuses the id of a
deleted row, and one tenant's queued alert (budget name, spend, project slug) once went to
another tenant's new webhook, signed with that tenant's secret.

**Fair.** Attempts run on a few worker threads per app (``WEBHOOK_WORKERS``, 8), each project
at most ``WEBHOOK_PER_PROJECT`` (2) at a time, projects served in turn; a retry waits in a
timer heap, not on a worker. So a tenant whose receiver never answers holds at most its two
workers, each for at most ``WEBHOOK_TIMEOUT`` seconds (connect within
``WEBHOOK_CONNECT_TIMEOUT``), and every other tenant's alerts still go out at once (before, four
pings to such a host held the whole shared pool through all their retries).

Retries follow ``WEBHOOK_RETRY_DELAYS`` on a network error or a non-2xx answer; a 3xx is a
failure (redirects are not followed: they could point inside). Pending retries do not survive
a restart.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import urllib3
from flask import Flask
from sqlalchemy import select, update

from llmlab_server.models import Webhook, utcnow
from llmlab_server.services.webhook_signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    webhook_secret,
)
from llmlab_server.services.webhook_urls import Target, UnsafeURL, check_url

__all__ = ["HookRef", "deliver", "project_webhooks", "wait_idle"]

logger = logging.getLogger("llmlab_server")

_EXTENSION = "llmlab_webhooks"
_LOCK = threading.Lock()
#: A worker with nothing to do for this long exits (a new one starts on demand).
_IDLE_EXIT = 30.0


@dataclass(frozen=True, slots=True)
class HookRef:
    """The webhook row a delivery is bound to: id, project and secret salt must all match."""

    id: int
    project_id: int
    salt: str


def project_webhooks(session: Any, project_id: int) -> list[HookRef]:
    """The project's active webhooks, as the rows they are now."""
    rows = session.execute(select(Webhook.id, Webhook.project_id, Webhook.secret_salt).where(
        Webhook.project_id == project_id, Webhook.active.is_(True)))
    return [HookRef(int(i), int(p), str(s)) for i, p, s in rows]


@dataclass(slots=True)
class _Job:
    hook: HookRef
    body: bytes
    delivery: str
    attempt: int = 0
    error: str = field(default="not attempted")


class _Dispatcher:
    """Per-project queues served in turn by a few workers, each project capped."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.workers = max(1, int(app.config.get("WEBHOOK_WORKERS", 8)))
        self.per_project = max(1, int(app.config.get("WEBHOOK_PER_PROJECT", 2)))
        self.cond = threading.Condition()
        self.ready: dict[int, deque[_Job]] = {}
        self.turns: deque[int] = deque()  # projects with ready jobs, in serving order
        self.running: dict[int, int] = {}
        self.delayed: list[tuple[float, int, _Job]] = []
        self.sequence = itertools.count()
        self.unfinished = 0
        self.threads = 0
        self.idle = 0

    def submit(self, job: _Job) -> None:
        with self.cond:
            self.unfinished += 1
            self._enqueue(job)
            if self.idle == 0 and self.threads < self.workers:
                self.threads += 1
                threading.Thread(target=self._work, name="llmlab-webhook", daemon=True).start()
            self.cond.notify()

    def _enqueue(self, job: _Job) -> None:
        project = job.hook.project_id
        queue = self.ready.get(project)
        if queue is None:
            queue = self.ready[project] = deque()
            self.turns.append(project)
        queue.append(job)

    def _take(self) -> _Job | None:
        """The next job whose project is under its cap (round robin); None if none is."""
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self._enqueue(heapq.heappop(self.delayed)[2])
        for _ in range(len(self.turns)):
            project = self.turns.popleft()
            if self.running.get(project, 0) >= self.per_project:
                self.turns.append(project)  # its share is in use: the next project's turn
                continue
            queue = self.ready[project]
            job = queue.popleft()
            if queue:
                self.turns.append(project)
            else:
                del self.ready[project]
            self.running[project] = self.running.get(project, 0) + 1
            return job
        return None

    def _next(self) -> _Job | None:
        with self.cond:
            idle_since = time.monotonic()
            while (job := self._take()) is None:
                wake = self.delayed[0][0] - time.monotonic() if self.delayed else _IDLE_EXIT
                if not self.ready and not self.delayed and (
                        time.monotonic() - idle_since >= _IDLE_EXIT):
                    self.threads -= 1
                    return None
                self.idle += 1
                self.cond.wait(max(wake, 0.001))
                self.idle -= 1
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            retry_in: float | None = None
            try:
                retry_in = _attempt(self.app, job)
            except Exception:  # a delivery thread must never die silently
                logger.exception("webhook %s delivery crashed", job.hook.id)
            with self.cond:
                project = job.hook.project_id
                self.running[project] -= 1
                if not self.running[project]:
                    del self.running[project]
                if retry_in is None:
                    self.unfinished -= 1
                else:
                    heapq.heappush(self.delayed, (time.monotonic() + retry_in,
                                                  next(self.sequence), job))
                self.cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.unfinished:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True


def _dispatcher(app: Flask) -> _Dispatcher:
    with _LOCK:
        found: _Dispatcher | None = app.extensions.get(_EXTENSION)
        if found is None:
            found = app.extensions[_EXTENSION] = _Dispatcher(app)
        return found


def wait_idle(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until every queued delivery of ``app`` (retries too) has finished (tests, shutdown)."""
    return _dispatcher(app).wait_idle(timeout)


def deliver(app: Flask, hooks: Iterable[HookRef], payload: dict[str, Any]) -> None:
    """Queue ``payload`` for each webhook; returns at once (delivery is on the workers)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    delivery = str(uuid.uuid4())
    dispatcher = _dispatcher(app)
    for hook in hooks:
        dispatcher.submit(_Job(hook, body, delivery))


def _post(target: Target, body: bytes, headers: dict[str, str], timeout: urllib3.Timeout
          ) -> int:
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
                                retries=False, timeout=timeout, assert_same_host=False)
        return int(response.status)
    finally:
        pool.close()


def _record(app: Flask, hook: HookRef, outcome: str, error: str | None) -> None:
    factory = app.extensions["llmlab_db"][1]
    with factory() as session:
        session.execute(update(Webhook).where(
            Webhook.id == hook.id, Webhook.secret_salt == hook.salt).values(
            last_delivery_at=utcnow(), last_status=outcome,
            last_error=None if error is None else error[:500]))
        session.commit()


def _current_url(app: Flask, hook: HookRef) -> str | None:
    """The URL of the row ``hook`` is bound to; None if that row is gone or inactive."""
    factory = app.extensions["llmlab_db"][1]
    with factory() as session:
        row = session.get(Webhook, hook.id)
        if (row is None or not row.active or row.project_id != hook.project_id
                or row.secret_salt != hook.salt):
            return None
        return str(row.url)


def _attempt(app: Flask, job: _Job) -> float | None:
    """One attempt of ``job``; the delay before the next one, or None when it is over."""
    hook = job.hook
    url = _current_url(app, hook)
    if url is None:  # deleted (its id may now be another tenant's), deactivated, re-keyed
        logger.info("webhook %s is gone: delivery %s dropped", hook.id, job.delivery)
        return None
    try:
        target = check_url(url, app.config.get("WEBHOOK_ALLOW_PRIVATE", False))
    except UnsafeURL as exc:  # re-pointed since it was created: do not retry
        logger.warning("webhook %s refused at send time: %s", hook.id, exc)
        _record(app, hook, "refused", str(exc))
        return None
    delays: Sequence[float] = app.config.get("WEBHOOK_RETRY_DELAYS", (1, 4, 16, 60, 300))
    total = float(app.config.get("WEBHOOK_TIMEOUT", 5.0))
    timeout = urllib3.Timeout(
        connect=min(total, float(app.config.get("WEBHOOK_CONNECT_TIMEOUT", 2.0))),
        read=total, total=total)
    secret = webhook_secret(app.config["SECRET_KEY"], hook.salt)
    job.attempt += 1
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "llmlab-webhooks",
               TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, job.body),
               DELIVERY_HEADER: job.delivery, "X-LLMLab-Attempt": str(job.attempt)}
    try:
        code = _post(target, job.body, headers, timeout)
    except Exception as exc:  # network errors of any kind: retry
        job.error = f"{type(exc).__name__}: {exc}"
    else:
        if 200 <= code < 300:
            _record(app, hook, "delivered", None)
            return None
        job.error = f"HTTP {code}"
    if job.attempt <= len(delays):
        return float(delays[job.attempt - 1])
    logger.warning("webhook %s failed after %d attempts: %s", hook.id, job.attempt, job.error)
    _record(app, hook, "failed", job.error)
    return None
