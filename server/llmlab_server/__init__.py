"""llmlab server: ingestion API, storage, auth and multi-tenancy, cost summaries.

Run it with ``llmlab server serve`` (development) or, in production,
``gunicorn "llmlab_server:create_app()"``; see docs/server.md.
"""

from __future__ import annotations

from llmlab_server.app import create_app

__all__ = ["create_app"]
