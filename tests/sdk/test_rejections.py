"""`llmlab._rejections`: each refusal of the server comes with the fix in plain words."""

from __future__ import annotations

import pytest

from llmlab._rejections import event_advice, reason_of, refusal_advice


class TestEventAdvice:
    def test_a_project_mismatch_names_both_projects_and_the_command(self) -> None:
        """The server's two project names become both ways out, and the CLI command."""
        advice = event_advice("project_mismatch",
                              "event project 'support-bot' is not this key's project 'me'")
        assert advice == ("project 'support-bot' does not match the API key's project 'me': "
                          "use the key of project support-bot or init(project='me') — run "
                          "`llmlab init --project support-bot` to create that project and "
                          "print its ingest key")

    def test_other_wording_still_gives_advice_and_the_servers_words(self) -> None:
        """A server whose message is worded differently still gets advice, quoting it."""
        advice = event_advice("project_mismatch", "wrong project")
        assert advice is not None and "(wrong project)" in advice and "init(project=" in advice

    def test_invalid_data_has_no_configuration_fix(self) -> None:
        """An invalid event is not something the app's configuration can fix: no advice."""
        assert event_advice("invalid_event", "usage: input_tokens must be >= 0") is None


class TestReasonOf:
    def test_the_code_else_the_status_else_unknown(self) -> None:
        """A refusal is counted under the server's code, else its HTTP status, else
        ``unknown`` (a custom transport's refusal that says neither)."""
        assert reason_of("invalid_api_key", 401) == "invalid_api_key"
        assert reason_of(None, 308) == "http_308"
        assert reason_of(None, None) == "unknown"


class TestRefusalAdvice:
    @pytest.mark.parametrize(("status", "code", "says"), [
        (401, "invalid_api_key", "the API key was rejected (revoked or wrong)"),
        (401, "missing_credentials", "set LLMLAB_API_KEY to a valid ingest key"),
        (403, "insufficient_scope", "the API key lacks the ingest scope"),
        (403, "forbidden", "does not let this API key send events"),
        (404, "not_found", "set LLMLAB_BASE_URL to the llmlab server's root URL"),
        (308, None, "llmlab does not follow redirects"),
        (407, None, "a proxy asks for credentials"),
        (410, None, "check LLMLAB_BASE_URL and LLMLAB_API_KEY"),
    ])
    def test_each_refusal_names_its_fix(self, status: int, code: str | None, says: str) -> None:
        """Each status (and code) the server refuses a batch with gets its own fix."""
        assert says in refusal_advice(status, code)
