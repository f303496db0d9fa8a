"""The generated OpenAPI document: valid 3.1, complete, and true (schemathesis)."""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from .helpers import Api


class TestSpec:
    """Validity and completeness of /api/openapi.json."""

    def test_document_is_valid_openapi_3_1(self, client) -> None:  # type: ignore[no-untyped-def]
        """The document validates against the OpenAPI 3.1 meta-schema."""
        from openapi_spec_validator import validate

        spec = client.get("/api/openapi.json").get_json()
        assert spec["openapi"] == "3.1.0"
        validate(spec)

    def test_every_api_route_is_documented(self, app: Flask, client) -> None:  # type: ignore[no-untyped-def]
        """Every URL rule of the app (except static) appears with its methods."""
        spec = client.get("/api/openapi.json").get_json()
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert method.lower() in spec["paths"][path], (method, path)

    def test_ingest_contract_is_documented(self, client) -> None:  # type: ignore[no-untyped-def]
        """The track operation documents 207, the error statuses and the CostEvent body."""
        spec = client.get("/api/openapi.json").get_json()
        track = spec["paths"]["/api/events/track"]["post"]
        assert {"207", "400", "401", "403", "413", "415", "422", "429"} <= set(track["responses"])
        assert "CostEvent" in spec["components"]["schemas"]
        assert track["summary"].startswith("Ingest one event")

    def test_docs_page_is_self_contained(self, client) -> None:  # type: ignore[no-untyped-def]
        """/api/docs is an HTML page that loads nothing from other hosts."""
        response = client.get("/api/docs")
        assert response.status_code == 200 and response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "openapi.json" in html and "http://" not in html and "https://" not in html


class TestSchemathesis:
    """Property-based checks of every operation against the document."""

    def test_no_server_errors_and_responses_match_the_spec(self, app: Flask, api: Api) -> None:
        """Generated requests never cause a 5xx, and every response conforms to the document."""
        import schemathesis
        from hypothesis import given
        from hypothesis.errors import Unsatisfiable
        from schemathesis import GenerationMode
        from schemathesis.checks import (
            content_type_conformance,
            not_a_server_error,
            response_headers_conformance,
            response_schema_conformance,
            status_code_conformance,
        )

        t = api.tenant()
        admin_key = api.key(t.token, t.project_id, scopes=("admin",))
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
        checks = [not_a_server_error, status_code_conformance, content_type_conformance,
                  response_schema_conformance, response_headers_conformance]

        @settings(max_examples=8, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            calls.append(case.operation.label)
            if case.path != "/api/auth/logout":  # would end the test's own session
                case.headers = {**(case.headers or {}),
                                "Authorization": f"Bearer {admin_key}"}
            case.call_and_validate(checks=checks)

        failures: list[str] = []
        calls: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    given(operation.as_strategy(generation_mode=mode))(run)()
                except Unsatisfiable:  # nothing to make invalid: no parameters, no body
                    assert mode is GenerationMode.NEGATIVE
                except Exception as exc:  # collect every operation's failure, not the first
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
        assert not failures, "\n\n".join(failures)
        assert len(set(calls)) == len(list(schema.get_all_operations()))  # every one exercised


@pytest.fixture
def app_config() -> dict[str, object]:
    """Generous rate limits: schemathesis sends many requests."""
    return {"RATE_LIMIT_BURST": 100_000}
