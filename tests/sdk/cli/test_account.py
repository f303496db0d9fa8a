"""``llmlab init``, ``llmlab login`` and ``llmlab status`` against a real server."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from llmlab.cli._config import load_file, save_file
from llmlab.client import Client

from .helpers import Account, configured, free_port, no_traceback, run

PASSWORD = "correct horse battery"


def _email() -> str:
    return f"n{secrets.token_hex(4)}@example.com"


class TestInit:
    """``llmlab init`` signs up or logs in, picks the app's project, writes config.toml."""

    def test_init_signs_up_creates_project_and_keys(self, live_url: str, llmlab_home: Path) -> None:
        """init with email and password signs up, creates the project, an admin CLI key and an
        ingest key, and writes a 0600 config."""
        slug = f"shop-{secrets.token_hex(2)}"
        result = run("init", "--url", live_url, "--email", _email(), "--password", PASSWORD,
                     "--project", slug, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["created_account"] and data["created_project"]
        assert data["project"] == slug and data["ingest_key"].startswith("llm_")
        assert data["app"]["init"] == f'llmlab.init(project="{slug}")'
        path = llmlab_home / "config.toml"
        assert path.stat().st_mode & 0o777 == 0o600
        saved = load_file(path)
        assert saved["base_url"] == live_url and saved["project"] == slug
        assert saved["api_key"].startswith("llm_") and saved["ingest_key"] == data["ingest_key"]
        with Client(saved["api_key"], live_url) as client:
            assert client.me()["api_key"]["scopes"] == ["admin"]

    def test_the_printed_app_setup_is_accepted(self, live_url: str) -> None:
        """init --project support-bot prints the app's init line and environment, and an event
        sent as that app (project support-bot, the ingest key) is accepted, not mismatched."""
        slug = f"support-bot-{secrets.token_hex(2)}"
        result = run("init", "--url", live_url, "--email", _email(), "--password", PASSWORD,
                     "--project", slug)
        assert result.exit_code == 0, result.output
        assert f'  llmlab.init(project="{slug}")' in result.output
        assert f"export LLMLAB_BASE_URL={live_url}" in result.output
        assert f"export LLMLAB_PROJECT={slug}" in result.output
        ingest = result.output.split("export LLMLAB_API_KEY=", 1)[1].split()[0]
        event = {"id": secrets.token_hex(8), "timestamp": "2026-11-02T10:00:00Z",
                 "provider": "openai", "model": "gpt-4o", "project": slug,
                 "usage": {"input_tokens": 10, "output_tokens": 1}}
        response = httpx.post(f"{live_url}/api/events/track", json=event,
                              headers={"Authorization": f"Bearer {ingest}"})
        assert response.status_code in (200, 202, 207), response.text
        assert "project_mismatch" not in response.text

    def test_init_asks_for_the_project(self, live_url: str, llmlab_home: Path) -> None:
        """Interactive init asks which project the app reports to and creates that one."""
        email = _email()
        slug = f"support-bot-{secrets.token_hex(2)}"
        answers = f"{live_url}\nemail\n{email}\n{PASSWORD}\n{PASSWORD}\n{slug}\n"
        result = run("init", input=answers)
        assert result.exit_code == 0, result.output
        assert "Project your app will report to" in result.output
        assert f'llmlab.init(project="{slug}")' in result.output
        saved = load_file(llmlab_home / "config.toml")
        assert saved["email"] == email and saved["project"] == slug

    def test_the_prompt_slugifies_a_name(self, live_url: str, llmlab_home: Path) -> None:
        """A project typed as a name ("Support Bot x") becomes its slug, printed exactly."""
        tag = secrets.token_hex(2)
        answers = f"{live_url}\nemail\n{_email()}\n{PASSWORD}\n{PASSWORD}\nSupport Bot {tag}\n"
        result = run("init", input=answers)
        assert result.exit_code == 0, result.output
        assert f'llmlab.init(project="support-bot-{tag}")' in result.output

    def test_the_prompt_offers_an_existing_project(self, account: Account,
                                                   llmlab_home: Path) -> None:
        """For an account that has a project, the prompt's default is that project."""
        answers = f"{account.url}\nemail\n{account.email}\n{account.password}\n" \
                  f"{account.password}\n\n"
        result = run("init", input=answers)
        assert result.exit_code == 0, result.output
        assert f"[{account.project}]" in result.output
        assert load_file(llmlab_home / "config.toml")["project"] == account.project

    def test_non_interactive_default_is_printed_exactly(self, live_url: str) -> None:
        """--email and --password without --project: a project named after the email, with its
        exact slug in the init line (no prompt)."""
        local = f"table{secrets.token_hex(2)}"
        result = run("init", "--url", live_url, "--email", f"{local}@example.com", "--password",
                     PASSWORD)
        assert result.exit_code == 0, result.output
        assert "Project your app" not in result.output
        assert f'llmlab.init(project="{local}")' in result.output
        assert f"export LLMLAB_PROJECT={local}" in result.output

    def test_a_taken_project_slug(self, account: Account) -> None:
        """--project naming another user's project says the slug is taken."""
        result = run("init", "--url", account.url, "--email", _email(), "--password", PASSWORD,
                     "--project", account.project)
        no_traceback(result)
        assert "is taken on this server" in result.output

    def test_init_with_an_existing_email_logs_in(self, account: Account, llmlab_home: Path) -> None:
        """init for an account that exists logs in and reuses its project."""
        result = run("init", "--url", account.url, "--email", account.email, "--password",
                     account.password, "--project", account.project, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert not data["created_account"] and not data["created_project"]
        assert load_file(llmlab_home / "config.toml")["project"] == account.project

    def test_init_with_an_existing_email_and_a_wrong_password(self, account: Account) -> None:
        """init for an existing account with the wrong password: the refused-login message."""
        result = run("init", "--url", account.url, "--email", account.email, "--password",
                     "wrong password!", "--project", account.project)
        no_traceback(result)
        said = " ".join(result.output.split())
        assert f"refused the login of {account.email}" in said
        assert "`llmlab password reset`" in said and "API key" not in said

    def test_init_with_a_pasted_key(self, account: Account, llmlab_home: Path) -> None:
        """init --api-key stores a read/admin key and its project, and prints the app line."""
        result = run("init", "--url", account.url, "--api-key", account.admin_key)
        assert result.exit_code == 0, result.output
        saved = load_file(llmlab_home / "config.toml")
        assert saved["api_key"] == account.admin_key and saved["project"] == account.project
        assert f'llmlab.init(project="{account.project}")' in result.output

    def test_init_refuses_an_ingest_only_key(self, account: Account) -> None:
        """An ingest key cannot read costs, so init explains and stores nothing."""
        result = run("init", "--url", account.url, "--api-key", account.ingest_key)
        no_traceback(result)
        assert "needs `read`" in result.output

    def test_init_with_a_bad_key(self, account: Account) -> None:
        """A key the server does not know gives the bad-key message."""
        result = run("init", "--url", account.url, "--api-key", "llm_nope")
        no_traceback(result)
        assert "rejected the API key" in result.output

    def test_init_with_the_server_down(self) -> None:
        """init against a port nothing listens on says the server cannot be reached."""
        result = run("init", "--url", f"http://127.0.0.1:{free_port()}", "--email",
                     "a@example.com", "--password", PASSWORD)
        no_traceback(result)
        assert "Cannot reach the llmlab server" in result.output


class TestLogin:
    """``llmlab login``: an existing account, a new CLI key."""

    def test_login_creates_a_new_cli_key(self, account: Account, llmlab_home: Path) -> None:
        """login with email and password stores a new admin key for the existing project."""
        result = run("login", "--url", account.url, "--email", account.email, "--password",
                     account.password, "--json")
        assert result.exit_code == 0, result.output
        saved = load_file(llmlab_home / "config.toml")
        assert saved["project"] == account.project and saved["api_key"] != account.admin_key

    def test_login_with_a_wrong_password(self, account: Account, llmlab_home: Path) -> None:
        """A wrong password: the server refused the login of that email (not "the API key"),
        the way back in is `llmlab password reset`, nothing is saved, no password shown."""
        result = run("login", "--url", account.url, "--email", account.email, "--password",
                     "wrong password!")
        no_traceback(result)
        assert result.exit_code == 1
        said = " ".join(result.output.split())
        assert (f"The llmlab server at {account.url} refused the login of {account.email}: "
                "Wrong email or password. Check --email") in said
        assert "`llmlab password reset`" in said
        assert "API key" not in said and "wrong password!" not in said
        assert not (llmlab_home / "config.toml").exists()

    def test_login_with_a_prompted_wrong_password(self, account: Account) -> None:
        """The same message when the password was typed at the prompt."""
        result = run("login", "--url", account.url, "--email", account.email,
                     input="not the password\n")
        no_traceback(result)
        said = " ".join(result.output.split())
        assert f"refused the login of {account.email}" in said and "API key" not in said

    def test_login_to_a_project_that_does_not_exist(self, account: Account) -> None:
        """login --project names an unknown project: the message lists the user's projects."""
        result = run("login", "--url", account.url, "--email", account.email, "--password",
                     account.password, "--project", "nope")
        no_traceback(result)
        assert account.project in result.output

    def test_login_without_a_server(self) -> None:
        """login with no URL anywhere says to run init."""
        result = run("login", "--email", "a@example.com", "--password", "x" * 10)
        no_traceback(result)
        assert "llmlab init" in result.output


class TestStatus:
    """``llmlab status``: server, auth, sources of the settings, spool and ledger."""

    def test_status_json_reports_everything(self, account: Account, llmlab_home: Path) -> None:
        """status --json shows the server healthy, the key's scopes, spool and ledger counts."""
        from llmlab._spool import Spool

        Spool(llmlab_home / "spool").write(['{"id": "a"}', '{"id": "b"}'])
        ledger = llmlab_home / "ledger"
        ledger.mkdir()
        (ledger / "2026-11-02.jsonl").write_text(
            json.dumps({"id": "x", "cost": {"total": "0.25"}}) + "\n")
        result = run("status", "--json", env=configured(account))
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["server"]["reachable"] is True
        assert data["server"]["auth"] == {"kind": "api_key", "scopes": ["admin"],
                                          "projects": [account.project]}
        assert data["spool"]["events"] == 2 and data["spool"]["files"] == 1
        assert data["ledger"] == {"directory": str(ledger), "events": 1, "cost": "0.25"}
        assert data["config"]["api_key"].startswith(account.admin_key[:8])
        assert account.admin_key not in result.stdout  # masked

    def test_status_prints_where_each_setting_came_from(self, account: Account,
                                                        llmlab_home: Path) -> None:
        """The human output names the source of the URL (env), key (file) and project (flag),
        and says the app's LLMLAB_API_KEY is ignored."""
        save_file({"api_key": account.admin_key, "project": "not-this-one"})
        env = {"LLMLAB_BASE_URL": account.url, "LLMLAB_API_KEY": account.ingest_key}
        result = run("status", "--project", account.project, env=env)
        assert result.exit_code == 0, result.output
        path = llmlab_home / "config.toml"
        assert f"{account.url}  ok  (from LLMLAB_BASE_URL)" in result.output
        assert f"{account.admin_key[:8]}…{account.admin_key[-4:]}  (from {path})" in result.output
        assert f"project  {account.project}  (from --project)" in result.output
        assert "LLMLAB_API_KEY is set: that is your app's key" in result.output
        assert "spool    0 events" in result.output

    def test_status_with_the_server_down(self) -> None:
        """A configured but unreachable server: the report, then exit status 1."""
        result = run("status", env={"LLMLAB_BASE_URL": f"http://127.0.0.1:{free_port()}",
                                    "LLMLAB_CLI_API_KEY": "llm_x"})
        no_traceback(result)
        assert "UNREACHABLE" in result.output and "Cannot reach" in result.output

    def test_status_with_a_bad_key(self, account: Account) -> None:
        """A rejected key: exit status 1, the bad-key message and where the key came from."""
        result = run("status", env={**configured(account), "LLMLAB_CLI_API_KEY": "llm_bad"})
        no_traceback(result)
        assert "rejected the API key" in result.output
        assert "The key came from LLMLAB_CLI_API_KEY" in result.output

    @pytest.mark.usefixtures("llmlab_home")
    def test_status_unconfigured(self) -> None:
        """With no server configured, status shows the local state and how to configure."""
        result = run("status")
        assert result.exit_code == 0, result.output
        assert "not configured" in result.output
