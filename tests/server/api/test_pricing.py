"""/api/models/pricing."""

from __future__ import annotations

from ..helpers import Api


class TestPricing:
    """The catalogue endpoint."""

    def test_search_by_name_and_provider(self, api: Api) -> None:
        """q and provider filter the catalogue; prices are per million tokens as strings."""
        token = api.user()
        data = api.data("GET", "/api/models/pricing", token, query_string={
            "q": "gpt-4o", "provider": "openai"})
        assert data["count"] >= 1 and data["pricing_version"]
        model = next(m for m in data["models"] if m["name"] == "gpt-4o")
        assert model["per_million"]["input"] == "2.5"
        assert all(m["provider"] == "openai" and "gpt-4o" in m["key"] for m in data["models"])

    def test_requires_authentication(self, api: Api) -> None:
        """The catalogue needs a token or key like the rest of the API."""
        assert api.call("GET", "/api/models/pricing").status_code == 401
