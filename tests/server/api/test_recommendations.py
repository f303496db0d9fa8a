"""Recommendations API: the seed example, batch, caching, failed calls, output caps, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from llmlab.pricing import Catalogue

from ..helpers import Api, Tenant, make_event


def ago(hours: float) -> str:
    """An ISO instant ``hours`` ago."""
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def ingest(api: Api, t: Tenant, events: list[dict[str, Any]]) -> None:
    """Ingest in batches of 500, all accepted."""
    for i in range(0, len(events), 500):
        response = api.track(t.key, events[i:i + 500])
        assert response.get_json()["data"]["accepted"] == len(events[i:i + 500])


def recs(api: Api, t: Tenant, **params: Any) -> dict[str, Any]:
    """The recommendations of ``t``'s project."""
    query = "&".join(f"{k}={v}" for k, v in {"project": t.project_id, **params}.items())
    return api.data("GET", f"/api/recommendations?{query}", t.token)


def per_token(model: str) -> tuple[Decimal, Decimal]:
    """Standard input and output USD per token of ``model``."""
    card = Catalogue.default().resolve(model).period_at(None).card()
    return card.input, card.output


class TestSeedExample:
    """$500 on gpt-4 in 100 calls and $50 on gpt-3.5-turbo in 1,000 calls over 30 days."""

    def test_switch_gpt4_to_a_cheaper_same_tier_model(self, api: Api) -> None:
        """The top recommendation switches gpt-4 to gpt-4.1 and saves $/month on that mix."""
        t = api.tenant()
        gpt4 = [make_event(model="gpt-4", timestamp=ago(1 + i * 7),
                           usage={"input_tokens": 160_000, "output_tokens": 3_333},
                           cost={"input": "4.8", "output": "0.2", "total": "5"})
                for i in range(100)]
        gpt35 = [make_event(model="gpt-3.5-turbo", timestamp=ago(1 + i * 0.7),
                            usage={"input_tokens": 70_000, "output_tokens": 10_000})
                 for i in range(1000)]
        ingest(api, t, gpt4 + gpt35)
        summary = api.data("GET", f"/api/costs/summary?project={t.project_id}&group_by=model",
                           t.token)
        assert {g["key"]: g["cost"] for g in summary["groups"]} == {"gpt-4": "500",
                                                                    "gpt-3.5-turbo": "50"}
        data = recs(api, t)
        top = data["recommendations"][0]
        assert top["kind"] == "cheaper_model" and top["title"] == "Switch gpt-4 to gpt-4.1"
        # The saving, independently: $500 x (1 - price(gpt-4.1) / price(gpt-4)) on the mix.
        inp, out = 100 * 160_000, 100 * 3_333
        old = inp * per_token("gpt-4")[0] + out * per_token("gpt-4")[1]
        new = inp * per_token("gpt-4.1")[0] + out * per_token("gpt-4.1")[1]
        expected = (Decimal(500) * (1 - new / old)).quantize(Decimal("0.01"))
        assert top["monthly_savings"] == str(expected) == "465.33"
        assert top["confidence"] == "high"
        ev = top["evidence"]
        assert (ev["model"], ev["calls"], ev["cost"]) == ("gpt-4", 100, "500")
        assert ev["tokens"]["input"] == inp and ev["tokens"]["output"] == out
        assert ev["period"]["days"] == 30 and ev["details"]["suggested_model"] == "gpt-4.1"
        titles = [r["title"] for r in data["recommendations"]]
        assert "Switch gpt-3.5-turbo to gpt-4o-mini" in titles
        assert not any("max_tokens" in n for n in data["notes"])

    def test_window_extrapolates_to_a_month(self, api: Api) -> None:
        """The same spend seen in a 10-day window is three times as much per month."""
        t = api.tenant()
        ingest(api, t, [make_event(model="gpt-4", timestamp=ago(2),
                                   usage={"input_tokens": 160_000, "output_tokens": 3_333})
                        for _ in range(20)])
        month = recs(api, t)["recommendations"][0]["monthly_savings"]
        ten = recs(api, t, days=10)["recommendations"][0]["monthly_savings"]
        assert abs(Decimal(ten) - 3 * Decimal(month)) <= Decimal("0.02")


class TestOtherKinds:
    """Batch API, prompt caching, failed calls and output caps on constructed histories."""

    def test_tagged_non_interactive_job_gets_batch(self, api: Api) -> None:
        """A job tagged interactive=false saves half its gpt-4o cost with the Batch API."""
        t = api.tenant()
        ingest(api, t, [make_event(timestamp=ago(3), job_id="nightly-report",
                                   tags={"interactive": "false"}) for _ in range(10)])
        (rec,) = [r for r in recs(api, t)["recommendations"] if r["kind"] == "batch_api"]
        assert rec["confidence"] == "high" and "nightly-report" in rec["title"]
        assert Decimal(rec["monthly_savings"]) == Decimal("0.02")  # 10 x $0.0035 / 2, rounded

    def test_off_hours_job_is_observed_batchable(self, api: Api) -> None:
        """A job whose calls all run at 03:00 UTC is suggested for batch with low confidence."""
        t = api.tenant()
        base = (datetime.now(UTC) - timedelta(days=2)).replace(hour=3, minute=0)
        ingest(api, t, [make_event(timestamp=(base - timedelta(days=i % 5)).isoformat(),
                                   job_id="etl") for i in range(40)])
        (rec,) = [r for r in recs(api, t)["recommendations"] if r["kind"] == "batch_api"]
        assert rec["confidence"] == "low" and rec["evidence"]["details"]["off_hours_calls"] == 40

    def test_interactive_daytime_job_is_not_batch(self, api: Api) -> None:
        """Untagged calls in business hours get no batch recommendation."""
        t = api.tenant()
        now = datetime.now(UTC)
        monday = (now - timedelta(days=now.weekday() + 7)).replace(hour=12)
        ingest(api, t, [make_event(timestamp=monday.isoformat(), job_id="chat")
                        for _ in range(40)])
        assert not [r for r in recs(api, t)["recommendations"] if r["kind"] == "batch_api"]

    def test_long_uncached_prompts_get_prompt_caching(self, api: Api) -> None:
        """gpt-4o calls of 20k uncached input tokens get a caching recommendation."""
        t = api.tenant()
        ingest(api, t, [make_event(timestamp=ago(2), usage={"input_tokens": 20_000,
                                                            "output_tokens": 100})
                        for _ in range(50)])
        (rec,) = [r for r in recs(api, t)["recommendations"] if r["kind"] == "prompt_caching"]
        # Half of 1M input tokens read from cache at $1.25/M instead of $2.50/M: $0.625.
        assert rec["monthly_savings"] == "0.62" and rec["confidence"] == "medium"

    def test_well_cached_prompts_get_no_caching(self, api: Api) -> None:
        """Prompts already read mostly from cache get no caching recommendation."""
        t = api.tenant()
        ingest(api, t, [make_event(timestamp=ago(2), usage={
            "input_tokens": 20_000, "cache_read_tokens": 15_000, "output_tokens": 100})
            for _ in range(50)])
        assert not [r for r in recs(api, t)["recommendations"] if r["kind"] == "prompt_caching"]

    def test_failed_calls_are_counted(self, api: Api) -> None:
        """Billed errors are reported with their cost per month."""
        t = api.tenant()
        ingest(api, t, [make_event(timestamp=ago(2), status="error", error_type="timeout")
                        for _ in range(30)] + [make_event(timestamp=ago(2))])
        (rec,) = [r for r in recs(api, t)["recommendations"] if r["kind"] == "failed_calls"]
        assert rec["evidence"]["calls"] == 30 and rec["evidence"]["cost"] == "0.105"
        assert rec["monthly_savings"] == "0.10" and rec["confidence"] == "high"

    def test_long_tail_of_output_gets_a_cap(self, api: Api) -> None:
        """5 % of 200 gpt-4o calls at 8,000 output tokens and the rest ~300 get a priced cap."""
        t = api.tenant()
        outputs = [8_000 if i % 20 == 0 else 250 + (i * 7) % 101 for i in range(200)]
        ingest(api, t, [make_event(timestamp=ago(1 + i * 0.5),
                                   usage={"input_tokens": 500, "output_tokens": out})
                        for i, out in enumerate(outputs)]
               + [make_event(timestamp=ago(2), status="error",
                             usage={"input_tokens": 500, "output_tokens": 9_000})])
        (rec,) = [r for r in recs(api, t)["recommendations"] if r["kind"] == "output_cap"]
        # Independently: nearest-rank p95 of the outputs, rounded up to a hundred, is the cap.
        ordered = sorted(outputs)
        p95 = ordered[190 - 1]
        cap = -(-p95 // 100) * 100
        assert (p95, cap) == (350, 400)
        # 10 calls x 7,600 tokens beyond the cap at gpt-4o's $10/M output, over a 30-day window.
        excess = sum(max(0, out - cap) for out in outputs)
        expected = (excess * per_token("gpt-4o")[1]).quantize(Decimal("0.01"))
        assert excess == 76_000 and rec["monthly_savings"] == str(expected) == "0.76"
        assert rec["title"] == f"Cap gpt-4o output at {cap:,} tokens"
        assert rec["confidence"] == "low" and "truncates" in rec["detail"]
        ev = rec["evidence"]
        assert (ev["model"], ev["calls"], ev["period"]["days"]) == ("gpt-4o", 200, 30)
        assert ev["details"]["median_output_tokens"] == ordered[100 - 1]
        assert ev["details"]["p90_output_tokens"] == ordered[180 - 1]
        assert ev["details"]["max_output_tokens"] == 8_000
        assert ev["details"]["suggested_max_tokens"] == cap
        assert ev["details"]["calls_over_cap"] == 10

    def test_uniform_output_gets_no_cap(self, api: Api) -> None:
        """200 gpt-4o calls of 250-350 output tokens get no output cap."""
        t = api.tenant()
        ingest(api, t, [make_event(timestamp=ago(1 + i * 0.5), usage={
            "input_tokens": 500, "output_tokens": 250 + (i * 7) % 101}) for i in range(200)])
        assert not [r for r in recs(api, t)["recommendations"] if r["kind"] == "output_cap"]

    def test_common_long_output_gets_no_cap(self, api: Api) -> None:
        """When a fifth of the calls run long, long output is normal and gets no cap."""
        t = api.tenant()
        ingest(api, t, [make_event(timestamp=ago(1 + i * 0.5), usage={
            "input_tokens": 500, "output_tokens": 8_000 if i % 5 == 0 else 300})
            for i in range(200)])
        assert not [r for r in recs(api, t)["recommendations"] if r["kind"] == "output_cap"]

    def test_old_spend_is_outside_the_window(self, api: Api) -> None:
        """Calls older than the window produce nothing."""
        t = api.tenant()
        ingest(api, t, [make_event(model="gpt-4", timestamp=ago(24 * 40)) for _ in range(10)])
        assert recs(api, t)["recommendations"] == []


class TestTenancy:
    """Recommendations are scoped like every read."""

    def test_other_tenant_gets_404(self, api: Api) -> None:
        """Naming another tenant's project is 404; listing all shows only one's own."""
        t, intruder = api.tenant(), api.tenant()
        ingest(api, t, [make_event(model="gpt-4", timestamp=ago(2)) for _ in range(10)])
        for token in (intruder.token, intruder.key):
            assert api.call("GET", f"/api/recommendations?project={t.project_id}",
                            token).status_code == 404
        assert api.data("GET", "/api/recommendations", intruder.token)["recommendations"] == []
