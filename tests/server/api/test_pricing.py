"""/api/models/pricing, /api/pricing/catalogue and ``llmlab server pricing update``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from llmlab.cli._app import cli
from llmlab.pricing import Catalogue
from llmlab_server.services import pricing as pricing_service
from llmlab_server.services.pricing import reload_if_changed

from ..helpers import Api, make_event


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


GPT_4O_CUT = {"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                         "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06}}


def update_server_catalogue(tmp_path: Path, table: dict[str, Any], *args: str) -> Result:
    """``llmlab server pricing update --from FILE ARGS`` in-process, as an operator runs it."""
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(table))
    return CliRunner().invoke(cli, ["server", "pricing", "update", "--from", str(source), *args])


class TestServedCatalogue:
    """GET /api/pricing/catalogue: what SDKs price with, with a strong ETag."""

    def test_an_ingest_key_reads_the_whole_catalogue(self, api: Api) -> None:
        """The body is the catalogue document, every model with its price periods."""
        t = api.tenant()
        ingest_only = api.key(t.token, t.project_id, scopes=("ingest",))
        response = api.call("GET", "/api/pricing/catalogue", ingest_only)
        assert response.status_code == 200, response.get_json()
        document = response.get_json()
        assert document["format"] == 1 and document["pricing_version"]
        gpt_4o = document["models"]["openai/gpt-4o"]
        assert gpt_4o["prices"][-1]["rates"]["standard"]["input"] == "0.0000025"
        assert len(document["models"]) == len(Catalogue.default().identities())

    def test_requires_authentication(self, api: Api) -> None:
        """No token, no catalogue (in the error envelope)."""
        response = api.call("GET", "/api/pricing/catalogue")
        assert response.status_code == 401 and response.get_json()["success"] is False

    def test_strong_etag_and_304(self, api: Api) -> None:
        """The ETag is strong and stable; If-None-Match with it gives an empty 304."""
        t = api.tenant()
        first = api.call("GET", "/api/pricing/catalogue", t.key)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert api.call("GET", "/api/pricing/catalogue", t.key).headers["ETag"] == etag
        again = api.call("GET", "/api/pricing/catalogue", t.key,
                         headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
        other = api.call("GET", "/api/pricing/catalogue", t.key,
                         headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.get_json() == first.get_json()

    def test_gzip_when_accepted(self, api: Api) -> None:
        """A client accepting gzip gets the same document compressed, under its own ETag."""
        t = api.tenant()
        plain = api.call("GET", "/api/pricing/catalogue", t.key)
        packed = api.call("GET", "/api/pricing/catalogue", t.key,
                          headers={"Accept-Encoding": "gzip"})
        assert packed.headers["Content-Encoding"] == "gzip"
        assert json.loads(gzip.decompress(packed.data)) == plain.get_json()
        assert packed.headers["ETag"] != plain.headers["ETag"]
        assert len(packed.data) * 5 < len(plain.data)
        cached = api.call("GET", "/api/pricing/catalogue", t.key, headers={
            "Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
        assert cached.status_code == 304

    def test_in_the_openapi_document(self, api: Api) -> None:
        """The route is documented, with bearer security."""
        spec = api.call("GET", "/api/openapi.json").get_json()
        entry = spec["paths"]["/api/pricing/catalogue"]["get"]
        assert entry["security"] == [{"bearer": []}] and "ETag" in entry["description"]


class TestServerPricingUpdate:
    """``llmlab server pricing update``: the server's catalogue gains a price period."""

    def test_update_appends_a_period_and_old_events_keep_their_price(
            self, api: Api, tmp_path: Path, llmlab_home: Path) -> None:
        """After a price cut from 2026-11-15, an event of 2026-11-02 is still priced at the
        old rate and one of 2026-11-20 at the new one; the served catalogue and its ETag
        change."""
        t = api.tenant()
        before = api.call("GET", "/api/pricing/catalogue", t.key).headers["ETag"]
        result = update_server_catalogue(tmp_path, GPT_4O_CUT, "--effective-from", "2026-11-15")
        assert result.exit_code == 0, result.output
        assert "openai/gpt-4o" in result.output and "Stored in" in result.output
        assert (llmlab_home / "catalogue.json").exists()
        old, new = make_event(), make_event(timestamp="2026-11-20T10:00:00Z")
        api.track(t.key, [old, new])
        events = {e["id"]: e for e in api.data(
            "GET", "/api/events?start=2026-11-01&end=2026-11-30", t.key)["events"]}
        assert events[old["id"]]["server_cost"] == "0.0035"  # 1000 x 2.5e-6 + 100 x 1e-5
        assert events[new["id"]]["server_cost"] == "0.0028"  # 1000 x 2e-6 + 100 x 8e-6
        served = api.call("GET", "/api/pricing/catalogue", t.key,
                          headers={"If-None-Match": before})
        assert served.status_code == 200 and served.headers["ETag"] != before
        periods = served.get_json()["models"]["openai/gpt-4o"]["prices"]
        assert [p["effective_from"] for p in periods] == [None, "2026-11-15"]

    def test_dry_run_changes_nothing(self, api: Api, tmp_path: Path, llmlab_home: Path) -> None:
        """--dry-run shows the change and stores nothing: the ETag stays."""
        t = api.tenant()
        before = api.call("GET", "/api/pricing/catalogue", t.key).headers["ETag"]
        result = update_server_catalogue(tmp_path, GPT_4O_CUT, "--dry-run")
        assert result.exit_code == 0 and "Dry run" in result.output
        assert not (llmlab_home / "catalogue.json").exists()
        assert api.call("GET", "/api/pricing/catalogue", t.key).headers["ETag"] == before

    def test_a_malformed_table_is_refused(self, tmp_path: Path, llmlab_home: Path) -> None:
        """A rate that is not a number: a clear message naming the entry, nothing stored."""
        result = update_server_catalogue(tmp_path, {"gpt-4o": {
            "litellm_provider": "openai", "mode": "chat", "input_cost_per_token": "cheap"}})
        assert result.exit_code == 1
        assert "malformed LiteLLM price table: 'gpt-4o'.input_cost_per_token" in result.output
        assert "Traceback" not in result.output
        assert not (llmlab_home / "catalogue.json").exists()

    def test_running_processes_notice_a_new_catalogue(
            self, tmp_path: Path, llmlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Another process's update is picked up by the stat check, not before it is due."""
        monkeypatch.setattr(pricing_service, "_seen", (0.0, None))  # restored afterwards
        reload_if_changed(now=1e9)  # the first check only notes the file's state
        update_server_catalogue(tmp_path, GPT_4O_CUT)
        Catalogue.default()
        assert reload_if_changed(now=1e9 + 1) is False  # not due yet
        assert reload_if_changed(now=1e9 + 20) is True
        assert Catalogue.default().cost("gpt-4o", {"input_tokens": 1_000_000}).total == 2
        assert reload_if_changed(now=1e9 + 40) is False
