"""The public API: exported names, init, record, flush/shutdown/stats and the local ledger."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

import llmlab
from llmlab._ledger import read_ledger
from llmlab.errors import ConfigurationError, UsageError
from llmlab.schema import CostEvent
from llmlab.testing import capture_events
from llmlab.testing._capture_server import CaptureServer

PUBLIC_API = [
    "APIError", "BudgetExceededError", "Client", "ConfigurationError", "CostBreakdown", "CostEvent",
    "LLMLabError", "Scope", "ScopeBudgetExceededError", "Usage", "__version__", "cost", "flush",
    "init", "instrument", "record", "shutdown", "stats", "track", "track_cost", "uninstrument",
    "wrap",
]


class TestExports:
    def test_public_api_is_locked(self) -> None:
        """llmlab exports exactly the documented names, each importable."""
        assert sorted(llmlab.__all__) == sorted(PUBLIC_API)
        for name in PUBLIC_API:
            assert getattr(llmlab, name) is not None

    def test_import_is_cheap_and_imports_no_provider_sdk(self) -> None:
        """`import llmlab` takes < 100 ms and imports no provider SDK, pydantic or httpx."""
        code = ("import sys, time; t = time.perf_counter(); import llmlab; "
                "print(time.perf_counter() - t); "
                "print(sorted(m for m in ('openai', 'anthropic', 'google.genai', "
                "'google.generativeai', 'pydantic', 'httpx', 'flask') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split("\n")
        assert float(out[0]) < 0.1
        assert out[1] == "[]"


class TestInit:
    def test_reads_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """init() falls back to LLMLAB_* environment variables."""
        monkeypatch.setenv("LLMLAB_PROJECT", "env-project")
        monkeypatch.setenv("LLMLAB_ENVIRONMENT", "staging")
        with capture_events() as events:
            llmlab.init(ledger=False, auto_instrument=False, on_event=events.append)
            llmlab.record("openai", "gpt-4o", {"prompt_tokens": 1, "completion_tokens": 1})
            llmlab.shutdown()
        assert (events[0].project, events[0].environment) == ("env-project", "staging")

    @pytest.mark.parametrize(("kwargs", "message"), [
        ({"base_url": "ftp://x", "api_key": "k"}, "http:// or https://"),
        ({"base_url": "https://llmlab.example"}, "needs an api_key"),
        ({"auto_instrument": ["cohere-sdk"]}, "unknown integration"),
    ])
    def test_bad_options_are_clear_errors(self, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
        """Bad options raise ConfigurationError saying what is wrong."""
        with pytest.raises(ConfigurationError, match=message):
            llmlab.init(ledger=False, **kwargs)
        llmlab.shutdown()


class TestRecord:
    def test_no_op_before_init(self) -> None:
        """Before init(), record returns None and stats are zero."""
        assert llmlab.record("openai", "gpt-4o", {"prompt_tokens": 1}) is None
        assert llmlab.stats()["sent"] == 0
        assert llmlab.flush() is True

    def test_manual_event_with_attribution_and_custom_cost(self,
                                                           events: list[CostEvent]) -> None:
        """record() prices from the catalogue, or takes a given cost; arguments attribute."""
        with llmlab.track(job="outer", tags={"a": "1"}):
            priced = llmlab.record("anthropic", "claude-opus-5-5",
                                   {"input_tokens": 1000, "output_tokens": 100},
                                   user="u7", tags={"b": "2"})
            custom = llmlab.record("self-hosted", "llama-local", {"input_tokens": 10},
                                   cost={"total": "0.5"})
        assert priced is not None and priced.cost is not None
        assert priced.cost.total == Decimal("0.006")  # 1000 x $4/M + 100 x $20/M
        assert (priced.job_id, priced.user_id, priced.tags) == ("outer", "u7",
                                                                {"a": "1", "b": "2"})
        assert custom is not None and custom.cost is not None
        assert custom.cost.total == Decimal("0.5") and custom.operation == "manual"
        assert events == [priced, custom]

    def test_bad_usage_raises_value_error(self, events: list[CostEvent]) -> None:
        """Negative token counts in a manual record are the caller's error: ValueError."""
        with pytest.raises(UsageError):
            llmlab.record("openai", "gpt-4o", {"prompt_tokens": -1})

    def test_an_invalid_record_raises_before_it_is_counted(self,
                                                          events: list[CostEvent]) -> None:
        """A record the wire schema refuses (here a user id over 256 characters) raises
        ValueError and reaches no callback, scope or worker: a caller who fixes and retries
        does not count it twice (it used to be captured, then raise)."""
        with llmlab.track(job="retry") as scope, pytest.raises(ValueError):
            llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10}, user="u" * 300)
        assert events == [] and scope.calls == 0 and scope.cost == 0

    def test_failing_callback_is_swallowed(self, caplog: pytest.LogCaptureFixture) -> None:
        """An on_event callback that raises is logged; the caller's code continues."""
        def broken(event: CostEvent) -> None:
            raise RuntimeError("callback bug")

        llmlab.init(ledger=False, auto_instrument=False, on_event=broken)
        try:
            event = llmlab.record("openai", "gpt-4o", {"prompt_tokens": 1, "completion_tokens": 1})
        finally:
            llmlab.shutdown()
        assert event is not None
        assert "callback" in caplog.text and "callback bug" in caplog.text


class TestShutdown:
    def test_shutdown_waits_the_workers_deadline_not_the_flush_timeout(self) -> None:
        """llmlab.shutdown() (and the exit hook) give up after `shutdown_timeout` (2 s by
        default, 0.5 s here) when the server never answers: the queue goes to the spool
        (they waited `flush_timeout`, 5 s)."""
        with CaptureServer(api_key="k") as server:
            server.mode = "blackhole"
            llmlab.init(api_key="k", base_url=server.url, auto_instrument=False,
                        budgets=False, shutdown_timeout=0.5)
            llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 5})
            started = time.monotonic()
            llmlab.shutdown()
            assert time.monotonic() - started < 2.0


class TestLedger:
    def test_local_mode_writes_every_event_to_the_ledger(self, llmlab_home: Path) -> None:
        """With no server, events land in ~/.llmlab/ledger/ as JSON lines, once each."""
        llmlab.init(auto_instrument=False)
        for _ in range(5):
            llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 5})
        assert llmlab.flush(5)
        assert llmlab.stats()["sent"] == 5
        llmlab.shutdown()
        ledger = list(read_ledger(llmlab_home / "ledger"))
        assert len(ledger) == 5 and len({e["id"] for e in ledger}) == 5
        assert all(CostEvent.model_validate(e).cost.total == Decimal("0.000075")  # type: ignore[union-attr]
                   for e in ledger)
        lines = (llmlab_home / "ledger").glob("*.jsonl")
        assert all(json.loads(line) for path in lines for line in path.read_text().splitlines())
