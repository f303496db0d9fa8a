"""`llmlab.Client`: where its key and URL come from."""

from __future__ import annotations

import httpx
import pytest

import llmlab
from llmlab.errors import ConfigurationError


def _sent_authorization(client: llmlab.Client, seen: list[httpx.Request]) -> str | None:
    with client:
        client.health()
    return seen[-1].headers.get("Authorization")


def _recording() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "data": {"status": "ok"}, "error": None})

    return httpx.MockTransport(answer), seen


class TestEnvironment:
    """LLMLAB_API_KEY and LLMLAB_BASE_URL fill in absent arguments unless from_env=False."""

    def test_the_environment_fills_in_absent_arguments(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no arguments the client uses $LLMLAB_BASE_URL and sends $LLMLAB_API_KEY."""
        monkeypatch.setenv("LLMLAB_API_KEY", "llm_from_env")
        monkeypatch.setenv("LLMLAB_BASE_URL", "http://env.example")
        transport, seen = _recording()
        client = llmlab.Client(transport=transport)
        assert client.base_url == "http://env.example"
        assert _sent_authorization(client, seen) == "Bearer llm_from_env"

    def test_from_env_false_uses_exactly_the_arguments(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """from_env=False sends no key when none is given, even with $LLMLAB_API_KEY set (the
        CLI must never send the app's ingest key), and needs its base_url as an argument."""
        monkeypatch.setenv("LLMLAB_API_KEY", "llm_app_ingest_key")
        monkeypatch.setenv("LLMLAB_BASE_URL", "http://env.example")
        transport, seen = _recording()
        client = llmlab.Client(None, "http://given.example", transport=transport, from_env=False)
        assert _sent_authorization(client, seen) is None
        assert seen[-1].url.host == "given.example"
        with pytest.raises(ConfigurationError, match="needs a base_url"):
            llmlab.Client("llm_x", None, from_env=False)
