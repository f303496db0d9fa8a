"""Fixtures shared by every test: an isolated llmlab home directory per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmlab.pricing import Catalogue

# LiteLLM fetches its price map from the internet when imported, unless told not to; a test
# (or a documentation example run by one, or a subprocess) that imports it must not wait for
# the network: llmlab prices with its own catalogue.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def llmlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point ``$LLMLAB_HOME`` at a fresh directory so no test reads or writes ~/.llmlab."""
    home = tmp_path / "llmlab-home"
    home.mkdir()
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    for var in ("LLMLAB_API_KEY", "LLMLAB_BASE_URL", "LLMLAB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    Catalogue.reset_default()
    yield home
    Catalogue.reset_default()


@pytest.fixture
def catalogue() -> Catalogue:
    """A fresh copy of the bundled catalogue, free to modify."""
    return Catalogue.bundled()
