"""Shared constants and clients of the google-genai integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from llmlab import integrations
from llmlab.testing import FakeProvider, FakeUsage

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402, F401 (for the tests)
from google.genai import types  # noqa: E402

D = Decimal
FLASH = "gemini-2.5-flash"
TEXT = "Hello from FakeProvider!"
# gemini-2.5-flash: input $0.30/M, cache read $0.03/M, output (thoughts included) $2.50/M.
USAGE = FakeUsage(input_tokens=2000, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
# 1000 uncached x 3e-7 + 1000 cached x 3e-8 + (300 + 120) x 2.5e-6
FLASH_COST = D("0.00138")


_CLIENTS: list[Any] = []


def client(fake: FakeProvider, **options: Any) -> Any:
    """A client against the fake, kept alive until the test ends (a dropped genai.Client closes
    its HTTP client in __del__, even while ``client.models`` is still in use)."""
    made = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.google_base_url),
                        **options)
    _CLIENTS.append(made)
    return made


def close_clients() -> None:
    """Close the clients `client` made (the conftest does it after each test)."""
    while _CLIENTS:
        _CLIENTS.pop().close()


@contextmanager
def uninstrumented() -> Iterator[None]:
    """Run a block with google-genai unpatched (to compare what the caller sees)."""
    integrations.uninstrument("google_genai")
    try:
        yield
    finally:
        integrations.instrument("google_genai")


def comparable(response: Any) -> Any:
    """A response dump without what the fake randomises per call."""
    return response.model_dump(exclude={"response_id", "sdk_http_response"})


def weather_tool(calls: list[str], then: Any = None) -> Any:
    def get_weather(city: str) -> str:
        """Return the weather for a city."""
        calls.append(city)
        if then is not None:
            then()
        return f"sunny in {city}"

    return get_weather
