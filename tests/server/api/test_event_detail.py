"""GET /api/events/<event id> and the tag filter of GET /api/events, on both databases."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ..helpers import Api, Tenant, make_event

RANGE = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-03T00:00:00Z"}


def stored(api: Api, t: Tenant, *events: dict[str, Any]) -> None:
    """Ingest ``events`` into ``t``'s project, all accepted."""
    response = api.track(t.key, list(events))
    assert response.get_json()["data"]["accepted"] == len(events)


def listed(api: Api, t: Tenant, *params: tuple[str, str]) -> list[str]:
    """Ids of ``t``'s events matching ``params`` (a list: ``tag`` may repeat)."""
    query = urlencode([("project", str(t.project_id)), *RANGE.items(), *params])
    return [e["id"] for e in api.data("GET", f"/api/events?{query}", t.token)["events"]]


def error_of(api: Api, path: str, token: str, status: int) -> dict[str, Any]:
    """The error envelope of a request that must fail with ``status``."""
    response = api.call("GET", path, token)
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["success"] is False and body["data"] is None
    return dict(body["error"])


class TestEventDetail:
    """One event by id, with every stored field, scoped like the list."""

    def test_every_stored_field_is_returned(self, api: Api) -> None:
        """The detail has the fields the list row has, and the ones the dashboard shows."""
        t = api.tenant()
        event = make_event(
            model="gpt-4o-2024-08-06", requested_model="gpt-4o", status="error",
            error_type="RateLimitError", service_tier="flex", environment="staging",
            ttfb_ms=42.5, stream=True, estimated=True, job_id="nightly", user_id="u-7",
            function="summarise", tags={"team": "search", "tier": "gold"},
            usage={"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 1000})
        stored(api, t, event)
        got = api.data("GET", f"/api/events/{event['id']}", t.token)
        assert got["id"] == event["id"] and got["project_id"] == t.project_id
        assert (got["model"], got["requested_model"]) == ("gpt-4o-2024-08-06", "gpt-4o")
        assert (got["status"], got["error_type"], got["service_tier"]) == (
            "error", "RateLimitError", "flex")
        assert (got["environment"], got["ttfb_ms"], got["stream"], got["estimated"]) == (
            "staging", 42.5, True, True)
        assert (got["job_id"], got["user_id"], got["function"]) == ("nightly", "u-7",
                                                                    "summarise")
        assert got["tags"] == {"team": "search", "tier": "gold"}
        assert got["usage"]["cache_read_tokens"] == 1000 and got["usage"]["input_tokens"] == 1200
        row = api.data("GET", f"/api/events?{urlencode({**RANGE})}", t.token)["events"][0]
        assert row == got  # the same serialisation as the list

    def test_found_with_the_project_named_and_with_a_read_key(self, api: Api) -> None:
        """``?project=`` narrows the search; an API key reads its own project's events."""
        t = api.tenant()
        event = make_event()
        stored(api, t, event)
        assert api.data("GET", f"/api/events/{event['id']}?project={t.project_id}",
                        t.token)["id"] == event["id"]
        assert api.data("GET", f"/api/events/{event['id']}", t.key)["id"] == event["id"]

    def test_another_tenants_event_is_404_like_a_missing_one(self, api: Api) -> None:
        """The other tenant's event answers exactly like an id nobody stores."""
        mine, theirs = api.tenant(), api.tenant()
        event = make_event()
        stored(api, theirs, event)
        for token in (mine.token, mine.key):
            error = error_of(api, f"/api/events/{event['id']}", token, 404)
            missing = error_of(api, "/api/events/no-such-event", token, 404)
            assert error == missing and error["code"] == "not_found"
        # Naming their project is 404 too (not 403), and their key cannot read mine.
        error_of(api, f"/api/events/{event['id']}?project={theirs.project_id}", mine.token,
                 404)
        own = make_event()
        stored(api, mine, own)
        error_of(api, f"/api/events/{own['id']}", theirs.key, 404)
        assert api.data("GET", f"/api/events/{event['id']}", theirs.token)["id"] == event["id"]

    def test_an_id_in_two_of_my_projects_needs_the_project(self, api: Api) -> None:
        """The same id in two of the caller's projects: 409 without ``project``, else found."""
        t = api.tenant()
        second = api.project(t.token, "Second")
        key2 = api.key(t.token, second["id"])
        event = make_event()
        stored(api, t, event)
        assert api.track(key2, [event]).get_json()["data"]["accepted"] == 1
        assert error_of(api, f"/api/events/{event['id']}", t.token, 409)["code"] == (
            "ambiguous_event")
        got = api.data("GET", f"/api/events/{event['id']}?project={second['id']}", t.token)
        assert got["project_id"] == second["id"]

    def test_bad_input_is_an_error_envelope(self, api: Api) -> None:
        """Odd ids and parameters answer 4xx in the envelope, never 500."""
        t = api.tenant()
        for path, status in (("/api/events/" + "a" * 129, 404), ("/api/events/a%00b", 404),
                             ("/api/events/%E2%9C%93", 404), ("/api/events/a%0A", 404),
                             ("/api/events/x?project=0", 400),
                             ("/api/events/x?project=99999999999999999999", 400),
                             ("/api/events/x?bogus=1", 400)):
            error_of(api, path, t.token, status)
        assert api.call("GET", "/api/events/x").status_code == 401


class TestTagFilter:
    """``tag=key:value``, repeatable: events having every one of the tags."""

    def test_one_and_several_tags(self, api: Api) -> None:
        """One tag keeps its events; two keep those with both; values are compared exactly."""
        t = api.tenant()
        a = make_event(tags={"team": "search", "env": "prod"})
        b = make_event(tags={"team": "search", "env": "dev"})
        c = make_event(tags={"team": "ads"})
        d = make_event(tags={"url": "https://x.test/a:b", "empty": ""})
        e = make_event()
        stored(api, t, a, b, c, d, e)
        assert set(listed(api, t, ("tag", "team:search"))) == {a["id"], b["id"]}
        assert listed(api, t, ("tag", "team:search"), ("tag", "env:prod")) == [a["id"]]
        assert listed(api, t, ("tag", "team:Search")) == []
        assert listed(api, t, ("tag", "url:https://x.test/a:b")) == [d["id"]]
        assert listed(api, t, ("tag", "empty:")) == [d["id"]]
        assert listed(api, t, ("tag", "missing:x")) == []
        assert len(listed(api, t)) == 5

    def test_tags_combine_with_other_filters_and_paging(self, api: Api) -> None:
        """The tag filter narrows the other filters, and pages keep it."""
        t = api.tenant()
        tagged = [make_event(tags={"team": "search"}, timestamp=f"2026-11-02T10:{i:02d}:00Z")
                  for i in range(5)]
        stored(api, t, *tagged, make_event(tags={"team": "search"}, model="gpt-4o-mini"),
               make_event(tags={"team": "ads"}))
        assert len(listed(api, t, ("tag", "team:search"), ("model", "gpt-4o"))) == 5
        query = urlencode([("project", t.project_id), *RANGE.items(), ("tag", "team:search"),
                           ("model", "gpt-4o"), ("limit", 3)])
        first = api.data("GET", f"/api/events?{query}", t.token)
        second = api.data("GET", f"/api/events?{query}&cursor={first['next_cursor']}", t.token)
        ids = [e["id"] for e in first["events"] + second["events"]]
        assert sorted(ids) == sorted(e["id"] for e in tagged) and second["next_cursor"] is None

    def test_other_tenants_tagged_events_stay_invisible(self, api: Api) -> None:
        """Filtering by a tag another tenant uses finds none of their events."""
        mine, theirs = api.tenant(), api.tenant()
        stored(api, theirs, make_event(tags={"team": "search"}))
        query = urlencode([*RANGE.items(), ("tag", "team:search")])
        for token in (mine.token, mine.key):
            assert api.data("GET", f"/api/events?{query}", token)["events"] == []

    def test_bad_tag_filters_are_400(self, api: Api) -> None:
        """A malformed or excessive tag filter is a 400 envelope naming ``tag``."""
        t = api.tenant()
        for tag in ("nocolon", ":value", "bad key:x", "k:" + "v" * 257, "k" * 65 + ":v",
                    "k:a\x00b"):
            query = urlencode([("tag", tag)])
            error = error_of(api, f"/api/events?{query}", t.token, 400)
            assert "tag" in error["message"] or error.get("param") == "tag", (tag, error)
        many = urlencode([("tag", f"k{i}:v") for i in range(9)])
        error_of(api, f"/api/events?{many}", t.token, 400)
