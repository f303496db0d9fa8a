"""The pricing catalogue and the exact cost engine.

>>> from llmlab.pricing import cost
>>> cost("claude-sonnet-4-5", {"input_tokens": 100, "cache_read_input_tokens": 1000,
...                            "output_tokens": 50}).total
Decimal('0.0013500')

See ``docs/pricing.md`` for the rules, the sources, overrides and how to refresh prices.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from llmlab.pricing._catalogue import PROVIDER_IDS, Catalogue, ImportReport
from llmlab.pricing._engine import CostBreakdown, money
from llmlab.pricing._overrides import load_overrides
from llmlab.pricing._rates import COMPONENTS, ModelPrice, RateCard

__all__ = [
    "COMPONENTS",
    "PROVIDER_IDS",
    "Catalogue",
    "CostBreakdown",
    "ImportReport",
    "ModelPrice",
    "RateCard",
    "cost",
    "import_litellm",
    "load_overrides",
    "money",
]


def cost(
    model: str,
    usage: Any,
    provider: str | None = None,
    *,
    at: date | datetime | str | None = None,
    service_tier: str | None = None,
    region: str | None = None,
    project: str | None = None,
) -> CostBreakdown:
    """The exact cost of one call, from the process-wide catalogue.

    ``usage`` is a provider's native usage object, a dict of it, or a normalised dict
    (`llmlab.usage.Usage`). ``at`` prices the call as of that instant (a datetime, naive
    meaning UTC, or ISO text): price history by its UTC date, off-peak windows by its UTC time;
    a bare date bills standard hours and no ``at`` means now;
    ``service_tier`` is ``batch``, ``flex``, ``priority`` …; ``region`` applies a regional
    multiplier (``us``, ``eu``); ``project`` applies that project's markup. An unknown model
    gives ``priced=False`` and zero amounts, with one warning per model, never an exception.
    Bad token counts raise `llmlab.errors.UsageError` (a ``ValueError``).
    """
    return Catalogue.default().cost(model, usage, provider, at=at, service_tier=service_tier,
                                    region=region, project=project)


def import_litellm(path: str | Path, *, effective_from: date | datetime | str | None = None,
                   save: bool = False) -> ImportReport:
    """Refresh the process-wide catalogue from a LiteLLM-format table.

    With ``save=True`` the changes go to the user catalogue (``~/.llmlab/catalogue.json``,
    see docs/pricing.md), which every later process prices with: what ``llmlab pricing
    update --from FILE`` does.
    """
    if save:
        from llmlab.pricing._overrides import user_catalogue_path
        from llmlab.pricing._table import load_table
        from llmlab.pricing._update import apply_table

        table, origin = load_table(path)
        result = apply_table(table, origin, path=user_catalogue_path(),
                             effective_from=effective_from)
        diff = result.diff
        return ImportReport(added=len(diff.added), updated=len(diff.changed),
                            unchanged=diff.unchanged)
    return Catalogue.default().import_litellm(path, effective_from=effective_from)
