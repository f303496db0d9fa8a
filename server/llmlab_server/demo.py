"""``llmlab demo``: the whole product on one machine, offline, in a few seconds.

It starts a real llmlab server (werkzeug, in a thread, on a temporary SQLite database) and
`llmlab.testing.FakeProvider` (a local server speaking the OpenAI, Anthropic and Gemini wire
formats), signs up a demo user, then runs a small "shop assistant" app through the *real* SDK
and the *real* provider clients: chat and streaming, a cache-heavy Anthropic triage job, Gemini
summaries with thinking tokens, long nightly reports, embeddings, a few failed calls, and a
runaway agent that its ``max_cost`` stops before it overspends. Finally it prints what the
server knows — cost by provider, model and feature, budgets and recommendations — and the
dashboard URL with the demo login, and keeps serving until Ctrl-C (``--exit`` stops at once).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

import llmlab
from llmlab.cli._output import money, print_recommendations, print_summary
from llmlab.client import Client
from llmlab.errors import APIError, BudgetExceededError
from llmlab.testing import FakeProvider, FakeUsage

__all__ = ["DEMO_EMAIL", "DEMO_PASSWORD", "DemoResult", "cli_hint", "run_demo"]

DEMO_EMAIL = "demo@llmlab.dev"
DEMO_PASSWORD = "llmlab-demo"
PROJECT_SLUG = "demo-shop"

#: A long system prompt reused by every triage call: what prompt caching is for.
_POLICY = ("You are the support triage agent of an online shop. Classify the ticket, find the "
           "order, decide on refunds within policy, and draft a reply. ") * 120


@dataclass
class DemoResult:
    """What a demo run produced (also what the tests check)."""

    url: str
    calls: int = 0
    blocked: str | None = None
    by_provider: dict[str, Any] = field(default_factory=dict)
    by_model: dict[str, Any] = field(default_factory=dict)
    budgets_api: bool = False
    recommendations: Any = None
    admin_key: str = ""
    ingest_key: str = ""
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- the sample app --------------------------------------------------------------------------

def _openai_workload(fake: FakeProvider, result: DemoResult) -> None:
    import openai

    client = openai.OpenAI(api_key="sk-demo", base_url=fake.openai_base_url, max_retries=0)

    # Support chat: short interactive answers for many customers, half of them streamed.
    fake.configure("openai", usage=FakeUsage(input_tokens=1800, output_tokens=350,
                                             cached_tokens=1024))
    for n in range(12):
        with llmlab.track(user=f"cust-{n % 6 + 1}", tags={"feature": "support-chat"}):
            messages = [{"role": "user", "content": f"Where is my order #{4400 + n}?"}]
            if n % 2:
                for _chunk in client.chat.completions.create(
                        model="gpt-4o-mini", messages=messages, stream=True):
                    pass
            else:
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            result.calls += 1

    # Nightly reports: long outputs, nobody waits for them (a Batch API candidate).
    fake.configure("openai", usage=FakeUsage(input_tokens=12000, output_tokens=3500))

    @llmlab.track_cost(job="nightly-report", tags={"feature": "reports"})
    def nightly_report(section: str) -> None:
        client.chat.completions.create(model="gpt-4o", max_tokens=4000, messages=[
            {"role": "user", "content": f"Write the {section} section of the sales report"}])

    for section in ("sales", "returns", "inventory", "marketing", "support", "outlook"):
        nightly_report(section)
        result.calls += 1

    # Product search: embeddings of the catalogue.
    fake.configure("openai", usage=FakeUsage(input_tokens=6000, output_tokens=0))
    with llmlab.track(job="reindex-catalogue", tags={"feature": "search"}):
        for batch in range(8):
            client.embeddings.create(model="text-embedding-3-small",
                                     input=[f"product {batch * 100 + i}" for i in range(100)])
            result.calls += 1

    # Two calls fail (the provider is overloaded): failed spend is tracked too.
    fake.configure("openai", usage=FakeUsage(input_tokens=1800, output_tokens=350))
    fake.fail_next(500, count=2, provider="openai")
    for _ in range(2):
        with contextlib.suppress(openai.APIError), \
                llmlab.track(user="cust-1", tags={"feature": "support-chat"}):
            client.chat.completions.create(model="gpt-4o-mini", messages=[
                {"role": "user", "content": "hello?"}])
        result.calls += 1

    # A runaway agent: max_cost stops it before the call that could pass $0.10.
    fake.configure("openai", usage=FakeUsage(input_tokens=40, output_tokens=1900))

    @llmlab.track_cost(job="research-agent", tags={"feature": "agent"}, max_cost="0.10")
    def agent() -> None:
        while True:  # never stops on its own
            client.chat.completions.create(model="gpt-4o", max_tokens=2000, messages=[
                {"role": "user", "content": "Think again about the pricing strategy"}])
            result.calls += 1

    try:
        agent()
    except BudgetExceededError as exc:
        result.blocked = (f"research-agent stopped by max_cost: spent ${exc.spent.normalize():f} "
                          f"of ${exc.limit}; the next call could cost up to "
                          f"${exc.estimate.normalize():f}, so it was never made")


def _anthropic_workload(fake: FakeProvider, result: DemoResult) -> None:
    import anthropic

    client = anthropic.Anthropic(api_key="sk-demo", base_url=fake.anthropic_base_url,
                                 max_retries=0)
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 600, "system": _POLICY}
    # Ticket triage: the first call writes the policy into the prompt cache, later ones read it.
    for n in range(15):
        cached = dict(cache_creation_5m_tokens=6000) if n == 0 else dict(cached_tokens=6000)
        fake.configure("anthropic", usage=FakeUsage(input_tokens=250, output_tokens=450, **cached))
        with llmlab.track(job=f"ticket-{5100 + n}", user=f"cust-{n % 6 + 1}",
                          tags={"feature": "triage"}):
            messages = [{"role": "user", "content": f"Ticket {5100 + n}: my parcel is late"}]
            if n % 5 == 4:
                with client.messages.stream(messages=messages, **ask) as stream:
                    stream.get_final_text()
            else:
                client.messages.create(messages=messages, **ask)
        result.calls += 1


def _gemini_workload(fake: FakeProvider, result: DemoResult) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="demo",
                          http_options=types.HttpOptions(base_url=fake.google_base_url))
    # Review summaries: long inputs, thinking tokens, some streamed.
    fake.configure("google", usage=FakeUsage(input_tokens=8000, output_tokens=900,
                                             reasoning_tokens=600))

    @llmlab.track_cost(job="review-digest", tags={"feature": "summaries"})
    def summarise(product: int) -> None:
        prompt = f"Summarise the reviews of product {product}"
        if product % 3 == 0:
            for _chunk in client.models.generate_content_stream(model="gemini-2.5-flash",
                                                                contents=prompt):
                pass
        else:
            client.models.generate_content(model="gemini-2.5-flash", contents=prompt)

    for product in range(10):
        summarise(product)
        result.calls += 1
    fake.configure("google", usage=FakeUsage(input_tokens=30000, output_tokens=2500,
                                             reasoning_tokens=1500))
    with llmlab.track(job="review-digest", tags={"feature": "summaries"}):
        client.models.generate_content(model="gemini-2.5-pro", contents="Trends this month")
    result.calls += 1


_WORKLOADS = (("openai", _openai_workload), ("anthropic", _anthropic_workload),
              ("google-genai", _gemini_workload))


def run_sample_app(url: str, ingest_key: str, home: Path, result: DemoResult, *,
                   budgets: bool) -> None:
    """The demo shop's LLM features, instrumented by ``llmlab.init`` — two lines in a real app."""
    llmlab.init(api_key=ingest_key, base_url=url, project=PROJECT_SLUG, home=home,
                environment="demo", budgets=budgets)
    try:
        with FakeProvider() as fake:
            for name, workload in _WORKLOADS:
                try:
                    workload(fake, result)
                except ImportError:
                    result.skipped.append(f"{name} (pip install 'llmlab[all]')")
    finally:
        llmlab.flush(timeout=10)
        llmlab.shutdown()


# -- the server and the report ---------------------------------------------------------------

class _ServerThread:
    """The llmlab app served by werkzeug on a thread."""

    def __init__(self, workdir: Path, host: str, port: int) -> None:
        from werkzeug.serving import make_server

        from llmlab_server import create_app
        from llmlab_server.config import Config

        config = Config()
        config.ENV = "development"
        config.DATABASE_URL = f"sqlite:///{workdir / 'demo.db'}"
        config.SECRET_KEY = secrets.token_urlsafe(32)
        config.AUTO_MIGRATE = True
        config.BCRYPT_ROUNDS = 10
        self.app = create_app(config)
        self.server = make_server(host, port, self.app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="llmlab-demo",
                                       daemon=True)

    def start(self) -> _ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.extensions["llmlab_db"][0].dispose()


def _setup_account(url: str, result: DemoResult) -> int:
    with Client(None, url) as anonymous:
        session = anonymous.signup(DEMO_EMAIL, DEMO_PASSWORD, name="Demo")
    with Client(session["access_token"], url) as user:
        project = user.create_project("Demo shop", PROJECT_SLUG)
        result.ingest_key = user.create_key(project["id"], name="demo-app", scopes=["ingest"])["key"]
        result.admin_key = user.create_key(project["id"], name="demo-cli", scopes=["admin"])["key"]
    return int(project["id"])


def _create_budget(client: Client, project_id: int, result: DemoResult) -> None:
    try:
        client.create_budget(project_id=project_id, name="Demo shop monthly", amount="100",
                             period="monthly", action="alert", thresholds=[50, 80, 100],
                             timezone="UTC")
        result.budgets_api = True
    except APIError as exc:
        if exc.status not in (404, 405):
            raise
        result.skipped.append("budgets (this server has no /api/budgets yet)")


def run_demo(*, host: str = "127.0.0.1", port: int = 0, serve_forever: bool = True,
             console: Console | None = None) -> DemoResult:
    """Run the demo end to end and print it; serve until Ctrl-C when ``serve_forever``."""
    console = console or Console()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="llmlab-demo-"))
    logging.getLogger("llmlab_server").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log over the report
    server = _ServerThread(workdir, host, port).start()
    result = DemoResult(url=server.url)
    try:
        console.print(f"[bold]llmlab demo[/]: server on {server.url} (temporary SQLite), fake "
                      "OpenAI / Anthropic / Gemini on localhost. No network, no keys.")
        project_id = _setup_account(server.url, result)
        from llmlab_server.demo_history import DAYS, backfill_project

        history = backfill_project(server.app, project_id)  # trends need weeks, not a minute
        console.print(f"Backfilled the shop's last {DAYS} days: {len(history.events):,} calls "
                      "through the server's ingest.")
        with Client(result.admin_key, server.url) as client:
            _create_budget(client, project_id, result)
            console.print("Running the sample shop app through the llmlab SDK …")
            run_sample_app(server.url, result.ingest_key, workdir / "home", result,
                           budgets=result.budgets_api)
            result.by_provider = client.summary(group_by="provider")
            result.by_model = client.summary(group_by="model")
            by_feature = client.summary(group_by="tag:feature")
            status = client.budget_status() if result.budgets_api else []
            try:
                result.recommendations = client.recommendations()
            except APIError as exc:
                if exc.status not in (404, 405):
                    raise
                result.skipped.append("recommendations (this server has no /api/recommendations yet)")
        result.seconds = time.monotonic() - started
        _report(console, result, by_feature, status)
        if serve_forever:
            console.print("\nServing until Ctrl-C …")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _report(console: Console, result: DemoResult, by_feature: dict[str, Any],
            status: list[Any]) -> None:
    console.print(f"{result.calls} provider calls tracked in {result.seconds:.1f} s.\n")
    print_summary(console, result.by_provider, title="Cost by provider")
    console.print()
    print_summary(console, result.by_model, title="Cost by model")
    console.print()
    print_summary(console, by_feature, title="Cost by feature (tag:feature)")
    if result.blocked:
        console.print(f"\n[bold]Blocked:[/] {result.blocked}.")
    for budget in status:
        console.print(f"Budget {budget.get('name')!r}: {money(budget.get('spent', 0))} of "
                      f"{money(budget.get('amount', 0), 2)} {budget.get('period', '')} "
                      f"({budget.get('percent', 0):.0f}%, action {budget.get('action')}).")
    if result.recommendations is not None:
        console.print()
        print_recommendations(console, result.recommendations, limit=5)
    for skipped in result.skipped:
        # escape: the install hint's "[all]" is not rich markup.
        console.print(f"[dim]skipped: {escape(skipped)}[/]")
    console.print(f"\nDashboard: {result.url}/   login {DEMO_EMAIL} / {DEMO_PASSWORD}")
    console.print("Try the CLI against it (while it runs):")
    for line in cli_hint(result):
        console.print(f"  {line}", markup=False, soft_wrap=True)


def cli_hint(result: DemoResult) -> list[str]:
    """CLI commands that read the demo's server and project: the options beat any config or
    environment an earlier ``llmlab init`` (or the app's shell) set up."""
    options = f"--url {result.url} --api-key {result.admin_key} --project {PROJECT_SLUG}"
    return [f"llmlab {command} {options}"
            for command in ("summary --by job", "events", "recommendations")]
