"""The application factory.

>>> from llmlab_server import create_app
>>> from llmlab_server.config import TestConfig
>>> app = create_app(TestConfig())  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from llmlab_server import api, dashboard, db, errors, metrics, openapi, ratelimit
from llmlab_server.config import Config, finalise
from llmlab_server.limits import JSONErrorFlask, LimitedRequest, framework_limit
from llmlab_server.models import MAX_ID
from llmlab_server.services import webhook_delivery

__all__ = ["create_app"]


class _IdConverter(IntegerConverter):
    """``<int:...>`` path segments are database ids: a bigger number matches no route (404)
    instead of overflowing the database driver."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """A configured server: ``config`` is a `Config`, a mapping of overrides, or the environment.

    Raises `llmlab_server.config.ConfigError` when it must not start (no secret in production).
    """
    app = JSONErrorFlask(__name__)
    app.request_class = LimitedRequest
    app.url_map.converters["int"] = _IdConverter  # before any route is added
    app.config.from_object(Config.from_env() if not isinstance(config, Config) else config)
    if isinstance(config, Mapping):
        app.config.update(config)
    settings: dict[str, Any] = dict(app.config)
    finalise(settings)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = framework_limit(app.config["MAX_BODY_BYTES"])
    if app.config["TRUSTED_PROXIES"]:  # the client is who the trusted hops say it is
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.getLogger("llmlab_server").setLevel(logging.INFO)
    errors.init_app(app)
    db.init_app(app)
    openapi.init_app(app)
    _share_limits(app)
    metrics.init_app(app)
    api.register(app)
    webhook_delivery.init_app(app)  # this process serves the webhook outbox too
    app.register_blueprint(dashboard.bp)
    if app.config["GC_FREEZE"]:
        _freeze_startup_objects()
    if app.config["GC_THRESHOLD"]:
        gc.set_threshold(app.config["GC_THRESHOLD"], *gc.get_threshold()[1:])
    return app


def _share_limits(app: Flask) -> None:
    """With ``REDIS_URL``, rate limits and (unless it has its own storage) the failure
    throttle count in Redis, so that every worker and instance enforces one limit."""
    url = app.config["REDIS_URL"]
    if not url:
        return
    app.extensions["llmlab_limiter"] = ratelimit.SharedLimiter(
        float(app.config["RATE_LIMIT_PER_SECOND"]), int(app.config["RATE_LIMIT_BURST"]),
        ratelimit.open_storage(url))
    if app.config["AUTH_THROTTLE_STORAGE"] == "memory://":
        app.config["AUTH_THROTTLE_STORAGE"] = url


_frozen = False


def _freeze_startup_objects() -> None:
    """Collect, then freeze what survives (modules, the app, the pricing catalogue) out of
    later garbage collections; once per process. In a pre-forking server it also keeps
    those objects' pages shared with the workers (see `gc.freeze`)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    from llmlab.pricing import Catalogue

    Catalogue.default()  # loaded now, so that it is frozen with the rest
    gc.collect()
    gc.freeze()
