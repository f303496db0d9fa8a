"""HTTP blueprints, one per resource; routes are thin and delegate to `llmlab_server.services`."""

from __future__ import annotations

from flask import Flask

__all__ = ["register"]


def register(app: Flask) -> None:
    """Mount every blueprint on ``app``."""
    from llmlab_server.api import (
        alerts,
        auth,
        budgets,
        costs,
        events,
        invitations,
        keys,
        meta,
        otlp,
        pricing,
        projects,
        recommendations,
        webhooks,
    )

    for module in (auth, projects, invitations, keys, events, otlp, costs, pricing, meta, budgets,
                   alerts, webhooks, recommendations):
        app.register_blueprint(module.bp)
