"""``llmlab budgets list | set | status`` and ``llmlab recommendations``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click

from llmlab.cli._options import connect, connection_options, json_option, project_id, tz_option
from llmlab.cli._output import (
    items_of,
    money,
    out_console,
    print_json,
    print_recommendations,
    table,
)

__all__ = ["COMMANDS", "budgets", "recommendations"]


@click.group("budgets")
def budgets() -> None:
    """List, set and check budgets (GET/POST /api/budgets, /api/budgets/status)."""


def _scope_text(scope: dict[str, Any] | None) -> str:
    parts = [f"{k}={v}" for k, v in (scope or {}).items() if v not in (None, "", {})]
    return " ".join(parts) or "project"


@budgets.command("list")
@connection_options
@json_option
def budgets_list(as_json: bool) -> None:
    """Budgets of the project."""
    client, current = connect()
    with client:
        data = client.budgets(project=project_id(client, current))
    if as_json:
        print_json(data)
        return
    rows = [[b.get("id"), b.get("name"), _scope_text(b.get("scope")), b.get("period"),
             money(b.get("amount", 0), 2), b.get("action"),
             ",".join(str(t) for t in b.get("thresholds") or [])] for b in items_of(data, "budgets")]
    if not rows:
        out_console().print("No budgets. Add one: llmlab budgets set --amount 100 --period monthly")
        return
    out_console().print(table("Budgets", ["id", "name", "scope", "period", "amount", "action",
                                          "thresholds %"], rows, right={"amount"}))


@budgets.command("set")
@connection_options
@click.option("--amount", required=True, type=click.FloatRange(min=0, min_open=True),
              help="Limit in USD per period.")
@click.option("--period", default="monthly", show_default=True,
              type=click.Choice(["daily", "weekly", "monthly", "total"]))
@click.option("--action", default="alert", show_default=True, type=click.Choice(["alert", "block"]),
              help="alert: notify at thresholds; block: the SDK refuses calls past the limit.")
@click.option("--name", default=None, help="A name [default: made from the scope].")
@click.option("--thresholds", default="50,80,100", show_default=True,
              help="Alert thresholds in percent, comma-separated.")
@click.option("--job", default=None, help="Only spend of this job.")
@click.option("--user", default=None, help="Only spend of this end user.")
@click.option("--model", default=None, help="Only spend on this model.")
@click.option("--tag", default=None, metavar="KEY[=VALUE]",
              help="Only spend with this tag (any value, or this value).")
@tz_option
@json_option
def budgets_set(amount: float, period: str, action: str, name: str | None, thresholds: str,
                job: str | None, user: str | None, model: str | None, tag: str | None, tz: str,
                as_json: bool) -> None:
    """Create a budget on the project (needs an admin key or a user login)."""
    try:
        levels = sorted({int(t) for t in thresholds.split(",") if t.strip()})
    except ValueError:
        raise click.BadParameter("comma-separated integers, e.g. 50,80,100",
                                 param_hint="--thresholds") from None
    client, current = connect()
    with client:
        project = project_id(client, current)
        if project is None:
            projects = client.projects() or []
            if len(projects) != 1:
                raise click.ClickException("Which project? Pass --project SLUG.")
            project = int(projects[0]["id"])
        scope = {k: v for k, v in {"job": job, "user": user, "model": model,
                                   "tag": tag}.items() if v is not None}
        body = {"project_id": project, "name": name or f"{period} {_scope_text(scope)}",
                "amount": str(Decimal(str(amount))), "period": period, "action": action,
                "thresholds": levels, "timezone": tz, "scope": scope}
        created = client.create_budget(**body)
    if as_json:
        print_json(created)
        return
    out_console().print(f"Budget {created.get('id')} set: {money(created.get('amount', amount), 2)} "
                        f"{created.get('period', period)}, action {created.get('action', action)}.",
                        markup=False)


@budgets.command("status")
@connection_options
@json_option
def budgets_status(as_json: bool) -> None:
    """Spent, remaining and forecast of each budget in its current period."""
    client, current = connect()
    with client:
        items = client.budget_status(project=project_id(client, current))
    if as_json:
        print_json({"budgets": items})
        return
    if not items:
        out_console().print("No budgets.")
        return
    rows = []
    for b in items:
        amount, spent = Decimal(str(b.get("amount", 0))), Decimal(str(b.get("spent", 0)))
        used = f"{spent / amount * 100:.0f}%" if amount else "-"
        rows.append([b.get("name") or b.get("id"), b.get("action"), money(spent), money(amount, 2),
                     used, money(b["forecast"]) if b.get("forecast") is not None else "",
                     str(b.get("resets_at") or "")[:16]])
    out_console().print(table("Budget status", ["budget", "action", "spent", "limit", "used",
                                                "forecast", "resets"], rows,
                              right={"spent", "limit", "used", "forecast"}))


@click.command("recommendations")
@connection_options
@json_option
def recommendations(as_json: bool) -> None:
    """Ways to spend less, each with dollars saved per month and its evidence."""
    client, current = connect()
    with client:
        data = client.recommendations(project=project_id(client, current))
    if as_json:
        print_json(data)
        return
    print_recommendations(out_console(), data)


COMMANDS = (budgets, recommendations)
