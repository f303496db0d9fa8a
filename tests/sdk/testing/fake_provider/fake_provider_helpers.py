"""Shared numbers and real SDK clients of the FakeProvider tests."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from llmlab.testing._fake_provider import (
    FakeProvider,
    FakeUsage,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")
genai_types = pytest.importorskip("google.genai.types")
genai_errors = pytest.importorskip("google.genai.errors")
httpx2 = pytest.importorskip("httpx2")  # the HTTP client under openai/anthropic/google-genai

# Distinct numbers so a field read from the wrong place cannot pass by accident.
USAGE = FakeUsage(
    input_tokens=2000,
    output_tokens=300,
    cached_tokens=1000,
    cache_creation_5m_tokens=40,
    cache_creation_1h_tokens=60,
    reasoning_tokens=120,
    input_audio_tokens=7,
    output_audio_tokens=9,
    tool_use_prompt_tokens=11,
)
TEXT = "The quick brown fox jumps over the lazy dog."
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-haiku-4-5"


def openai_client(fp: FakeProvider, **kwargs: Any) -> Any:
    return openai.OpenAI(api_key="sk-test", base_url=fp.openai_base_url, max_retries=0, **kwargs)


def anthropic_client(fp: FakeProvider) -> Any:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=fp.anthropic_base_url, max_retries=0)


def genai_client(fp: FakeProvider) -> Any:
    return genai.Client(api_key="test-key", http_options=genai_types.HttpOptions(base_url=fp.google_base_url))


class City(BaseModel):
    name: str
    population: int
