"""Project API keys: ``/api/keys``."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server.openapi import ok, operation, principal
from llmlab_server.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeysQuery
from llmlab_server.services import projects

bp = Blueprint("keys", __name__, url_prefix="/api/keys")


@bp.post("")
@operation(tag="keys", body=ApiKeyCreate, response=ApiKeyCreated, status=201)
def create_key(body: ApiKeyCreate) -> Response:
    """Create an API key; the secret ``key`` is in this response only."""
    return ok(projects.create_key(principal(), body), 201)


@bp.get("")
@operation(tag="keys", query=ApiKeysQuery, response=list[ApiKeyOut])
def list_keys(query: ApiKeysQuery) -> Response:
    """API keys of the projects the caller administers (prefix only)."""
    return ok(projects.list_keys(principal(), query.project))


@bp.delete("/<int:key_id>")
@operation(tag="keys", response=ApiKeyOut)
def revoke_key(key_id: int) -> Response:
    """Revoke an API key; it stops working at once."""
    return ok(projects.revoke_key(principal(), key_id))
