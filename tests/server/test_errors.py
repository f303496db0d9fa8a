"""Every failure is the JSON error envelope, never HTML or a stack trace."""

from __future__ import annotations

from flask import Flask

from llmlab_server.errors import error_body

from .helpers import Api


def _assert_envelope(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is False and body["data"] is None and body["timestamp"]
    assert set(body["error"]) == {"type", "code", "message", "param"}
    if code:
        assert body["error"]["code"] == code
    return body


class TestEnvelope:
    """The error handlers."""

    def test_unknown_route_is_json_404(self, client) -> None:  # type: ignore[no-untyped-def]
        """An unknown URL is a JSON 404, not Werkzeug's HTML page."""
        _assert_envelope(client.get("/api/nope"), 404, "not_found")

    def test_id_too_big_for_the_database_is_404(self, app: Flask) -> None:
        """A path id above 2**63 - 1 matches no route (it overflowed SQLite's driver: 500)."""
        api = Api(app.test_client())
        token = api.user()
        for path in ("/api/budgets/9223372036854775808", "/api/projects/99999999999999999999",
                     "/api/webhooks/18446744073709551616"):
            _assert_envelope(api.call("GET", path, token), 404, "not_found")
        # The largest id still reaches the view, which answers its own 404.
        body = _assert_envelope(api.call("GET", "/api/budgets/9223372036854775807", token), 404)
        assert body["error"]["message"] == "No such budget."
        # Ids in query strings and bodies are bounded too (they overflowed the same way).
        big = 99999999999999999999
        for method, path, payload in (("GET", f"/api/events?project={big}", None),
                                      ("POST", "/api/keys", {"project_id": big})):
            body = _assert_envelope(api.call(method, path, token, payload), 400)
            assert "less than or equal to 9223372036854775807" in body["error"]["message"]

    def test_wrong_method_is_json_405_with_allow(self, client) -> None:  # type: ignore[no-untyped-def]
        """A wrong method is a JSON 405 with an Allow header."""
        response = client.put("/api/events/track")
        _assert_envelope(response, 405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]

    def test_unexpected_exception_is_json_500_without_trace(self, app: Flask) -> None:
        """An unhandled exception is a generic JSON 500 that leaks no detail."""
        @app.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret internals")

        app.config["PROPAGATE_EXCEPTIONS"] = False
        response = app.test_client().get("/boom")
        body = _assert_envelope(response, 500, "internal_error")
        assert body["error"]["type"] == "api_error"
        assert "secret" not in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)

    def test_bad_json_body_is_400(self, client) -> None:  # type: ignore[no-untyped-def]
        """A malformed JSON body on a regular route is a 400 invalid_json."""
        response = client.post("/api/auth/login", data="{", content_type="application/json")
        _assert_envelope(response, 400, "invalid_json")

    def test_wrong_content_type_is_415(self, client) -> None:  # type: ignore[no-untyped-def]
        """A form body on a JSON route is a 415."""
        _assert_envelope(client.post("/api/auth/login", data={"a": "b"}), 415)

    def test_unknown_field_is_400_with_param(self, client) -> None:  # type: ignore[no-untyped-def]
        """An unexpected field is a 400 naming it."""
        response = client.post("/api/auth/login", json={"email": "a@b.c", "password": "x",
                                                        "admin": True})
        assert _assert_envelope(response, 400)["error"]["param"] == "admin"

    def test_error_types_follow_the_status(self) -> None:
        """401, 403, 429 and 5xx carry their own error type; the rest invalid_request_error."""
        kinds = {s: error_body(s, "c", "m")["error"]["type"] for s in (400, 401, 403, 429, 500)}
        assert kinds == {400: "invalid_request_error", 401: "authentication_error",
                         403: "permission_error", 429: "rate_limit_error", 500: "api_error"}
