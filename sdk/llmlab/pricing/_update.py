"""``llmlab pricing update``: fetch a LiteLLM table, show what it changes, store it.

The table is validated (`llmlab.pricing._table`), converted, compared with the catalogue in
force (bundled + user catalogue, without overrides) and imported into it: a model whose price
changed gets a new period from ``effective_from`` (default: today, UTC) after its existing ones,
so events before that date keep re-pricing at the old price; new models are added; models the
table no longer lists are kept (old events still need their price) and reported as removed.
The user catalogue then holds every model an update ever added or changed, with its history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from llmlab.pricing._catalogue import Catalogue, bundled_data
from llmlab.pricing._diff import CatalogueDiff, diff_models
from llmlab.pricing._litellm import convert_table
from llmlab.pricing._overrides import user_catalogue_path
from llmlab.pricing._table import load_table
from llmlab.pricing._user_catalogue import layered, read_layer, write_layer
from llmlab.pricing._when import to_date

__all__ = ["UpdateResult", "apply_table", "update_catalogue"]


@dataclass(slots=True)
class UpdateResult:
    """What an update found and did."""

    origin: str
    effective_from: date
    diff: CatalogueDiff
    pricing_version: str
    #: Where the user catalogue was written (None for a dry run).
    saved_to: Path | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        return {"source": self.origin, "effective_from": self.effective_from.isoformat(),
                "pricing_version": self.pricing_version,
                "saved_to": str(self.saved_to) if self.saved_to else None,
                **self.diff.to_dict()}


def apply_table(table: dict[str, Any], origin: str, *, path: Path,
                effective_from: date | datetime | str | None = None,
                dry_run: bool = False) -> UpdateResult:
    """Compare an already validated table with the catalogue at ``path`` (over the bundled
    one) and, unless ``dry_run``, store the result there."""
    when = to_date(effective_from) or datetime.now(UTC).date()
    user = read_layer(path)
    base = Catalogue(layered(bundled_data(), user))
    models = convert_table(table)
    current = {key: base.entry(key) for key in models}
    providers = {m["provider"] for m in models.values()}
    covered = {k for k, (provider, _) in base.identities().items() if provider in providers}
    diff = diff_models(current, models, covered)
    version = max(base.pricing_version, when.isoformat())
    if dry_run:
        return UpdateResult(origin, when, diff, version, None)
    base.import_litellm(table, effective_from=when)
    keep = set(user["models"] if user else ()) | set(diff.added) | set(diff.changed)
    every = base.models
    raw = json.dumps(table, sort_keys=True).encode()
    document = {
        "format": 1, "pricing_version": version,
        "source": {"name": "LiteLLM model_prices_and_context_window.json", "origin": origin,
                   "license": "MIT", "retrieved": datetime.now(UTC).date().isoformat(),
                   "sha256": hashlib.sha256(raw).hexdigest()},
        "models": {key: every[key].to_dict() for key in sorted(keep) if key in every},
    }
    bundled = bundled_data()
    for key, value in base.to_dict().items():  # catalogue-wide tables (tool prices) an import set
        if key not in document and value != bundled.get(key):
            document[key] = value
    write_layer(path, document)
    Catalogue.replace_default(Catalogue.load_default())  # this process prices with it too
    return UpdateResult(origin, when, diff, version, path)


def update_catalogue(source: str | Path | None = None, *,
                     effective_from: date | datetime | str | None = None,
                     dry_run: bool = False, path: Path | None = None) -> UpdateResult:
    """Fetch ``source`` (a file or URL; None: LiteLLM's published table) and apply it to the
    user catalogue (`llmlab.pricing._overrides.user_catalogue_path`, or ``path``)."""
    table, origin = load_table(source)
    return apply_table(table, origin, path=path or user_catalogue_path(),
                       effective_from=effective_from, dry_run=dry_run)
