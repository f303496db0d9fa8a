"""``llmlab pricing show | list | import``: the local pricing catalogue, no server needed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from llmlab.cli._options import json_option
from llmlab.cli._output import out_console, print_json, table, tokens

__all__ = ["COMMANDS", "pricing"]


@click.group("pricing")
def pricing() -> None:
    """The local pricing catalogue: show a model, list, import a LiteLLM table."""

def _model_json(model: Any) -> dict[str, Any]:
    period = model.period_at(None)
    tiers = {svc: model_card(period, svc) for svc in period.rates}
    return {"key": model.key, "provider": model.provider, "name": model.name, "mode": model.mode,
            "max_input_tokens": model.max_input_tokens,
            "max_output_tokens": model.max_output_tokens, "supports": sorted(model.supports),
            "effective_from": period.effective_from.isoformat() if period.effective_from else None,
            "per_million": tiers.pop("standard", model_card(period, "standard")),
            "service_tiers": tiers,
            "long_context_thresholds": sorted(period.tiers)}


def model_card(period: Any, service_tier: str) -> dict[str, str]:
    """Non-zero rates of a tier, USD per million tokens (input and output always)."""
    card = period.card(service_tier).per_million()
    # Reasoning, audio and image rates fall back to input/output: show them only when they differ.
    shown = {k: v for k, v in card.items() if k in _CORE_RATES or (
        Decimal(v) != Decimal(card["output" if k == "reasoning" or k.endswith("_output")
                                   else "input"]))}
    return {k: v for k, v in shown.items() if k in ("input", "output") or Decimal(v) != 0}


_CORE_RATES = ("input", "output", "cache_read", "cache_write", "cache_write_long")


@pricing.command("show")
@click.argument("model")
@click.option("--provider", default=None, help="Disambiguate (openai, anthropic, google, …).")
@json_option
def pricing_show(model: str, provider: str | None, as_json: bool) -> None:
    """Rates of one model (aliases, snapshots and provider/ prefixes accepted)."""
    from llmlab.pricing import Catalogue

    catalogue = Catalogue.default()
    found = catalogue.resolve(model, provider)
    if found is None:
        raise click.ClickException(
            f"Unknown model {model!r}: it is not in the pricing catalogue (version "
            f"{catalogue.pricing_version}). Search with `llmlab pricing list --search "
            f"{model.split('/')[-1][:12]}`, or add it in ~/.llmlab/pricing.toml.")
    data = {"pricing_version": catalogue.pricing_version, **_model_json(found)}
    if as_json:
        print_json(data)
        return
    console = out_console()
    console.print(f"{data['key']}  ({data['mode']}, pricing {data['pricing_version']}"
                  + (f", since {data['effective_from']}" if data["effective_from"] else "") + ")")
    limits = f"context {tokens(data['max_input_tokens'] or '?')} in / " \
             f"{tokens(data['max_output_tokens'] or '?')} out"
    console.print(limits + (f"; supports {', '.join(data['supports'])}" if data["supports"] else ""))
    tiers = {"standard": data["per_million"], **data["service_tiers"]}
    components = sorted({c for t in tiers.values() for c in t},
                        key=lambda c: list(data["per_million"]).index(c)
                        if c in data["per_million"] else 99)
    rows = [[c, *(f"${t[c]}" if c in t else "" for t in tiers.values())] for c in components]
    console.print(table("USD per 1M tokens", ["rate", *tiers], rows, right=set(tiers)))
    if data["long_context_thresholds"]:
        console.print("long-context tiers above " + ", ".join(
            f"{tokens(t)} prompt tokens" for t in data["long_context_thresholds"]))


@pricing.command("list")
@click.option("--provider", default=None, help="Only this provider.")
@click.option("--search", "search", default=None, help="Substring of the model name.")
@click.option("--mode", default=None, help="chat, responses, embedding, …")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1),
              help="At most this many rows.")
@json_option
def pricing_list(provider: str | None, search: str | None, mode: str | None, limit: int,
                 as_json: bool) -> None:
    """Models of the catalogue with their input and output rates."""
    from llmlab.pricing import Catalogue

    catalogue = Catalogue.default()
    needle = (search or "").lower()
    models = []
    for key, model in sorted(catalogue.models.items()):
        if (provider and model.provider != provider.lower()) or (mode and model.mode != mode) \
                or (needle and needle not in key.lower()):
            continue
        models.append(model)
    shown = models[:limit]
    if as_json:
        print_json({"pricing_version": catalogue.pricing_version, "count": len(models),
                    "models": [_model_json(m) for m in shown]})
        return
    rows = []
    for m in shown:
        card = m.period_at(None).card("standard").per_million()
        rows.append([m.key, m.mode, f"${card['input']}", f"${card['output']}",
                     f"${card['cache_read']}"])
    console = out_console()
    console.print(table(f"Pricing {catalogue.pricing_version}: USD per 1M tokens",
                        ["model", "mode", "input", "output", "cache read"], rows,
                        right={"input", "output", "cache read"}))
    more = f" (showing {len(shown)}; --limit for more)" if len(models) > len(shown) else ""
    console.print(f"{len(models)} models{more}")


@pricing.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--effective-from", default=None, metavar="DATE",
              help="Changed prices apply from this date [default: today].")
@json_option
def pricing_import(file: Path, effective_from: str | None, as_json: bool) -> None:
    """Refresh the catalogue from a LiteLLM-format JSON table (saved in ~/.llmlab)."""
    from llmlab.pricing import Catalogue, import_litellm
    from llmlab.pricing._overrides import user_catalogue_path

    if not file.exists():
        raise click.ClickException(f"No such file: {file}")
    report = import_litellm(file, effective_from=effective_from, save=True)
    Catalogue.reset_default()
    data = {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
            "saved_to": str(user_catalogue_path())}
    if as_json:
        print_json(data)
        return
    out_console().print(f"Imported {file}: {report.added} added, {report.updated} updated, "
                        f"{report.unchanged} unchanged. Saved to {data['saved_to']}.", markup=False)


COMMANDS = (pricing,)
