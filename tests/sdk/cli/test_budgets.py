"""``llmlab budgets list | set | status`` and ``llmlab recommendations`` against a real server."""

from __future__ import annotations

import json

from .helpers import Account, configured, free_port, no_traceback, run, seed


class TestBudgets:
    """``llmlab budgets``."""

    def test_set_list_and_status(self, account: Account) -> None:
        """set creates a budget that list and status then show."""
        seed(account, 2)
        created = run("budgets", "set", "--amount", "10", "--period", "monthly", "--action",
                      "block", "--name", "cap", "--json", env=configured(account))
        assert created.exit_code == 0, created.output
        listed = json.loads(run("budgets", "list", "--json", env=configured(account)).stdout)
        items = listed["budgets"] if isinstance(listed, dict) else listed
        assert [b["name"] for b in items] == ["cap"]
        table_out = run("budgets", "list", env=configured(account)).output
        assert "cap" in table_out and "block" in table_out
        status = json.loads(run("budgets", "status", "--json", env=configured(account)).stdout)
        assert status["budgets"][0]["name"] == "cap"
        assert status["budgets"][0]["spent"].startswith("0.007")
        status_table = run("budgets", "status", env=configured(account)).output
        assert "cap" in status_table and "$10.00" in status_table

    def test_set_scoped_to_a_tag(self, account: Account) -> None:
        """--tag KEY=VALUE scopes a budget; a bad amount is a usage error."""
        result = run("budgets", "set", "--amount", "1", "--tag", "feature=chat", "--json",
                     env=configured(account))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["scope"]["tag"] == "feature=chat"
        bad = run("budgets", "set", "--amount", "-1", env=configured(account))
        assert bad.exit_code == 2

    def test_bad_thresholds(self, account: Account) -> None:
        """--thresholds that are not integers is a usage error naming the option."""
        result = run("budgets", "set", "--amount", "1", "--thresholds", "half",
                     env=configured(account))
        assert result.exit_code == 2 and "--thresholds" in result.output

    def test_budgets_with_the_server_down(self) -> None:
        """budgets status against a dead server: the cannot-reach message."""
        result = run("budgets", "status", env={
            "LLMLAB_BASE_URL": f"http://127.0.0.1:{free_port()}", "LLMLAB_CLI_API_KEY": "llm_x"})
        no_traceback(result)
        assert "Cannot reach" in result.output


class TestRecommendations:
    """``llmlab recommendations``."""

    def test_recommendations(self, account: Account) -> None:
        """recommendations prints the server's list as JSON, and as a table biggest saving
        first, with the server's notes."""
        seed(account, 20, usage={"input_tokens": 20000, "output_tokens": 4000})
        result = run("recommendations", "--json", env=configured(account))
        assert result.exit_code == 0, result.output
        items = json.loads(result.stdout)["recommendations"]
        assert {"cheaper_model", "prompt_caching"} <= {r["kind"] for r in items}
        # Wide enough that no title folds onto two lines of its cell.
        table_out = run("recommendations", env={**configured(account), "COLUMNS": "400"}).output
        best = max(items, key=lambda r: float(r["monthly_savings"]))
        assert table_out.index(best["title"]) < min(
            table_out.index(r["title"]) for r in items if r is not best)
        assert f"${float(best['monthly_savings']):.2f}" in table_out
        assert "note: " in table_out

    def test_no_data_no_recommendations(self, account: Account) -> None:
        """A project without spend gets the "nothing yet" line."""
        result = run("recommendations", env=configured(account))
        assert result.exit_code == 0 and "No recommendations yet" in result.output

    def test_a_limited_table_shows_the_biggest_and_sums_the_rest(self) -> None:
        """With a limit (the demo shows five), the biggest savings are listed and the rest is
        one line with their count and their total saving."""
        import io

        from rich.console import Console

        from llmlab.cli._output import print_recommendations

        items = [{"title": f"idea {n}", "savings_per_month": str(n), "confidence": "high",
                  "detail": "why"} for n in (1, 7, 3, 5, 2)]
        out = io.StringIO()
        print_recommendations(Console(file=out, width=120), {"recommendations": items}, limit=2)
        text = out.getvalue()
        assert "idea 7" in text and "idea 5" in text and "idea 3" not in text
        assert "… and 3 more, saving $6.00 a month" in text
