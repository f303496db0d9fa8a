// Drill-down: one model, provider, job, user or tag value over the selected range.

import { request } from "./api.js";
import { cardsLoading, setCard, versus } from "./cards.js";
import { COLORS, chartLoading, moneyAxis, plot, purge } from "./charts.js";
import { $, failure } from "./dom.js";
import { compact, count, money, ms, percent } from "./format.js";
import { HOUR, bucketLabel, params } from "./ranges.js";

export const KINDS = { model: "Model", provider: "Provider", job: "Job", user: "User", tag: "Tag" };
/** Dimensions ``GET /api/events`` filters on (a tag as ``tag=key:value``). */
const EVENT_FILTER = { model: "model", provider: "provider", job: "job", user: "user" };
/** Events read to draw the cost over time (the timeseries route has no such filters). */
const CHART_EVENTS = 2000;
const CARDS = ["d-cost", "d-calls", "d-tokens", "d-cache", "d-errors", "d-latency"];

function groupBy(view) {
  return view.view === "tag" ? `tag:${view.tag}` : view.view;
}

/** The label of the drilled entity: "Job nightly-report", "Tag feature = triage". */
export function title(view) {
  return view.view === "tag" ? [`Tag ${view.tag} =`, view.key] : [KINDS[view.view], view.key];
}

/** The events-route filter selecting the drilled entity (null for an unknown view). */
export function eventFilter(view) {
  if (view.view === "tag") return view.tag ? { tag: `${view.tag}:${view.key}` } : null;
  const name = EVENT_FILTER[view.view];
  return name ? { [name]: view.key } : null;
}

export async function loadDetailCards(ctx) {
  cardsLoading(CARDS);
  const query = { project: ctx.project, group_by: groupBy(ctx.view) };
  try {
    const [now, before] = await Promise.all([
      request("/api/costs/summary", { ...query, ...params(ctx.range) }),
      request("/api/costs/summary", { ...query, ...params(ctx.prev) }),
    ]);
    if (!ctx.live()) return;
    const zero = { cost: "0", calls: 0, errors: 0, error_rate: 0, avg_latency_ms: null,
                   tokens: { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, total_tokens: 0 } };
    const row = now.groups.find((g) => g.key === ctx.view.key) || zero;
    const prev = before.groups.find((g) => g.key === ctx.view.key) || zero;
    const share = Number(now.totals.cost) ? Number(row.cost) / Number(now.totals.cost) : 0;
    setCard("d-cost", money(row.cost), versus(row.cost, prev.cost, money(prev.cost)));
    setCard("d-calls", count(row.calls), versus(row.calls, prev.calls, count(prev.calls), false));
    setCard("d-tokens", compact(row.tokens.total_tokens),
            `${compact(row.tokens.input_tokens)} in · ${compact(row.tokens.output_tokens)} out · ` +
            `${percent(share)} of the spend`);
    const input = row.tokens.input_tokens;
    setCard("d-cache", input ? percent(row.tokens.cache_read_tokens / input) : "—",
            `${compact(row.tokens.cache_read_tokens)} of ${compact(input)} input tokens read from cache`);
    setCard("d-errors", count(row.errors), `${percent(row.error_rate)} of calls`);
    setCard("d-latency", ms(row.avg_latency_ms), prev.avg_latency_ms === null ? ""
            : `${ms(prev.avg_latency_ms)} before`);
  } catch (err) {
    if (!ctx.live() || err.status === 401) return;
    for (const id of CARDS) setCard(id, "—", "");
    ctx.notice(`Could not load the totals: ${err.message}`, () => loadDetailCards(ctx));
  }
}

/** Cost per day (or hour) from the entity's events, newest first, up to ``CHART_EVENTS``. */
export async function loadDetailChart(ctx) {
  const node = $("d-chart");
  const note = $("d-chart-note");
  note.textContent = "";
  const filter = eventFilter(ctx.view);
  if (!filter) {
    purge(node, "No calls in this range.");
    return;
  }
  chartLoading(node);
  try {
    const events = [];
    let cursor = null;
    do {
      const page = await request("/api/events", { project: ctx.project, ...params(ctx.range), ...filter,
                                                 limit: 1000, cursor });
      events.push(...page.events);
      cursor = page.next_cursor;
    } while (cursor && events.length < CHART_EVENTS && ctx.live());
    if (!ctx.live()) return;
    if (!events.length) {
      purge(node, "No calls in this range.");
      return;
    }
    const unit = ctx.view.by === "hour" ? "hour" : "day";
    // Buckets (days or hours in the project's zone) from the range start, or from the oldest
    // event read when the read was cut short.
    const oldest = new Date(events[events.length - 1].timestamp).getTime();
    const from = cursor ? Math.floor(oldest / HOUR) * HOUR : ctx.range.start.getTime();
    const buckets = new Map();
    for (let t = from; t < ctx.range.end.getTime(); t += HOUR) {
      const label = bucketLabel(new Date(t), unit);
      if (!buckets.has(label)) buckets.set(label, { cost: 0, calls: 0 });
    }
    for (const event of events) {
      const bucket = buckets.get(bucketLabel(new Date(event.timestamp), unit));
      if (!bucket) continue;
      bucket.cost += Number(event.cost);
      bucket.calls += 1;
    }
    const keys = [...buckets.keys()];
    plot(node, [{
      type: "bar", x: keys, y: keys.map((t) => buckets.get(t).cost), marker: { color: COLORS[0] },
      customdata: keys.map((t) => buckets.get(t).calls), hovertext: keys.map((t) => money(buckets.get(t).cost)),
      hovertemplate: "%{x}<br>%{hovertext}<br>%{customdata} calls<extra></extra>",
    }], { xaxis: { type: "date" }, yaxis: moneyAxis(Math.max(...keys.map((t) => buckets.get(t).cost))) });
    note.textContent = cursor
      ? `Drawn from the latest ${count(events.length)} calls of the range (the older ones are left out).`
      : `Drawn from its ${count(events.length)} calls.`;
  } catch (err) {
    if (ctx.live() && err.status !== 401) failure(node, err, () => loadDetailChart(ctx));
  }
}

export function renderTitle(view) {
  const [kind, key] = title(view);
  $("detail-kind").textContent = kind;
  $("detail-key").textContent = key;
}
