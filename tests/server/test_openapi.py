"""The generated OpenAPI document: valid 3.1 and complete (schemathesis proves it true:
test_openapi_fuzz.py)."""

from __future__ import annotations

from flask import Flask


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
        assert "quota_exceeded" in track["responses"]["429"]["description"]
        assert "storage_quota_exceeded" in track["responses"]["507"]["description"]

    def test_202_responses_say_accepted(self, client) -> None:  # type: ignore[no-untyped-def]
        """Operations that queue work (invitations, mails, webhook tests) document 202 as
        accepted, not as a plain OK."""
        spec = client.get("/api/openapi.json").get_json()
        queued = [(path, method, entry["responses"]["202"]["description"])
                  for path, methods in spec["paths"].items()
                  for method, entry in methods.items() if "202" in entry["responses"]]
        assert {"/api/auth/password-reset", "/api/auth/verify-email/resend",
                "/api/projects/{project_id}/members"} <= {path for path, _, _ in queued}
        assert all(text.startswith("Accepted") for _, _, text in queued), queued

    def test_docs_page_is_self_contained(self, client) -> None:  # type: ignore[no-untyped-def]
        """/api/docs is an HTML page that loads nothing from other hosts."""
        response = client.get("/api/docs")
        assert response.status_code == 200 and response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "openapi.json" in html and "http://" not in html and "https://" not in html
