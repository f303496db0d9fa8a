"""Imagen through google-genai's ``models.generate_images`` (Vertex AI only in google-genai
3.x: the Gemini API client refuses it), the real client against the FakeProvider; prices from
docs/pricing.md, "Images and audio"."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider

genai = pytest.importorskip("google.genai")
from google.genai import types  # noqa: E402

IMAGEN, IMAGEN_FAST = "imagen-3.0-generate-001", "imagen-3.0-fast-generate-001"
_CLIENTS: list[Any] = []


def client(fake: FakeProvider) -> Any:
    made = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.google_base_url),
                        vertexai=True)
    _CLIENTS.append(made)  # a dropped client closes its HTTP client
    return made


@pytest.fixture(autouse=True)
def _keep_clients() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generate_images is marked deprecated by the SDK
        yield
    _CLIENTS.clear()


def only(events: list[CostEvent]) -> CostEvent:
    assert len(events) == 1, events
    return events[0]


def assert_cost(event: CostEvent, provider: str, model: str, images: int, total: str) -> None:
    assert (event.provider, event.model, event.operation) == (provider, model,
                                                              "models.generate_images")
    assert event.usage.tools == ({"image": images} if images else {})
    assert event.cost is not None and event.cost.priced
    assert event.cost.total == event.cost.tools == Decimal(total)


def test_imagen_is_billed_per_image(fake: FakeProvider, events: list[CostEvent]) -> None:
    result = client(fake).models.generate_images(
        model=f"models/{IMAGEN}", prompt="a cat",
        config=types.GenerateImagesConfig(number_of_images=3))
    assert type(result) is types.GenerateImagesResponse and len(result.generated_images) == 3
    assert_cost(only(events), "vertex", IMAGEN, 3, "0.12")  # 3 x $0.04


def test_filtered_images_are_not_billed(fake: FakeProvider, events: list[CostEvent]) -> None:
    result = client(fake).models.generate_images(
        model=IMAGEN_FAST, prompt="filtered cat",
        config=types.GenerateImagesConfig(number_of_images=2, include_rai_reason=True))
    assert [g.rai_filtered_reason is None for g in result.generated_images] == [True, False]
    assert_cost(only(events), "vertex", IMAGEN_FAST, 1, "0.02")


def test_async(fake: FakeProvider, events: list[CostEvent]) -> None:
    async def run() -> Any:
        return await client(fake).aio.models.generate_images(model=IMAGEN, prompt="a cat")

    assert len(asyncio.run(run()).generated_images) == 1
    assert_cost(only(events), "vertex", IMAGEN, 1, "0.04")


@pytest.mark.parametrize(("config", "images"), [(types.GenerateImagesConfig(number_of_images=2), 2),
                                                (None, 1)])
def test_the_worst_case_is_never_below_the_bill(fake: FakeProvider, events: list[CostEvent],
                                                config: Any, images: int) -> None:
    """Imagen's estimate is n images (4, the API's default, when the request leaves it out)."""
    from llmlab._estimate import worst_case_cost
    from llmlab._tracker import get_tracker

    kwargs: dict[str, Any] = {"model": IMAGEN, "prompt": "a cat", "config": config}
    client(fake).models.generate_images(**kwargs)
    event = only(events)
    assert event.cost is not None and event.cost.total == Decimal("0.04") * images
    reserved = worst_case_cost(get_tracker().catalogue, "vertex", IMAGEN, kwargs)
    assert reserved == Decimal("0.04") * (images if config is not None else 4)


def test_a_max_cost_scope_stops_imagen_before_it_is_sent(fake: FakeProvider,
                                                         events: list[CostEvent]) -> None:
    import llmlab
    from llmlab.errors import BudgetExceededError

    with llmlab.track(max_cost="0.05"), pytest.raises(BudgetExceededError):  # 2 x $0.04
        client(fake).models.generate_images(
            model=IMAGEN, prompt="a cat", config=types.GenerateImagesConfig(number_of_images=2))
    assert fake.requests == [] and list(events) == []
