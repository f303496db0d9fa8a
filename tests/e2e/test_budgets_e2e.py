"""The SDK guard end to end: spend recorded by another process blocks a call in this one, spend
the server acknowledged is counted once, and a wrong ``project=`` is reported."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import llmlab
from llmlab._tracker import get_tracker
from llmlab.errors import BudgetExceededError
from llmlab.testing import FakeProvider, FakeUsage

from .conftest import LiveServer, Tenant, make_tenant

SPENDER = textwrap.dedent("""
    import sys, openai, llmlab
    key, url, project, provider_url = sys.argv[1:5]
    llmlab.init(key, url, project=project)
    client = openai.OpenAI(api_key="sk-test", base_url=provider_url, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", max_tokens=100,
                                       messages=[{"role": "user", "content": "hi"}])
    assert llmlab.flush(10)
""")


MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def create_budget(server: LiveServer, tenant: Tenant, amount: str) -> None:
    """A daily block budget of ``amount`` on the tenant's project."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        created = http.post("/api/budgets", headers={
            "Authorization": f"Bearer {tenant.token}"}, json={
            "project_id": tenant.project_id, "name": "hard cap", "amount": amount,
            "period": "daily", "action": "block"})
        assert created.status_code == 201, created.text


class TestGuard:
    """A block budget stops the call that would cross it, before the provider sees it."""

    def test_spend_from_another_process_blocks_the_next_call(
            self, live_server: LiveServer, tenant: Tenant, tmp_path: Path) -> None:
        """3 calls of $0.35 in a subprocess; here a call with a $0.10 worst case is refused."""
        create_budget(live_server, tenant, "1.10")
        with FakeProvider(usage=FakeUsage(input_tokens=100_000, output_tokens=10_000)) as fp:
            env = {**os.environ, "LLMLAB_HOME": str(tmp_path / "child")}
            result = subprocess.run(
                [sys.executable, "-c", SPENDER, tenant.key, live_server.url, tenant.project_slug,
                 fp.openai_base_url], capture_output=True, text=True, timeout=60, env=env)
            assert result.returncode == 0, result.stderr
            before = len(fp.requests)
            assert before == 3
            os.environ["LLMLAB_HOME"] = str(tmp_path / "parent")
            try:
                llmlab.init(tenant.key, live_server.url, project=tenant.project_slug,
                            budget_refresh_interval=0.2)
                guard = get_tracker().budget_guard
                assert guard is not None and guard.refresh()
                assert guard.budgets[0].spent == Decimal("1.05")
                client = openai.OpenAI(api_key="sk-test", base_url=fp.openai_base_url,
                                       max_retries=0)
                with pytest.raises(BudgetExceededError):
                    client.chat.completions.create(
                        model="gpt-4o", max_tokens=10_000,
                        messages=[{"role": "user", "content": "hi"}])
                assert len(fp.requests) == before  # the provider never saw the refused call
            finally:
                llmlab.shutdown(5)
                os.environ.pop("LLMLAB_HOME", None)

    def test_acknowledged_spend_is_counted_once(self, live_server: LiveServer,
                                                tenant: Tenant) -> None:
        """Issue #20: with a $0.005 budget, $0.00225 spent, delivered and in the server's
        status, a call whose worst case is $0.0005425 is allowed (the guard used to add the
        acknowledged $0.00225 again and refuse it as "spent $0.00450")."""
        create_budget(live_server, tenant, "0.005")
        with FakeProvider(usage=FakeUsage(input_tokens=500, output_tokens=100)) as fp:
            llmlab.init(tenant.key, live_server.url, project=tenant.project_slug,
                        budget_refresh_interval=60)
            try:
                guard = get_tracker().budget_guard
                assert guard is not None and guard.refresh()
                client = openai.OpenAI(api_key="sk-test", base_url=fp.openai_base_url,
                                       max_retries=0)
                client.chat.completions.create(model="gpt-4o", max_tokens=100,
                                               messages=MESSAGES)  # $0.00225
                assert llmlab.flush(10)
                assert guard.refresh() and guard.budgets[0].spent == Decimal("0.00225")
                client.chat.completions.create(model="gpt-4o", max_tokens=52, messages=MESSAGES)
                assert len(fp.requests) == 2
            finally:
                llmlab.shutdown(5)

    def test_a_project_that_is_not_the_keys_is_reported_once(
            self, live_server: LiveServer, tenant: Tenant,
            caplog: pytest.LogCaptureFixture) -> None:
        """The status of another tenant's project answers 404: the guard says once, at
        WARNING, that budgets are not enforced and how to fix ``project=``."""
        other = make_tenant(live_server.url)
        caplog.set_level(logging.WARNING, logger="llmlab")
        llmlab.init(tenant.key, live_server.url, project=other.project_slug,
                    budget_refresh_interval=60)
        try:
            guard = get_tracker().budget_guard
            assert guard is not None
            assert not guard.refresh() and not guard.refresh()
        finally:
            llmlab.shutdown(5)
        warnings = [r.getMessage() for r in caplog.records
                    if "budgets are not enforced" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert f"project={other.project_slug!r} is not the API key's project" in warnings[0]
