"""Webhook delivery off the request thread: durable, bound to the webhook row, fair.

**Durable.** Deliveries are rows of the outbox (`webhook_outbox`), written with the alert;
every server process runs a dispatcher that claims due rows, so a delivery queued by a process
that dies is delivered by another one (or by it after a restart), with the same
``X-LLMLab-Delivery`` id: at least once, and receivers dedup on that id. A failed try is
retried after ``WEBHOOK_RETRY_BASE`` * 4^(n-1) seconds (at most ``WEBHOOK_RETRY_MAX``); after
``WEBHOOK_MAX_ATTEMPTS`` tries the delivery is ``dead`` (``llmlab server webhooks retry``
queues it again). A retry waits in the database, not in a thread, and the dispatcher sleeps on
an `threading.Event`: stopping wakes it, so a graceful stop never waits on a retry delay.

**Bound to the row.** Each try reloads the webhook and sends only if its id, project and
secret salt are still those the delivery was queued for. An id alone is not enough: SQLite
reuses the id of a deleted row, and one tenant's queued alert once went to another tenant's
new webhook, signed with that tenant's secret.

**Fair.** Tries run on ``WEBHOOK_WORKERS`` (8) threads per process, each project at most
``WEBHOOK_PER_PROJECT`` (2) at a time, projects interleaved when claiming; a receiver gets
``WEBHOOK_TIMEOUT`` seconds (connect within ``WEBHOOK_CONNECT_TIMEOUT``). So a tenant whose
receiver never answers holds at most two workers per process, and every other tenant's alerts
still go out at once. A 3xx is a failure (redirects are not followed: they could point inside).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref

import urllib3
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from llmlab_server.models import Webhook, utcnow
from llmlab_server.services import webhook_outbox as outbox
from llmlab_server.services.webhook_outbox import Claimed, HookRef
from llmlab_server.services.webhook_signing import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    webhook_secret,
)
from llmlab_server.services.webhook_urls import Target, UnsafeURL, check_url

__all__ = ["HookRef", "init_app", "project_webhooks", "stop", "wait_idle", "wake"]

logger = logging.getLogger("llmlab_server")

_EXTENSION = "llmlab_webhooks"
_LOCK = threading.Lock()


class _AppGone(Exception):
    """The app a dispatcher served was garbage-collected."""


def project_webhooks(session: Session, project_id: int) -> list[HookRef]:
    """The project's active webhooks, as the rows they are now; on PostgreSQL they stay locked
    ``FOR SHARE`` until the caller's transaction ends, so a delivery queued to one is never
    left pointing at a row deleted meanwhile (the delete waits, then cascades to it)."""
    rows = session.execute(select(Webhook.id, Webhook.project_id, Webhook.secret_salt).where(
        Webhook.project_id == project_id, Webhook.active.is_(True)).with_for_update(read=True))
    return [HookRef(int(i), int(p), str(s)) for i, p, s in rows]


class _Dispatcher:
    """One poller thread claiming due deliveries for a few worker threads (this process)."""

    def __init__(self, app: Flask, persistent: bool) -> None:
        #: Weak: an app dropped (a test's) takes its dispatcher with it.
        self.app_ref = weakref.ref(app)
        #: Keep polling for other processes' deliveries; else exit once none is live (tests).
        self.persistent = persistent
        self.pid = os.getpid()
        self.workers = max(1, int(app.config.get("WEBHOOK_WORKERS", 8)))
        self.per_project = max(1, int(app.config.get("WEBHOOK_PER_PROJECT", 2)))
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Condition()
        self.busy: dict[int, int] = {}  # project -> tries running here
        self.jobs: queue.Queue[Claimed | None] = queue.Queue()
        self.poller: threading.Thread | None = None
        self.threads: list[threading.Thread] = []
        #: The poller has exited (set under `_LOCK`, so that a `wake` is never lost).
        self.done = False

    def start(self) -> None:
        self.poller = threading.Thread(target=self._poll, name="llmlab-webhook-poller",
                                       daemon=True)
        self.poller.start()

    def _poll(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            self.wakeup.clear()
            try:
                wait = self._poll_once()
                failures = 0
            except _AppGone:
                return
            except Exception:  # the database may be down for a while: keep trying, slower
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    logger.exception("webhook outbox poll failed (%d in a row)", failures)
                wait = min(2.0 ** failures, 30.0)
            if wait is None:
                with _LOCK:
                    if not self.wakeup.is_set():
                        self.done = True
                        return
                continue
            self.wakeup.wait(wait)

    def _poll_once(self) -> float | None:
        """Claim what is due; seconds until the next look (None: exit, nothing is live)."""
        app = self.app_ref()
        if app is None:
            raise _AppGone
        with app.extensions["llmlab_db"][1]() as session:
            self._claim(app, session)
            due = outbox.next_due(session)
        if due is None and not self.persistent and not self._running():
            return None
        wait = float(app.config.get("WEBHOOK_POLL_INTERVAL", 2.0))
        if due is not None:
            wait = min(wait, max((due - utcnow()).total_seconds(), 0.01))
        return wait

    def _running(self) -> int:
        with self.lock:
            return sum(self.busy.values())

    def _claim(self, app: Flask, session: Session) -> None:
        with self.lock:
            free = self.workers - sum(self.busy.values())
            busy = dict(self.busy)
        lease = float(app.config.get("WEBHOOK_LEASE", 60.0))
        for job in outbox.claim(session, free, self.per_project, busy, lease):
            with self.lock:
                self.busy[job.hook.project_id] = self.busy.get(job.hook.project_id, 0) + 1
                if len(self.threads) < self.workers:
                    thread = threading.Thread(target=self._work, name="llmlab-webhook",
                                              daemon=True)
                    self.threads.append(thread)
                    thread.start()
            self.jobs.put(job)

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self._attempt(job)
            except Exception:  # a delivery thread must never die silently
                logger.exception("webhook %s delivery crashed", job.hook.id)
            with self.lock:
                project = job.hook.project_id
                self.busy[project] -= 1
                if not self.busy[project]:
                    del self.busy[project]
                self.lock.notify_all()
            self.wakeup.set()  # a worker is free: claim again

    def _attempt(self, job: Claimed) -> None:
        app = self.app_ref()  # a local of this frame only: an idle worker holds no app
        if app is not None:  # else the lease runs out and another process takes the job
            _attempt(app, job)

    def stop(self, timeout: float) -> None:
        """Stop claiming; wait up to ``timeout`` for tries in flight (never for a retry delay:
        those wait in the database)."""
        self.stopping.set()
        self.wakeup.set()
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.busy and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)
        for _ in self.threads:
            self.jobs.put(None)


#: Every dispatcher started in this process, stopped at exit (`_stop_all`).
_RUNNING: weakref.WeakSet[_Dispatcher] = weakref.WeakSet()


def _dispatcher_locked(app: Flask) -> _Dispatcher:
    found: _Dispatcher | None = app.extensions.get(_EXTENSION)
    if found is None or found.pid != os.getpid() or (found.done and not found.stopping.is_set()):
        found = app.extensions[_EXTENSION] = _Dispatcher(app, persistent=not app.testing)
        found.start()
        _RUNNING.add(found)
    return found


def _dispatcher(app: Flask) -> _Dispatcher:
    """This process's running dispatcher of ``app`` (started, or restarted after a fork)."""
    with _LOCK:
        return _dispatcher_locked(app)


def init_app(app: Flask) -> None:
    """Serve ``app``'s outbox from this process: at once (outside tests) and after a fork."""
    if app.testing:
        return  # tests start it on demand (`wake`, `wait_idle`)

    @app.before_request
    def _ensure_dispatcher() -> None:
        found = app.extensions.get(_EXTENSION)
        if found is None or found.pid != os.getpid():
            _dispatcher(app)

    _dispatcher(app)


def wake(app: Flask) -> None:
    """Claim due deliveries now (called after committing new ones)."""
    with _LOCK:  # a poller about to exit for want of work sees this wake, or is replaced
        _dispatcher_locked(app).wakeup.set()


def stop(app: Flask, timeout: float | None = None) -> None:
    """Stop ``app``'s dispatcher in this process; tries in flight get up to ``timeout``
    (default ``WEBHOOK_TIMEOUT`` + 1) seconds, unstarted ones stay in the outbox."""
    found: _Dispatcher | None = app.extensions.get(_EXTENSION)
    if found is not None and found.pid == os.getpid():
        limit = float(app.config.get("WEBHOOK_TIMEOUT", 5.0)) + 1 if timeout is None else timeout
        found.stop(limit)


@atexit.register
def _stop_all() -> None:
    """At interpreter exit: stop claiming, let tries in flight finish (bounded)."""
    for found in list(_RUNNING):
        if found.pid == os.getpid():
            found.stop(6.0)


def wait_idle(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until no delivery of ``app``'s database is live (retries too); False on timeout."""
    deadline = time.monotonic() + timeout
    wake(app)
    while True:
        with app.extensions["llmlab_db"][1]() as session:
            if outbox.live_count(session) == 0:
                return True
        if time.monotonic() >= deadline:
            return False
        wake(app)
        time.sleep(0.02)


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


def _record(session: Session, hook: HookRef, outcome: str, error: str | None) -> None:
    """The webhook row's summary of its last delivery (only the row the delivery is bound to),
    in the session's transaction: `webhook_outbox.finish` commits it with the outcome."""
    session.execute(update(Webhook).where(
        Webhook.id == hook.id, Webhook.secret_salt == hook.salt).values(
        last_delivery_at=utcnow(), last_status=outcome,
        last_error=None if error is None else error[:500]))


def _current_url(session: Session, hook: HookRef) -> str | None:
    """The URL of the row ``hook`` is bound to; None if that row is gone or inactive."""
    row = session.get(Webhook, hook.id)
    if (row is None or not row.active or row.project_id != hook.project_id
            or row.secret_salt != hook.salt):
        return None
    return str(row.url)


def _attempt(app: Flask, job: Claimed) -> None:
    """One try of ``job``, logged in the outbox."""
    config = app.config
    hook, started = job.hook, utcnow()
    with app.extensions["llmlab_db"][1]() as session:
        url = _current_url(session, hook)
        session.rollback()
        if url is None:  # deleted (its id may now be another tenant's), deactivated, re-keyed
            logger.info("webhook %s is gone: delivery %s dead", hook.id, job.delivery_id)
            outbox.finish(session, job, started=started, code=None, latency_ms=None,
                          error="the webhook was deleted, deactivated or re-keyed",
                          retry_in=None, final=True)
            return
        try:
            target = check_url(url, config.get("WEBHOOK_ALLOW_PRIVATE", False))
        except UnsafeURL as exc:  # re-pointed since it was created: do not retry
            logger.warning("webhook %s refused at send time: %s", hook.id, exc)
            _record(session, hook, "refused", str(exc))
            outbox.finish(session, job, started=started, code=None, latency_ms=None,
                          error=f"refused: {exc}", retry_in=None, final=True)
            return
    total = float(config.get("WEBHOOK_TIMEOUT", 5.0))
    timeout = urllib3.Timeout(connect=min(total, float(config.get("WEBHOOK_CONNECT_TIMEOUT", 2.0))),
                              read=total, total=total)
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "llmlab-webhooks",
               TIMESTAMP_HEADER: stamp,
               SIGNATURE_HEADER: sign(webhook_secret(config["SECRET_KEY"], hook.salt), stamp,
                                      job.body),
               DELIVERY_HEADER: job.delivery_id, ATTEMPT_HEADER: str(job.attempt)}
    code: int | None = None
    error: str | None = None
    clock = time.perf_counter()
    try:
        code = _post(target, job.body, headers, timeout)
    except Exception as exc:  # network errors of any kind: retry
        error = f"{type(exc).__name__}: {exc}"
    else:
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    latency = round((time.perf_counter() - clock) * 1000, 3)
    retry_in: float | None = None
    if error is not None and job.attempt < int(config.get("WEBHOOK_MAX_ATTEMPTS", 8)):
        retry_in = outbox.backoff(job.attempt, float(config.get("WEBHOOK_RETRY_BASE", 1.0)),
                                  float(config.get("WEBHOOK_RETRY_MAX", 3600.0)))
    with app.extensions["llmlab_db"][1]() as session:
        if error is None or retry_in is None:  # over: the webhook row says how it ended
            _record(session, hook, "delivered" if error is None else "failed", error)
        status = outbox.finish(session, job, started=started, code=code, latency_ms=latency,
                               error=error, retry_in=retry_in)
        if status == "dead":
            logger.warning("webhook %s delivery %s dead after %d tries: %s", hook.id,
                           job.delivery_id, job.attempt, error)
