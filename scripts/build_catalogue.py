"""Regenerate the bundled pricing catalogue from a LiteLLM price table.

    python scripts/build_catalogue.py [TABLE] [--version YYYY-MM-DD]

TABLE defaults to scripts/data/litellm_model_prices.json, a copy of LiteLLM's
model_prices_and_context_window.json (MIT licence) from the litellm 1.109.1 package, built
2026-11-12. The output, sdk/llmlab/pricing/catalogue.json, is deterministic: running this
twice on the same table gives the same bytes (a test checks the committed file is current).
It fails, writing nothing, when two keys of the table price one model differently and
llmlab/pricing/_collisions.py does not say which one bills (docs/pricing.md, "Sources").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sdk"))

from llmlab.errors import PricingError  # noqa: E402
from llmlab.pricing._litellm import convert_table, convert_tool_prices  # noqa: E402

DEFAULT_TABLE = ROOT / "scripts" / "data" / "litellm_model_prices.json"
OUTPUT = ROOT / "sdk" / "llmlab" / "pricing" / "catalogue.json"


def build(table_path: Path, version: str, origin: str) -> dict[str, object]:
    """The catalogue document for a LiteLLM table."""
    raw = table_path.read_bytes()
    table = json.loads(raw)
    models = convert_table(table, strict=True)
    return {
        "format": 1,
        "pricing_version": version,
        "source": {
            "name": "LiteLLM model_prices_and_context_window.json",
            "origin": origin,
            "license": "MIT",
            "retrieved": version,
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
        "models": {key: models[key] for key in sorted(models)},
        "tools": convert_tool_prices(table),
    }


def render(document: dict[str, object]) -> str:
    """The exact text written to catalogue.json."""
    return json.dumps(document, indent=None, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--version", default="2026-11-12", help="pricing version (table date)")
    parser.add_argument("--origin", default="litellm 1.109.1 package")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    try:
        document = build(args.table, args.version, args.origin)
    except PricingError as exc:
        print(f"build_catalogue: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(render(document), encoding="utf-8")
    print(f"wrote {len(document['models'])} models to {args.output}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
