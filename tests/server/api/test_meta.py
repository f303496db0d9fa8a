"""/health and friends."""

from __future__ import annotations

from flask import Flask

from llmlab_server import create_app
from llmlab_server.config import TestConfig


class TestHealth:
    """/health."""

    def test_health_is_ok_with_a_database(self, client) -> None:  # type: ignore[no-untyped-def]
        """With the database reachable /health answers 200 ok."""
        response = client.get("/health")
        assert response.status_code == 200
        assert response.get_json()["data"] == {"status": "ok", "database": "ok"}

    def test_health_is_503_without_a_database(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        """With an unreachable database /health answers 503 in the error envelope."""
        config = TestConfig()
        config.DATABASE_URL = "postgresql+psycopg2://nobody@127.0.0.1:1/none"
        app: Flask = create_app(config)
        response = app.test_client().get("/health")
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "database_unreachable"
