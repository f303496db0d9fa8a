"""schemathesis over every operation of /api/openapi.json, with every check, on both databases.

Stateless: each operation, positive and negative data, with a user's JWT and with a project's
ingest+read key. Stateful: schemathesis' state machine follows the document's OpenAPI links
(create a budget -> read, patch, delete it; create a key -> revoke it; ...).

Derandomized (fixed examples on every run), so CI is repeatable; a bounded number of examples
per operation keeps both databases within about a minute each.

Two checks get a documented allowance, each as narrow as the API's contract:

* ``positive_data_acceptance``: a schema-valid request may still be refused with 400 when what
  makes it invalid is not expressible in JSON Schema (`_SEMANTIC_400`: an unknown IANA time
  zone, a token that was never issued, a user ingesting without ``?project``, a password in
  the common-password list or over bcrypt's 72 *bytes*), or breaks a rule across fields
  (`_CROSS_FIELD`: ``limit`` of a summary needs a ``group_by``, a model validator whose
  error names no field; only that rule's message is excused, not any field-less 400).
* ``negative_data_rejection``: an ingest batch is answered 207 with per-event results (one bad
  event never loses the good ones), so a schema-violating event is "rejected" inside a 207.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import InvalidArgument, Unsatisfiable

from .conftest import wipe
from .helpers import Api

#: Error codes of 400s that answer schema-valid requests the JSON Schema cannot rule out.
_SEMANTIC_400 = {"invalid_timezone", "invalid_reset_token", "invalid_verification_token",
                 "project_required", "invalid_range", "invalid_time", "invalid_cursor",
                 "refresh_token_required", "weak_password", "invalid_until"}
#: Messages of the model validators' rules across fields (400 ``invalid_request``, no param).
_CROSS_FIELD = ("limit needs group_by",)
_EXAMPLES = 6
_SETTINGS = settings(max_examples=_EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck),
                     phases=[Phase.explicit, Phase.generate])


def _semantic_400(response: Any) -> bool:
    """A 400 for a rule JSON Schema cannot state: a code of `_SEMANTIC_400`, or a rule across
    fields of `_CROSS_FIELD` (a model validator's ``invalid_request``, which names no single
    ``param``)."""
    if response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except Exception:  # not the envelope: the check itself must judge it
        return False
    return bool(error["code"] in _SEMANTIC_400
                or (error["code"] == "invalid_request" and error["param"] is None
                    and any(rule in error["message"] for rule in _CROSS_FIELD)))


def _checks() -> tuple[list[Any], list[Any]]:
    """(checks to add, built-ins to exclude): the two allowances of the module docstring."""
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance

    def positive_data_acceptance_semantic(ctx, response, case):  # type: ignore[no-untyped-def]
        if _semantic_400(response):
            return True
        return positive_data_acceptance(ctx, response, case)

    def negative_data_rejection_per_event(ctx, response, case):  # type: ignore[no-untyped-def]
        if case.path == "/api/events/track" and response.status_code == 207:
            results = response.json()["data"]["results"]
            if any(r["status"] == "rejected" for r in results):
                return True
        return negative_data_rejection(ctx, response, case)

    return ([positive_data_acceptance_semantic, negative_data_rejection_per_event],
            [positive_data_acceptance, negative_data_rejection])


def _schema(app: Flask) -> Any:
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # Every string field refuses NUL (PostgreSQL text cannot hold it), which the document
    # states in words; the generator leaves it out instead of tripping over it everywhere.
    schema.config.generation.update(allow_x00=False)
    return schema


def _credentials(api: Api) -> dict[str, str]:
    tenant = api.tenant()
    return {"jwt": tenant.token, "ingest key": tenant.key}


def _headers(case: Any, secret: str) -> dict[str, str]:
    """The credential (none to log out: that would end the test's own session), and no
    gzip: the WSGI transport hands schemathesis the body as sent, undecoded."""
    headers = {"Accept-Encoding": "identity"}
    if case.path != "/api/auth/logout":
        headers["Authorization"] = f"Bearer {secret}"
    return headers


def _runner(secret: str, calls: set[str], added: list[Any], excluded: list[Any]) -> Any:
    """A hypothesis test body: call the case with ``secret`` and run every check."""

    @_SETTINGS
    def run(case: Any) -> None:
        calls.add(case.operation.label)
        case.call_and_validate(headers=_headers(case, secret), additional_checks=added,
                               excluded_checks=excluded)

    return run


class TestEveryOperation:
    """Stateless: every operation, both generation modes, both kinds of credential."""

    def test_no_5xx_and_every_response_matches_the_document(self, app: Flask, api: Api) -> None:
        """All checks pass on every operation (each one exercised at least once)."""
        from schemathesis import GenerationMode

        credentials = _credentials(api)
        schema = _schema(app)
        added, excluded = _checks()
        calls: set[str] = set()
        failures: list[str] = []
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for name, secret in credentials.items():
                    run = _runner(secret, calls, added, excluded)
                    try:
                        given(operation.as_strategy(generation_mode=mode))(run)()
                    except Unsatisfiable:  # nothing to make invalid: no parameters, no body
                        assert mode is GenerationMode.NEGATIVE
                    except (InvalidArgument, KeyboardInterrupt):
                        raise
                    except BaseException as exc:  # schemathesis raises an exception group
                        failures.append(f"{operation.label} ({mode.value}, {name}): {exc}")
        assert not failures, "\n\n".join(failures)
        assert calls == {op.label for op in operations}
        paths = {op.path for op in operations}
        for newer in ("/api/invitations", "/api/auth/verify-email", "/api/auth/password-reset",
                      "/api/otlp/v1/traces", "/api/events/track"):
            assert newer in paths


class TestStateful:
    """schemathesis' state machine, chaining operations through the document's links."""

    def test_links_chain_created_resources(self, client) -> None:  # type: ignore[no-untyped-def]
        """Creating a budget, key, webhook, project or invitation links to what acts on it."""
        spec = client.get("/api/openapi.json").get_json()
        links = spec["paths"]["/api/budgets"]["post"]["responses"]["201"]["links"]
        assert links["budgets_delete_budget"]["parameters"] == {
            "budget_id": "$response.body#/data/id"}
        assert "budgets_update_budget" in links and "budgets_get_budget" in links
        keys = spec["paths"]["/api/keys"]["post"]["responses"]["201"]["links"]
        assert set(keys) == {"keys_revoke_key"}
        invite = spec["paths"]["/api/projects/{project_id}/members"]["post"]["responses"]["202"]
        assert invite["links"]["projects_cancel_invitation"]["parameters"] == {
            "project_id": "$request.path.project_id", "invitation_id": "$response.body#/data/id"}

    def test_state_machine_finds_nothing(self, app: Flask, api: Api) -> None:
        """Every check holds along linked sequences of calls."""
        credentials: dict[str, str] = {}
        added, excluded = _checks()
        machine = _schema(app).as_state_machine()
        answered: list[tuple[str, int]] = []

        class Machine(machine):  # type: ignore[misc,valid-type]
            def setup(self) -> None:
                # Each scenario starts from an empty database: the ids it sees, and so the
                # data drawn from them, are the same whenever hypothesis replays it.
                wipe(app.extensions["llmlab_db"][0])
                credentials.update(_credentials(api))

            def after_call(self, response: Any, case: Any) -> None:
                answered.append((case.operation.label, response.status_code))

            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                return {"headers": _headers(case, credentials["jwt"])}

            def validate_response(self, response: Any, case: Any,
                                  additional_checks: Any = None, **kwargs: Any) -> None:
                case.validate_response(response, headers=kwargs.get("headers"),
                                       additional_checks=added, excluded_checks=excluded,
                                       transport_kwargs=kwargs)

        Machine.run(settings=settings(max_examples=40, stateful_step_count=6, deadline=None,
                                      derandomize=True, database=None,
                                      suppress_health_check=list(HealthCheck)))
        # Links were followed: a created resource was then acted on successfully.
        followed = {label for label, status in answered
                    if "{" in label and label.split()[0] != "POST" and status < 300}
        assert followed, answered


@pytest.fixture
def app_config() -> dict[str, object]:
    """Generous limits: schemathesis sends many requests, some with bad credentials."""
    return {"RATE_LIMIT_BURST": 100_000, "AUTH_THROTTLE_PER_CLIENT": "100000 per minute",
            "AUTH_THROTTLE_PER_ACCOUNT": "100000 per minute"}


class TestAllowancesAreNarrow:
    """The allowances excuse only what they name: a regression still fails the run."""

    class _Answer:
        def __init__(self, status: int, error: dict[str, Any] | None) -> None:
            self.status_code = status
            self._body = {"success": False, "data": None, "error": error}

        def json(self) -> dict[str, Any]:
            return self._body

    def test_only_named_400s_are_excused(self) -> None:
        """A 500, a 400 of another code, or a field-less 400 of another rule is judged."""
        def error(code: str, message: str = "x", param: str | None = None) -> dict[str, Any]:
            return {"type": "invalid_request_error", "code": code, "message": message,
                    "param": param}

        answer = self._Answer
        assert _semantic_400(answer(400, error("invalid_timezone", param="timezone")))
        assert _semantic_400(answer(400, error(
            "invalid_request", "Value error, limit needs group_by model, provider")))
        assert not _semantic_400(answer(500, error("internal_error")))
        assert not _semantic_400(answer(400, error("invalid_request", "Value error, other")))
        assert not _semantic_400(answer(400, error("invalid_json")))
        assert not _semantic_400(answer(400, error("invalid_request", param="name")))
