"""``llmlab pricing show | list | update | import``: the local pricing catalogue, no server needed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from llmlab.cli._options import json_option
from llmlab.cli._output import out_console, print_json, table, tokens

__all__ = ["COMMANDS", "pricing", "update_command"]


@click.group("pricing")
def pricing() -> None:
    """The local pricing catalogue: show a model, list, update from a LiteLLM table."""


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
    """Refresh the catalogue from a LiteLLM-format JSON file (`update --from FILE`, quieter)."""
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


#: Rows shown per section of an update's diff (``--json`` shows every one).
_SHOWN = 40


def update_command(after: str) -> click.Command:
    """The ``pricing update`` command; ``after`` is said once the catalogue is stored."""

    @click.command("update")
    @click.option("--from", "source", default=None, metavar="URL|FILE",
                  help="A LiteLLM-format table [default: LiteLLM's published JSON].")
    @click.option("--effective-from", default=None, metavar="DATE",
                  help="Changed prices apply from this date [default: today, UTC].")
    @click.option("--dry-run", is_flag=True, help="Show what would change; store nothing.")
    @json_option
    def update(source: str | None, effective_from: str | None, dry_run: bool,
               as_json: bool) -> None:
        """Fetch a LiteLLM price table, show what it changes, store it as the user catalogue.

        Changed prices get a new period from --effective-from: events before it keep their
        old price. Stored in $LLMLAB_PRICING_CATALOGUE, else ~/.llmlab/catalogue.json.
        """
        from llmlab.errors import PricingError
        from llmlab.pricing._update import update_catalogue

        try:
            result = update_catalogue(source, effective_from=effective_from, dry_run=dry_run)
        except PricingError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            print_json(result.to_dict())
            return
        _print_update(result, after)

    return update


def _print_update(result: Any, after: str) -> None:
    console = out_console()
    diff = result.diff
    console.print(f"{result.origin}: {len(diff.added)} added, {len(diff.changed)} changed, "
                  f"{diff.unchanged} unchanged, {len(diff.removed)} no longer listed "
                  f"(kept for older events). New prices apply from {result.effective_from}.",
                  markup=False, soft_wrap=True)
    for title, keys in (("Added", diff.added), ("No longer listed", diff.removed)):
        if keys:
            more = f" … and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            console.print(f"{title}: {', '.join(keys[:_SHOWN])}{more}", markup=False,
                          soft_wrap=True)
    if diff.changed:
        rows = [[key if i == 0 else "", c.component, c.old or "-", c.new or "-"]
                for key, changes in list(diff.changed.items())[:_SHOWN]
                for i, c in enumerate(changes)]
        console.print(table("Changed prices (USD per 1M tokens)", ["model", "price", "old", "new"],
                            rows, right={"old", "new"}))
        if len(diff.changed) > _SHOWN:
            console.print(f"… and {len(diff.changed) - _SHOWN} more changed models (--json)")
    if result.saved_to is None:
        console.print("Dry run: nothing stored.")
    else:
        console.print(f"Stored in {result.saved_to} ({result.pricing_version}). {after}",
                      markup=False, soft_wrap=True)


pricing.add_command(update_command("New calls are priced with it; `llmlab pricing show MODEL` "
                                   "shows a model's prices."))


COMMANDS = (pricing,)
