"""Anthropic integration fixtures."""

from __future__ import annotations

import pytest
from anthropic_helpers import USAGE

from llmlab.testing import FakeProvider


@pytest.fixture
def fp(fake: FakeProvider) -> FakeProvider:
    """The fake, reporting USAGE for Anthropic."""
    fake.configure("anthropic", usage=USAGE)
    return fake
