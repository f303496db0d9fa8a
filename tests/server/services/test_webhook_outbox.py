"""The webhook outbox: claims are exclusive across sessions (``SKIP LOCKED`` on PostgreSQL),
leases expire and fence out a late claimer, claims are fair between projects, and a delivery
awaiting a retry survives its process (a graceful stop does not wait for the retry)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from llmlab_server import create_app
from llmlab_server.models import Project, Webhook, WebhookDelivery, utcnow
from llmlab_server.services import webhook_delivery
from llmlab_server.services import webhook_outbox as outbox
from llmlab_server.services.webhook_outbox import HookRef

from ..api.test_webhooks import hook
from ..conftest import make_config
from ..helpers import Api, Receiver


def _factory(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["llmlab_db"][1]
    return factory


def _hooks(app: Flask, projects: int) -> list[HookRef]:
    """One webhook in each of ``projects`` new projects."""
    refs = []
    with _factory(app)() as session:
        for n in range(projects):
            project = Project(name=f"p{n}", slug=f"outbox-{n}-{time.monotonic_ns()}")
            session.add(project)
            session.flush()
            row = Webhook(project_id=project.id, name="w", url="http://127.0.0.1:9/",
                          secret_salt=f"salt{n}", secret_prefix="whsec_x")
            session.add(row)
            session.flush()
            refs.append(HookRef(row.id, project.id, row.secret_salt))
        session.commit()
    return refs


def _queue(app: Flask, ref: HookRef, count: int) -> None:
    with _factory(app)() as session:
        for _ in range(count):
            outbox.enqueue(session, [ref], {"type": "ping"})
        session.commit()


class TestClaim:
    """Who gets which delivery."""

    def test_concurrent_claimers_never_share_a_delivery(self, app: Flask) -> None:
        """Four sessions claiming at once take 40 deliveries exactly once between them."""
        (ref,) = _hooks(app, 1)
        _queue(app, ref, 40)
        got: list[list[int]] = []
        barrier = threading.Barrier(4)

        def claimer() -> None:
            barrier.wait()
            mine: list[int] = []
            with _factory(app)() as session:
                while batch := outbox.claim(session, 5, 1000, {}, 60.0):
                    mine += [job.id for job in batch]
            got.append(mine)

        threads = [threading.Thread(target=claimer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        claimed = [i for mine in got for i in mine]
        assert len(got) == 4 and len(claimed) == 40 and len(set(claimed)) == 40

    @pytest.mark.postgres_only  # row locks are PostgreSQL's; SQLite has one writer at a time
    def test_locked_rows_are_skipped_not_waited_for(self, app: Flask, backend: str) -> None:
        """PostgreSQL: rows another transaction holds ``FOR UPDATE`` are skipped at once."""
        assert backend == "postgresql"
        (ref,) = _hooks(app, 1)
        _queue(app, ref, 4)
        with _factory(app)() as holder:
            held = list(holder.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)
                                       .limit(2).with_for_update()))
            started = time.monotonic()
            with _factory(app)() as session:
                session.execute(text("SET LOCAL lock_timeout = '5s'"))
                taken = [job.id for job in outbox.claim(session, 10, 100, {}, 60.0)]
            assert time.monotonic() - started < 2.0
            assert len(taken) == 2 and not set(taken) & set(held)
            holder.rollback()

    def test_projects_interleaved_and_capped(self, app: Flask) -> None:
        """A project with a backlog gets at most its share; another project's delivery is
        claimed in the same round, and a project at its cap here gets nothing more."""
        busy_ref, quiet_ref = _hooks(app, 2)
        _queue(app, busy_ref, 10)
        _queue(app, quiet_ref, 1)
        with _factory(app)() as session:
            first = outbox.claim(session, 3, 2, {}, 60.0)
            assert sorted(j.hook.project_id for j in first) == sorted(
                [busy_ref.project_id] * 2 + [quiet_ref.project_id])
            assert outbox.claim(session, 8, 2, {busy_ref.project_id: 2}, 60.0) == []
            assert len(outbox.claim(session, 8, 2, {busy_ref.project_id: 1}, 60.0)) == 1

    def test_expired_lease_is_taken_over_and_fences_the_first_claimer(self, app: Flask
                                                                      ) -> None:
        """A claimer that outlives its lease loses the delivery: the next claim is attempt 2,
        and the first claimer's late result is not recorded."""
        (ref,) = _hooks(app, 1)
        _queue(app, ref, 1)
        with _factory(app)() as session:
            (late,) = outbox.claim(session, 1, 1, {}, 0.05)
            assert outbox.claim(session, 1, 1, {}, 60.0) == []  # leased
            time.sleep(0.1)
            (again,) = outbox.claim(session, 1, 1, {}, 60.0)
            assert (again.id, again.attempt, again.delivery_id) == (
                late.id, 2, late.delivery_id)
            done: dict[str, Any] = {"started": utcnow(), "code": 200, "latency_ms": 1.0,
                                    "error": None, "retry_in": None}
            assert outbox.finish(session, late, **done) is None
            assert outbox.finish(session, again, **done) == "delivered"
            row = session.get(WebhookDelivery, late.id)
            assert row is not None and (row.status, row.attempts) == ("delivered", 2)

    def test_backoff_grows_fourfold_up_to_the_cap(self) -> None:
        """1, 4, 16 ... seconds (±10 %), never above the cap."""
        for attempt, nominal in ((1, 1.0), (2, 4.0), (3, 16.0), (4, 64.0)):
            assert 0.9 * nominal <= outbox.backoff(attempt, 1.0, 3600) <= 1.1 * nominal
        assert outbox.backoff(40, 1.0, 100.0) <= 110.0


class TestRestart:
    """A delivery waiting for its retry when its process stops is sent by the next one."""

    def test_pending_retry_survives_a_stop_and_is_sent_once(
            self, database_url: str, receiver: Receiver, app: Flask) -> None:
        """First try 500, retry due in 1.5 s; the app stops at once (not after the delay); a
        new app on the same database delivers it once, with the same delivery id."""
        settings = {"WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8", "WEBHOOK_RETRY_BASE": 1.5}
        first = create_app(make_config(database_url, **settings))
        api = Api(first.test_client())
        t = api.tenant()
        h = hook(api, t, receiver.url)
        receiver.statuses = [500]
        api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with _factory(first)() as session:
                row = session.scalars(select(WebhookDelivery)).one()
            if row.status == "failed":
                break
            time.sleep(0.02)
        assert row.status == "failed" and row.next_attempt_at is not None
        started = time.monotonic()
        webhook_delivery.stop(first)
        assert time.monotonic() - started < 0.5  # no wait for the retry delay
        time.sleep(2.0)  # the retry falls due while no process runs
        assert len(receiver.requests) == 1
        second = create_app(make_config(database_url, **settings))
        assert webhook_delivery.wait_idle(second, 10)
        assert len(receiver.requests) == 2
        ids = {headers["X-LLMLab-Delivery"] for headers, _ in receiver.requests}
        assert ids == {row.delivery_id}
        assert [headers["X-LLMLab-Attempt"] for headers, _ in receiver.requests] == ["1", "2"]
        for application in (first, second):
            application.extensions["llmlab_db"][0].dispose()
