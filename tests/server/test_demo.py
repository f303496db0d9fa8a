"""``llmlab demo``: the README's first command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from llmlab_server.demo import PROJECT_SLUG, DemoResult, cli_hint

ENTRY = "from llmlab.cli import main; raise SystemExit(main())"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                  Path]:
    """One ``llmlab demo --exit`` in a fresh LLMLAB_HOME, and that home."""
    home = tmp_path_factory.mktemp("demo-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLAB_")}
    env.update(LLMLAB_HOME=str(home), COLUMNS="160")
    proc = subprocess.run([sys.executable, "-c", ENTRY, "demo", "--exit"], env=env,
                          capture_output=True, text=True, timeout=300)
    return proc, home


def _rows(output: str, title: str) -> dict[str, Decimal]:
    """Key → cost of the table under ``title``."""
    block = output.split(title, 1)[1].split("TOTAL", 1)[0]
    rows = {}
    for line in block.splitlines():
        match = re.match(r"^(\S+)\s+│\s+\$([\d,.]+)\s+│", line)
        if match:
            rows[match[1]] = Decimal(match[2].replace(",", ""))
    return rows


class TestDemo:
    """The offline demo end to end."""

    def test_it_succeeds(self, demo_run: tuple) -> None:
        """The demo exits 0 with no traceback (its wall time is a measurement, not a test:
        docs/performance.md; the subprocess timeout only guards against a hang)."""
        proc, _ = demo_run
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr

    def test_every_provider_costs_something(self, demo_run: tuple) -> None:
        """The by-provider table has a non-zero cost for OpenAI, Anthropic and Google."""
        proc, _ = demo_run
        rows = _rows(proc.stdout, "Cost by provider")
        assert set(rows) == {"openai", "anthropic", "google"}, proc.stdout
        assert all(cost > 0 for cost in rows.values()), rows

    def test_models_features_and_the_block(self, demo_run: tuple) -> None:
        """Models of the three providers are priced, and max_cost stopped the runaway agent."""
        proc, _ = demo_run
        models = _rows(proc.stdout, "Cost by model")
        assert {"gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"} <= set(models)
        assert all(cost > 0 for cost in models.values())
        assert "research-agent stopped by max_cost" in proc.stdout

    def test_budget_recommendations_and_login_are_printed(self, demo_run: tuple) -> None:
        """The budget status, recommendations and the dashboard login are shown."""
        proc, _ = demo_run
        assert "Budget 'Demo shop monthly'" in proc.stdout
        assert "Recommendations" in proc.stdout
        assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/\s+login demo@llmlab\.dev / \S+",
                         proc.stdout)

    def test_it_leaves_the_home_directory_alone(self, demo_run: tuple) -> None:
        """The demo keeps its database, spool and ledger in a temporary directory."""
        _, home = demo_run
        assert not (home / "config.toml").exists() and not (home / "ledger").exists()

    def test_the_cli_hint_names_server_key_and_project(self, demo_run: tuple) -> None:
        """The suggested CLI commands carry the demo's URL, its admin key and its project."""
        proc, _ = demo_run
        url = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+)/", proc.stdout)
        assert url, proc.stdout
        hint = proc.stdout.split("Try the CLI against it", 1)[1]
        assert re.search(rf"llmlab summary --by job --url {re.escape(url[1])} --api-key llm_\S+ "
                         rf"--project {PROJECT_SLUG}\n", hint), hint


def test_without_provider_sdks_the_install_hint_is_literal() -> None:
    """With no provider SDK importable, the demo still runs and prints each skipped workload's
    install line with its "[all]" intact (not eaten as rich markup)."""
    blocker = ("import sys\n"
               "class Missing:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('openai', 'anthropic') or name == 'google.genai':\n"
               "            raise ModuleNotFoundError(name, name=name)\n"
               "sys.meta_path.insert(0, Missing())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLAB_")}
    env.update(COLUMNS="160")
    proc = subprocess.run([sys.executable, "-c", blocker + ENTRY, "demo", "--exit"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("openai", "anthropic", "google-genai"):
        assert f"skipped: {name} (pip install 'llmlab[all]')" in proc.stdout, proc.stdout


class TestCliHint:
    """The demo's suggested CLI commands read the demo's project whatever else is configured."""

    def test_the_hint_works_after_init_configured_another_project(
            self, tmp_path: Path, llmlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Against a server holding the demo's project, each hinted command succeeds and reads
        that project, although config.toml and the app's environment name another one."""
        from click.testing import CliRunner
        from werkzeug.serving import make_server

        from llmlab.cli._app import cli
        from llmlab.cli._config import save_file
        from llmlab.client import Client
        from llmlab_server import create_app
        from llmlab_server.config import TestConfig

        config = TestConfig()
        config.DATABASE_URL = f"sqlite:///{tmp_path / 'hint.db'}"
        config.AUTO_MIGRATE = True
        app = create_app(config)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        try:
            keys = {}
            an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            for email, slug in (("demo@example.com", PROJECT_SLUG), ("me@example.com", "mine")):
                with Client(None, url) as anonymous:
                    token = anonymous.signup(email, "correct horse battery")["access_token"]
                with Client(token, url) as user:
                    project = user.create_project(slug, slug)
                    keys[slug] = (user.create_key(project["id"], scopes=["admin"])["key"],
                                  user.create_key(project["id"], scopes=["ingest"])["key"])
                with Client(keys[slug][1], url) as app_client:
                    app_client.request("POST", "/api/events/track", json={
                        "id": f"ev-{slug}", "timestamp": an_hour_ago,
                        "provider": "openai", "model": "gpt-4o", "job_id": f"job-of-{slug}",
                        "usage": {"input_tokens": 100, "output_tokens": 10}})
            save_file({"base_url": url, "api_key": keys["mine"][0], "project": "mine"})
            monkeypatch.setenv("LLMLAB_PROJECT", "mine")
            monkeypatch.setenv("LLMLAB_API_KEY", keys["mine"][1])
            result = DemoResult(url=url, admin_key=keys[PROJECT_SLUG][0])
            outputs = []
            for line in cli_hint(result):
                args = shlex.split(line)
                assert args[0] == "llmlab"
                ran = CliRunner().invoke(cli, args[1:])
                assert ran.exit_code == 0, (line, ran.output)
                outputs.append(ran.output)
            assert "job-of-demo-shop" in outputs[0] and "job-of-mine" not in outputs[0]
        finally:
            server.shutdown()
            server.server_close()
            app.extensions["llmlab_db"][0].dispose()
