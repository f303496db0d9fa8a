"""Every ```python block of README.md and docs/*.md runs as written, and what it claims is true.

How a block runs (`test_block_runs_as_written`, one test per block, id ``docs/sdk.md:174``: the
page and the line of the opening fence):

* **On its own.** Each block gets a fresh module namespace and a fresh llmlab (not initialised,
  no SDK patched, as in a new process); blocks of a page do *not* share state. Readers copy one
  block, not a page, so each must stand alone with its own imports; and shared state hides the
  bugs these tests are for: docs/sdk.md's testing example failed only in a fresh process,
  because an earlier block's ``llmlab.init()`` had left the SDKs patched. It also keeps a
  page's blocks independent when pytest-xdist spreads them over workers.
* **In-process, with ``exec``.** llmlab's global state is reset before and after each block
  (``llmlab.shutdown()``, ``llmlab.uninstrument()``; the catalogue and ``$LLMLAB_HOME`` by
  tests/conftest.py), as the rest of the suite does, and tracebacks point at the doc's own
  lines. A subprocess would add about a second of imports per block and nothing more isolated.
* **Prelude.** ``$LLMLAB_HOME`` and the working directory are temporary (the working
  directory holds the files docs open by name: LiteLLM's price table). A `FakeProvider` runs,
  and ``OPENAI_BASE_URL``/``OPENAI_API_KEY``, ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY``,
  ``GOOGLE_GEMINI_BASE_URL``/``GOOGLE_API_KEY`` point the provider SDKs at it, so a doc's
  ``openai.OpenAI()`` needs no argument. A block that talks to an llmlab server
  (``llmlab.init(`` or ``Client(``) also gets a live server (tests/e2e/conftest.py) holding the
  project ``support-bot`` with two events already in it, and its ingest+read key in
  ``LLMLAB_BASE_URL``/``LLMLAB_API_KEY``.
* **Passing** means: nothing raised; nothing logged at WARNING or above on the ``llmlab`` logger
  (a swallowed error, an event the server rejected, an unknown model); a block that calls
  ``print`` printed; every claim (``expr  # -> repr``, or ``# Decimal('…')``, see
  `_doc_blocks`) is what the code gives; and ``test_*`` functions the block defines (a pytest
  example) were called and passed.

A block that is not meant to run is marked ``<!-- not-run: <why> -->`` on the line before its
fence. It gets no test (it is not a pass, nor a skip); `NOT_RUN` lists every such block, so
adding one is a visible decision. Scripts in examples/ are run by test_examples.py.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import llmlab
from llmlab.testing import FakeProvider
from llmlab_server.services.webhooks import sign, webhook_secret

from ._doc_blocks import Block, DocSyntaxError, parse_markdown, run_block
from .conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [block for page in PAGES for block in parse_markdown(
    page.read_text(encoding="utf-8"), page, page.relative_to(ROOT).as_posix())]
RUNNABLE = [block for block in BLOCKS if block.not_run is None]
#: (page, reason) of every block marked not-run. Keep it short: a block that cannot run is a
#: block nobody checks.
NOT_RUN: list[tuple[str, str]] = []
#: Files a doc opens by name, linked into each block's working directory.
WORKDIR_FILES = {"model_prices_and_context_window.json": ROOT / "scripts/data/litellm_model_prices.json"}
NEEDS_SERVER = re.compile(r"\bllmlab\.init\(|\bClient\(")
PROJECT = "support-bot"  # the project slug every doc uses


@pytest.fixture
def fresh_llmlab() -> Iterator[None]:
    """llmlab as a new process has it, before and after the test: not initialised, nothing patched."""
    llmlab.shutdown()
    llmlab.uninstrument()
    yield
    llmlab.shutdown()
    llmlab.uninstrument()


@pytest.fixture
def doc_env(fresh_llmlab: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The prelude every block runs in: a temporary working directory, and the provider SDKs'
    environment pointing at a running FakeProvider."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    for name, target in WORKDIR_FILES.items():
        (workdir / name).symlink_to(target)
    monkeypatch.chdir(workdir)
    with FakeProvider() as fake:
        for name, value in {"OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": "sk-fake",
                            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
                            "ANTHROPIC_API_KEY": "sk-ant-fake",
                            "GOOGLE_GEMINI_BASE_URL": fake.google_base_url,
                            "GOOGLE_API_KEY": "fake-google-key"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("GEMINI_API_KEY", raising=False)  # google-genai warns when both are set
        before = dict(os.environ)
        yield fake
        # A block may set variables itself (docs/server.md's gunicorn config does): they must
        # not leak into later tests.
        os.environ.clear()
        os.environ.update(before)


def serve_support_bot(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give ``server`` the docs' project with two events, and put its key in the environment."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        session = http.post("/api/auth/signup", json={"email": "docs@example.com",
                                                      "password": "correct horse battery"})
        auth = {"Authorization": f"Bearer {session.json()['data']['access_token']}"}
        project = http.post("/api/projects", headers=auth,
                            json={"name": "Support bot", "slug": PROJECT}).json()["data"]
        key = http.post("/api/keys", headers=auth, json={
            "project_id": project["id"], "scopes": ["ingest", "read"]}).json()["data"]["key"]
    monkeypatch.setenv("LLMLAB_BASE_URL", server.url)
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    llmlab.init(project=PROJECT, auto_instrument=False, ledger=False, budgets=False)
    llmlab.record("openai", "gpt-4o", {"prompt_tokens": 1200, "completion_tokens": 300})
    llmlab.record("anthropic", "claude-sonnet-4-5", {"input_tokens": 900, "output_tokens": 250})
    assert llmlab.flush(timeout=10) and llmlab.stats()["sent"] == 2, llmlab.stats()
    llmlab.shutdown()


class _Warnings(logging.Handler):
    """Keeps every record at WARNING or above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_block_runs_as_written(block: Block, doc_env: FakeProvider, monkeypatch: pytest.MonkeyPatch,
                               request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """The block runs unchanged in the prelude, logs no llmlab warning, prints if it prints, and
    every value it claims is the value its code gives."""
    if NEEDS_SERVER.search(block.code):
        serve_support_bot(request.getfixturevalue("live_server"), monkeypatch)
    handler = _Warnings()
    logger = logging.getLogger("llmlab")
    logger.addHandler(handler)
    try:
        run = run_block(block)
        assert llmlab.flush(timeout=10), llmlab.stats()  # what the block recorded was delivered
        llmlab.shutdown()
    finally:
        logger.removeHandler(handler)
    assert not handler.records, [handler.format(r) for r in handler.records]
    if "print(" in block.code:
        assert capsys.readouterr().out.strip(), "the block prints nothing"
    assert not run.false_claims(block)


def test_webhook_receiver_recipe_accepts_what_the_server_signs(doc_env: FakeProvider) -> None:
    """docs/budgets.md's `verify()` accepts a body the server signed and refuses a changed body,
    a stale timestamp and another webhook's secret."""
    recipe = next(b for b in RUNNABLE if b.name == "docs/budgets.md" and "def verify(" in b.code)
    verify = run_block(recipe).namespace["verify"]
    secret = webhook_secret("server secret", "salt")
    body = b'{"type": "budget.threshold", "alert": {"threshold": 80}}'
    now, stale = str(int(time.time())), str(int(time.time()) - 600)
    assert verify(secret, now, body, sign(secret, now, body))
    assert not verify(secret, now, body + b" ", sign(secret, now, body))
    assert not verify(secret, stale, body, sign(secret, stale, body))
    assert not verify(webhook_secret("server secret", "other"), now, body, sign(secret, now, body))


class TestPages:
    def test_every_python_fence_is_collected(self) -> None:
        """Each page has as many blocks (run or marked) as anything that looks like a Python
        fence, so no block escapes the tests by its spelling."""
        for page in PAGES:
            # ```python stacks blocks need libraries this environment lacks: tests/stacks runs them.
            looks_python = re.findall(r"(?m)^[ \t]*(?:```|~~~)[ \t]*(?!python stacks$)(?:py|python)",
                                      page.read_text("utf-8"))
            assert len(looks_python) == len([b for b in BLOCKS if b.path == page]), page

    def test_blocks_not_run_are_the_listed_few(self) -> None:
        """The blocks marked not-run are exactly those NOT_RUN lists, with their reasons."""
        assert [(block.name, block.not_run) for block in BLOCKS if block.not_run] == NOT_RUN


def blocks_of(markdown: str) -> list[Block]:
    return parse_markdown(markdown, Path("/docs/page.md"), "page.md")


class TestParser:
    def test_collects_python_blocks_with_their_line_and_marker(self) -> None:
        """Python blocks are collected with their fence line and not-run reason; others are skipped."""
        blocks = blocks_of("# t\n```bash\nls\n```\n```python\nx = 1\n```\n"
                           "<!-- not-run: a fragment of the above -->\n```python\ny(...)\n```\n")
        assert [(b.id, b.code, b.not_run) for b in blocks] == [
            ("page.md:5", "x = 1\n", None), ("page.md:9", "y(...)\n", "a fragment of the above")]

    @pytest.mark.parametrize(("markdown", "message"), [
        ("```python\nx = 1\n", "page.md:1: this fence is never closed"),
        ("```py\nx = 1\n```\n", "page.md:1: write ```python, not ```py"),
        ("- item\n  ```python\n  x = 1\n  ```\n", "page.md:2: an indented fence"),
        ("<!-- not-run -->\n```python\nx\n```\n", "page.md:1: write the marker as"),
        ("<!-- not-run: why -->\n\n```python\nx\n```\n", "page.md:1: a not-run marker must be"),
        ("<!-- not-run: why -->\n```bash\nls\n```\n", "page.md:1: a not-run marker must be"),
    ], ids=["unclosed", "py", "indented", "marker-without-reason", "marker-apart", "marker-on-bash"])
    def test_rule_breaks_are_errors(self, markdown: str, message: str) -> None:
        """Every way a block could silently escape the tests is an error naming the line."""
        with pytest.raises(DocSyntaxError, match=re.escape(message)):
            blocks_of(markdown)


class TestRunner:
    def test_claims_are_checked_against_the_values(self) -> None:
        """True claims (with or without prose after them) pass; a false one is reported with the
        doc's line and the value the code gives."""
        block = blocks_of("```python\nfrom decimal import Decimal\nx = Decimal('1.50')\n"
                          "x  # Decimal('1.50'): exact\nx + 1  # -> Decimal('2.5')\n```\n")[0]
        assert run_block(block).false_claims(block) == [
            "page.md:5: the doc says \"Decimal('2.5')\", the code gives Decimal('2.50')"]

    def test_a_claim_never_evaluated_is_reported(self) -> None:
        """A claim inside code that never runs cannot pass by silence."""
        block = blocks_of("```python\ndef f():\n    1 + 1  # -> 2\n```\n")[0]
        assert run_block(block).false_claims(block) == [
            "page.md:3: the claim '2' was never evaluated"]

    def test_a_claim_on_a_statement_is_an_error(self) -> None:
        """A claim must end an expression statement: on an assignment it would check nothing."""
        with pytest.raises(DocSyntaxError, match=re.escape("page.md:2: a claim must end an expression")):
            run_block(blocks_of("```python\nx = 1  # -> 1\n```\n")[0])

    def test_test_functions_are_called_and_errors_point_at_the_doc(self) -> None:
        """A block's test_* functions are called, and its traceback names the markdown line."""
        block = blocks_of("intro\n```python\ndef test_fails():\n    assert 1 == 2\n```\n")[0]
        with pytest.raises(AssertionError) as raised:
            run_block(block)
        assert (str(raised.traceback[-1].path), raised.traceback[-1].lineno + 1) == ("/docs/page.md", 4)
