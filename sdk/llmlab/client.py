"""`llmlab.Client`: a small REST client for the llmlab server's read and admin API.

>>> import llmlab  # doctest: +SKIP
>>> client = llmlab.Client("llm_…", "https://llmlab.internal")  # doctest: +SKIP
>>> client.summary(group_by="model", start="2026-11-01")["totals"]["cost"]  # doctest: +SKIP
'412.0871'

Every method returns the ``data`` of the server's envelope as plain JSON types (money as
decimal strings) and raises an `llmlab.errors.APIError` subclass on an error envelope or when
the server cannot be reached. Unlike the tracking SDK, this client raises: it is called
explicitly, by code that wants the answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any, NoReturn

import httpx

from llmlab.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["Client"]

_ERRORS: dict[int, type[APIError]] = {401: AuthenticationError, 403: PermissionDeniedError,
                                      404: NotFoundError, 429: RateLimitError}


def _raise_for(response: httpx.Response, path: str) -> NoReturn:
    """Raise the `APIError` subclass an error response (already read) stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = (body or {}).get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = error.get("message") or f"HTTP {response.status_code} from {path}"
    kwargs: dict[str, Any] = {"status": response.status_code, "code": error.get("code"),
                              "param": error.get("param"),
                              "request_id": response.headers.get("x-request-id")}
    cls = _ERRORS.get(response.status_code, APIError)
    if cls is RateLimitError:
        retry = response.headers.get("retry-after")
        raise RateLimitError(message, retry_after=float(retry) if retry else None, **kwargs)
    raise cls(message, **kwargs)


def _param(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


class Client:
    """REST client for summaries, events, budgets, recommendations and pricing."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 from_env: bool = True) -> None:
        """``api_key`` and ``base_url`` default to ``$LLMLAB_API_KEY`` and ``$LLMLAB_BASE_URL``;
        ``from_env=False`` uses exactly the arguments (no key: anonymous requests)."""
        if from_env:
            api_key = api_key or os.environ.get("LLMLAB_API_KEY")
            base_url = base_url or os.environ.get("LLMLAB_BASE_URL")
        if not base_url:
            raise ConfigurationError("llmlab.Client needs a base_url (or LLMLAB_BASE_URL)")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {base_url!r}")
        headers = {"User-Agent": "llmlab-python"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None) -> Any:
        """Call any endpoint; returns the envelope's ``data``."""
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=clean, json=json)
        except httpx.HTTPError as exc:
            raise APIError(f"cannot reach the llmlab server at {self.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict) and body.get("success", True):
            return body.get("data")
        _raise_for(response, path)

    # -- reads -----------------------------------------------------------------------------------

    def health(self) -> Any:
        """``GET /health``."""
        return self.request("GET", "/health")

    def summary(self, *, project: int | None = None, start: Any = None, end: Any = None,
                tz: str | None = None, group_by: str | None = None) -> Any:
        """``GET /api/costs/summary``: totals and per-group rows (``group_by`` model, provider,
        project, day, hour, job, user or ``tag:<key>``)."""
        return self.request("GET", "/api/costs/summary", params={
            "project": project, "start": start, "end": end, "tz": tz, "group_by": group_by})

    def timeseries(self, *, project: int | None = None, start: Any = None, end: Any = None,
                   tz: str | None = None, interval: str | None = None) -> Any:
        """``GET /api/costs/timeseries``: cost per hour or day."""
        return self.request("GET", "/api/costs/timeseries", params={
            "project": project, "start": start, "end": end, "tz": tz, "interval": interval})

    def events(self, **filters: Any) -> Any:
        """``GET /api/events``: recent events (filters: project, model, provider, job, user,
        status, start, end, limit, cursor)."""
        return self.request("GET", "/api/events", params=filters)

    def projects(self) -> Any:
        """``GET /api/projects``."""
        return self.request("GET", "/api/projects")

    def pricing(self, **filters: Any) -> Any:
        """``GET /api/models/pricing``."""
        return self.request("GET", "/api/models/pricing", params=filters)

    # -- budgets and recommendations ---------------------------------------------------------

    def budgets(self, project: int | None = None) -> Any:
        """``GET /api/budgets``."""
        return self.request("GET", "/api/budgets", params={"project": project})

    def create_budget(self, **budget: Any) -> Any:
        """``POST /api/budgets``."""
        return self.request("POST", "/api/budgets", json=budget)

    def budget_status(self, project: str | int | None = None) -> list[Mapping[str, Any]]:
        """``GET /api/budgets/status``: spent, remaining, forecast and ``resets_at`` per budget."""
        data = self.request("GET", "/api/budgets/status", params={"project": project})
        budgets = data.get("budgets", []) if isinstance(data, dict) else data
        return list(budgets or [])

    def recommendations(self, project: int | None = None) -> Any:
        """``GET /api/recommendations``: savings with dollars per month and evidence."""
        return self.request("GET", "/api/recommendations", params={"project": project})

    def alerts(self, project: int | None = None) -> Any:
        """``GET /api/alerts``."""
        return self.request("GET", "/api/alerts", params={"project": project})

    # -- accounts, projects and keys (what ``llmlab init`` / ``login`` need) -----------------

    def signup(self, email: str, password: str, name: str | None = None) -> Any:
        """``POST /api/auth/signup``: a new account's session (``access_token`` …)."""
        body = {"email": email, "password": password}
        if name:
            body["name"] = name
        return self.request("POST", "/api/auth/signup", json=body)

    def login(self, email: str, password: str) -> Any:
        """``POST /api/auth/login``: a session (``access_token``, ``refresh_token``, ``user``)."""
        return self.request("POST", "/api/auth/login", json={"email": email, "password": password})

    def me(self) -> Any:
        """``GET /api/auth/me``: the caller (user or API key) and the projects it can see."""
        return self.request("GET", "/api/auth/me")

    def create_project(self, name: str, slug: str | None = None) -> Any:
        """``POST /api/projects`` (needs a user token): the caller becomes its owner."""
        body = {"name": name}
        if slug:
            body["slug"] = slug
        return self.request("POST", "/api/projects", json=body)

    def create_key(self, project_id: int, *, name: str = "default",
                   scopes: tuple[str, ...] | list[str] = ("ingest",)) -> Any:
        """``POST /api/keys``: a new API key; its secret ``key`` is in this answer only."""
        return self.request("POST", "/api/keys", json={
            "project_id": project_id, "name": name, "scopes": list(scopes)})

    def export_csv(self, **filters: Any) -> Iterator[bytes]:
        """``GET /api/costs/export``: the CSV body, streamed in chunks (filters as `events`)."""
        clean = {k: _param(v) for k, v in filters.items() if v is not None}
        path = "/api/costs/export"
        try:
            with self._http.stream("GET", path, params=clean) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response, path)
                yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise APIError(f"cannot reach the llmlab server at {self.base_url}: {exc}") from exc
