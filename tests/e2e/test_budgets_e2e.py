"""The SDK guard end to end: spend recorded by another process blocks a call in this one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

import llmlab
from llmlab._tracker import get_tracker
from llmlab.errors import BudgetExceededError
from llmlab.testing import FakeProvider, FakeUsage

from .conftest import LiveServer, Tenant

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


class TestGuard:
    """A block budget stops the call that would cross it, before the provider sees it."""

    def test_spend_from_another_process_blocks_the_next_call(
            self, live_server: LiveServer, tenant: Tenant, tmp_path: Path) -> None:
        """3 calls of $0.35 in a subprocess; here a call with a $0.10 worst case is refused."""
        with httpx.Client(base_url=live_server.url, timeout=10) as http:
            created = http.post("/api/budgets", headers={
                "Authorization": f"Bearer {tenant.token}"}, json={
                "project_id": tenant.project_id, "name": "hard cap", "amount": "1.10",
                "period": "daily", "action": "block"})
            assert created.status_code == 201, created.text
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
