"""Routes declare their contract once, with `operation`; the OpenAPI document is built from it.

`operation` authenticates the caller, applies the rate limit, validates the query string and
JSON body against pydantic models and hands them to the view. `build_spec` walks the app's URL
map and turns every declared operation into OpenAPI 3.1 (pydantic emits JSON Schema 2020-12,
which OpenAPI 3.1 uses as is), so the document cannot drift from the code.
"""

from __future__ import annotations

import functools
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request
from pydantic import BaseModel, TypeAdapter

from llmlab_server.errors import BadRequest, RateLimited, UnsupportedMediaType, envelope
from llmlab_server.models import MAX_ID
from llmlab_server.ratelimit import Decision, TokenBucketLimiter, client_bucket
from llmlab_server.schemas import Envelope, ErrorEnvelope
from llmlab_server.security import Principal
from llmlab_server.services.access import AuthMode, authenticate

__all__ = ["Operation", "build_spec", "init_app", "ok", "operation", "principal"]

F = TypeVar("F", bound=Callable[..., Any])
_REF = "#/components/schemas/{model}"
_CONVERTERS = {"int": {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_ID},
               "string": {"type": "string"},
               "default": {"type": "string"}}
_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 207: "Multi-Status",
                400: "Bad request: invalid JSON, parameters or body", 401: "Not authenticated",
                403: "Role or API-key scope too low", 404: "Not found (or another tenant's)",
                202: "Accepted: the request is queued (a mail or a webhook delivery is sent later)",
                409: "Conflict", 413: "Body (or decompressed body) too large",
                414: "Request line (URL) too long", 415: "Not JSON, or an unsupported "
                "Content-Encoding", 431: "Request header fields too large, or too many",
                422: "Batch too large", 429: "Rate limited (see Retry-After)",
                503: "Database unreachable"}
#: Ingest routes' 429 also means a project quota is used up, and 507 its storage is full.
_INGEST_429 = ("Rate limited, or (code ``quota_exceeded``) the project's events-per-day or "
               "per-minute quota is used up; either way see Retry-After")
_INGEST_507 = ("The project stores its quota of events (code ``storage_quota_exceeded``); "
               "nothing more is stored until retention or deletions make room")


@dataclass(frozen=True)
class Operation:
    """The declared contract of one route."""

    summary: str
    description: str
    tag: str
    auth: AuthMode
    scope: str | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    #: Request body schema for the docs only, when the view parses the body itself.
    body_doc: Any
    response: Any
    status: int
    media_type: str
    errors: tuple[int, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def principal() -> Principal:
    """The authenticated caller of the current request."""
    caller: Principal = g.principal
    return caller


#: Stands in for ``data`` while the envelope is encoded, then is replaced by the model's JSON.
_DATA_MARK = "@@llmlab-data@@"


def ok(data: Any, status: int = 200) -> Response:
    """A success envelope around ``data`` (pydantic models, lists of them, or plain JSON)."""
    if isinstance(data, BaseModel):  # serialised by pydantic, set into the envelope's text
        body = json.dumps(envelope(_DATA_MARK), separators=(",", ":"))
        head, tail = body.split(f'"{_DATA_MARK}"')
        return Response(f"{head}{data.model_dump_json()}{tail}\n", status,
                        mimetype="application/json")
    if isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    response = jsonify(envelope(data))
    response.status_code = status
    return response


def _rate_limit(key: str) -> None:
    limiter: TokenBucketLimiter = current_app.extensions["llmlab_limiter"]
    decision = limiter.hit(key)
    g.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(f"Rate limit exceeded; retry in {decision.retry_after} s.",
                          headers=decision.headers())


def _json_body() -> Any:
    if not request.is_json:
        raise UnsupportedMediaType("Send JSON with 'Content-Type: application/json'.")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    except RecursionError:  # "[[[[…" nested deeper than the interpreter's stack
        raise BadRequest("The body is nested too deeply.", code="invalid_json") from None


def _query_args(model: type[BaseModel]) -> dict[str, Any]:
    """The query string for ``model``: every value of its list fields (``?tag=a&tag=b``),
    the first of the others."""
    args: dict[str, Any] = request.args.to_dict()
    for name, info in model.model_fields.items():
        if typing.get_origin(info.annotation) is list and name in request.args:
            args[name] = request.args.getlist(name)
    return args


def operation(*, tag: str, auth: AuthMode = "any", scope: str | None = None,
              query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              body_doc: Any = None, response: Any = None, status: int = 200,
              media_type: str = "application/json", errors: tuple[int, ...] = (),
              ip_limited: bool = False, raw: bool = False, alt_media: tuple[str, ...] = ()
              ) -> Callable[[F], F]:
    """Declare a route's contract; the view receives ``query=`` and ``body=`` models.

    ``alt_media``: binary media types the body and the success response may also have.
    """

    def decorate(view: F) -> F:
        doc = (view.__doc__ or "").strip()
        summary, _, description = doc.partition("\n")
        op = Operation(summary=summary.strip(), description=description.strip(), tag=tag,
                       auth=auth, scope=scope, query=query, body=body, body_doc=body_doc,
                       response=response, status=status, media_type=media_type, errors=errors,
                       extra={"ip_limited": ip_limited, "raw": raw, "alt_media": alt_media})

        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            has_credentials = "Authorization" in request.headers
            if auth in ("user", "any") or (auth == "optional" and has_credentials):
                g.principal = authenticate(auth if auth != "optional" else "any", scope)
                _rate_limit(g.principal.rate_key)
            elif ip_limited:
                # The failure throttle's identity: behind LLMLAB_TRUSTED_PROXIES the forwarded
                # client, and an IPv6 client's whole /64 (single addresses rotate for free).
                _rate_limit(f"ip:{client_bucket(request.remote_addr)}")
            if query is not None:
                kwargs["query"] = query.model_validate(_query_args(query))
            if body is not None:
                kwargs["body"] = body.model_validate(_json_body())
            return view(**kwargs)

        wrapper.operation = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _add_rate_headers(response: Response) -> Response:
    decision: Decision | None = g.get("rate_limit")
    if decision is not None:
        for key, value in decision.headers().items():
            response.headers.setdefault(key, value)
    return response


def init_app(app: Flask) -> None:
    """Create the app's rate limiter and add its headers to every limited response."""
    app.extensions["llmlab_limiter"] = TokenBucketLimiter(
        float(app.config["RATE_LIMIT_PER_SECOND"]), int(app.config["RATE_LIMIT_BURST"]))
    app.after_request(_add_rate_headers)


# -- the document ------------------------------------------------------------------------------

_ARG = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def _error_codes(op: Operation, has_path_args: bool) -> list[int]:
    codes = set(op.errors) | {414, 431}  # any request: answered before routing
    if op.auth in ("user", "any"):
        codes |= {401, 403, 429}
    if op.auth == "optional" or op.extra.get("ip_limited"):
        codes |= {401, 429}
    if op.query is not None:
        codes.add(400)
    if op.body is not None or op.body_doc is not None:
        codes |= {400, 413, 415}
    if has_path_args:
        codes.add(404)
    if op.scope == "ingest":  # quotas (`llmlab_server.services.quotas`)
        codes |= {429, 507}
    return sorted(codes)


def _parameters(op: Operation, rule_args: dict[str, str], defs: dict[str, Any]
                ) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": _CONVERTERS.get(conv, {"type": "string"})}
        for name, conv in rule_args.items()]
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=_REF)
        defs.update(schema.pop("$defs", {}))
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            prop.pop("title", None)
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": name in required,
                     "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    return params


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route declared with `operation`."""
    inputs: list[tuple[Any, str, TypeAdapter[Any]]] = [
        ("error", "serialization", TypeAdapter(ErrorEnvelope))]
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, sorted(r.methods or ()))):
        op: Operation | None = getattr(app.view_functions[rule.endpoint], "operation", None)
        if op is None:
            continue
        method = next(m for m in sorted(rule.methods or ()) if m not in ("HEAD", "OPTIONS"))
        found.append((rule, method.lower(), op))
        if op.body is not None or op.body_doc is not None:
            inputs.append(((rule.rule, method, "in"), "validation",
                           TypeAdapter(op.body_doc if op.body_doc is not None
                                       else op.body)))  # type: ignore[arg-type]
        if op.media_type == "application/json" and not op.extra["raw"]:
            inputs.append(((rule.rule, method, "out"), "serialization",
                           TypeAdapter(Envelope[op.response])))  # type: ignore[name-defined]
    refs, schema_defs = TypeAdapter.json_schemas(
        [(key, mode, adapter) for key, mode, adapter in inputs],  # type: ignore[misc]
        ref_template=_REF)
    components: dict[str, Any] = dict(schema_defs.get("$defs", {}))
    paths: dict[str, Any] = {}
    for rule, method, op in found:
        args = {m.group("name"): m.group("conv") or "default" for m in _ARG.finditer(rule.rule)}
        path = _ARG.sub(lambda m: "{" + m.group("name") + "}", rule.rule)
        responses: dict[str, Any] = {}
        if op.media_type == "application/json":
            content_schema = ({"type": "object"} if op.extra["raw"] else
                              refs[((rule.rule, method.upper(), "out"), "serialization")])
        else:
            content_schema = {"type": "string"}
        responses[str(op.status)] = {"description": _STATUS_TEXT.get(op.status, "OK"),
                                     "content": {op.media_type: {"schema": content_schema}}}
        error_ref = refs[("error", "serialization")]
        for code in _error_codes(op, bool(args)):
            text = _STATUS_TEXT.get(code, "Error")
            if op.scope == "ingest":  # quotas (`llmlab_server.services.quotas`)
                text = {429: _INGEST_429, 507: _INGEST_507}.get(code, text)
            responses[str(code)] = {"description": text,
                                    "content": {"application/json": {"schema": error_ref}}}
        responses["default"] = {"description": "Any other error, in the error envelope",
                                "content": {"application/json": {"schema": error_ref}}}
        entry: dict[str, Any] = {
            "operationId": rule.endpoint.replace(".", "_"), "summary": op.summary,
            "tags": [op.tag], "parameters": _parameters(op, args, components),
            "responses": responses}
        if op.description:
            entry["description"] = op.description
        if op.auth in ("user", "any"):
            entry["security"] = [{"bearer": []}]
        elif op.auth == "optional":
            entry["security"] = [{"bearer": []}, {}]
        else:
            entry["security"] = []
        if op.body is not None or op.body_doc is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[((rule.rule, method.upper(), "in"), "validation")]}}}
        for media in op.extra["alt_media"]:  # e.g. OTLP's protobuf beside its JSON
            binary = {"schema": {"type": "string", "contentMediaType": media}}
            entry["requestBody"]["content"][media] = binary
            responses[str(op.status)]["content"][media] = binary
        paths.setdefault(path, {})[method] = entry
    _add_links(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmlab API", "version": _version(),
                 "description": "Cost tracking for LLM calls. Every response is an envelope: "
                                "`{success, data, error, timestamp}`."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "An access JWT from /api/auth/login, or a project API key llm_…"}}},
    }


_PARAM = re.compile(r"\{(\w+)\}")


def _created_targets(path: str, paths: dict[str, Any]) -> list[tuple[str, str]]:
    """``(target path, its parameter the created id fills)`` for a create at ``path``."""
    # An invitation made by adding a member is revoked under the sibling /invitations/{id}.
    base = path.removesuffix("/members") + "/invitations" if path.endswith("/members") else path
    found = []
    for target in paths:
        if target.startswith(base + "/") and (
                first := _PARAM.fullmatch(target[len(base) + 1:].split("/")[0])):
            found.append((target, first.group(1)))
    return found


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from each create operation to the operations on what it created.

    A ``POST`` on ``P`` answering 201/202 with a ``data.id`` feeds that id into the path
    parameter after ``P`` of every operation under ``P/{x}`` (``POST /api/budgets`` ->
    ``GET/PATCH/DELETE /api/budgets/{budget_id}``; inviting a member -> revoking the
    invitation) and passes its own path parameters on, so a stateful client can chain them.
    """
    for path, methods in paths.items():
        create = methods.get("post")
        status = next((s for s in ("201", "202") if s in (create or {}).get("responses", {})),
                      None)
        if create is None or status is None:
            continue
        links: dict[str, Any] = {}
        for target, id_param in _created_targets(path, paths):
            params = {name: f"$request.path.{name}" for name in _PARAM.findall(path)}
            params[id_param] = "$response.body#/data/id"
            for entry in paths[target].values():
                links[entry["operationId"]] = {"operationId": entry["operationId"],
                                               "parameters": params}
        if links:
            create["responses"][status]["links"] = links


def _version() -> str:
    from llmlab import __version__

    return __version__
