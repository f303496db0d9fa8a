"""Models the LiteLLM table prices only per image, clip, second or character (every token
rate $0, Gemini's Lyria) are left unpriced, never priced $0 by tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.pricing import Catalogue
from llmlab.pricing._litellm import convert_table

TABLE = Path(__file__).resolve().parents[3] / "scripts" / "data" / "litellm_model_prices.json"
LYRIA = ["lyria-3-clip-preview", "lyria-3-pro-preview", "lyria-3.5", "lyria-3.5-clip-preview",
         "lyria-3.5-pro-preview", "lyria-realtime-exp"]


@pytest.fixture(scope="module")
def table() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(TABLE.read_text())
    return data


@pytest.mark.parametrize("name", LYRIA)
def test_lyria_is_unpriced_not_free(table: dict[str, dict[str, object]], name: str) -> None:
    entry = table[f"gemini/{name}"]
    assert entry["mode"] == "chat" and entry["input_cost_per_token"] == 0  # the table's own
    assert float(entry["output_cost_per_image"]) > 0  # type: ignore[arg-type]  # per clip
    assert f"google/{name}" not in convert_table({f"gemini/{name}": entry})
    catalogue = Catalogue.bundled()
    assert catalogue.resolve(name, "google") is None
    cost = catalogue.cost(name, {"input_tokens": 20, "output_tokens": 500}, "google")
    assert not cost.priced


def test_a_free_model_without_unit_prices_stays_priced_at_zero() -> None:
    """The rule needs a positive per-unit price: a model the table lists free is $0."""
    entry = {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 0,
             "output_cost_per_token": 0}
    assert "google/free-model" in convert_table({"gemini/free-model": entry})


def test_token_rates_beside_a_per_image_price_keep_the_model(
        table: dict[str, dict[str, object]]) -> None:
    """Gemini's image models bill tokens and list a per-image figure too: still priced."""
    key = next(k for k, e in table.items() if k.startswith("gemini/")
               and e.get("output_cost_per_image") and e.get("output_cost_per_token"))
    assert convert_table({key: table[key]})
